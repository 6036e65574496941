//! The kube-rs path end to end: a local server answers the real REST paths from a fixture
//! dump, a temporary kubeconfig points at it, the real plugin collects and asks a real daemon.

use metakube_tests::apiserver::ApiServer;
use metakube_tests::{
    expected_target, ok_stdout, plugin, plugin_env, plugin_json, scenario as corpus_scenario,
    Daemon,
};
use serde_json::Value;

fn scenario() -> std::path::PathBuf {
    corpus_scenario("selector-mismatch-cascade-0")
}

/// `diagnose TARGET --kubeconfig KC -o json` against the fixture API server, parsed.
fn live_diagnosis(socket: &std::path::Path, target: &str, kc: &std::path::Path) -> Value {
    let args = [
        "diagnose",
        target,
        "--kubeconfig",
        kc.to_str().unwrap(),
        "-o",
        "json",
    ];
    plugin_json(socket, &args)
}

/// The fixture API server over the scenario's dump, a kubeconfig whose context is the target's
/// namespace, and the target.
struct Fixture {
    tmp: tempfile::TempDir,
    api: ApiServer,
    kc: std::path::PathBuf,
    ns: String,
    name: String,
    /// `kind/name`, as the plugin takes it.
    target: String,
}

fn fixture(api: ApiServer) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let (kind, ns, name) = expected_target(&scenario());
    let kc = tmp.path().join("kubeconfig");
    api.kubeconfig(&kc, &ns);
    let target = format!("{}/{}", kind.to_lowercase(), name);
    Fixture {
        tmp,
        api,
        kc,
        ns,
        name,
        target,
    }
}

#[test]
fn live_diagnosis_through_kube_rs_finds_the_broken_service() {
    let Fixture {
        tmp,
        api,
        kc,
        ns,
        name,
        target,
    } = fixture(ApiServer::start(&scenario().join("dump"), &["secrets"]));
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let v = live_diagnosis(&d.socket, &target, &kc);
    assert_eq!(
        v["target"]["namespace"],
        ns.as_str(),
        "namespace comes from the kubeconfig context"
    );
    assert_eq!(v["category"], "network");
    assert_eq!(v["root_cause"]["object"]["kind"], "Service");
    assert_eq!(v["root_cause"]["reason"], "SelectorMatchesNoPods");
    assert_eq!(v["remediation"][0]["patch"]["validated"], true);
    // Hypotheses carry their evidence; runners-up say why they lost.
    let hyps = v["hypotheses"].as_array().unwrap();
    assert!(!hyps[0]["evidence"].as_array().unwrap().is_empty());
    assert!(
        hyps.iter()
            .skip(1)
            .all(|h| !h["note"].as_str().unwrap_or("").is_empty()),
        "{hyps:?}"
    );
    // Forbidden secrets are a recorded gap, not a failure.
    assert!(
        v["gaps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["what"] == "secrets" && g["reason"].as_str().unwrap().contains("forbidden")),
        "{}",
        v["gaps"]
    );
    let seen = api.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert!(
        paths.contains(&format!("/api/v1/namespaces/{ns}/pods?limit=500").as_str()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}").as_str()),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.contains("/log?container=")),
        "logs are read: {paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.starts_with("/api/v1/nodes")),
        "{paths:?}"
    );
}

/// A counter of the daemon's `/metrics`.
fn counter(socket: &std::path::Path, name: &str) -> u64 {
    let (_, m) = metakube_tests::http(socket, "GET", "/metrics", &[], b"").unwrap();
    let m = String::from_utf8_lossy(&m).to_string();
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}_total ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {m}"))
}

#[test]
fn a_clusters_graph_is_kept_between_diagnoses_and_across_a_restart() {
    // The server is bound (not left in `..`) so that it serves until the test ends.
    let Fixture {
        tmp,
        api: _api,
        kc,
        target,
        ..
    } = fixture(ApiServer::start(&scenario().join("dump"), &[]));
    let answer = |v: &Value| {
        (
            v["root_cause"]["object"].clone(),
            v["root_cause"]["reason"].clone(),
            v["category"].clone(),
            v["remediation"][0]["patch"]["validated"].clone(),
        )
    };
    let d = Daemon::start(tmp.path(), &[]);
    let first = answer(&live_diagnosis(&d.socket, &target, &kc));
    assert_eq!(first.1, "SelectorMatchesNoPods");
    assert_eq!(counter(&d.socket, "metakube_graphs_relinked"), 0);
    // The same cluster again: its graph is re-linked, and nothing moved, so no object's
    // relations are derived again.
    let second = answer(&live_diagnosis(&d.socket, &target, &kc));
    assert_eq!(second, first);
    assert_eq!(counter(&d.socket, "metakube_graphs_relinked"), 1);
    assert_eq!(counter(&d.socket, "metakube_graph_objects_rederived"), 0);
    drop(d);
    // A new daemon on the same data loads the graph from RocksDB.
    let d = Daemon::start(tmp.path(), &[]);
    let third = answer(&live_diagnosis(&d.socket, &target, &kc));
    assert_eq!(third, first);
    assert_eq!(counter(&d.socket, "metakube_graphs_relinked"), 1);
    assert_eq!(counter(&d.socket, "metakube_graph_objects_rederived"), 0);
}

#[test]
fn snapshot_writes_a_dump_that_replays_to_the_same_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let api = ApiServer::start(&scenario().join("dump"), &[]);
    let (kind, ns, name) = expected_target(&scenario());
    let kc = tmp.path().join("kubeconfig");
    api.kubeconfig(&kc, "default");
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let target = format!("{}/{}", kind.to_lowercase(), name);
    let out_dir = tmp.path().join("snap");
    let o = plugin(
        &d.socket,
        &[
            "snapshot",
            &target,
            "-n",
            &ns,
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    ok_stdout(&o);
    assert!(out_dir.join(&ns).join("pods.json").is_file());
    assert!(out_dir.join("nodes.json").is_file());
    // Secret values served by the API never reach the snapshot.
    let secrets =
        std::fs::read_to_string(out_dir.join(&ns).join("secrets.json")).unwrap_or_default();
    assert!(
        !secrets.contains("c3VwZXItc2VjcmV0"),
        "secret values leaked into the snapshot"
    );
    // The API server's managedFields (on every object it serves) are left out of what is
    // collected, Secrets (listed keys only) and Nodes (edited as values) as much as the rest.
    let served = api.object(&kind, &ns, &name).expect("the target is served");
    assert!(served["metadata"]["managedFields"].is_array(), "{served}");
    for list in [
        out_dir.join(&ns).join("pods.json"),
        out_dir.join(&ns).join("secrets.json"),
        out_dir.join("nodes.json"),
    ] {
        let text = std::fs::read_to_string(&list).unwrap_or_default();
        assert!(
            !text.contains("managedFields"),
            "{} keeps managedFields",
            list.display()
        );
    }
    let live: Value = plugin_json(
        &d.socket,
        &[
            "diagnose",
            &target,
            "-n",
            &ns,
            "--kubeconfig",
            kc.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    let replay: Value = plugin_json(
        &d.socket,
        &[
            "diagnose",
            &target,
            "-n",
            &ns,
            "--from-dump",
            out_dir.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    assert_eq!(live["root_cause"], replay["root_cause"]);
    assert_eq!(live["category"], replay["category"]);
}

#[test]
fn fix_runs_a_server_side_dry_run_then_applies_and_audits() {
    let Fixture {
        tmp,
        api,
        kc,
        ns,
        target,
        ..
    } = fixture(ApiServer::start(&scenario().join("dump"), &[]));
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let xdg = tmp.path().join("xdg");
    let o = plugin_env(
        &d.socket,
        &[
            "diagnose",
            &target,
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--fix",
            "--yes",
        ],
        &[("XDG_DATA_HOME", xdg.to_str().unwrap())],
    );
    ok_stdout(&o);
    let patches: Vec<_> = api
        .seen()
        .into_iter()
        .filter(|s| s.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 2, "one dry run, one apply: {patches:?}");
    assert!(patches[0].path.contains("dryRun=All"));
    assert!(!patches[1].path.contains("dryRun"));
    assert!(patches[1]
        .path
        .starts_with(&format!("/api/v1/namespaces/{ns}/services/")));
    assert_eq!(patches[1].content_type, "application/merge-patch+json");
    let audit = std::fs::read_to_string(xdg.join("metakube/audit.log")).unwrap();
    let line: Value = serde_json::from_str(audit.lines().next().unwrap()).unwrap();
    assert_eq!(line["result"], "applied");
    assert_eq!(line["object"]["kind"], "Service");
}

#[test]
fn a_missing_target_names_the_namespace_and_context() {
    let tmp = tempfile::tempdir().unwrap();
    let api = ApiServer::start(&scenario().join("dump"), &[]);
    let kc = tmp.path().join("kubeconfig");
    api.kubeconfig(&kc, "default");
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let o = plugin(
        &d.socket,
        &[
            "diagnose",
            "deploy/nope",
            "--kubeconfig",
            kc.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("deployment/nope not found in namespace default"),
        "{err}"
    );
    assert!(err.contains("context fixture"), "{err}");
}

#[test]
#[ignore = "needs cluster"]
fn diagnoses_a_real_cluster_from_the_default_kubeconfig() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let o = std::process::Command::new(metakube_tests::bin("kubectl-metakube"))
        .args([
            "diagnose",
            "deploy/coredns",
            "-n",
            "kube-system",
            "-o",
            "json",
            "--no-start-daemon",
            "--socket",
        ])
        .arg(&d.socket)
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(&ok_stdout(&o)).unwrap();
    assert_eq!(v["target"]["name"], "coredns");
}

#[test]
fn lists_come_in_pages_and_every_page_is_read() {
    // An API server that answers at most 2 items per list page, whatever `limit` asks.
    let Fixture {
        tmp,
        api,
        kc,
        ns,
        target,
        ..
    } = fixture(ApiServer::start_paged(&scenario().join("dump"), &[], 2));
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let out_dir = tmp.path().join("snap");
    ok_stdout(&plugin(
        &d.socket,
        &[
            "snapshot",
            &target,
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    ));
    // Every pod and event of the namespace arrived, over several pages.
    let count = |dir: &std::path::Path, f: &str| -> usize {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(&ns).join(f)).unwrap()).unwrap();
        v["items"].as_array().unwrap().len()
    };
    let dump = scenario().join("dump");
    assert!(count(&dump, "pods.json") > 2 && count(&dump, "events.json") > 2);
    assert_eq!(count(&out_dir, "pods.json"), count(&dump, "pods.json"));
    assert_eq!(count(&out_dir, "events.json"), count(&dump, "events.json"));
    let seen = api.seen();
    let lists: Vec<&str> = seen
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains(&format!("/namespaces/{ns}/pods?")))
        .map(|s| s.path.as_str())
        .collect();
    assert!(lists.iter().all(|p| p.contains("limit=500")), "{lists:?}");
    assert!(
        lists.iter().any(|p| p.contains("continue=page-2")),
        "{lists:?}"
    );
    // The diagnosis from the paged server is the one from the dump.
    let live = live_diagnosis(&d.socket, &target, &kc);
    assert_eq!(live["root_cause"]["object"]["name"], "redis", "{live}");
    assert_eq!(live["root_cause"]["reason"], "SelectorMatchesNoPods");
}

#[test]
fn a_20k_object_namespace_is_read_in_pages_with_bounded_logs_and_counted() {
    // The selector cascade among ~1,600 healthy neighbour applications in one namespace
    // (`benches/grow_dump.py`): about 21,000 objects behind the fixture API server.
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("dump");
    let grown = std::process::Command::new("python3")
        .arg(metakube_tests::repo_root().join("benches/grow_dump.py"))
        .args(["20000", "1"])
        .arg(&dump)
        .status()
        .unwrap();
    assert!(grown.success());
    let api = ApiServer::start(&dump, &[]);
    let kc = tmp.path().join("kubeconfig");
    api.kubeconfig(&kc, "team-a");
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let t = std::time::Instant::now();
    let live = live_diagnosis(&d.socket, "deploy/auth", &kc);
    let took = t.elapsed();
    assert_eq!(live["root_cause"]["object"]["name"], "redis", "{live}");
    assert_eq!(live["root_cause"]["reason"], "SelectorMatchesNoPods");

    let seen = api.seen();
    if std::env::var_os("METAKUBE_TRACE_REQUESTS").is_some() {
        for s in &seen {
            eprintln!(
                "{:>8.3} s  {} {}",
                s.at.duration_since(seen[0].at).as_secs_f64(),
                s.method,
                s.path
            );
        }
    }
    let gets: Vec<&str> = seen
        .iter()
        .filter(|s| s.method == "GET")
        .map(|s| s.path.as_str())
        .collect();
    let logs = gets.iter().filter(|p| p.contains("/log")).count();
    let lists: Vec<&&str> = gets
        .iter()
        .filter(|p| !p.contains("/log") && p.contains("limit="))
        .collect();
    let pages = lists.iter().filter(|p| p.contains("continue=")).count();
    // Lists come in pages of 500, and every page after the first continues the one before.
    assert!(lists.iter().all(|p| p.contains("limit=500")), "{lists:?}");
    assert!(pages >= 20, "{pages} continued pages: {lists:?}");
    // Logs of at most 60 of the namespace's pods (the target's first, then failing ones), and of
    // the cluster DNS pods in kube-system — not of thousands.
    // (One request per container, and one more for a restarted container's previous run.)
    let own_logs = gets
        .iter()
        .filter(|p| p.contains("/log") && p.contains("/namespaces/team-a/"))
        .filter_map(|p| p.split("/pods/").nth(1)?.split('/').next())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let other_logs: Vec<&&str> = gets
        .iter()
        .filter(|p| p.contains("/log") && !p.contains("/namespaces/team-a/"))
        .collect();
    assert!(
        (1..=60).contains(&own_logs),
        "{own_logs} log requests in team-a"
    );
    assert!(
        other_logs
            .iter()
            .all(|p| p.contains("/namespaces/kube-system/pods/coredns")),
        "{other_logs:?}"
    );
    eprintln!(
        "live collection of a 21k-object namespace: {} requests ({} list requests, {pages} of them continued pages, {logs} log tails of {own_logs} pods and the DNS pods), {:.1} MB received, diagnosis end to end {:.2} s",
        seen.len(),
        lists.len(),
        api.bytes_sent() as f64 / 1e6,
        took.as_secs_f64()
    );
    // The same namespace again: the daemon re-links the graph it kept and reuses the typed
    // objects whose resourceVersion did not move (none did).
    let again = live_diagnosis(&d.socket, "deploy/auth", &kc);
    assert_eq!(again["root_cause"], live["root_cause"]);
    assert_eq!(counter(&d.socket, "metakube_graphs_relinked"), 1);
    let rederived = counter(&d.socket, "metakube_graph_objects_rederived");
    assert_eq!(
        rederived, 0,
        "nothing moved, yet {rederived} objects were derived again"
    );
    eprintln!(
        "engine, first look: {}; again with the kept graph and typed objects: {}",
        live["timings_ms"], again["timings_ms"]
    );
    // What keeping them costs in memory, once the request's own memory is given back.
    for secs in [3, 10, 20] {
        std::thread::sleep(std::time::Duration::from_secs(if secs == 3 {
            3
        } else {
            secs / 2
        }));
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.child.id())).unwrap();
        let rss = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap_or("VmRSS: ?")
            .to_string();
        eprintln!("daemon after both diagnoses, idle: {rss}");
    }
}
