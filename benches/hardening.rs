//! The daemon under a hostile neighbour and a careless operator, measured as one set
//! (`cargo bench -p metakube-benches --bench hardening`; `HARDENING_ONLY=load,idle,slowloris,kill9`
//! picks parts):
//!
//! - **load**: 100 clients × 20 diagnoses of a 500-object snapshot at once — errors, latency
//!   p50/p99, the daemon's peak and final RSS;
//! - **idle**: 21,000 connections (or as many as this process may open) held without a byte sent
//!   against a daemon allowed 4,096 files — does health still answer, and how fast;
//! - **slowloris**: 200 connections each sending a header line a second, never finishing —
//!   when the daemon cuts them, and whether health answers meanwhile;
//! - **kill9**: 20 rounds of diagnose → feedback acknowledged → `kill -9` → restart — how many
//!   acknowledged feedbacks the restarted daemon still has.
//!
//! Each part prints one line; nothing here asserts wall time (the tests assert behaviour).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use metakube_shared::{DiagnoseOptions, DiagnoseRequest, PROTOCOL, PROTOCOL_HEADER};
use serde_json::Value;

fn bin(name: &str) -> PathBuf {
    std::env::current_exe()
        .expect("exe")
        .parent()
        .expect("deps")
        .parent()
        .expect("profile")
        .join(name)
}

struct Daemon {
    child: Child,
    socket: PathBuf,
}

impl Daemon {
    /// `metakubed` on `dir` (socket and data), its open-file limit set by `ulimit -n`.
    fn start(dir: &Path, nofile: u64) -> Daemon {
        let socket = dir.join("run/metakubed.sock");
        let _ = std::fs::remove_file(&socket);
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(bin("metakubed"))
            .arg("--socket")
            .arg(&socket)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--config")
            .arg(dir.join("none.toml"))
            .args(["--llm", "none"])
            .env("METAKUBE_LOG", "error")
            .stderr(Stdio::null())
            .spawn()
            .expect("metakubed is built (cargo build --release --bins)");
        let d = Daemon { child, socket };
        let t = Instant::now();
        while request(&d.socket, "GET", "/v1/health", b"").map(|r| r.0) != Ok(200) {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "metakubed did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The store loads in the background: wait for stats, which waits for it.
        request(&d.socket, "GET", "/v1/stats", b"").expect("stats");
        d
    }

    fn status_kb(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on its own connection (the end-to-end tests' client): status and body.
fn request(socket: &Path, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let proto = PROTOCOL.to_string();
    metakube_tests::http(
        socket,
        method,
        path,
        &[
            (PROTOCOL_HEADER, &proto),
            ("content-type", "application/json"),
        ],
        body,
    )
    .map_err(|e| e.to_string())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn diagnose_body() -> Vec<u8> {
    serde_json::to_vec(&DiagnoseRequest {
        snapshot: metakube_benches::snapshot(500),
        options: DiagnoseOptions {
            no_llm: true,
            explain: None,
            no_memory: false,
        },
    })
    .expect("request")
}

fn health_ms(socket: &Path) -> Result<f64, String> {
    let t = Instant::now();
    match request(socket, "GET", "/v1/health", b"")? {
        (200, _) => Ok(t.elapsed().as_secs_f64() * 1000.0),
        (s, _) => Err(format!("health answered {s}")),
    }
}

fn load(dir: &Path, body: &[u8]) {
    let d = Daemon::start(dir, 20_000);
    let t = Instant::now();
    let results: Vec<Result<f64, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                s.spawn(|| {
                    (0..20)
                        .map(|_| {
                            let t = Instant::now();
                            match request(&d.socket, "POST", "/v1/diagnose", body)? {
                                (200, _) => Ok(t.elapsed().as_secs_f64() * 1000.0),
                                (st, b) => Err(format!("{st}: {}", String::from_utf8_lossy(&b))),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect()
    });
    let wall = t.elapsed().as_secs_f64();
    let mut ms: Vec<f64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    ms.sort_by(f64::total_cmp);
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    println!(
        "load: 100 clients x 20 diagnoses (500 objects): {} ok, {} errors{}; p50 {:.0} ms, p99 {:.0} ms, {:.1} diagnoses/s; daemon RSS peak {} MB, after {} MB",
        ms.len(),
        errors.len(),
        errors.first().map(|e| format!(" (first: {e})")).unwrap_or_default(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.len() as f64 / wall,
        d.status_kb("VmHWM:") / 1024,
        d.status_kb("VmRSS:") / 1024,
    );
}

fn idle(dir: &Path) {
    // As many connections as this process may open (21,000 where the limit allows), held
    // against a daemon whose own limit is far lower: more held than it has files.
    const DAEMON_FILES: u64 = 4_096;
    let mine = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let hard = mine.maximum.unwrap_or(u64::MAX);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    );
    let held_target = 21_000.min(hard.saturating_sub(512) as usize);
    let d = Daemon::start(dir, DAEMON_FILES);
    let mut held = Vec::with_capacity(held_target);
    let mut refused = 0;
    for _ in 0..held_target {
        match UnixStream::connect(&d.socket) {
            Ok(s) => held.push(s),
            Err(_) => refused += 1,
        }
    }
    let mut answers = Vec::new();
    for _ in 0..20 {
        answers.push(health_ms(&d.socket));
        std::thread::sleep(Duration::from_millis(100));
    }
    let ok: Vec<f64> = answers
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    let mut sorted = ok.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "idle: {} connections held ({refused} not accepted by the kernel; this process may open {hard} files), daemon limit {DAEMON_FILES} files: health answered {}/{} (p50 {:.1} ms, max {:.1} ms){}; daemon RSS {} MB",
        held.len(),
        ok.len(),
        answers.len(),
        percentile(&sorted, 0.5),
        sorted.last().copied().unwrap_or(f64::NAN),
        answers
            .iter()
            .find_map(|r| r.as_ref().err())
            .map(|e| format!(", first failure: {e}"))
            .unwrap_or_default(),
        d.status_kb("VmRSS:") / 1024,
    );
}

fn slowloris(dir: &Path) {
    const N: usize = 200;
    let d = Daemon::start(dir, 20_000);
    let start = Instant::now();
    let mut conns: Vec<(UnixStream, Option<f64>)> = (0..N)
        .map(|_| {
            let mut s = UnixStream::connect(&d.socket).expect("connect");
            s.write_all(b"POST /v1/diagnose HTTP/1.1\r\nHost: localhost\r\n")
                .expect("write");
            s.set_nonblocking(true).expect("nonblocking");
            (s, None)
        })
        .collect();
    let mut health = Vec::new();
    let mut line = 0;
    while start.elapsed() < Duration::from_secs(40) && conns.iter().any(|c| c.1.is_none()) {
        line += 1;
        for (s, closed) in conns.iter_mut().filter(|c| c.1.is_none()) {
            let gone = s
                .write_all(format!("X-Drip-{line}: 1\r\n").as_bytes())
                .is_err()
                || matches!(s.read(&mut [0u8; 256]), Ok(0));
            if gone {
                *closed = Some(start.elapsed().as_secs_f64());
            }
        }
        health.push(health_ms(&d.socket).is_ok());
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut cut: Vec<f64> = conns.iter().filter_map(|c| c.1).collect();
    cut.sort_by(f64::total_cmp);
    println!(
        "slowloris: {N} connections dripping a header line a second: {} cut by the daemon (p50 after {:.1} s, last after {:.1} s), {} still open after 40 s; health answered {}/{} checks meanwhile",
        cut.len(),
        percentile(&cut, 0.5),
        cut.last().copied().unwrap_or(f64::NAN),
        N - cut.len(),
        health.iter().filter(|h| **h).count(),
        health.len(),
    );
}

fn kill9(dir: &Path, body: &[u8]) {
    const ROUNDS: usize = 20;
    let mut acknowledged = 0;
    let mut kept = Vec::new();
    for round in 0..ROUNDS {
        let mut d = Daemon::start(dir, 20_000);
        let (_, s) = request(&d.socket, "GET", "/v1/stats", b"").expect("stats");
        let stats: Value = serde_json::from_slice(&s).expect("stats JSON");
        kept.push(stats["feedback_total"].as_u64().unwrap_or(0));
        let (st, b) = request(&d.socket, "POST", "/v1/diagnose", body).expect("diagnose");
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
        let v: Value = serde_json::from_slice(&b).expect("diagnosis JSON");
        let fb = serde_json::json!({"diagnosis_id": v["id"], "outcome": "fixed"});
        let (st, b) = request(&d.socket, "POST", "/v1/feedback", fb.to_string().as_bytes())
            .expect("feedback");
        assert_eq!(st, 200, "round {round}: {}", String::from_utf8_lossy(&b));
        acknowledged += 1;
        // The moment after the acknowledgement: no flush, no shutdown.
        d.child.kill().expect("kill -9");
        d.child.wait().ok();
    }
    let d = Daemon::start(dir, 20_000);
    let (_, s) = request(&d.socket, "GET", "/v1/stats", b"").expect("stats");
    let stats: Value = serde_json::from_slice(&s).expect("stats JSON");
    let last = stats["feedback_total"].as_u64().unwrap_or(0);
    let lost = (0..ROUNDS)
        .filter(|&i| kept.get(i + 1).copied().unwrap_or(last) < i as u64 + 1)
        .count();
    println!(
        "kill9: {ROUNDS} rounds of diagnose, feedback acknowledged, kill -9, restart: {acknowledged} acknowledged, {last} on record after the last restart, {lost} rounds lost one"
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let only = std::env::var("HARDENING_ONLY").unwrap_or_default();
    let on = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    let body = diagnose_body();
    for (part, run) in [
        ("load", &(|d: &Path| load(d, &body)) as &dyn Fn(&Path)),
        ("idle", &idle),
        ("slowloris", &slowloris),
        ("kill9", &(|d: &Path| kill9(d, &body))),
    ] {
        if on(part) {
            let tmp = tempfile::tempdir().expect("tempdir");
            run(tmp.path());
        }
    }
}
