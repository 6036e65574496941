//! The per-cluster change history kept by resourceVersion (issue 12): a live snapshot of a
//! 20k-object namespace observed again with 1% of its tracked objects changed. Only those are
//! re-shaped and diffed; the rest are skipped on their resourceVersion. RocksDB under it, as in
//! the daemon. The first look (every object new) is measured too.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use metakube_shared::{Snapshot, SnapshotSource, TRACKED};
use metakubed::history::History;
use serde_json::json;

/// The grown 20k-object dump's snapshot as a live one, every object with a resourceVersion;
/// `changed` marks every hundredth tracked object edited (new version, a new label).
fn live(base: &Snapshot, changed: bool) -> Snapshot {
    let mut s = base.clone();
    s.meta.source = SnapshotSource::Live {
        context: Some("bench".into()),
        cluster: Some("https://bench:6443".into()),
    };
    let mut tracked = 0;
    for (i, o) in s.objects.iter_mut().enumerate() {
        let edit = TRACKED.contains(&o.kind()) && {
            tracked += 1;
            changed && tracked % 100 == 0
        };
        let m = &mut o.value_mut()["metadata"];
        m["resourceVersion"] = json!(format!("{}{i}", if edit { "b" } else { "a" }));
        if edit {
            m["labels"]["bench-edit"] = json!("1");
        }
    }
    s
}

fn history(c: &mut Criterion) {
    let base = metakube_benches::read_and_select(
        &metakube_benches::grown_dump(20_000, 1),
        &metakube_benches::grown_target(),
    );
    let (a, b) = (live(&base, false), live(&base, true));
    let tracked = a
        .objects
        .iter()
        .filter(|o| TRACKED.contains(&o.kind()))
        .count();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store: std::sync::Arc<dyn metakubed::store::Store> = std::sync::Arc::new(
        metakubed::store::RocksStore::open(&tmp.path().join("db")).expect("store"),
    );
    let h = History::new(store.clone());
    let now = jiff::Timestamp::now();
    let first = h.observe(&a, now).expect("observe");
    assert_eq!(first.new, tracked);
    let moved = h.observe(&b, now).expect("observe");
    assert_eq!(moved.compared - moved.unchanged, tracked / 100);
    eprintln!(
        "history bench: {} objects, {tracked} tracked, {} changed per observation",
        a.objects.len(),
        tracked / 100
    );
    let mut g = c.benchmark_group("history");
    g.sample_size(20);
    let mut flip = false;
    g.bench_function("observe_20k_objects_1pct_changed", |bench| {
        bench.iter(|| {
            flip = !flip;
            let o = h.observe(if flip { &a } else { &b }, now).expect("observe");
            assert_eq!(o.compared - o.unchanged, tracked / 100);
        })
    });
    g.bench_function("first_look_20k_objects", |bench| {
        bench.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let s: std::sync::Arc<dyn metakubed::store::Store> = std::sync::Arc::new(
                    metakubed::store::RocksStore::open(&dir.path().join("db")).expect("store"),
                );
                (dir, History::new(s))
            },
            |(_dir, h)| h.observe(&a, now).expect("observe"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, history);
criterion_main!(benches);
