//! What changed near a fault: a rollout's revisions in a dump (the Deployment's ReplicaSets),
//! and a live cluster's history kept by the daemon by resourceVersion — shown by `changes`,
//! attached to diagnoses, and still there after the daemon restarts.

use metakube_tests::apiserver::ApiServer;
use metakube_tests::{copy_dir, ok_stdout, plugin, plugin_json, scenario, Daemon};
use serde_json::{json, Value};

/// The image-not-found scenario as it happens in a cluster: revision 1 ran `web:1.4.2`
/// for a day, then a rollout (revision 2, the broken image) 5 minutes before the pull errors.
fn rollout_dump(to: &std::path::Path) -> (String, String) {
    copy_dir(&scenario("image-not-found-0").join("dump"), to);
    let path = to.join("ops/replicasets.json");
    let mut list: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let items = list["items"].as_array_mut().unwrap();
    let current = items
        .iter_mut()
        .find(|r| {
            r["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("media-")
        })
        .expect("media's ReplicaSet");
    let bad_image = current["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string();
    // When the pull errors start: the first warning event about a media pod.
    let events: Value =
        serde_json::from_slice(&std::fs::read(to.join("ops/events.json")).unwrap()).unwrap();
    let first: jiff::Timestamp = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "Warning")
        .filter(|e| {
            e["involvedObject"]["name"]
                .as_str()
                .unwrap_or("")
                .starts_with("media-")
        })
        .filter_map(|e| e["firstTimestamp"].as_str()?.parse().ok())
        .min()
        .expect("a warning event about media");
    current["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("2");
    current["metadata"]["creationTimestamp"] =
        json!((first - jiff::SignedDuration::from_secs(300)).to_string());
    let mut old = current.clone();
    old["metadata"]["name"] = json!("media-5d8c7b9f4");
    old["metadata"]["uid"] = json!("11111111-2222-3333-4444-555555555555");
    old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("1");
    old["metadata"]["creationTimestamp"] =
        json!((first - jiff::SignedDuration::from_secs(86_400)).to_string());
    old["spec"]["replicas"] = json!(0);
    old["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] = json!("5d8c7b9f4");
    old["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("registry.example/media:1.4.2");
    old["status"] = json!({"replicas": 0, "observedGeneration": 1});
    items.push(old);
    std::fs::write(&path, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
    ("registry.example/media:1.4.2".to_string(), bad_image)
}

#[test]
fn a_rollout_in_a_dump_is_the_change_named_with_its_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("dump");
    let (good, bad) = rollout_dump(&dump);
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let dir = dump.to_str().unwrap();
    let v: Value = plugin_json(
        &d.socket,
        &[
            "changes",
            "deploy/media",
            "-n",
            "ops",
            "--from-dump",
            dir,
            "-o",
            "json",
        ],
    );
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{v:#}");
    let c = &changes[0];
    assert_eq!(
        c["object"],
        json!({"kind": "Deployment", "namespace": "ops", "name": "media"})
    );
    assert_eq!(c["field"], "/spec/template/spec/containers/0/image");
    assert_eq!(
        (c["from"].as_str(), c["to"].as_str()),
        (Some(good.as_str()), Some(bad.as_str()))
    );
    assert_eq!(c["before_first_symptom_s"], 300.0);
    assert!(
        c["via"]
            .as_str()
            .unwrap()
            .starts_with("rollout revision 1 → 2"),
        "{c}"
    );
    assert!(v["cluster"].is_null(), "a dump has no history");

    // The diagnosis carries it as evidence, and the text says it.
    let diag: Value = plugin_json(
        &d.socket,
        &[
            "diagnose",
            "deploy/media",
            "-n",
            "ops",
            "--from-dump",
            dir,
            "-o",
            "json",
            "--no-llm",
        ],
    );
    assert_eq!(diag["root_cause"]["reason"], "ImageNotFound");
    assert_eq!(diag["changes"][0]["to"].as_str(), Some(bad.as_str()));
    let text = ok_stdout(&plugin(
        &d.socket,
        &[
            "diagnose",
            "deploy/media",
            "-n",
            "ops",
            "--from-dump",
            dir,
            "--no-llm",
        ],
    ));
    assert!(
        text.contains("CHANGES NEAR IT") && text.contains("5 min before the first failure"),
        "{text}"
    );
    // And the explanation says it in a sentence.
    let e = diag["explanation"].as_str().unwrap();
    assert!(
        e.contains("Changed 5 min before the first failure: Deployment/media")
            && e.contains(bad.as_str()),
        "{e}"
    );
    // Without the earlier revision there is nothing to compare: no change is made up.
    let plain = scenario("image-not-found-0").join("dump");
    let v: Value = plugin_json(
        &d.socket,
        &[
            "changes",
            "deploy/media",
            "-n",
            "ops",
            "--from-dump",
            plain.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    assert_eq!(v["changes"], json!([]), "{v:#}");
}

#[test]
fn a_live_cluster_history_is_kept_by_resource_version_and_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = scenario("selector-mismatch-cascade-0");
    let api = ApiServer::start(&dir.join("dump"), &[]);
    let kc = tmp.path().join("kubeconfig");
    api.kubeconfig(&kc, "team-a");
    let kcs = kc.to_str().unwrap().to_string();
    let changes = |socket: &std::path::Path| -> Value {
        plugin_json(
            socket,
            &["changes", "deploy/auth", "--kubeconfig", &kcs, "-o", "json"],
        )
    };
    let mut d = Daemon::start(tmp.path(), &[]);
    // First look: the history starts, nothing to compare with.
    let first = changes(&d.socket);
    assert!(
        first["cluster"]
            .as_str()
            .unwrap()
            .starts_with("live:http://127.0.0.1:"),
        "{first}"
    );
    assert!(first["tracked_since"].is_string());
    assert_eq!(first["changes"], json!([]));

    // Someone points auth at another Redis address and changes nothing else.
    let mut auth = api
        .object("Deployment", "team-a", "auth")
        .expect("the fixture's Deployment");
    auth["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] =
        json!("redis-cache:6379");
    api.push("MODIFIED", auth);
    let second = changes(&d.socket);
    let got = second["changes"].as_array().unwrap();
    assert_eq!(got.len(), 1, "{second:#}");
    assert_eq!(got[0]["object"]["name"], "auth");
    assert_eq!(
        got[0]["field"],
        "/spec/template/spec/containers/0/env/0/value"
    );
    assert_eq!(
        (got[0]["from"].as_str(), got[0]["to"].as_str()),
        (Some("redis:6379"), Some("redis-cache:6379"))
    );
    assert!(
        got[0]["via"]
            .as_str()
            .unwrap()
            .starts_with("history: resourceVersion 1056 → "),
        "{}",
        got[0]
    );
    // Only the edited object moved: every other tracked object kept its resourceVersion.
    let (compared, unchanged) = (
        second["compared"].as_u64().unwrap(),
        second["unchanged"].as_u64().unwrap(),
    );
    assert!(
        compared > 3 && unchanged == compared - 1,
        "{compared} compared, {unchanged} unchanged"
    );

    // A restarted daemon reads the history back from RocksDB.
    assert!(d.signal(rustix::process::Signal::TERM).success());
    let d = Daemon::start(tmp.path(), &[]);
    let third = changes(&d.socket);
    assert_eq!(third["changes"], second["changes"], "{third:#}");
    assert_eq!(third["tracked_since"], first["tracked_since"]);
    assert_eq!(third["unchanged"], third["compared"]);
    // And a diagnosis of it carries the change.
    let diag: Value = plugin_json(
        &d.socket,
        &[
            "diagnose",
            "deploy/auth",
            "--kubeconfig",
            &kcs,
            "-o",
            "json",
            "--no-llm",
        ],
    );
    assert_eq!(diag["root_cause"]["reason"], "SelectorMatchesNoPods");
    assert!(
        diag["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "/spec/template/spec/containers/0/env/0/value"),
        "{:#}",
        diag["changes"]
    );
}
