//! The KubeGraph kept between diagnoses: re-linked from a changed snapshot, it is the graph
//! built afresh from that snapshot (nodes, whether each exists, every typed edge), while
//! deriving again only what the change can reach; stored as records and loaded back, it is the
//! same graph and re-links the same way.
//!
//! The snapshots are every scenario of tests/scenarios (and ../shared/scenarios when present),
//! changed the ways a live cluster changes between two looks: objects deleted and created, pod
//! labels and nodes, Service selectors and ClusterIPs, ConfigMap data naming another Service,
//! workload templates, Endpoints appearing, log lines gone — each change moving the object's
//! resourceVersion as the API server does.

use std::path::Path;

use metakube_shared::{KubeObject, Snapshot};
use metakubed::graph::instance::record::Loader;
use metakubed::graph::instance::{KubeGraph, Triples};
use metakubed::snapshot::Cluster;
use metakubed::Knowledge;
use serde_json::{json, Value};

/// A small deterministic generator (xorshift), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The scenarios' snapshots, every object given a resourceVersion (as a live cluster's all
/// carry one; some converted cases lack it).
fn snapshots(root: &Path) -> Vec<(String, Snapshot)> {
    let mut out = metakube_tests::scenario_snapshots(root);
    for (_, snap) in &mut out {
        for (n, o) in snap.objects.iter_mut().enumerate() {
            if o.pointer("/metadata/resourceVersion").is_none() {
                o.value_mut()["metadata"]["resourceVersion"] = json!(format!("{}", 1000 + n));
            }
        }
    }
    out
}

fn bump(o: &mut KubeObject) {
    let rv = o
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("0")
        .to_string();
    o.value_mut()["metadata"]["resourceVersion"] = json!(format!("{rv}9"));
}

fn names_of(s: &Snapshot, kind: &str) -> Vec<String> {
    s.of_kind(kind).map(|o| o.name().to_string()).collect()
}

/// One look later: the cluster changed in the ways a live one does.
fn change(s: &Snapshot, rng: &mut Rng) -> Snapshot {
    let mut s = s.clone();
    let services = names_of(&s, "Service");
    let target = s.target.clone();
    s.objects
        .retain(|o| o.object_ref() == target || !rng.chance(8));
    let n = s.objects.len();
    for i in 0..n {
        if !rng.chance(15) {
            continue;
        }
        let o = &mut s.objects[i];
        match o.kind() {
            "Pod" => {
                if rng.chance(50) {
                    o.value_mut()["metadata"]["labels"]["app"] =
                        json!(format!("moved-{}", rng.below(3)));
                } else {
                    o.value_mut()["spec"]["nodeName"] = json!(format!("node-{}", rng.below(3)));
                }
            }
            "Service" => match rng.below(3) {
                0 => {
                    o.value_mut()["spec"]["selector"] =
                        json!({"app": format!("moved-{}", rng.below(3))})
                }
                1 => {
                    o.value_mut()["spec"]["clusterIP"] =
                        json!(format!("10.96.0.{}", rng.below(250)))
                }
                _ => {
                    if let Some(m) = o.value_mut()["spec"].as_object_mut() {
                        m.remove("selector");
                    }
                }
            },
            "ConfigMap" if !services.is_empty() => {
                let to = &services[rng.below(services.len())];
                o.value_mut()["data"] = json!({"upstream": format!("http://{to}:8080/api")});
            }
            "Deployment" | "StatefulSet" | "DaemonSet" => {
                o.value_mut()["spec"]["template"]["metadata"]["labels"]["app"] =
                    json!(format!("moved-{}", rng.below(3)));
            }
            _ => {}
        }
        bump(o);
    }
    // Created: a Service selecting a pod's labels (or named after what a config calls), a pod
    // beside another, Endpoints for a Service that had none.
    let pods: Vec<KubeObject> = s.of_kind("Pod").cloned().collect();
    if let Some(p) = (!pods.is_empty()).then(|| &pods[rng.below(pods.len())]) {
        let ns = p.namespace().unwrap_or("default").to_string();
        let labels = p
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({"app": "x"}));
        let name = format!("svc-new-{}", rng.below(1000));
        // Every creation gets a resourceVersion never seen before, as from the API server.
        let rv = |rng: &mut Rng| json!(format!("{}", 1_000_000 + rng.below(1_000_000_000)));
        s.objects.push(KubeObject::new(json!({
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv(rng)},
            "spec": {"selector": labels, "clusterIP": "10.96.9.9", "ports": [{"port": 80}]}
        })));
        s.objects.push(KubeObject::new(json!({
            "kind": "Endpoints", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": rv(rng)},
            "subsets": []
        })));
        let mut twin = p.clone();
        twin.value_mut()["metadata"]["name"] = json!(format!("{}-twin", p.name()));
        twin.value_mut()["metadata"]["resourceVersion"] = rv(rng);
        s.objects.push(twin);
    }
    if !s.logs.is_empty() && rng.chance(50) {
        let i = rng.below(s.logs.len());
        s.logs.remove(i);
    }
    s
}

fn analyzed(k: &Knowledge, snap: &Snapshot) -> (Cluster, metakubed::engine::Analysis) {
    metakubed::engine::analyze(k, snap, &mut Default::default()).unwrap()
}

/// A typed snapshot's objects, kind by kind, as text (its indexes are hash maps).
fn typed_content(c: &Cluster) -> String {
    format!(
        "{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}",
        c.pods,
        c.nodes,
        c.services,
        c.endpoints,
        c.deployments,
        c.replicasets,
        c.configmaps,
        c.events,
        c.gaps,
        c.objects()
    )
}

fn reload(g: &KubeGraph) -> KubeGraph {
    let mut l = Loader::default();
    for i in g.indices() {
        l.push(i, &g.record(i).unwrap()).unwrap();
    }
    l.finish().unwrap()
}

/// What one graph has that the other has not, both ways (empty when they are the same).
fn diff(a: &Triples, b: &Triples) -> String {
    let only = |x: &Triples, y: &Triples| {
        let nodes: Vec<_> = x.0.iter().filter(|n| !y.0.contains(n)).collect();
        let edges: Vec<_> = x.1.iter().filter(|e| !y.1.contains(e)).collect();
        format!("nodes {nodes:?} edges {edges:?}")
    };
    if a == b {
        return String::new();
    }
    format!(
        "only in the first: {}; only in the second: {}",
        only(a, b),
        only(b, a)
    )
}

fn check_corpus(root: &Path) -> usize {
    let k = Knowledge::builtin();
    let snaps = snapshots(root);
    let mut checked = 0;
    let (mut typed_reused, mut typed_objects) = (0, 0);
    for (n, (name, snap0)) in snaps.iter().enumerate() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1));
        let (c0, a0) = analyzed(&k, snap0);
        let mut kept = a0.graph;
        // The same snapshot again: nothing moved, nothing is derived again.
        let again = kept.update(&c0, &a0.signals, &[]);
        assert_eq!(
            (again.changed, again.gone, again.derived),
            (0, 0, 0),
            "{name}: an unchanged snapshot re-derived objects"
        );
        assert!(
            again.written.is_empty() && again.dropped.is_empty(),
            "{name}"
        );
        let mut snap = snap0.clone();
        for step in 0..3 {
            let next = change(&snap, &mut rng);
            if next.get(&next.target).is_none() {
                break;
            }
            let (c1, a1) = analyzed(&k, &next);
            // Typed again only where the resourceVersion moved: the same typed snapshot.
            let before = Cluster::from_snapshot(&snap);
            let (reusing, reused) = Cluster::from_snapshot_reusing(&next, Some(before));
            assert_eq!(
                typed_content(&reusing),
                typed_content(&c1),
                "{name} step {step}"
            );
            assert!(reused <= next.objects.len(), "{name}: {reused} reused");
            typed_reused += reused;
            typed_objects += next.objects.len();
            let r = kept.update(&c1, &a1.signals, &[]);
            let d = diff(&kept.triples(), &a1.graph.triples());
            assert!(
                d.is_empty(),
                "{name} step {step}: the re-linked graph differs from the one built afresh ({r:?}): {d}"
            );
            // Stored and loaded back: the same graph, and it re-links the same way.
            let mut loaded = reload(&kept);
            let d = diff(&loaded.triples(), &kept.triples());
            assert!(d.is_empty(), "{name} step {step}: reloaded: {d}");
            let after = change(&next, &mut Rng(rng.next()));
            if after.get(&after.target).is_some() {
                let (c2, a2) = analyzed(&k, &after);
                loaded.update(&c2, &a2.signals, &[]);
                let d = diff(&loaded.triples(), &a2.graph.triples());
                assert!(
                    d.is_empty(),
                    "{name} step {step}: a loaded graph re-linked: {d}"
                );
            }
            snap = next;
            checked += 1;
        }
    }
    // Most objects did not move, and the moved ones were typed again.
    assert!(
        typed_reused * 2 > typed_objects && typed_reused < typed_objects,
        "{typed_reused} of {typed_objects} typed objects reused"
    );
    checked
}

#[test]
fn a_kept_graph_relinked_is_the_graph_built_afresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let checked = check_corpus(&root);
    assert!(checked >= 200, "only {checked} changed snapshots checked");
}

#[test]
fn a_kept_graph_relinked_is_the_graph_built_afresh_on_the_shared_scenarios() {
    let Some(root) = metakube_tests::shared_scenarios_or_skip() else {
        return;
    };
    assert!(check_corpus(&root) >= 150);
}

#[test]
fn a_patched_object_named_as_changed_is_derived_again_though_its_version_did_not_move() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let k = Knowledge::builtin();
    let (name, snap) = snapshots(&root)
        .into_iter()
        .find(|(_, s)| {
            s.of_kind("Service")
                .any(|o| o.pointer("/spec/selector").is_some())
        })
        .expect("a scenario with a Service");
    let (_, a0) = analyzed(&k, &snap);
    let mut kept = a0.graph;
    let mut patched = snap.clone();
    let svc = patched
        .objects
        .iter_mut()
        .find(|o| o.kind() == "Service" && o.pointer("/spec/selector").is_some())
        .unwrap();
    svc.value_mut()["spec"]["selector"] = json!({"app": "nothing-has-this"});
    let svc = svc.object_ref();
    let (c1, a1) = analyzed(&k, &patched);
    // Unnamed, the unmoved resourceVersion hides the change.
    let mut blind = kept.clone();
    blind.update(&c1, &a1.signals, &[]);
    assert_ne!(
        blind.triples(),
        a1.graph.triples(),
        "{name}: the patch changed nothing?"
    );
    let r = kept.update(&c1, &a1.signals, std::slice::from_ref(&svc));
    assert_eq!(kept.triples(), a1.graph.triples(), "{name}");
    assert!(r.changed == 1 && r.derived >= 1, "{r:?}");
}

#[test]
fn stored_records_that_do_not_make_a_graph_are_refused_with_the_node_named() {
    let mut l = Loader::default();
    let err = l.push(3, b"\xff\xff\xff").unwrap_err().to_string();
    assert!(err.contains("node 3"), "{err}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let (_, snap) = snapshots(&root).into_iter().next().unwrap();
    let (_, a) = analyzed(&Knowledge::builtin(), &snap);
    let g = a.graph;
    // A record alone: its edges lead to nodes that were not stored.
    let err = g
        .indices()
        .into_iter()
        .find_map(|i| {
            let mut l = Loader::default();
            l.push(i, &g.record(i).unwrap()).unwrap();
            l.finish().err()
        })
        .expect("a record with an edge")
        .to_string();
    assert!(err.contains("links to node"), "{err}");
}
