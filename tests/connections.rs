//! Held connections cannot take the daemon down: a client that never finishes its headers is
//! cut off after the header timeout, and with the open-file limit low and more connections held
//! than it allows, health still answers.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metakube_tests::{bin, http, Daemon};

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 256];
    // The daemon closes it (EOF, or a 408 then EOF) instead of waiting forever.
    let mut closed = false;
    for _ in 0..4 {
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("no close within the read timeout: {e}"),
        }
    }
    assert!(closed);
}

#[test]
fn health_answers_while_more_connections_are_held_than_files_allow() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("run/metakubed.sock");
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(tmp.path().join("run"))
            .unwrap();
    }
    // 256 open files: 128 regular slots, 32 spare.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 256 && exec '{}' --socket '{}' --ephemeral --llm none --no-memory",
            bin("metakubed").display(),
            socket.display()
        ))
        .env("METAKUBE_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(&socket, "GET", "/v1/health", &[], b"").is_err() {
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Hold 4,000 idle connections: fifteen times what the daemon has descriptors for.
    let held: Vec<UnixStream> = (0..4000)
        .filter_map(|_| UnixStream::connect(&socket).ok())
        .collect();
    assert!(held.len() > 2000, "{} held", held.len());
    // Every health check is answered at once: the oldest idle connection gives up its slot.
    for i in 0..10 {
        let r = http(&socket, "GET", "/v1/health", &[], b"");
        assert!(
            matches!(r, Ok((200, _))),
            "health check {i} with {} idle connections held: {r:?}",
            held.len()
        );
    }
    drop(held);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_diagnosis_whose_client_hangs_up_is_abandoned() {
    use kubectl_metakube::collect::{dump::read_dump, select};
    let tmp = tempfile::tempdir().unwrap();
    // A Deployment with 20,000 crash-looping pods of its own: long enough to hang up during
    // (the engine answers 6,000 in about the time the hang-up takes to be noticed).
    let dump = tmp.path().join("dump");
    let made = Command::new("python3")
        .arg(metakube_tests::repo_root().join("benches/own_pods_dump.py"))
        .arg("20000")
        .arg(&dump)
        .status()
        .unwrap();
    assert!(made.success());
    let snap = select(
        read_dump(&dump).unwrap(),
        &metakube_shared::ObjectRef::new("Deployment", "shop", "big"),
        metakube_shared::SnapshotSource::Dump {
            path: String::new(),
        },
        None,
    )
    .unwrap();
    let body = serde_json::to_vec(
        &serde_json::json!({"snapshot": snap, "options": {"no_llm": true, "no_memory": true}}),
    )
    .unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--no-memory"]);
    let (p, v) = metakube_tests::proto();
    let mut s = UnixStream::connect(&d.socket).unwrap();
    write!(
        s,
        "POST /v1/diagnose HTTP/1.1\r\nHost: x\r\n{p}: {v}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    drop(s);
    // The daemon notices, stops the work and counts it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, m) = http(&d.socket, "GET", "/metrics", &[], b"").unwrap();
        let m = String::from_utf8_lossy(&m).to_string();
        if m.contains("metakube_diagnoses_abandoned_total 1") {
            assert!(m.contains("metakube_diagnoses_total 0"), "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "not abandoned: {m}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
