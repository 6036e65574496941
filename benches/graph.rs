//! The KubeGraph kept per cluster (issue 12).
//!
//! - Re-linking the kept graph of a live 20k-object namespace to its next snapshot with 1% of
//!   the objects edited (a new resourceVersion and label on every hundredth), against building
//!   the graph afresh; and the whole diagnosis with and without the kept graph.
//! - A cluster-sized graph, 1M nodes and ~3M edges (833 namespaces of 50 Deployments with a
//!   ReplicaSet, 10 pods, a Service and a ConfigMap each, pods spread over 1,000 nodes), stored
//!   as the daemon stores it (one RocksDB record per node): loaded back, and the 3-hop
//!   neighbourhood of a pod.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use metakube_shared::{ObjectRef, Snapshot, SnapshotSource};
use metakubed::graph::instance::{Edge, KubeGraph};
use metakubed::kept::KeptGraphs;
use metakubed::Knowledge;
use serde_json::json;

/// The grown dump's snapshot as a live one; `edited` marks every hundredth object changed.
fn live(base: &Snapshot, edited: bool) -> Snapshot {
    let mut s = base.clone();
    s.meta.source = SnapshotSource::Live {
        context: Some("bench".into()),
        cluster: Some("https://bench:6443".into()),
    };
    for (i, o) in s.objects.iter_mut().enumerate() {
        let edit = edited && i % 100 == 0;
        let m = &mut o.value_mut()["metadata"];
        m["resourceVersion"] = json!(format!("{}{i}", if edit { "b" } else { "a" }));
        if edit {
            m["labels"]["bench-edit"] = json!("1");
        }
    }
    s
}

fn relink(c: &mut Criterion) {
    let k = Knowledge::builtin();
    let base = metakube_benches::read_and_select(
        &metakube_benches::grown_dump(20_000, 1),
        &metakube_benches::grown_target(),
    );
    let (a, b) = (live(&base, false), live(&base, true));
    let (_, first) = metakubed::engine::analyze(&k, &a, &mut Default::default()).expect("a");
    let (c1, next) = metakubed::engine::analyze(&k, &b, &mut Default::default()).expect("b");
    let kept = first.graph;
    let mut check = kept.clone();
    let r = check.update(&c1, &next.signals, &[]);
    assert_eq!(check.triples(), next.graph.triples(), "re-linked = built");
    eprintln!(
        "graph bench: {} objects, {} changed, {} derived again; graph {} nodes, {} edges",
        r.objects,
        r.changed,
        r.derived,
        kept.node_count(),
        kept.edge_count()
    );
    let mut g = c.benchmark_group("graph_20k_1pct");
    g.sample_size(20);
    g.bench_function("build_afresh", |bn| {
        bn.iter(|| KubeGraph::build(&c1, &next.signals))
    });
    g.bench_function("relink_kept", |bn| {
        bn.iter_batched(
            || kept.clone(),
            |mut g| g.update(&c1, &next.signals, &[]),
            BatchSize::LargeInput,
        )
    });
    g.finish();
    // What the daemon keeps after diagnosing the first look.
    let mut after_a = metakubed::engine::Kept::default();
    metakubed::engine::diagnose_kept(&k, &a, "a".into(), None, &|| false, None, &mut after_a)
        .expect("diagnose");
    let typed = after_a.cluster.take().expect("typed snapshot kept");
    for (what, graph, cluster) in [
        ("nothing kept", None, None),
        ("graph kept", Some(kept.clone()), None),
        (
            "graph and typed objects kept",
            Some(kept.clone()),
            Some(typed.clone()),
        ),
    ] {
        let mut kk = metakubed::engine::Kept { graph, cluster };
        let d =
            metakubed::engine::diagnose_kept(&k, &b, "b".into(), None, &|| false, None, &mut kk)
                .expect("diagnose");
        eprintln!(
            "graph bench: diagnose, {what}: {:?}",
            d.diagnosis.timings_ms
        );
    }
    let mut d = c.benchmark_group("diagnose_20k_1pct");
    d.sample_size(10);
    d.bench_function("graph_built", |bn| {
        bn.iter(|| metakubed::diagnose(&k, &b, "bench".into()).expect("diagnose"))
    });
    d.bench_function("graph_kept", |bn| {
        bn.iter_batched(
            || metakubed::engine::Kept {
                graph: Some(kept.clone()),
                cluster: None,
            },
            |mut g| {
                metakubed::engine::diagnose_kept(&k, &b, "b".into(), None, &|| false, None, &mut g)
                    .expect("diagnose")
            },
            BatchSize::LargeInput,
        )
    });
    d.bench_function("graph_and_typed_objects_kept", |bn| {
        bn.iter_batched(
            || metakubed::engine::Kept {
                graph: Some(kept.clone()),
                cluster: Some(typed.clone()),
            },
            |mut g| {
                metakubed::engine::diagnose_kept(&k, &b, "b".into(), None, &|| false, None, &mut g)
                    .expect("diagnose")
            },
            BatchSize::LargeInput,
        )
    });
    d.finish();
    drop(c1);
}

/// A synthetic cluster's graph: `namespaces` × 50 Deployments (ReplicaSet, 10 pods with a
/// container each, a Service selecting them, a ConfigMap they mount, a Service they call).
fn cluster_graph(namespaces: usize) -> KubeGraph {
    let mut g = KubeGraph::default();
    let mut pod_n = 0usize;
    for n in 0..namespaces {
        let ns = format!("team-{n}");
        let nsr = ObjectRef::cluster("Namespace", &ns);
        for d in 0..50 {
            let dep = ObjectRef::new("Deployment", &ns, format!("app-{d}"));
            let rs = ObjectRef::new("ReplicaSet", &ns, format!("app-{d}-7d9f"));
            let svc = ObjectRef::new("Service", &ns, format!("app-{d}"));
            let cm = ObjectRef::new("ConfigMap", &ns, format!("app-{d}"));
            let calls = ObjectRef::new("Service", &ns, format!("app-{}", (d + 1) % 50));
            for r in [&dep, &rs, &svc, &cm] {
                g.add_object(r, Some("1"));
            }
            g.add_relation(&dep, &rs, Edge::Owns);
            g.add_relation(&svc, &dep, Edge::SelectsWorkload);
            for p in 0..10 {
                let pod = ObjectRef::new("Pod", &ns, format!("app-{d}-7d9f-{p:05}"));
                g.add_object(&pod, Some("1"));
                let node = ObjectRef::cluster("Node", format!("node-{}", pod_n % 1000));
                pod_n += 1;
                g.add_relation(&nsr, &pod, Edge::Owns);
                g.add_relation(&rs, &pod, Edge::Owns);
                g.add_relation(
                    &pod,
                    &ObjectRef::new("Container", &ns, format!("{}/app", pod.name)),
                    Edge::Owns,
                );
                g.add_relation(&pod, &node, Edge::RunsOn);
                g.add_relation(&svc, &pod, Edge::Selects);
                g.add_relation(&pod, &cm, Edge::Mounts);
                g.add_relation(&pod, &calls, Edge::DependsOn);
            }
        }
    }
    g
}

fn million(c: &mut Criterion) {
    let t = std::time::Instant::now();
    let g = cluster_graph(833);
    let (nodes, edges) = (g.node_count(), g.edge_count());
    eprintln!(
        "graph bench: synthetic cluster graph {nodes} nodes, {edges} edges, built in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let store: std::sync::Arc<dyn metakubed::store::Store> = std::sync::Arc::new(
        metakubed::store::RocksStore::open(&tmp.path().join("db")).expect("store"),
    );
    let kept = KeptGraphs::new(store.clone());
    let key = "live:https://bench:6443/all";
    let t = std::time::Instant::now();
    let taken = kept.take(key);
    let written = kept
        .put(
            key,
            taken,
            metakubed::engine::Kept {
                graph: Some(g),
                cluster: None,
            },
        )
        .expect("stored");
    eprintln!(
        "graph bench: {written} records stored in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let loaded = KeptGraphs::new(store.clone())
        .load(key)
        .expect("load")
        .expect("stored");
    assert_eq!((loaded.node_count(), loaded.edge_count()), (nodes, edges));
    let pod = ObjectRef::new("Pod", "team-400", "app-25-7d9f-00003");
    eprintln!(
        "graph bench: 3-hop neighbourhood of {pod}: {} objects",
        loaded.within(&pod, 3).len()
    );
    let mut g = c.benchmark_group("graph_1m");
    g.sample_size(10);
    g.bench_function("load_from_rocksdb", |bn| {
        bn.iter_with_large_drop(|| {
            KeptGraphs::new(store.clone())
                .load(key)
                .expect("load")
                .expect("stored")
        })
    });
    g.bench_function("three_hops", |bn| bn.iter(|| loaded.within(&pod, 3).len()));
    g.finish();
}

criterion_group!(benches, relink, million);
criterion_main!(benches);
