//! Growth with cluster size (issue 12): a broken rollout among healthy neighbours in dumps of
//! ~500, 5k and 20k objects in one namespace, and 100k objects over 50 namespaces
//! (`benches/grow_dump.py`). Two measures per size: the plugin's side (read only the target's
//! neighbourhood from the dump, select) and the engine's (type, signals, graph, search,
//! remediation with validation) on the selected snapshot, and the changes near the fault the
//! daemon attaches afterwards. The growth exponent between sizes is
//! log(t2/t1)/log(n2/n1).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use metakubed::Knowledge;

const SIZES: [(usize, usize); 4] = [(500, 1), (5_000, 1), (20_000, 1), (100_000, 50)];

fn scale(c: &mut Criterion) {
    let k = Knowledge::builtin();
    let target = metakube_benches::grown_target();
    let mut read = c.benchmark_group("scale_read_select");
    read.sample_size(10);
    for (n, ns) in SIZES {
        let dump = metakube_benches::grown_dump(n, ns);
        read.bench_with_input(
            BenchmarkId::from_parameter(format!("{n}x{ns}ns")),
            &dump,
            |b, d| b.iter(|| metakube_benches::read_and_select(d, &target)),
        );
    }
    read.finish();
    let mut engine = c.benchmark_group("scale_diagnose");
    engine.sample_size(10);
    for (n, ns) in SIZES {
        let snap = metakube_benches::read_and_select(&metakube_benches::grown_dump(n, ns), &target);
        let d = metakubed::diagnose(&k, &snap, "check".into()).expect("diagnose");
        let rc = d.diagnosis.root_cause.as_ref().expect("a root cause");
        assert_eq!(
            (
                rc.object.kind.as_str(),
                rc.object.name.as_str(),
                rc.reason.as_str()
            ),
            ("Service", "redis", "SelectorMatchesNoPods"),
            "the grown dump's answer changed at {n} objects"
        );
        engine.bench_with_input(
            BenchmarkId::from_parameter(format!("{n}x{ns}ns")),
            &snap,
            |b, s| b.iter(|| metakubed::diagnose(&k, s, "bench".into()).expect("diagnose")),
        );
    }
    engine.finish();
    // What the daemon adds after the engine: the neighbourhood's changes (rollout revisions,
    // first failure, the dump's "now") that every diagnosis carries.
    let mut near = c.benchmark_group("scale_changes_near");
    near.sample_size(10);
    for (n, ns) in SIZES {
        let snap = metakube_benches::read_and_select(&metakube_benches::grown_dump(n, ns), &target);
        let centre = [
            snap.target.clone(),
            metakube_shared::ObjectRef::new("Service", "team-a", "redis"),
        ];
        near.bench_with_input(
            BenchmarkId::from_parameter(format!("{n}x{ns}ns")),
            &snap,
            |b, s| {
                b.iter(|| {
                    metakubed::history::changes_near(None, s, &centre, None, jiff::Timestamp::now())
                        .expect("changes")
                })
            },
        );
    }
    near.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
