//! Nothing acknowledged is lost: a second daemon on the same data folder refuses to start
//! (instead of running without a store and acknowledging feedback it cannot keep), a store that
//! does not open answers 503 to every write, and a store whose CURRENT is gone is refused —
//! never recreated over its tables — until `metakubed store backup` / `store repair`; a full
//! disk is reported, refused with 503 and recovered from without a restart.

use std::process::Command;

use metakube_tests::{
    bin, diagnose_scenario, expected_target, http, ok_stdout, plugin, scenario, Daemon,
};
use rustix::process::Signal;
use serde_json::Value;

fn diagnose_id(socket: &std::path::Path) -> String {
    let v = diagnose_scenario(socket, "oom-at-startup-0", &["--no-llm"]);
    v["id"].as_str().unwrap().to_string()
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != "LOCK" && !n.starts_with("LOG"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_second_daemon_on_the_same_data_folder_refuses_to_start_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &[]);
    let out = Command::new(bin("metakubed"))
        .arg("--socket")
        .arg(tmp.path().join("run/second.sock"))
        .arg("--data-dir")
        .arg(&d.data)
        .args(["--llm", "none"])
        .env("METAKUBE_LOG", "warn")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another metakubed"), "{err}");
    assert!(err.contains(&format!("pid {}", d.child.id())), "{err}");
    assert!(!tmp.path().join("run/second.sock").exists());
    // The first one still answers and keeps what it acknowledges.
    let id = diagnose_id(&d.socket);
    assert!(ok_stdout(&plugin(&d.socket, &["feedback", &id, "--fixed"])).contains("recorded"));
}

#[test]
fn a_store_without_current_is_refused_not_recreated_and_repair_brings_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(tmp.path(), &[]);
    let id = diagnose_id(&d.socket);
    ok_stdout(&plugin(&d.socket, &["feedback", &id, "--fixed"]));
    assert!(d.signal(Signal::TERM).success());
    let db = d.data.join("db");
    std::fs::remove_file(db.join("CURRENT")).unwrap();
    let before = files(&db);
    assert!(before
        .iter()
        .any(|f| f.ends_with(".sst") || f.ends_with(".log")));

    let mut d = Daemon::start(tmp.path(), &[]);
    let store_component = || -> (Value, Value) {
        let (_, body) = http(&d.socket, "GET", "/v1/health", &[], b"").unwrap();
        let h: Value = serde_json::from_slice(&body).unwrap();
        let c = h["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "store")
            .unwrap()
            .clone();
        (h, c)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (h, store) = loop {
        let (h, c) = store_component();
        if c["state"] != "loading" || std::time::Instant::now() > deadline {
            break (h, c);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(store["state"], "failed", "{h}");
    let detail = store["detail"].as_str().unwrap();
    assert!(
        detail.contains("no CURRENT") && detail.contains("store repair"),
        "{detail}"
    );
    // Diagnoses are still answered; what needs saving is refused, not acknowledged.
    let id2 = diagnose_id(&d.socket);
    let o = plugin(&d.socket, &["feedback", &id2, "--fixed"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("503") && err.contains("not stored"), "{err}");
    assert!(d.signal(Signal::TERM).success());
    assert_eq!(
        files(&db),
        before,
        "no table was deleted, no CURRENT written"
    );

    let maint = |args: &[&str]| {
        Command::new(bin("metakubed"))
            .arg("--data-dir")
            .arg(&d.data)
            .args(args)
            .output()
            .unwrap()
    };
    let bak = tmp.path().join("backup");
    let o = maint(&["store", "backup", "--to", bak.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files(&bak), before, "the backup is the folder as it was");
    let o = maint(&["store", "repair"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 diagnoses and 1 feedback"));

    let d = Daemon::start(tmp.path(), &[]);
    let (_, body) = http(&d.socket, "GET", "/v1/stats", &[], b"").unwrap();
    let s: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(s["diagnoses_stored"], 1, "{s}");
    assert_eq!(s["feedback_total"], 1, "{s}");
    let (_, body) = http(&d.socket, "GET", "/v1/memory/stats", &[], b"").unwrap();
    let m: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(m["episodes"], 1, "the episode survived: {m}");
}

#[test]
fn feedback_is_one_outcome_per_diagnosis() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &[]);
    let id = diagnose_id(&d.socket);
    let count = |path: &str, field: &str| -> Value {
        let (_, body) = http(&d.socket, "GET", path, &[], b"").unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        v[field].clone()
    };
    // A retried confirmation is one confirmation.
    assert!(ok_stdout(&plugin(&d.socket, &["feedback", &id, "--fixed"])).contains("episode 1"));
    for _ in 0..2 {
        let again = ok_stdout(&plugin(&d.socket, &["feedback", &id, "--fixed"]));
        assert!(again.contains("already recorded"), "{again}");
    }
    assert_eq!(count("/v1/memory/stats", "episodes"), 1);
    assert_eq!(count("/v1/stats", "feedback_total"), 1);
    // A contradicting outcome is refused, naming the one on record and how to replace it.
    let o = plugin(&d.socket, &["feedback", &id, "--not-fixed"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("409") && err.contains("fixed") && err.contains("--replace"),
        "{err}"
    );
    assert_eq!(count("/v1/stats", "feedback_total"), 1);
    // An explicit correction replaces it: the old episode goes, the corrected one stays.
    let (_, _, name) = expected_target(&scenario("oom-at-startup-0"));
    let said = ok_stdout(&plugin(
        &d.socket,
        &[
            "feedback",
            &id,
            "--not-fixed",
            "--replace",
            "--cause",
            &format!("deployment/{name}"),
            "--reason",
            "MemoryLeak",
        ],
    ));
    assert!(said.contains("episode 2"), "{said}");
    assert_eq!(count("/v1/memory/stats", "episodes"), 1);
    let list = ok_stdout(&plugin(&d.socket, &["memory", "list"]));
    assert!(
        list.contains("MemoryLeak") && !list.contains("MemoryLimitTooLow"),
        "{list}"
    );
}

/// A small tmpfs of its own, unmounted when dropped (after the daemon on it has stopped).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Result<Tmpfs, String> {
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    /// Writes zeroes into `name` until the file system says it is full.
    fn fill(&self, name: &str) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 << 10];
        let err = loop {
            if let Err(e) = f.write_all(&chunk) {
                break e;
            }
        };
        assert_eq!(err.raw_os_error(), Some(28), "ENOSPC expected: {err}");
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_reported_refused_with_503_and_recovered_from_without_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    // A file system that can really fill up needs a mount of its own (root here and in CI).
    let fs = match Tmpfs::mount(tmp.path(), "16m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("skipped: a full disk needs a small tmpfs mounted for the test ({why})");
            return;
        }
    };
    let mut d = Daemon::start(tmp.path(), &[]);
    let store = |d: &Daemon| -> Value {
        let (_, body) = http(&d.socket, "GET", "/v1/health", &[], b"").unwrap();
        let h: Value = serde_json::from_slice(&body).unwrap();
        h["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "store")
            .unwrap()
            .clone()
    };
    let feedback_err = |d: &Daemon, id: &str| -> String {
        let o = plugin(&d.socket, &["feedback", id, "--fixed"]);
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let before = diagnose_id(&d.socket);
    assert_eq!(store(&d)["state"], "ready");

    let filler = fs.fill("filler");
    // Diagnoses are still answered; health says the store cannot write, and why.
    let during = diagnose_id(&d.socket);
    let s = store(&d);
    assert_eq!(s["state"], "failed", "{s}");
    assert!(
        s["detail"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{s}"
    );
    // Feedback is refused with 503 naming the disk, never acknowledged, never a 404/500.
    let err = feedback_err(&d, &during);
    assert!(
        err.contains("(503)") && err.contains("answered but could not be saved"),
        "{err}"
    );
    let err = feedback_err(&d, &before);
    assert!(
        err.contains("(503)") && err.contains("No space left on device"),
        "{err}"
    );

    // Room again: the store reopens by itself and what it held before is all there.
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while store(&d)["state"] != "ready" {
        assert!(
            std::time::Instant::now() < deadline,
            "the store did not recover: {}",
            store(&d)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(ok_stdout(&plugin(&d.socket, &["feedback", &before, "--fixed"])).contains("recorded"));
    let err = feedback_err(&d, &during);
    assert!(err.contains("diagnose again"), "{err}");
    let after = diagnose_id(&d.socket);
    assert!(ok_stdout(&plugin(&d.socket, &["feedback", &after, "--fixed"])).contains("recorded"));

    // Durable: a restarted daemon has both acknowledged outcomes.
    assert!(d.signal(Signal::TERM).success());
    let d = Daemon::start(tmp.path(), &[]);
    let (_, body) = http(&d.socket, "GET", "/v1/stats", &[], b"").unwrap();
    let s: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(s["feedback_total"], 2, "{s}");
    drop(d);
    drop(fs);
}
