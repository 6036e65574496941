//! Bad input gets a clear error naming what was wrong; nothing crashes, the daemon keeps serving.

use std::io::Write;

use metakube_tests::{copy_dir, expected_target, http, ok_stdout, plugin, proto, scenario, Daemon};
use serde_json::Value;

const SCENARIO: &str = "selector-mismatch-cascade-0";

fn target_args(dir: &std::path::Path) -> (String, String) {
    let (kind, ns, name) = expected_target(dir);
    (format!("{}/{}", kind.to_lowercase(), name), ns)
}

/// Diagnoses `target` from `dump` as JSON; returns the answer and what the plugin warned.
fn diagnose_dump(d: &Daemon, target: &str, ns: &str, dump: &std::path::Path) -> (Value, String) {
    let o = plugin(
        &d.socket,
        &[
            "diagnose",
            target,
            "-n",
            ns,
            "--from-dump",
            dump.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    let v: Value = serde_json::from_str(&ok_stdout(&o)).unwrap();
    (v, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn truncated_and_unknown_lists_are_skipped_with_a_named_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let src = scenario(SCENARIO);
    let dump = tmp.path().join("dump");
    copy_dir(&src.join("dump"), &dump);
    let (target, ns) = target_args(&src);
    // Truncate a list file half-way, and add a list of a kind metakube does not know.
    let cm = dump.join(&ns).join("configmaps.json");
    let text = std::fs::read_to_string(&cm).unwrap();
    std::fs::write(&cm, &text[..text.len() / 2]).unwrap();
    std::fs::write(
        dump.join(&ns).join("widgets.json"),
        r#"{"kind":"WidgetList","apiVersion":"acme.io/v1","items":[{"metadata":{"name":"w"}}]}"#,
    )
    .unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let (v, err) = diagnose_dump(&d, &target, &ns, &dump);
    assert!(
        err.contains("configmaps.json") && err.contains("truncated"),
        "{err}"
    );
    assert!(
        err.contains("widgets.json") && err.contains("unknown kind \"WidgetList\""),
        "{err}"
    );
    assert_eq!(
        v["root_cause"]["reason"], "SelectorMatchesNoPods",
        "the rest of the dump is still diagnosed"
    );
    assert!(v["gaps"].as_array().unwrap().len() >= 2);
}

#[test]
fn a_missing_or_wrong_folder_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let o = plugin(
        &d.socket,
        &[
            "diagnose",
            "deploy/x",
            "--from-dump",
            "/definitely/not/here",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read /definitely/not/here"));
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = plugin(
        &d.socket,
        &[
            "diagnose",
            "deploy/x",
            "--from-dump",
            empty.to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a cluster-info dump"));
    let o = plugin(
        &d.socket,
        &["diagnose", "frob/x", "--from-dump", empty.to_str().unwrap()],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown resource type \"frob\""));
}

#[test]
fn a_100_mb_log_is_read_as_a_bounded_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let src = scenario(SCENARIO);
    let dump = tmp.path().join("dump");
    copy_dir(&src.join("dump"), &dump);
    let (target, ns) = target_args(&src);
    let pod_dir = std::fs::read_dir(dump.join(&ns))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.path().join("logs.txt").is_file())
        .unwrap()
        .path();
    let pod = pod_dir.file_name().unwrap().to_string_lossy().to_string();
    let mut f = std::fs::File::create(pod_dir.join("logs.txt")).unwrap();
    writeln!(
        f,
        "==== START logs for container huge of pod {ns}/{pod} ===="
    )
    .unwrap();
    let line = format!("{}\n", "x".repeat(1023));
    for _ in 0..(100 * 1024) {
        f.write_all(line.as_bytes()).unwrap();
    }
    writeln!(f, "last line before the end").unwrap();
    writeln!(f, "==== END logs for container huge of pod {ns}/{pod} ====").unwrap();
    drop(f);
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let out = tmp.path().join("snap");
    ok_stdout(&plugin(
        &d.socket,
        &[
            "snapshot",
            &target,
            "-n",
            &ns,
            "--from-dump",
            dump.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let kept = std::fs::read_to_string(out.join(&ns).join(&pod).join("logs.txt")).unwrap();
    assert!(kept.len() < 70 * 1024, "kept {} bytes", kept.len());
    assert!(
        kept.contains("last line before the end"),
        "the tail is kept"
    );
    ok_stdout(&plugin(
        &d.socket,
        &[
            "diagnose",
            &target,
            "-n",
            &ns,
            "--from-dump",
            dump.to_str().unwrap(),
        ],
    ));
}

#[test]
fn garbage_bytes_on_the_socket_do_not_hurt_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    for garbage in [
        &b"\x00\x01\x02\xff\xfe garbage\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\nContent-Length: -4\r\n\r\n",
        &[0x16, 0x03, 0x01, 0x02, 0x00],
    ] {
        let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let _ = s.write_all(garbage);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut buf);
        if !buf.is_empty() {
            assert!(
                String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 400"),
                "{:?}",
                String::from_utf8_lossy(&buf)
            );
        }
    }
    assert_eq!(
        http(&d.socket, "GET", "/v1/health", &[], b"").unwrap().0,
        200
    );
}

#[test]
fn protocol_errors_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--max-body-bytes", "4096"]);
    let (p, v) = proto();
    // Another major version.
    let (code, body) = http(&d.socket, "POST", "/v1/diagnose", &[(p, "2.0")], b"{}").unwrap();
    assert_eq!(code, 400);
    let e: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(e["code"], "protocol_mismatch");
    assert_eq!(
        e["server_protocols"][0],
        metakube_shared::PROTOCOL.to_string()
    );
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("client speaks protocol 2.0"));
    // No version at all.
    let (code, body) = http(&d.socket, "POST", "/v1/diagnose", &[], b"{}").unwrap();
    assert_eq!(code, 400);
    assert!(String::from_utf8_lossy(&body).contains("missing x-metakube-protocol header"));
    // Malformed body.
    let (code, body) = http(
        &d.socket,
        "POST",
        "/v1/diagnose",
        &[(p, &v)],
        br#"{"snapshot": {"target": 3}}"#,
    )
    .unwrap();
    assert_eq!(code, 400);
    let e: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(e["code"], "bad_request");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("diagnose body is not a valid request"),
        "{e}"
    );
    // Oversize body.
    let big = vec![b' '; 10_000];
    let (code, body) = http(&d.socket, "POST", "/v1/diagnose", &[(p, &v)], &big).unwrap();
    assert_eq!(code, 413);
    assert!(String::from_utf8_lossy(&body).contains("exceeds the daemon's limit of 4096 bytes"));
    // Unknown endpoint and wrong method.
    assert_eq!(
        http(&d.socket, "GET", "/v2/anything", &[], b"").unwrap().0,
        404
    );
    assert_eq!(
        http(&d.socket, "DELETE", "/v1/diagnose", &[], b"")
            .unwrap()
            .0,
        405
    );
    assert_eq!(
        http(&d.socket, "GET", "/v1/health", &[], b"").unwrap().0,
        200
    );
}

#[test]
fn a_snapshot_carrying_secret_values_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let (p, v) = proto();
    let body = r#"{"snapshot":{"target":{"kind":"Pod","namespace":"a","name":"p"},"objects":[{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"a"}},{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s","namespace":"a"},"data":{"k":"c2VjcmV0"}}],"meta":{"source":{"type":"dump","path":"x"},"namespace":"a","collected_at":"2025-01-01T00:00:00Z","collector_version":"test"}}}"#;
    let (code, body) = http(
        &d.socket,
        "POST",
        "/v1/diagnose",
        &[(p, &v)],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 422);
    assert!(String::from_utf8_lossy(&body).contains("Secret s carries values"));
}

#[test]
fn a_fifo_or_a_device_in_a_dump_is_skipped_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let src = scenario(SCENARIO);
    let dump = tmp.path().join("dump");
    copy_dir(&src.join("dump"), &dump);
    let (target, ns) = target_args(&src);
    // A FIFO nobody writes to would block an open(); a link to /dev/zero would stream forever.
    let fifo = dump.join(&ns).join("configmaps.json");
    std::fs::remove_file(&fifo).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink("/dev/zero", dump.join(&ns).join("secrets.json")).unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let (v, err) = diagnose_dump(&d, &target, &ns, &dump);
    assert!(
        err.contains("configmaps.json") && err.contains("not a regular file"),
        "{err}"
    );
    assert!(
        err.contains("secrets.json") && err.contains("not a regular file"),
        "{err}"
    );
    assert_eq!(v["root_cause"]["reason"], "SelectorMatchesNoPods");
}
