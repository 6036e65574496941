//! Helpers for the end-to-end tests: locate the built binaries, run a real `metakubed` on a
//! temporary socket, run the real plugin (ripgrep's `TestCommand` style), talk raw HTTP to the
//! socket, and serve fixture objects on the real Kubernetes REST paths.

pub mod apiserver;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The directory the workspace binaries are built into (next to this test's `deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// Path of a workspace binary; panics with the build command when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is not built: run `cargo build --release --workspace --bins` first (make test does)",
        p.display()
    );
    p
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Scenario folders of metakube's own corpus.
pub fn corpus() -> PathBuf {
    repo_root().join("tests/scenarios")
}

/// The corpus scenario whose folder name ends with `family_variant` (`image-not-found-0`);
/// numbers shift when the generator adds variants, family names do not.
pub fn scenario(family_variant: &str) -> PathBuf {
    let root = corpus();
    let mut hits: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/scenarios")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(&format!("-{family_variant}")))
        })
        .collect();
    hits.sort();
    hits.into_iter()
        .next()
        .unwrap_or_else(|| panic!("no scenario *-{family_variant} in {}", root.display()))
}

/// The shared scenarios converted from other people's cases, beside the checkout.
pub fn shared_scenarios() -> PathBuf {
    repo_root().join("../shared/scenarios")
}

/// [`shared_scenarios`] when it is there; otherwise says on stderr why a test that needs it
/// does nothing (a fresh clone has no ../shared).
pub fn shared_scenarios_or_skip() -> Option<PathBuf> {
    let root = shared_scenarios();
    if !root.is_dir() {
        eprintln!(
            "skipped: {} is not there (a fresh clone has no ../shared)",
            root.display()
        );
        return None;
    }
    Some(root)
}

/// A running daemon on a temporary socket; killed on drop.
pub struct Daemon {
    /// The child process.
    pub child: Child,
    /// Its socket.
    pub socket: PathBuf,
    /// Its data directory.
    pub data: PathBuf,
}

impl Daemon {
    /// Starts `metakubed` with its socket and data under `dir`, and waits for health.
    pub fn start(dir: &Path, extra: &[&str]) -> Daemon {
        let socket = dir.join("run/metakubed.sock");
        let data = dir.join("data");
        let child = Command::new(bin("metakubed"))
            .arg("--socket")
            .arg(&socket)
            .arg("--data-dir")
            .arg(&data)
            .arg("--config")
            .arg(dir.join("no-config.toml"))
            // The explanation model only where a test asks for it (it costs a core for a second).
            .args(if extra.contains(&"--llm") {
                &[][..]
            } else {
                &["--llm", "none"][..]
            })
            .args(extra)
            // `METAKUBE_TEST_DAEMON_LOG=metakubed=debug` shows a test's daemon at work.
            .env(
                "METAKUBE_LOG",
                std::env::var("METAKUBE_TEST_DAEMON_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn metakubed");
        let d = Daemon {
            child,
            socket,
            data,
        };
        d.wait_healthy();
        d
    }

    /// Waits up to 20 s until `/v1/health` answers 200.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = http(&self.socket, "GET", "/v1/health", &[], b"") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "metakubed did not become healthy on {}",
                self.socket.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal and waits for the process to exit; returns its exit status.
    pub fn signal(&mut self, sig: rustix::process::Signal) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, sig).expect("kill");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "metakubed did not exit after {sig:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the plugin with `args`, pointed at `socket`, never auto-starting a daemon.
pub fn plugin(socket: &Path, args: &[&str]) -> Output {
    plugin_env(socket, args, &[])
}

/// Like [`plugin`], with extra environment.
pub fn plugin_env(socket: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin("kubectl-metakube"));
    cmd.args(args)
        .arg("--socket")
        .arg(socket)
        .arg("--no-start-daemon")
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .output()
        .expect("run kubectl-metakube")
}

/// Stdout as text, asserting success with stderr in the message.
pub fn ok_stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Runs the plugin, checks that it succeeded, and parses what it printed as JSON.
pub fn plugin_json(socket: &Path, args: &[&str]) -> Value {
    let out = ok_stdout(&plugin(socket, args));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// One raw HTTP/1.1 request over the Unix socket; returns (status, body).
pub fn http(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    // A server may answer (413) and close before the whole body is sent: keep the answer.
    match s.write_all(body) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) => {}
        r => r?,
    }
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !buf.is_empty() => {}
        r => {
            r?;
        }
    }
    parse_response(&buf)
}

/// Splits a raw HTTP/1.1 response into status and (de-chunked) body.
pub fn parse_response(buf: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP response: {text:?}")))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n.min(after.len())]);
            rest = after.get(n + 2..).unwrap_or("");
        }
        out
    } else {
        body.to_string()
    };
    Ok((status, body.into_bytes()))
}

/// The protocol header every plugin request carries.
pub fn proto() -> (&'static str, String) {
    (
        metakube_shared::PROTOCOL_HEADER,
        metakube_shared::PROTOCOL.to_string(),
    )
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).expect("copy");
        }
    }
}

/// Reads a scenario's expected target as (kind, namespace, name) from `expected.yaml`.
pub fn expected_target(dir: &Path) -> (String, String, String) {
    let y: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(dir.join("expected.yaml")).expect("expected.yaml"),
    )
    .expect("yaml");
    let t = &y["target"];
    let s = |k: &str| t[k].as_str().expect("target field").to_string();
    (s("kind"), s("namespace"), s("name"))
}

/// The plugin's arguments to diagnose a corpus scenario's target from its dump, then `extra`.
pub fn diagnose_args(name: &str, extra: &[&str]) -> Vec<String> {
    let dir = scenario(name);
    let (kind, ns, n) = expected_target(&dir);
    let mut a: Vec<String> = vec![
        "diagnose".into(),
        format!("{}/{}", kind.to_lowercase(), n),
        "-n".into(),
        ns,
        "--from-dump".into(),
        dir.join("dump").display().to_string(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Diagnoses a corpus scenario through the plugin with `-o json` and `extra` flags.
pub fn diagnose_scenario(socket: &Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let mut extra = extra.to_vec();
    extra.extend(["-o", "json"]);
    let args = diagnose_args(name, &extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    serde_json::from_str(&ok_stdout(&plugin(socket, &refs))).expect("diagnosis JSON")
}

/// A minimal OpenAI-compatible server: answers every chat completion with `reply`, streamed as
/// server-sent events word by word, and records the request bodies.
pub fn fake_openai(reply: &'static str) -> (String, Arc<Mutex<Vec<Value>>>) {
    fake_openai_slow(reply, std::time::Duration::ZERO)
}

/// Like [`fake_openai`], taking `delay` before each answer (one at a time).
pub fn fake_openai_slow(
    reply: &'static str,
    delay: std::time::Duration,
) -> (String, Arc<Mutex<Vec<Value>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut len = 0;
            let mut line = String::new();
            let mut first = String::new();
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                if first.is_empty() {
                    first = line.clone();
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            assert!(first.starts_with("POST /v1/chat/completions"), "{first}");
            s2.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            std::thread::sleep(delay);
            let mut out = String::from(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            );
            for w in reply.split_inclusive(' ') {
                let ev = serde_json::json!({"choices": [{"delta": {"content": w}}]});
                out.push_str(&format!("data: {ev}\n\n"));
            }
            out.push_str("data: [DONE]\n\n");
            c.write_all(out.as_bytes()).unwrap();
        }
    });
    (url, seen)
}

/// Every scenario under `root` (a folder holding `dump/` and `truth.json` or `expected.yaml`)
/// read and selected as the plugin does for `diagnose --from-dump`, by folder name, in order.
/// A missing `root` gives none.
pub fn scenario_snapshots(root: &Path) -> Vec<(String, metakube_shared::Snapshot)> {
    use kubectl_metakube::collect::{dump::read_dump, select};
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("dump").is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let truth_path = dir.join("truth.json");
            let truth: Value = if truth_path.exists() {
                serde_json::from_str(&std::fs::read_to_string(truth_path).unwrap()).unwrap()
            } else {
                serde_norway::from_str(&std::fs::read_to_string(dir.join("expected.yaml")).unwrap())
                    .unwrap()
            };
            let target: metakube_shared::ObjectRef =
                serde_json::from_value(truth["target"].clone()).unwrap();
            let source = metakube_shared::SnapshotSource::Dump {
                path: dir.display().to_string(),
            };
            let snap =
                select(read_dump(&dir.join("dump")).unwrap(), &target, source, None).unwrap();
            (dir.file_name().unwrap().to_string_lossy().to_string(), snap)
        })
        .collect()
}
