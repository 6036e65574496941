//! The verdict: a healthy target among broken neighbours is `healthy`; the same target with
//! its namespace's pods unreadable is `inconclusive`, never healthy; a visibly broken target
//! whose cause is not verified is `symptoms_only`, never healthy.

use metakube_tests::{copy_dir, expected_target, ok_stdout, plugin, scenario, Daemon};
use serde_json::Value;

fn diagnose(d: &Daemon, dir: &std::path::Path, dump: &std::path::Path) -> (Value, String) {
    let (kind, ns, name) = expected_target(dir);
    let o = plugin(
        &d.socket,
        &[
            "diagnose",
            &format!("{}/{}", kind.to_lowercase(), name),
            "-n",
            &ns,
            "--from-dump",
            dump.to_str().unwrap(),
            "--no-llm",
            "-o",
            "json",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    (serde_json::from_str(&ok_stdout(&o)).unwrap(), stderr)
}

#[test]
fn healthy_target_among_broken_neighbours_is_healthy_and_missing_pods_make_it_inconclusive() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--llm", "none"]);
    let src = scenario("healthy-among-broken-0");
    let (v, _) = diagnose(&d, &src, &src.join("dump"));
    assert_eq!(v["verdict"], "healthy", "{v:#}");
    assert!(v["root_cause"].is_null());
    // The broken neighbour is in the same namespace, so healthy is not "nothing was read".
    let (_, ns, _) = expected_target(&src);
    let pods = std::fs::read_to_string(src.join("dump").join(&ns).join("pods.json")).unwrap();
    assert!(
        pods.contains("OOMKilled"),
        "the fixture keeps a broken neighbour"
    );

    // Without the namespace's pods the same target cannot be called healthy.
    let dump = tmp.path().join("dump");
    copy_dir(&src.join("dump"), &dump);
    std::fs::remove_file(dump.join(&ns).join("pods.json")).unwrap();
    let (v, _) = diagnose(&d, &src, &dump);
    assert_eq!(v["verdict"], "inconclusive", "{v:#}");
    let gaps = v["gaps"].as_array().unwrap();
    assert!(
        gaps.iter()
            .any(|g| g["what"].as_str().unwrap().ends_with("pods.json")),
        "the gap names the missing list: {gaps:?}"
    );

    // The text form says so instead of "NO PROBLEM FOUND".
    let (kind, ns, name) = expected_target(&src);
    let o = plugin(
        &d.socket,
        &[
            "diagnose",
            &format!("{}/{}", kind.to_lowercase(), name),
            "-n",
            &ns,
            "--from-dump",
            dump.to_str().unwrap(),
            "--no-llm",
        ],
    );
    let text = ok_stdout(&o);
    assert!(text.contains("INCONCLUSIVE"), "{text}");
    assert!(!text.contains("NO PROBLEM FOUND"), "{text}");
}

#[test]
fn pod_stuck_on_a_node_that_stopped_reporting_is_not_healthy() {
    // The recorded class that used to be called healthy: a pod bound to a node whose kubelet
    // stopped (Ready=Unknown, unreachable taints) and that never starts.
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--llm", "none"]);
    let src = scenario("kubelet-stopped-0");
    let (v, _) = diagnose(&d, &src, &src.join("dump"));
    assert_eq!(v["verdict"], "root_cause", "{v:#}");
    assert_eq!(v["root_cause"]["object"]["kind"], "Node");
    assert_eq!(v["root_cause"]["reason"], "NodeNotReady");
    assert_eq!(v["category"], "system");
    let syms: Vec<&str> = v["symptoms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["reason"].as_str())
        .collect();
    assert!(syms.contains(&"pod_stuck_creating"), "{syms:?}");
}

#[test]
fn a_broken_target_without_a_verified_cause_is_symptoms_only() {
    // Take the scheduler-down scenario and put a scheduler event in the past of the pod so the
    // "nothing scheduled since" check fails: the pod is still visibly unscheduled, so the
    // answer must list symptoms rather than call it healthy.
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral", "--llm", "none"]);
    let src = scenario("scheduler-not-running-0");
    let (v, _) = diagnose(&d, &src, &src.join("dump"));
    assert_eq!(v["root_cause"]["reason"], "SchedulerNotRunning", "{v:#}");
    assert_eq!(v["root_cause"]["object"]["kind"], "Node");

    let dump = tmp.path().join("dump");
    copy_dir(&src.join("dump"), &dump);
    let (_, ns, _) = expected_target(&src);
    // A pod scheduled after the waiting pod was created proves the scheduler runs: take the
    // waiting pod's creation time and move its minutes forward by one.
    let pods: Value =
        serde_json::from_str(&std::fs::read_to_string(dump.join(&ns).join("pods.json")).unwrap())
            .unwrap();
    let created = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["status"]["phase"] == "Pending")
        .and_then(|p| p["metadata"]["creationTimestamp"].as_str())
        .expect("the waiting pod")
        .to_string();
    // "2025-11-12T10:23:00Z": bump the seconds field to 59 (the pod is minutes old).
    let later = format!("{}59.000000Z", &created[..17]);
    assert!(later > created, "{later} after {created}");
    let events = dump.join(&ns).join("events.json");
    let mut list: Value = serde_json::from_str(&std::fs::read_to_string(&events).unwrap()).unwrap();
    list["items"].as_array_mut().unwrap().push(serde_json::json!({
        "metadata": {"name": "other.17f", "namespace": ns},
        "involvedObject": {"kind": "Pod", "name": "other-pod", "namespace": ns},
        "reason": "Scheduled", "type": "Normal", "message": format!("Successfully assigned {ns}/other-pod to worker-01"),
        "source": {}, "reportingComponent": "default-scheduler",
        "eventTime": later,
        "firstTimestamp": null, "lastTimestamp": null, "count": 1
    }));
    std::fs::write(&events, serde_json::to_string(&list).unwrap()).unwrap();
    let (v, _) = diagnose(&d, &src, &dump);
    assert_ne!(v["verdict"], "healthy", "{v:#}");
    assert_ne!(v["root_cause"]["reason"], "SchedulerNotRunning", "{v:#}");
    let syms: Vec<&str> = v["symptoms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["reason"].as_str())
        .collect();
    assert!(syms.contains(&"pod_unscheduled"), "{syms:?}");
}

#[test]
fn out_of_time_the_answer_comes_with_what_it_has() {
    let tmp = tempfile::tempdir().unwrap();
    // No time at all: the analysis still answers; the fix's validation pass is skipped, and said so.
    let d = metakube_tests::Daemon::start(tmp.path(), &["--ephemeral", "--request-budget-ms", "0"]);
    let v = metakube_tests::diagnose_scenario(&d.socket, "oom-at-startup-0", &["--no-llm"]);
    assert_eq!(v["root_cause"]["reason"], "MemoryLimitTooLow", "{v}");
    let patch = v["remediation"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r.get("patch"))
        .expect("a patch is still offered");
    assert_eq!(patch["validated"], false, "{v}");
    assert!(
        v["explanation"].as_str().unwrap().contains("time budget"),
        "{v}"
    );
    // With the default budget the same patch validates.
    let tmp2 = tempfile::tempdir().unwrap();
    let d2 = metakube_tests::Daemon::start(tmp2.path(), &["--ephemeral"]);
    let v2 = metakube_tests::diagnose_scenario(&d2.socket, "oom-at-startup-0", &["--no-llm"]);
    let patch2 = v2["remediation"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r.get("patch"))
        .unwrap();
    assert_eq!(patch2["validated"], true, "{v2}");
}
