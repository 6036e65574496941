//! Watch mode end to end: replays of recorded and generated watch streams through the real
//! plugin and daemon, and live watches of the fixture API server (watch streams with bookmarks,
//! a 410 Gone, patches that change the cluster) with and without `--remediate`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kubectl_metakube::collect::dump::read_dump;
use metakube_shared::IncidentUpdate;
use metakube_tests::apiserver::ApiServer;
use metakube_tests::{corpus, ok_stdout, plugin, plugin_env, repo_root, scenario, Daemon};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/watch").join(name)
}

/// The JSON lines of a watch, parsed into the public contract (which must round-trip).
fn lines(stdout: &str) -> Vec<IncidentUpdate> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn replay(socket: &Path, file: &Path, extra: &[&str]) -> (Vec<IncidentUpdate>, String) {
    let mut args = vec!["watch", "--replay", file.to_str().unwrap(), "-o", "json"];
    args.extend(extra);
    let o = plugin(socket, &args);
    let out = ok_stdout(&o);
    (lines(&out), String::from_utf8_lossy(&o.stderr).to_string())
}

/// Whether an incident names this root-cause reason.
fn names(u: &IncidentUpdate, reason: &str) -> bool {
    let rc = u.incident.diagnosis.root_cause.as_ref();
    rc.is_some_and(|r| r.reason == reason)
}

/// The PATCH requests the fixture API server received.
fn patches(api: &ApiServer) -> Vec<metakube_tests::apiserver::Seen> {
    api.seen()
        .into_iter()
        .filter(|s| s.method == "PATCH")
        .collect()
}

/// The root-cause reasons of the incidents, as they ended.
fn root_reasons(updates: &[IncidentUpdate]) -> Vec<String> {
    incidents(updates)
        .values()
        .filter_map(|u| {
            let rc = u.incident.diagnosis.root_cause.as_ref()?;
            Some(rc.reason.clone())
        })
        .collect()
}

/// The latest state of each incident, by id.
fn incidents(updates: &[IncidentUpdate]) -> BTreeMap<String, IncidentUpdate> {
    let mut m = BTreeMap::new();
    for u in updates {
        m.insert(u.incident.incident.clone(), u.clone());
    }
    m
}

#[test]
fn each_injected_fault_is_one_incident_with_its_root_cause_and_resolves_when_fixed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--no-memory"]);
    let stream = fixture("faults.jsonl");
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("faults.jsonl.truth.json")).unwrap())
            .unwrap();
    let (updates, stderr) = replay(&d.socket, &stream, &[]);
    let all = incidents(&updates);
    let faults = truth["faults"].as_array().unwrap();
    assert_eq!(
        all.len(),
        faults.len(),
        "one incident per fault, none else: {:#?}\n{stderr}",
        all.values()
            .map(|u| (&u.incident.incident, &u.incident.diagnosis.root_cause))
            .collect::<Vec<_>>()
    );
    for f in faults {
        let root = &f["root"];
        let found: Vec<&IncidentUpdate> = all
            .values()
            .filter(|u| {
                if f["anomaly"] == true {
                    u.incident.kind == metakube_shared::IncidentKind::Anomaly
                        && u.incident.affected.iter().any(|a| a.name == root["name"])
                } else {
                    u.incident.diagnosis.root_cause.as_ref().is_some_and(|rc| {
                        rc.object.kind == root["kind"] && rc.object.name == root["name"]
                    })
                }
            })
            .collect();
        assert_eq!(found.len(), 1, "{}: {found:#?}", f["family"]);
        let i = &found[0].incident;
        if f["anomaly"] != true {
            let rc = i.diagnosis.root_cause.as_ref().unwrap();
            assert_eq!(rc.reason, f["reason"].as_str().unwrap(), "{}", f["family"]);
            assert_eq!(
                i.diagnosis.category.map(|c| c.as_str()),
                f["category"].as_str(),
                "{}",
                f["family"]
            );
        } else {
            let a = i.anomaly.as_ref().expect("anomaly evidence");
            assert!(
                a.score < a.threshold && a.series["restarts"] >= 2.0,
                "{a:?}"
            );
        }
        // Detected after the fault began, before it was fixed; resolved once fixed.
        let start: jiff::Timestamp = f["start_time"].as_str().unwrap().parse().unwrap();
        assert!(i.detection.at_event >= f["first_line"].as_u64().unwrap() - 1);
        assert!(
            i.first_seen >= start,
            "{}: {} < {start}",
            f["family"],
            i.first_seen
        );
        if let Some(fixed) = f["fixed_time"].as_str() {
            let fixed: jiff::Timestamp = fixed.parse().unwrap();
            assert_eq!(
                i.status,
                metakube_shared::IncidentStatus::Resolved,
                "{} was fixed at {fixed}",
                f["family"]
            );
            assert!(i.last_seen >= fixed, "{}", f["family"]);
        }
    }
    // The selector cascade is one incident listing every failing caller.
    let cascade = all
        .values()
        .find(|u| names(u, "SelectorMatchesNoPods"))
        .unwrap();
    for caller in ["checkout", "cart"] {
        assert!(
            cascade.incident.affected.iter().any(|a| a.name == caller),
            "{:?}",
            cascade.incident.affected
        );
    }
    // What changed before: the Service's selector, the Deployment's image.
    let changed =
        |reason: &str, field: &str| {
            all.values().any(|u| {
                names(u, reason)
                    && u.incident.diagnosis.changes.iter().any(|c| {
                        c.field == field && c.before_first_symptom_s >= 0.0 && c.to.is_some()
                    })
            })
        };
    assert!(changed("SelectorMatchesNoPods", "/spec/selector/app"));
    assert!(changed(
        "ImageNotFound",
        "/spec/template/spec/containers/0/image"
    ));
    assert!(stderr.contains("6 incident(s) opened"), "{stderr}");
}

#[test]
fn a_long_healthy_stream_opens_no_incident() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--no-memory"]);
    let file = fixture("healthy.jsonl");
    let (updates, stderr) = replay(&d.socket, &file, &[]);
    assert!(updates.is_empty(), "{updates:#?}");
    // It was watched, not skipped: every event read, anomaly windows scored.
    let n = std::fs::read_to_string(&file).unwrap().lines().count();
    assert!(n > 4000, "{n}");
    assert!(stderr.contains(&format!("watched {n} events")), "{stderr}");
    assert!(stderr.contains("0 incident(s) opened"), "{stderr}");
    assert!(!stderr.contains(" 0 anomaly window(s)"), "{stderr}");
}

/// A dump as the stream a watch started on that cluster sees: every object ADDED, events last.
fn stream_of_dump(dump: &Path, out: &Path) {
    let c = read_dump(dump).unwrap();
    let (mut events, objects): (Vec<_>, Vec<_>) =
        c.objects.into_iter().partition(|o| o.kind() == "Event");
    let at = |o: &metakube_shared::KubeObject| {
        o.pointer("/lastTimestamp")
            .or(o.pointer("/eventTime"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    events.sort_by_key(at);
    let text: String = objects
        .iter()
        .chain(&events)
        .map(|o| json!({"type": "ADDED", "object": o.value()}).to_string() + "\n")
        .collect();
    std::fs::write(out, text).unwrap();
}

#[test]
fn a_replayed_dump_opens_the_incident_diagnose_finds() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--no-memory"]);
    let (mut faulty, mut found, mut wrong) = (0, 0, Vec::new());
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("expected.yaml").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let y: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(dir.join("expected.yaml")).unwrap())
                .unwrap();
        let Some(cat) = y["category"].as_str() else {
            continue; // a healthy target
        };
        faulty += 1;
        let roots: Vec<(String, String)> = y["root_cause_any_of"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["kind"].as_str().unwrap().to_string(),
                    r["name"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let target = y["target"]["name"].as_str().unwrap();
        let file = tmp.path().join("stream.jsonl");
        stream_of_dump(&dir.join("dump"), &file);
        let dump = dir.join("dump");
        let (updates, _) = replay(&d.socket, &file, &["--logs", dump.to_str().unwrap()]);
        let mut hit = false;
        for u in incidents(&updates).values() {
            let i = &u.incident;
            let right = i.diagnosis.root_cause.as_ref().is_some_and(|rc| {
                roots
                    .iter()
                    .any(|(k, n)| rc.object.kind == *k && rc.object.name == *n)
            }) && i.diagnosis.category.map(|c| c.as_str()) == Some(cat);
            hit |= right;
            if i.affected.iter().any(|a| a.name == target) && !right {
                wrong.push(format!("{}: {:?}", dir.display(), i.diagnosis.root_cause));
            }
        }
        found += usize::from(hit);
    }
    eprintln!("replayed dumps: {found}/{faulty} faults opened their incident");
    // Whatever watch opens about the target is what diagnose answers; what it misses are faults
    // with no state symptom (callers that only log errors), which diagnose finds from logs.
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(found * 100 >= faulty * 85, "{found}/{faulty}");
}

#[test]
fn malformed_lines_are_named_and_skipped_and_a_missing_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--no-memory"]);
    let dump = scenario("oom-at-startup-0").join("dump");
    let file = tmp.path().join("s.jsonl");
    stream_of_dump(&dump, &file);
    let mut text = std::fs::read_to_string(&file).unwrap();
    let good = text.lines().count();
    text = text.replacen(
        '\n',
        "\nnot json at all\n{\"type\":\"ADDED\",\"object\":{\"kind\":\"Widget\",\"metadata\":{\"name\":\"w\"}}}\n",
        1,
    );
    // A 40 MiB line (over the cap), a line that is not UTF-8, then a truncated last line.
    text.push_str(&format!(
        "{{\"type\":\"ADDED\",\"object\":{{\"x\":\"{}\"}}}}\n",
        "a".repeat(40 << 20)
    ));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"{\"type\":\"ADDED\",\"object\":\"\xff\xfe\"}\n");
    bytes.extend_from_slice(b"{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Pod\",\"metad");
    std::fs::write(&file, bytes).unwrap();
    let (updates, stderr) = replay(&d.socket, &file, &[]);
    assert!(stderr.contains("line 2: not a watch event"), "{stderr}");
    assert!(
        stderr.contains("line 3: kind \"Widget\" is not one metakube watches"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("line {}: 41943", good + 3))
            && stderr.contains("more than the 32 MiB a watch event may take"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("line {}: not UTF-8", good + 4)),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("line {}: not a watch event", good + 5)),
        "{stderr}"
    );
    assert!(stderr.contains("5 malformed line(s) skipped"), "{stderr}");
    assert!(
        updates.iter().any(|u| names(u, "MemoryLimitTooLow")),
        "the good lines are still watched: {updates:#?}"
    );
    let o = plugin(
        &d.socket,
        &["watch", "--replay", "/nonexistent/stream.jsonl"],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--replay /nonexistent/stream.jsonl"), "{err}");
}

/// The OOM scenario served live, with a cluster that recovers when the Deployment is patched:
/// its pods run and become Ready.
fn oom_cluster(recovers: bool) -> (ApiServer, String) {
    let dump = scenario("oom-at-startup-0").join("dump");
    let api = ApiServer::start(&dump, &["secrets"]);
    if recovers {
        let objects = read_dump(&dump).unwrap().objects;
        let pods: Vec<Value> = objects
            .iter()
            .filter(|o| o.kind() == "Pod" && o.name().starts_with("checkout-"))
            .map(|o| o.value().clone())
            .collect();
        // The endpoints controller then lists the pods as ready.
        let mut endpoints: Vec<Value> = objects
            .iter()
            .filter(|o| o.kind() == "Endpoints" && o.name() == "checkout")
            .map(|o| o.value().clone())
            .collect();
        for e in &mut endpoints {
            for s in e["subsets"].as_array_mut().into_iter().flatten() {
                let m = s.as_object_mut().unwrap();
                if let Some(nr) = m.remove("notReadyAddresses") {
                    m.insert("addresses".into(), nr);
                }
            }
        }
        api.on_patch(Arc::new(move |patched: &Value| {
            if patched["kind"] != "Deployment" || patched["metadata"]["name"] != "checkout" {
                return Vec::new();
            }
            let now = jiff::Timestamp::now().to_string();
            let mut dep = patched.clone();
            dep["status"]["conditions"] = json!([
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "lastTransitionTime": now},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "lastTransitionTime": now}
            ]);
            dep["status"]["readyReplicas"] = dep["spec"]["replicas"].clone();
            dep["status"]["availableReplicas"] = dep["spec"]["replicas"].clone();
            std::iter::once(("MODIFIED", dep))
                .chain(pods.iter()
                .map(|p| {
                    let mut p = p.clone();
                    p["status"]["phase"] = json!("Running");
                    for c in p["status"]["containerStatuses"].as_array_mut().unwrap() {
                        c["ready"] = json!(true);
                        c["state"] = json!({"running": {"startedAt": now}});
                        c.as_object_mut().unwrap().remove("lastState");
                    }
                    p["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "lastTransitionTime": now}]);
                    ("MODIFIED", p)
                }))
                .chain(endpoints.iter().map(|e| ("MODIFIED", e.clone())))
                .collect()
        }));
    }
    (api, "shop".into())
}

fn live_watch(
    d: &Daemon,
    api: &ApiServer,
    tmp: &Path,
    ns: &str,
    extra: &[&str],
) -> (Vec<IncidentUpdate>, String) {
    let kc = tmp.join("kubeconfig");
    api.kubeconfig(&kc, ns);
    let mut args = vec!["watch", "--kubeconfig", kc.to_str().unwrap(), "-o", "json"];
    args.extend(extra);
    let xdg = tmp.join("xdg");
    let o = plugin_env(
        &d.socket,
        &args,
        &[("XDG_DATA_HOME", xdg.to_str().unwrap())],
    );
    let out = ok_stdout(&o);
    (lines(&out), String::from_utf8_lossy(&o.stderr).to_string())
}

fn audit_results(tmp: &Path) -> Vec<String> {
    std::fs::read_to_string(tmp.join("xdg/metakube/audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["result"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn suggest_only_by_default_and_remediate_acts_after_a_dry_run_and_verifies() {
    // Suggest only: the incident and its fix, no change sent.
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--no-memory"]);
    let (api, ns) = oom_cluster(true);
    let (updates, stderr) = live_watch(&d, &api, tmp.path(), &ns, &["--duration", "4s"]);
    let oom = updates
        .iter()
        .find(|u| names(u, "MemoryLimitTooLow"))
        .unwrap_or_else(|| panic!("{updates:#?}\n{stderr}"));
    assert!(oom.incident.affected.iter().any(|a| a.name == "checkout"));
    // One fault, one incident: the Service whose endpoints emptied joins it.
    let all = incidents(&updates);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(
        all.values()
            .next()
            .unwrap()
            .incident
            .affected
            .iter()
            .any(|a| a.kind == "Service"),
        "{all:#?}"
    );
    assert!(oom.incident.diagnosis.remediation[0].patch.is_some());
    assert!(
        api.seen().iter().all(|s| s.method != "PATCH"),
        "suggest only"
    );
    assert_eq!(
        all.values().next().unwrap().incident.status,
        metakube_shared::IncidentStatus::Open,
        "suggest only: open until someone applies the fix"
    );
    assert!(
        api.seen().iter().any(|s| s.path.contains("watch=true")),
        "kube-runtime watchers, not polling"
    );

    // --remediate: registry action (patch_resources), dry run, apply, the cluster recovers,
    // the incident resolves, the action is verified; audit log lines for both calls.
    let tmp = tempfile::tempdir().unwrap();
    let (api, ns) = oom_cluster(true);
    let (updates, stderr) = live_watch(
        &d,
        &api,
        tmp.path(),
        &ns,
        &["--remediate", "--duration", "8s"],
    );
    let patches = patches(&api);
    assert_eq!(patches.len(), 2, "{patches:#?}\n{stderr}");
    assert!(
        patches[0].path.contains("dryRun=All"),
        "{:?}",
        patches[0].path
    );
    assert!(!patches[1].path.contains("dryRun"), "{:?}", patches[1].path);
    assert!(patches[1]
        .path
        .contains("/apis/apps/v1/namespaces/shop/deployments/checkout"));
    let last = incidents(&updates)
        .into_values()
        .find(|u| names(u, "MemoryLimitTooLow"))
        .unwrap_or_else(|| panic!("{updates:#?}\n{stderr}"));
    let results: Vec<(&str, &str)> = last
        .incident
        .actions
        .iter()
        .map(|a| (a.action.as_str(), a.result.as_str()))
        .collect();
    assert_eq!(
        results,
        vec![
            ("patch_resources", "applied"),
            ("patch_resources", "verified")
        ],
        "{updates:#?}\n{stderr}"
    );
    assert_eq!(
        last.incident.status,
        metakube_shared::IncidentStatus::Resolved
    );
    let opened = updates
        .iter()
        .find(|u| u.change == metakube_shared::IncidentChange::Opened)
        .unwrap();
    eprintln!(
        "time to recovery with --remediate: {:.2} s from the incident opening to its resolution",
        last.incident
            .last_seen
            .duration_since(opened.incident.last_seen)
            .as_secs_f64()
    );
    assert_eq!(
        audit_results(tmp.path()),
        vec!["dry_run_accepted", "applied"]
    );
}

#[test]
fn an_action_that_does_not_clear_its_incident_is_rolled_back_escalated_and_trips_the_breaker() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--no-memory"]);
    let (api, ns) = oom_cluster(false);
    let (updates, stderr) = live_watch(
        &d,
        &api,
        tmp.path(),
        &ns,
        &[
            "--remediate",
            "--verify-within",
            "2s",
            "--breaker-after",
            "1",
            "--duration",
            "7s",
        ],
    );
    let escalated = updates
        .iter()
        .find(|u| u.change == metakube_shared::IncidentChange::Escalated)
        .unwrap_or_else(|| panic!("{updates:#?}\n{stderr}"));
    let last = escalated.incident.actions.last().unwrap();
    assert_eq!(last.result, "rolled_back", "{last:?}");
    assert!(
        last.detail.contains("did not resolve within 2s"),
        "{}",
        last.detail
    );
    assert!(
        last.detail.contains("circuit breaker open"),
        "{}",
        last.detail
    );
    // The rollback puts the old limit back, after its own dry run.
    let patches = patches(&api);
    assert_eq!(patches.len(), 4, "{patches:#?}");
    assert!(patches[2].path.contains("dryRun=All"));
    assert_ne!(
        patches[1].body, patches[3].body,
        "the rollback is the inverse patch"
    );
    assert_eq!(
        audit_results(tmp.path()),
        vec!["dry_run_accepted", "applied", "applied"]
    );
}

#[test]
fn a_live_watch_relists_after_410_gone_and_its_recording_replays_to_the_same_incidents() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--no-memory"]);
    let (api, ns) = oom_cluster(false);
    // A change the watchers see, then history compacted: their next watch (the fixture closes
    // each after 2 s, with a bookmark) resumes from a resourceVersion the server no longer has.
    let pod = read_dump(&scenario("oom-at-startup-0").join("dump"))
        .unwrap()
        .objects
        .into_iter()
        .find(|o| o.kind() == "Pod" && o.name().starts_with("checkout-"))
        .unwrap();
    let api = Arc::new(api);
    let bg = {
        let api = api.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(1500));
            api.push("MODIFIED", pod.value().clone());
            api.compact();
        })
    };
    let rec = tmp.path().join("rec.jsonl");
    let (updates, stderr) = live_watch(
        &d,
        &api,
        tmp.path(),
        &ns,
        &["--duration", "6s", "--record", rec.to_str().unwrap()],
    );
    bg.join().unwrap();
    let seen = api.seen();
    let pod_lists = seen
        .iter()
        .filter(|s| {
            s.path.starts_with("/api/v1/namespaces/shop/pods?") && !s.path.contains("watch=true")
        })
        .count();
    assert!(
        pod_lists >= 2,
        "a relist after 410 Gone: {pod_lists}\n{stderr}"
    );
    assert!(
        seen.iter()
            .any(|s| s.path.contains("watch=true") && s.path.contains("allowWatchBookmarks=true")),
        "bookmarks asked for"
    );
    let live_roots = root_reasons(&updates);
    assert!(
        live_roots.contains(&"MemoryLimitTooLow".to_string()),
        "{live_roots:?}"
    );
    // The recording is a watch stream: objects with kind, the initial list ended by the API
    // server's initial-events-end bookmark; replayed, it opens the same incidents.
    let text = std::fs::read_to_string(&rec).unwrap();
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).unwrap()["object"]["kind"].is_string()));
    assert!(text.contains("k8s.io/initial-events-end"));
    let (replayed, _) = replay(&d.socket, &rec, &[]);
    let replay_roots = root_reasons(&replayed);
    assert!(
        replay_roots.contains(&"MemoryLimitTooLow".to_string()),
        "{replay_roots:?}"
    );
}

/// A Prometheus HTTP API that answers every query with `body`.
fn prometheus(body: &'static str) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let a = asked.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            a.lock().unwrap().push(line.clone());
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap() == 0 || h.trim().is_empty() {
                    break;
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, asked)
}

#[test]
fn prometheus_series_are_read_per_pod_and_a_wrong_answer_is_named() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, asked) = prometheus(
        r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"namespace":"shop","pod":"checkout-1"},"value":[1700000000,"0.93"]},
            {"metric":{"namespace":"shop"},"value":[1700000000,"0.5"]},
            {"metric":{"namespace":"shop","pod":"cart-1"},"value":[1700000000,"NaN"]}]}}"#,
    );
    let usage = rt
        .block_on(kubectl_metakube::commands::watch::sources::prometheus_usage(&url))
        .unwrap();
    let p = metakube_shared::ObjectRef::new("Pod", "shop", "checkout-1");
    assert_eq!(usage[&p], (Some(0.93), Some(0.93)));
    assert_eq!(
        usage.len(),
        1,
        "no pod label or no number: skipped: {usage:?}"
    );
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "one query for CPU, one for memory");
    assert!(
        asked
            .iter()
            .all(|l| l.starts_with("GET /api/v1/query?query=")),
        "{asked:?}"
    );
    assert!(
        asked[0].contains("container_cpu_usage_seconds_total"),
        "{asked:?}"
    );
    assert!(
        asked[1].contains("container_memory_working_set_bytes"),
        "{asked:?}"
    );
    let (url, _) = prometheus(r#"{"status":"error","error":"parse error at char 5"}"#);
    let e = rt
        .block_on(kubectl_metakube::commands::watch::sources::prometheus_usage(&url))
        .unwrap_err();
    assert!(format!("{e:#}").contains("parse error at char 5"), "{e:#}");
}
