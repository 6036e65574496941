//! One file per subcommand; shared plumbing here.

pub mod calibration;
pub mod changes;
pub mod completion;
pub mod corrections;
pub mod daemon;
pub mod diagnose;
pub mod eval;
pub mod explain_score;
pub mod feedback;
pub mod learn;
pub mod mcp;
pub mod memory;
pub mod snapshot;
pub mod watch;

use std::io::IsTerminal;
use std::path::PathBuf;

use metakube_shared::paths;

use crate::cli::GlobalArgs;
use crate::client::{ensure_daemon, ClientError, DaemonClient};

/// The socket the daemon listens on.
pub fn socket(g: &GlobalArgs) -> PathBuf {
    g.socket.clone().unwrap_or_else(|| {
        paths::socket_path(paths::process_env, rustix::process::getuid().as_raw())
    })
}

/// The daemon's log file when the plugin starts it.
pub fn daemon_log() -> PathBuf {
    paths::data_dir(paths::process_env).join("metakubed.log")
}

/// A client for a running daemon, starting one if needed and allowed.
pub async fn daemon(g: &GlobalArgs) -> Result<DaemonClient, ClientError> {
    let client = DaemonClient::new(
        &socket(g),
        g.request_timeout.max(std::time::Duration::from_secs(5)),
    );
    ensure_daemon(&client, !g.no_start_daemon, &daemon_log(), &|m| {
        eprintln!("metakube: {m}")
    })
    .await?;
    Ok(client)
}

/// A spinner on stderr when stderr is a terminal; nothing otherwise.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    /// Starts one.
    pub fn new() -> Progress {
        if std::io::stderr().is_terminal() {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.enable_steady_tick(std::time::Duration::from_millis(100));
            Progress(Some(pb))
        } else {
            Progress(None)
        }
    }

    /// Shows a step.
    pub fn step(&self, msg: &str) {
        if let Some(pb) = &self.0 {
            pb.set_message(msg.to_string());
        }
    }

    /// Clears it.
    pub fn done(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}
