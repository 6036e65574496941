//! A canary sweep: values planted where secrets live in a real dump — a Secret's data, a
//! password in a container's env, a token in its args, an annotation, a password in a log line —
//! and looked for everywhere metakube writes or sends: the data folder (RocksDB's files, read raw
//! before any compaction), the daemon's log, the plugin's answers, the prompt sent to an
//! OpenAI-compatible endpoint, both memory exports, and (for the Secret's data) `snapshot --out`.

use std::path::Path;
use std::process::{Command, Stdio};

use metakube_tests::{bin, copy_dir, fake_openai, http, ok_stdout, plugin, scenario};
use serde_json::Value;

const SECRET: &str = "CanarySecretValue1";
const ENV: &str = "CanaryEnvValue2";
const ARG: &str = "CanaryArgValue3";
const ANNOTATION: &str = "CanaryAnnotation4";
const LOG: &str = "CanaryLogValue5";
const OLD_ENV: &str = "CanaryOldEnvValue6";
const OLD_ARG: &str = "CanaryOldArgValue7";

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// The config-rejected cascade (root cause in the postgres pod's log) with canaries planted.
fn planted_dump(to: &Path) {
    copy_dir(&scenario("config-rejected-cascade-0").join("dump"), to);
    let ns = to.join("staging");
    let b64 = "Q2FuYXJ5U2VjcmV0VmFsdWUx"; // base64("CanarySecretValue1")
    std::fs::write(
        ns.join("secrets.json"),
        serde_json::to_vec_pretty(&serde_json::json!({
            "kind": "SecretList", "apiVersion": "v1", "metadata": {},
            "items": [{
                "metadata": {"name": "db-creds", "namespace": "staging"},
                "type": "Opaque",
                "data": {"POSTGRES_PASSWORD": b64},
            }]
        }))
        .unwrap(),
    )
    .unwrap();
    edit_json(&ns.join("pods.json"), |v| {
        for p in v["items"].as_array_mut().unwrap() {
            if !p["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("postgres")
            {
                continue;
            }
            p["metadata"]["annotations"]["canary.example/note"] = ANNOTATION.into();
            let c = &mut p["spec"]["containers"][0];
            c["args"] = serde_json::json!([format!("--auth-token={ARG}")]);
            let env = c["env"]
                .as_array_mut()
                .map(std::mem::take)
                .unwrap_or_default();
            let mut env = env;
            env.push(serde_json::json!({"name": "POSTGRES_PASSWORD", "value": ENV}));
            env.push(serde_json::json!({"name": "DB_FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "POSTGRES_PASSWORD"}}}));
            c["env"] = env.into();
        }
    });
    // The rollout that put them there: revision 2 carries the planted password and token,
    // revision 1 other ones (a rollout diff would otherwise show both).
    edit_json(&ns.join("replicasets.json"), |v| {
        let items = v["items"].as_array_mut().unwrap();
        let at = items
            .iter()
            .position(|r| {
                r["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .starts_with("postgres")
            })
            .unwrap();
        let set = |r: &mut Value, rev: &str, env: &str, arg: &str, created: &str| {
            r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = rev.into();
            r["metadata"]["creationTimestamp"] = created.into();
            let c = &mut r["spec"]["template"]["spec"]["containers"][0];
            c["args"] = serde_json::json!([format!("--auth-token={arg}")]);
            c["env"] = serde_json::json!([{"name": "POSTGRES_PASSWORD", "value": env}]);
        };
        let mut old = items[at].clone();
        // Scaled down, as the Deployment controller leaves an old revision.
        old["metadata"]["name"] = "postgres-5c6d7e8f9a".into();
        old["metadata"]["uid"] = "0b7d6a52-1111-4c3e-9a55-6f1f0c2b9e11".into();
        old["spec"]["replicas"] = 0.into();
        old["status"] = serde_json::json!({"replicas": 0, "observedGeneration": 1});
        set(&mut old, "1", OLD_ENV, OLD_ARG, "2025-11-12T07:00:00Z");
        set(&mut items[at], "2", ENV, ARG, "2025-11-12T08:35:00Z");
        items.push(old);
    });
    let logs = std::fs::read_dir(&ns)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("postgres")
        })
        .unwrap()
        .join("logs.txt");
    let text = std::fs::read_to_string(&logs).unwrap();
    let planted = text.replacen(
        "\"root\" execution",
        &format!("connecting with host=postgres user=app password={LOG} sslmode=disable\n\"root\" execution"),
        1,
    );
    assert_ne!(planted, text);
    std::fs::write(&logs, planted).unwrap();
}

/// Every file under `dir`, as raw bytes.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p.display().to_string(), b));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn no_planted_secret_reaches_the_store_the_log_a_prompt_or_an_export() {
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("dump");
    planted_dump(&dump);
    let (url, prompts) = fake_openai("Deployment postgres refuses to run as root. ");
    let socket = tmp.path().join("run/metakubed.sock");
    let data = tmp.path().join("data");
    let log = tmp.path().join("daemon.log");
    let mut daemon = Command::new(bin("metakubed"))
        .arg("--socket")
        .arg(&socket)
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(tmp.path().join("none.toml"))
        .args(["--llm", "openai", "--llm-endpoint", &url])
        .env("METAKUBE_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !matches!(http(&socket, "GET", "/v1/stats", &[], b""), Ok((200, _))) {
        assert!(t.elapsed().as_secs() < 30, "metakubed did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let d = dump.to_str().unwrap();
    let text = ok_stdout(&plugin(
        &socket,
        &[
            "diagnose",
            "deploy/orders",
            "-n",
            "staging",
            "--from-dump",
            d,
            "--explain",
        ],
    ));
    let json = ok_stdout(&plugin(
        &socket,
        &[
            "diagnose",
            "deploy/orders",
            "-n",
            "staging",
            "--from-dump",
            d,
            "-o",
            "json",
            "--explain",
        ],
    ));
    let v: Value = serde_json::from_str(&json).unwrap();
    // The sweep means something only if the diagnosis read the planted pod and log.
    assert_eq!(v["root_cause"]["object"]["name"], "postgres", "{json}");
    // The rollout's change to the password and the token is there, without their values.
    let changed: Vec<&str> = v["changes"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        changed.contains(&"/spec/template/spec/containers/0/env/0/value")
            && changed.contains(&"/spec/template/spec/containers/0/args/0"),
        "{changed:?}"
    );
    let id = v["id"].as_str().unwrap().to_string();
    ok_stdout(&plugin(&socket, &["feedback", &id, "--fixed"]));
    let masked = ok_stdout(&plugin(&socket, &["memory", "export"]));
    let episodes = ok_stdout(&plugin(
        &socket,
        &["memory", "export", "--format", "episodes"],
    ));
    let snapshot_dir = tmp.path().join("snap");
    ok_stdout(&plugin(
        &socket,
        &[
            "snapshot",
            "deploy/orders",
            "-n",
            "staging",
            "--from-dump",
            d,
            "--out",
            snapshot_dir.to_str().unwrap(),
        ],
    ));
    let sent: Vec<String> = prompts
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(!sent.is_empty(), "no prompt reached the endpoint");
    // kill -9: RocksDB's write-ahead log is left as written (uncompressed), nothing flushed.
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    let mut places: Vec<(String, Vec<u8>)> = files_under(&data);
    assert!(
        places.iter().any(|(p, _)| p.ends_with(".log")),
        "no WAL to read"
    );
    places.push(("daemon log".into(), std::fs::read(&log).unwrap()));
    places.push(("diagnose output".into(), text.into_bytes()));
    places.push(("diagnose -o json".into(), json.into_bytes()));
    places.push(("memory export".into(), masked.into_bytes()));
    places.push((
        "memory export --format episodes".into(),
        episodes.into_bytes(),
    ));
    for (i, p) in sent.iter().enumerate() {
        places.push((format!("prompt {i}"), p.clone().into_bytes()));
    }
    let mut leaks = Vec::new();
    // `snapshot --out` is the user's own copy of the cluster, in `cluster-info dump`'s layout:
    // env, args and logs are in it as kubectl writes them; a Secret's data never is.
    for (place, bytes) in files_under(&snapshot_dir) {
        for canary in [SECRET, "Q2FuYXJ5U2VjcmV0VmFsdWUx"] {
            if contains(&bytes, canary) {
                leaks.push(format!("{canary} in {place}"));
            }
        }
    }
    assert!(
        files_under(&snapshot_dir)
            .iter()
            .any(|(p, b)| p.ends_with("pods.json") && contains(b, ENV)),
        "the snapshot is the cluster as read"
    );
    for (place, bytes) in &places {
        for canary in [
            SECRET,
            "Q2FuYXJ5U2VjcmV0VmFsdWUx",
            ENV,
            ARG,
            LOG,
            OLD_ENV,
            OLD_ARG,
        ] {
            if contains(bytes, canary) {
                leaks.push(format!("{canary} in {place}"));
            }
        }
        // An annotation is not a secret, but it is not the model's or an export's business.
        let leaves = place.starts_with("prompt") || place.starts_with("memory export");
        if leaves && contains(bytes, ANNOTATION) {
            leaks.push(format!("{ANNOTATION} in {place}"));
        }
    }
    assert!(leaks.is_empty(), "planted values found: {leaks:#?}");
}
