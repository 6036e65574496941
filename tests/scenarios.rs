//! The engine on scenario corpora, in process: metakube's own corpus (tests/scenarios, made by
//! generate.py) and the shared scenarios converted from other people's recorded cases. The
//! floors below are regression guards set from measured accuracy; `kubectl metakube eval`
//! prints the full report.

use std::path::Path;

use kubectl_metakube::collect::dump::{read_dump, read_dump_for};
use kubectl_metakube::collect::select;
use metakube_shared::{Category, ObjectRef, SnapshotSource};
use metakubed::Knowledge;
use serde_json::Value;

struct Score {
    n: usize,
    top1: usize,
    top3: usize,
    category: usize,
    both: usize,
    healthy: usize,
    false_positives: usize,
    misses: Vec<String>,
}

fn accepts(any_of: &[ObjectRef], r: &ObjectRef) -> bool {
    any_of.iter().any(|t| {
        t.kind == r.kind
            && t.name == r.name
            && (t.namespace.is_none() || t.namespace == r.namespace)
    })
}

/// The snapshot the plugin sends (only the target's neighbourhood read from the dump), after
/// checking that it is the one a read of the whole dump selects: same objects in the same
/// order, same logs, same gaps.
fn same_snapshot_either_way(dir: &Path, target: &ObjectRef) -> metakube_shared::Snapshot {
    let source = || SnapshotSource::Dump {
        path: dir.display().to_string(),
    };
    let full = select(
        read_dump(&dir.join("dump")).unwrap(),
        target,
        source(),
        None,
    )
    .unwrap();
    let mut lazy = select(
        read_dump_for(&dir.join("dump"), target).unwrap(),
        target,
        source(),
        None,
    )
    .unwrap();
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    assert_eq!(lazy.objects, full.objects, "{name}: objects differ");
    assert_eq!(lazy.logs, full.logs, "{name}: logs differ");
    let gaps = |s: &metakube_shared::Snapshot| {
        let mut g: Vec<String> = s.meta.gaps.iter().map(|g| format!("{g:?}")).collect();
        g.sort();
        g
    };
    assert_eq!(gaps(&lazy), gaps(&full), "{name}: gaps differ");
    lazy.meta.gaps = full.meta.gaps.clone();
    assert_eq!(lazy, full, "{name}");
    lazy
}

fn run(root: &Path) -> Score {
    let k = Knowledge::builtin();
    let mut s = Score {
        n: 0,
        top1: 0,
        top3: 0,
        category: 0,
        both: 0,
        healthy: 0,
        false_positives: 0,
        misses: Vec::new(),
    };
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("dump").is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let truth: Value = if dir.join("truth.json").exists() {
            serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap()
        } else {
            serde_norway::from_str(&std::fs::read_to_string(dir.join("expected.yaml")).unwrap())
                .unwrap()
        };
        let target: ObjectRef = serde_json::from_value(truth["target"].clone()).unwrap();
        let any_of: Vec<ObjectRef> =
            serde_json::from_value(truth["root_cause_any_of"].clone()).unwrap_or_default();
        let snap = same_snapshot_either_way(&dir, &target);
        let d = metakubed::diagnose(&k, &snap, "t".into())
            .unwrap()
            .diagnosis;
        // A healthy target among broken neighbours: right when nothing is named as its cause.
        if truth["verdict"].as_str() == Some("healthy") {
            s.n += 1;
            s.healthy += 1;
            let ok = d.root_cause.is_none() && d.verdict == metakube_shared::Verdict::Healthy;
            s.both += ok as usize;
            s.top1 += ok as usize;
            s.top3 += ok as usize;
            s.category += ok as usize;
            if !ok {
                s.false_positives += 1;
                s.misses.push(format!(
                    "{}: healthy target, got {:?} {:?}",
                    dir.file_name().unwrap().to_string_lossy(),
                    d.verdict,
                    d.root_cause
                        .map(|r| format!("{}/{} {}", r.object.kind, r.object.name, r.reason))
                ));
            }
            continue;
        }
        let cat = Category::parse(truth["category"].as_str().unwrap()).unwrap();
        let cats: Vec<Category> = std::iter::once(cat)
            .chain(
                truth["category_any_of"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.as_str().and_then(Category::parse)),
            )
            .collect();
        s.n += 1;
        let top1 = d
            .root_cause
            .as_ref()
            .is_some_and(|rc| accepts(&any_of, &rc.object));
        let top3 = top1
            || d.hypotheses
                .iter()
                .take(3)
                .any(|h| accepts(&any_of, &h.object));
        s.top1 += top1 as usize;
        s.top3 += top3 as usize;
        let cat_ok = d.category.is_some_and(|c| cats.contains(&c));
        s.category += cat_ok as usize;
        s.both += (top1 && cat_ok) as usize;
        if !top1 || !cat_ok {
            s.misses.push(format!(
                "{}: got {:?} {:?} ({:?}), want {cat} {:?}",
                dir.file_name().unwrap().to_string_lossy(),
                d.root_cause
                    .as_ref()
                    .map(|r| format!("{}/{}", r.object.kind, r.object.name)),
                d.root_cause.as_ref().map(|r| r.reason.clone()),
                d.category,
                any_of
                    .iter()
                    .map(|o| format!("{}/{}", o.kind, o.name))
                    .collect::<Vec<_>>()
            ));
        }
    }
    s
}

fn report(name: &str, s: &Score) {
    eprintln!(
        "{name}: {} scenarios, object and category {}/{}, top-1 {}/{}, top-3 {}/{}, category {}/{}, false positives {} of {} healthy targets",
        s.n, s.both, s.n, s.top1, s.n, s.top3, s.n, s.category, s.n, s.false_positives, s.healthy
    );
    for m in &s.misses {
        eprintln!("  {m}");
    }
}

/// Object-and-category floor on ../shared/scenarios, in percent.
const FLOOR_SHARED_BOTH: usize = 95;

#[test]
fn own_corpus_accuracy() {
    let s = run(&metakube_tests::corpus());
    report("tests/scenarios", &s);
    assert!(s.n >= 100, "the corpus has {} scenarios", s.n);
    assert!(
        s.healthy >= 2,
        "the corpus has {} healthy targets",
        s.healthy
    );
    assert_eq!(
        s.false_positives, 0,
        "a healthy target was given a root cause"
    );
    assert!(
        s.top1 * 100 >= s.n * 95,
        "top-1 {}/{} fell below 95%",
        s.top1,
        s.n
    );
    assert_eq!(s.top3, s.n, "top-3 must be 100%");
    assert!(
        s.both * 100 >= s.n * 95,
        "object and category {}/{} fell below 95%",
        s.both,
        s.n
    );
    assert!(
        s.category * 100 >= s.n * 95,
        "category {}/{} fell below 95%",
        s.category,
        s.n
    );
}

#[test]
fn shared_scenarios_accuracy() {
    let root = metakube_tests::shared_scenarios();
    if !root.is_dir() {
        eprintln!(
            "skipped: {} is not beside this checkout (a fresh clone without ../shared); \
             the own corpus still runs in own_corpus_accuracy",
            root.display()
        );
        return;
    }
    let s = run(&root);
    report("shared/scenarios", &s);
    assert!(s.n >= 24);
    // Regression floor below the figure measured when it was set (88 of 88, see README).
    assert!(
        s.both * 100 >= s.n * FLOOR_SHARED_BOTH,
        "object and category {}/{} fell below {FLOOR_SHARED_BOTH}%",
        s.both,
        s.n
    );
}

#[test]
fn validating_a_fix_leaves_the_typed_cluster_as_it_was() {
    // Each patch is tried in place and the original put back: the analysis after validation
    // must be the analysis before it, signal for signal and finding for finding.
    let k = Knowledge::builtin();
    for name in [
        "selector-mismatch-cascade-0",
        "oom-at-startup-0",
        "target-port-mismatch-0",
    ] {
        let dir = metakube_tests::scenario(name);
        let (kind, ns, n) = metakube_tests::expected_target(&dir);
        let snap = same_snapshot_either_way(&dir, &ObjectRef::new(&kind, &ns, &n));
        let (mut cluster, before) =
            metakubed::engine::analyze(&k, &snap, &mut Default::default()).unwrap();
        let top = before.findings.first().cloned().unwrap();
        let plan = metakubed::engine::validated_plan(&k, &snap, &mut cluster, &before.graph, &top);
        assert!(
            plan.iter()
                .any(|r| r.patch.as_ref().is_some_and(|p| p.validated)),
            "{name}: a patch validates"
        );
        let after = metakubed::engine::analyze_cluster(&k, &cluster, &mut Default::default());
        assert_eq!(after.signals, before.signals, "{name}: signals changed");
        assert_eq!(after.findings, before.findings, "{name}: findings changed");
    }
}
