//! Another local user must not get between the plugin and the daemon: the daemon refuses a
//! socket folder that others may enter, and the plugin refuses a listener that runs as another
//! user (SO_PEERCRED) before it sends anything.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metakube_tests::{bin, diagnose_args, plugin};

#[test]
fn the_daemon_refuses_a_socket_folder_others_may_enter() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut child = Command::new(bin("metakubed"))
        .arg("--socket")
        .arg(run.join("metakubed.sock"))
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .arg("--config")
        .arg(tmp.path().join("none.toml"))
        .args(["--ephemeral", "--llm", "none"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("metakubed listened in a 0777 folder");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains("refusing to listen") && err.contains("777"),
        "{err}"
    );
    assert!(!run.join("metakubed.sock").exists());
}

#[test]
fn the_plugin_refuses_a_listener_of_another_user() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipped: starting a listener as another user needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = shared.join("metakubed.sock");
    let received = shared.join("received");
    // A fake daemon run by `nobody`: it records every byte it is sent.
    let script = format!(
        "import socket,time\ns=socket.socket(socket.AF_UNIX)\ns.bind({sock:?})\ns.listen(8)\ns.settimeout(20)\n\
         with open({rec:?},'ab') as f:\n  while True:\n    c,_=s.accept()\n    c.settimeout(2)\n    try:\n      d=c.recv(65536)\n    except Exception:\n      d=b''\n    f.write(d)\n    f.flush()\n    c.close()\n",
        sock = socket.display().to_string(),
        rec = received.display().to_string()
    );
    let mut fake = Command::new("python3")
        .args(["-c", &script])
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !socket.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(socket.exists(), "the fake listener did not start");
    let args = diagnose_args("selector-mismatch-cascade-0", &["--no-llm"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = plugin(&socket, &refs);
    let _ = fake.kill();
    let _ = fake.wait();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("refusing to talk") && err.contains("uid 65534"),
        "{err}"
    );
    let sent = std::fs::read(&received).unwrap_or_default();
    assert!(
        sent.is_empty(),
        "the plugin sent {} bytes to another user's listener",
        sent.len()
    );
}
