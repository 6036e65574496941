//! `daemon install|status|stop|start`.

use anyhow::{bail, Context};
use metakube_shared::{paths, Stats};

use crate::cli::{DaemonAction, GlobalArgs};
use crate::client::{find_daemon, ClientError, DaemonClient};

const SERVICE: &str = include_str!("../../systemd/metakubed.service");
const SOCKET: &str = include_str!("../../systemd/metakubed.socket");

/// Runs a daemon action.
pub async fn run(g: &GlobalArgs, action: &DaemonAction) -> anyhow::Result<()> {
    match action {
        DaemonAction::Install => install(),
        DaemonAction::Status => status(g).await,
        DaemonAction::Stop => stop(g).await,
        DaemonAction::Start => {
            let mut g = g.clone();
            g.no_start_daemon = false;
            let c = super::daemon(&g).await?;
            let h = c.health().await?;
            println!(
                "metakubed {} running (pid {}) on {}",
                h.version,
                h.pid,
                c.socket().display()
            );
            Ok(())
        }
    }
}

fn install() -> anyhow::Result<()> {
    let bin = find_daemon()
        .context("no metakubed binary beside kubectl-metakube or on PATH; install it first")?;
    let dir = match std::env::var("XDG_CONFIG_HOME")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::PathBuf::from(std::env::var("HOME").context("HOME is not set")?)
            .join(".config"),
    }
    .join("systemd/user");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let service = SERVICE.replace("@METAKUBED@", &bin.display().to_string());
    std::fs::write(dir.join("metakubed.service"), service)?;
    std::fs::write(dir.join("metakubed.socket"), SOCKET)?;
    println!(
        "installed {} and {}",
        dir.join("metakubed.service").display(),
        dir.join("metakubed.socket").display()
    );
    println!("enable with:\n  systemctl --user daemon-reload && systemctl --user enable --now metakubed.socket");
    Ok(())
}

async fn status(g: &GlobalArgs) -> anyhow::Result<()> {
    let c = DaemonClient::new(&super::socket(g), g.request_timeout);
    let h = match c.health().await {
        Ok(h) => h,
        Err(ClientError::NoDaemon { socket, .. }) => {
            println!(
                "metakubed is not running (no answer on {})",
                socket.display()
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let s: Stats = c.get("/v1/stats").await?;
    println!(
        "metakubed {} (protocol {}), pid {}, up {:.0}s, socket {}",
        h.version,
        h.protocol,
        h.pid,
        h.uptime_s,
        c.socket().display()
    );
    for comp in &h.components {
        println!("  {:<14} {:?} {}", comp.name, comp.state, comp.detail);
    }
    println!(
        "  diagnoses {} (stored {}), intuitive {}, rejected {}, feedback {}, latency p50 {:.1} ms p99 {:.1} ms",
        s.diagnoses, s.diagnoses_stored, s.intuitive, s.rejected, s.feedback_total, s.latency_p50_ms, s.latency_p99_ms
    );
    println!("  data: {}", paths::data_dir(paths::process_env).display());
    Ok(())
}

async fn stop(g: &GlobalArgs) -> anyhow::Result<()> {
    let c = DaemonClient::new(&super::socket(g), g.request_timeout);
    let h = match c.health().await {
        Ok(h) => h,
        Err(ClientError::NoDaemon { .. }) => {
            println!("metakubed is not running");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let pid =
        rustix::process::Pid::from_raw(h.pid as i32).context("invalid pid from the daemon")?;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)
        .with_context(|| format!("sending SIGTERM to pid {}", h.pid))?;
    let socket = super::socket(g);
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        // Stopped means the process is gone: it stops answering first, then flushes its
        // store and removes its socket (whose pid no longer runs).
        let gone = rustix::process::test_kill_process(pid).is_err();
        if c.health().await.is_err() && (gone || !socket.exists()) {
            println!("metakubed (pid {}) stopped; if systemd manages it, socket activation starts it again on the next request (systemctl --user stop metakubed.socket to prevent that)", h.pid);
            return Ok(());
        }
    }
    bail!("metakubed (pid {}) did not stop within 10s", h.pid)
}
