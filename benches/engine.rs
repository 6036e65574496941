//! In-process engine latency: the whole analytical pathway (typing, signals, graph, search,
//! remediation with validation) on snapshots of 100 and 500 objects.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use metakubed::Knowledge;

fn engine(c: &mut Criterion) {
    let k = Knowledge::builtin();
    let mut g = c.benchmark_group("diagnose");
    for n in [100, 500] {
        let snap = metakube_benches::snapshot(n);
        g.bench_with_input(
            BenchmarkId::from_parameter(snap.objects.len()),
            &snap,
            |b, s| b.iter(|| metakubed::diagnose(&k, s, "bench".into()).expect("diagnose")),
        );
    }
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
