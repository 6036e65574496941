//! The daemon's life: start, health at once, diagnose, feedback, SIGTERM, restart with the data
//! still there; kill -9 after an acknowledged feedback loses nothing; the plugin starts a daemon.

use metakube_tests::{
    bin, expected_target, http, ok_stdout, plugin, plugin_env, proto, scenario, Daemon,
};
use rustix::process::Signal;
use serde_json::Value;

fn diagnose_json(socket: &std::path::Path, name: &str) -> Value {
    let dir = scenario(name);
    let (kind, ns, name) = expected_target(&dir);
    let out = ok_stdout(&plugin(
        socket,
        &[
            "diagnose",
            &format!("{}/{}", kind.to_lowercase(), name),
            "-n",
            &ns,
            "--from-dump",
            dir.join("dump").to_str().unwrap(),
            "-o",
            "json",
        ],
    ));
    serde_json::from_str(&out).unwrap()
}

fn stats(socket: &std::path::Path) -> Value {
    let (code, body) = http(socket, "GET", "/v1/stats", &[], b"").unwrap();
    assert_eq!(code, 200);
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn restart_keeps_diagnoses_and_feedback() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(tmp.path(), &[]);
    let (code, body) = http(&d.socket, "GET", "/v1/health", &[], b"").unwrap();
    assert_eq!(code, 200);
    let h: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(h["protocol"], metakube_shared::PROTOCOL.to_string());
    let v = diagnose_json(&d.socket, "oom-at-startup-0");
    assert_eq!(v["root_cause"]["reason"], "MemoryLimitTooLow");
    let id = v["id"].as_str().unwrap().to_string();
    ok_stdout(&plugin(&d.socket, &["feedback", &id, "--fixed"]));
    let (code, metrics) = http(&d.socket, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&metrics).contains("metakube_diagnoses_total 1"));
    let status = d.signal(Signal::TERM);
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
    assert!(!d.socket.exists(), "socket removed at shutdown");
    let d2 = Daemon::start(tmp.path(), &[]);
    let s = stats(&d2.socket);
    assert_eq!(s["diagnoses_stored"], 1);
    assert_eq!(s["feedback_total"], 1);
    // The stored diagnosis still accepts feedback after the restart.
    ok_stdout(&plugin(
        &d2.socket,
        &[
            "feedback",
            &id,
            "--not-fixed",
            "--note",
            "second opinion",
            "--replace",
        ],
    ));
    assert_eq!(stats(&d2.socket)["feedback_total"], 2);
}

#[test]
fn kill_9_after_acknowledged_feedback_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(tmp.path(), &[]);
    let v = diagnose_json(&d.socket, "image-not-found-0");
    let id = v["id"].as_str().unwrap();
    let (p, vers) = proto();
    let body = format!(r#"{{"diagnosis_id":"{id}","outcome":"fixed"}}"#);
    let (code, _) = http(
        &d.socket,
        "POST",
        "/v1/feedback",
        &[(p, &vers), ("content-type", "application/json")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200);
    d.signal(Signal::KILL);
    let d2 = Daemon::start(tmp.path(), &[]);
    assert_eq!(stats(&d2.socket)["feedback_total"], 1);
}

#[test]
fn feedback_on_an_unknown_diagnosis_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let o = plugin(&d.socket, &["feedback", "no-such-id", "--fixed"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no diagnosis with id no-such-id"));
}

#[test]
fn the_plugin_starts_a_daemon_when_none_runs_and_stops_it() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("auto/metakubed.sock");
    let dir = scenario("untolerated-taint-0");
    let (kind, ns, name) = expected_target(&dir);
    let daemon_dir = bin("metakubed").parent().unwrap().to_path_buf();
    let env = [
        ("XDG_DATA_HOME", tmp.path().to_str().unwrap()),
        ("PATH", daemon_dir.to_str().unwrap()),
    ];
    let o = std::process::Command::new(bin("kubectl-metakube"))
        .args([
            "diagnose",
            &format!("{}/{}", kind.to_lowercase(), name),
            "-n",
            &ns,
            "--from-dump",
            dir.join("dump").to_str().unwrap(),
            "--socket",
        ])
        .arg(&socket)
        .envs(env)
        // Not a terminal: plain text without NO_COLOR too, from the plugin and in the
        // daemon's log file.
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let out = ok_stdout(&o);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("started metakubed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.starts_with("ROOT CAUSE"),
        "text output leads with the root cause:\n{out}"
    );
    assert!(out.contains("UntoleratedTaint"));
    assert!(
        !out.contains('\u{1b}'),
        "no colour codes with NO_COLOR or without a terminal"
    );
    let status = ok_stdout(&plugin_env(&socket, &["daemon", "status"], &env));
    assert!(status.contains("diagnoses 1"), "{status}");
    let stop = ok_stdout(&plugin_env(&socket, &["daemon", "stop"], &env));
    assert!(stop.contains("stopped"), "{stop}");
    assert!(!socket.exists());
    let log = std::fs::read_to_string(tmp.path().join("metakube/metakubed.log")).unwrap();
    assert!(log.contains("metakubed listening"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes in the log file: {log}"
    );
}

#[test]
fn no_daemon_and_no_autostart_says_how_to_start_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = scenario("untolerated-taint-0");
    let o = plugin(
        &tmp.path().join("none.sock"),
        &[
            "diagnose",
            "deploy/x",
            "--from-dump",
            dir.join("dump").to_str().unwrap(),
        ],
    );
    // The target does not exist: the dump is read before the daemon is asked.
    assert_eq!(o.status.code(), Some(2));
    let (kind, ns, name) = expected_target(&dir);
    let o = plugin(
        &tmp.path().join("none.sock"),
        &[
            "diagnose",
            &format!("{}/{}", kind.to_lowercase(), name),
            "-n",
            &ns,
            "--from-dump",
            dir.join("dump").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("systemctl --user start metakubed"), "{err}");
    // The environment says the same as the flag, in the usual spellings of "yes".
    for yes in ["1", "true", "yes"] {
        let o = std::process::Command::new(bin("kubectl-metakube"))
            .args([
                "diagnose",
                &format!("{}/{}", kind.to_lowercase(), name),
                "-n",
                &ns,
                "--from-dump",
                dir.join("dump").to_str().unwrap(),
                "--socket",
                tmp.path().join("none.sock").to_str().unwrap(),
            ])
            .env("METAKUBE_NO_AUTOSTART", yes)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("systemctl --user start metakubed"),
            "{yes}: {err}"
        );
    }
}

#[test]
fn broken_pipe_is_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let dir = scenario("oom-at-startup-0");
    let (kind, ns, name) = expected_target(&dir);
    let mut child = std::process::Command::new(bin("kubectl-metakube"))
        .args([
            "diagnose",
            &format!("{}/{}", kind.to_lowercase(), name),
            "-n",
            &ns,
            "--from-dump",
            dir.join("dump").to_str().unwrap(),
            "-o",
            "json",
            "--no-start-daemon",
            "--socket",
        ])
        .arg(&d.socket)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away, like `| head -0`
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_store_is_readable_by_its_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &[]);
    // Wait until the store has written its files.
    for _ in 0..100 {
        if d.data.join("db").join("CURRENT").exists() || walk(&d.data).len() > 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let entries = walk(&d.data);
    assert!(entries.len() > 3, "the store wrote files: {entries:?}");
    for p in entries {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "{} is open to others ({:o})",
            p.display(),
            mode & 0o777
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
