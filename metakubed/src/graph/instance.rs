//! The instance KubeGraph: the snapshot's objects as a typed graph (petgraph).
//!
//! Nodes are objects (and containers); a node may stand for an object that is referenced but
//! absent (a missing ConfigMap), since absence is often the fault. Edges are typed relations,
//! each said by one object's own data ([`derive`]). The daemon keeps a cluster's graph between
//! diagnoses and re-links it from the next snapshot object by object ([`update`]): only the
//! objects whose resourceVersion moved, and those a change may relate differently, are derived
//! again. A graph is stored as one record per node ([`record`]).

pub mod derive;
pub mod record;
pub mod update;

use std::collections::BTreeMap;

// The graph's index by object: foldhash, not SipHash (the keys are the user's own snapshot).
use foldhash::HashMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use metakube_shared::ObjectRef;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use petgraph::Direction;
use regex::Regex;

use crate::snapshot::Cluster;

/// A typed relation between two objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Edge {
    /// Controller ownership (Deployment → ReplicaSet → Pod, Job → Pod, Pod → Container).
    Owns,
    /// A label selector matches (Service → Pod, NetworkPolicy → Pod).
    Selects,
    /// A pod is bound to a node.
    RunsOn,
    /// A pod mounts a volume source (PVC, ConfigMap, Secret).
    Mounts,
    /// A pod reads an object through env/envFrom, or names its ServiceAccount.
    References,
    /// An Ingress routes to a Service.
    RoutesTo,
    /// A pod calls a Service (from env, args, ConfigMaps or logs).
    DependsOn,
    /// A Service is exposed through its Endpoints.
    Exposes,
    /// A PVC is bound to a PV.
    Binds,
    /// A PVC asks for a StorageClass.
    UsesClass,
    /// A quota or LimitRange constrains a namespace's pods.
    Constrains,
    /// An HPA scales a workload.
    Scales,
    /// A Service's selector matches a workload's pod template (Service → Deployment,
    /// StatefulSet, DaemonSet), whether or not any pod of it runs.
    SelectsWorkload,
}

impl Edge {
    /// Every edge type, in the order of their codes.
    pub const ALL: [Edge; 13] = [
        Edge::Owns,
        Edge::Selects,
        Edge::RunsOn,
        Edge::Mounts,
        Edge::References,
        Edge::RoutesTo,
        Edge::DependsOn,
        Edge::Exposes,
        Edge::Binds,
        Edge::UsesClass,
        Edge::Constrains,
        Edge::Scales,
        Edge::SelectsWorkload,
    ];

    /// The edge type of a stored code.
    pub fn from_code(code: u8) -> Option<Edge> {
        Edge::ALL.get(usize::from(code)).copied()
    }

    /// The edge's name in docs and evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            Edge::Owns => "owns",
            Edge::Selects => "selects",
            Edge::RunsOn => "runs_on",
            Edge::Mounts => "mounts",
            Edge::References => "references",
            Edge::RoutesTo => "routes_to",
            Edge::DependsOn => "depends_on",
            Edge::Exposes => "exposes",
            Edge::Binds => "binds",
            Edge::UsesClass => "uses_class",
            Edge::Constrains => "constrains",
            Edge::Scales => "scales",
            Edge::SelectsWorkload => "selects_workload",
        }
    }
}

/// A graph's content in order: each node with whether it exists, each edge as
/// `(from, edge, to)`.
pub type Triples = (Vec<(ObjectRef, bool)>, Vec<(ObjectRef, Edge, ObjectRef)>);

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    /// The object.
    pub r: ObjectRef,
    /// False for objects that are referenced but were not found in the snapshot.
    pub exists: bool,
}

/// The instance graph of one snapshot (and, kept by the daemon, of the cluster it came from).
#[derive(Debug, Default, Clone)]
pub struct KubeGraph {
    g: StableDiGraph<GraphNode, Edge>,
    idx: HashMap<ObjectRef, NodeIndex>,
    /// The snapshot's objects: the version (resourceVersion, and a pod's log peers) their
    /// relations were derived from; `None` when the object has no resourceVersion (it is then
    /// derived again every time).
    versions: HashMap<NodeIndex, Option<u64>>,
    /// The host keys each pod's configuration and logs name, and the pods by key.
    hosts_of: HashMap<NodeIndex, Vec<String>>,
    by_host: HashMap<String, foldhash::HashSet<NodeIndex>>,
    /// Node records changed, and nodes removed, since the graph was last stored.
    unsaved: foldhash::HashSet<u32>,
    dropped: foldhash::HashSet<u32>,
}

impl KubeGraph {
    /// Builds the graph of a snapshot.
    pub fn build(c: &Cluster, signals: &[crate::signals::Signal]) -> KubeGraph {
        let mut kg = KubeGraph::default();
        kg.update(c, signals, &[]);
        kg
    }

    /// Neighbours along edges of one type, outgoing or incoming, in object order.
    pub fn neighbors(&self, r: &ObjectRef, e: Edge, dir: Direction) -> Vec<&ObjectRef> {
        let Some(&i) = self.idx.get(r) else {
            return Vec::new();
        };
        let mut out: Vec<&ObjectRef> = self
            .g
            .edges_directed(i, dir)
            .filter(|x| *x.weight() == e)
            .map(|x| {
                let other = if dir == Direction::Outgoing {
                    x.target()
                } else {
                    x.source()
                };
                &self.g[other].r
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Every relation of an object: (edge, followed outgoing, the object at its other end), in
    /// edge and object order.
    pub fn edges_of(&self, r: &ObjectRef) -> Vec<(Edge, bool, &ObjectRef)> {
        let Some(&i) = self.idx.get(r) else {
            return Vec::new();
        };
        let out = self
            .g
            .edges_directed(i, Direction::Outgoing)
            .map(|x| (*x.weight(), true, &self.g[x.target()].r));
        let inc = self
            .g
            .edges_directed(i, Direction::Incoming)
            .map(|x| (*x.weight(), false, &self.g[x.source()].r));
        let mut all: Vec<_> = out.chain(inc).collect();
        all.sort_unstable_by(|a, b| (a.0, !a.1, a.2).cmp(&(b.0, !b.1, b.2)));
        all
    }

    /// Whether the node exists in the snapshot (false for referenced-but-absent objects).
    pub fn exists(&self, r: &ObjectRef) -> Option<bool> {
        self.idx.get(r).map(|&i| self.g[i].exists)
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.g.node_count()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.g.edge_count()
    }

    /// Counts of nodes per kind and edges per type (for stats and tests).
    pub fn census(&self) -> (BTreeMap<String, usize>, BTreeMap<&'static str, usize>) {
        let mut kinds = BTreeMap::new();
        for n in self.g.node_weights() {
            *kinds.entry(n.r.kind.clone()).or_insert(0) += 1;
        }
        let mut edges = BTreeMap::new();
        for e in self.g.edge_weights() {
            *edges.entry(e.as_str()).or_insert(0) += 1;
        }
        (kinds, edges)
    }

    /// Every node and its edges, as `(from, edge, to)` triples in order (for comparing graphs).
    pub fn triples(&self) -> Triples {
        let mut nodes: Vec<(ObjectRef, bool)> = self
            .g
            .node_weights()
            .map(|n| (n.r.clone(), n.exists))
            .collect();
        nodes.sort();
        let mut edges: Vec<(ObjectRef, Edge, ObjectRef)> = (&self.g)
            .edge_references()
            .map(|e| {
                (
                    self.g[e.source()].r.clone(),
                    *e.weight(),
                    self.g[e.target()].r.clone(),
                )
            })
            .collect();
        edges.sort();
        (nodes, edges)
    }

    /// Shortest undirected hop count between two objects, up to `max` hops.
    pub fn distance(&self, a: &ObjectRef, b: &ObjectRef, max: usize) -> Option<usize> {
        let (&ia, &ib) = (self.idx.get(a)?, self.idx.get(b)?);
        let mut frontier = vec![ia];
        let mut seen = std::collections::HashSet::from([ia]);
        for d in 0..=max {
            if frontier.contains(&ib) {
                return Some(d);
            }
            let mut next = Vec::new();
            for &n in &frontier {
                for m in self.g.neighbors_undirected(n) {
                    if seen.insert(m) {
                        next.push(m);
                    }
                }
            }
            frontier = next;
        }
        None
    }

    /// The objects at most `hops` relations away from `r` (either direction), `r` first, then
    /// by distance: the neighbourhood a diagnosis may reach.
    pub fn within(&self, r: &ObjectRef, hops: usize) -> Vec<&ObjectRef> {
        let Some(&start) = self.idx.get(r) else {
            return Vec::new();
        };
        let mut seen = foldhash::HashSet::default();
        seen.insert(start);
        let mut out = vec![start];
        let mut frontier = vec![start];
        for _ in 0..hops {
            let mut next = Vec::new();
            for &n in &frontier {
                for m in self.g.neighbors_undirected(n) {
                    if seen.insert(m) {
                        next.push(m);
                    }
                }
            }
            out.extend_from_slice(&next);
            frontier = next;
        }
        out.into_iter().map(|i| &self.g[i].r).collect()
    }
}

/// Objects a pod spec names: volumes (mounts), env/envFrom and the ServiceAccount
/// (references). Optional references are skipped: their absence is not a fault.
pub fn pod_spec_refs(spec: &PodSpec) -> Vec<(&'static str, String, Edge)> {
    let mut out = Vec::new();
    for v in spec.volumes.iter().flatten() {
        if let Some(cm) = &v.config_map {
            if cm.optional != Some(true) {
                out.push(("ConfigMap", cm.name.clone(), Edge::Mounts));
            }
        }
        if let Some(s) = &v.secret {
            if s.optional != Some(true) {
                if let Some(n) = &s.secret_name {
                    out.push(("Secret", n.clone(), Edge::Mounts));
                }
            }
        }
        if let Some(p) = &v.persistent_volume_claim {
            out.push(("PersistentVolumeClaim", p.claim_name.clone(), Edge::Mounts));
        }
    }
    for ctr in all_containers(spec) {
        for e in ctr.env_from.iter().flatten() {
            if let Some(cm) = e
                .config_map_ref
                .as_ref()
                .filter(|r| r.optional != Some(true))
            {
                out.push(("ConfigMap", cm.name.clone(), Edge::References));
            }
            if let Some(s) = e.secret_ref.as_ref().filter(|r| r.optional != Some(true)) {
                out.push(("Secret", s.name.clone(), Edge::References));
            }
        }
        for e in ctr.env.iter().flatten() {
            let Some(vf) = &e.value_from else { continue };
            if let Some(k) = vf
                .config_map_key_ref
                .as_ref()
                .filter(|r| r.optional != Some(true))
            {
                out.push(("ConfigMap", k.name.clone(), Edge::References));
            }
            if let Some(k) = vf
                .secret_key_ref
                .as_ref()
                .filter(|r| r.optional != Some(true))
            {
                out.push(("Secret", k.name.clone(), Edge::References));
            }
        }
    }
    if let Some(sa) = spec
        .service_account_name
        .as_ref()
        .filter(|s| !s.is_empty() && s.as_str() != "default")
    {
        out.push(("ServiceAccount", sa.clone(), Edge::References));
    }
    out.sort();
    out.dedup();
    out
}

/// Init and regular containers of a pod spec.
pub fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
}

/// The texts a pod's configuration holds: env values, command, args and the data of the
/// ConfigMaps it reads.
fn config_texts(
    c: &Cluster,
    p: &crate::snapshot::Obj<k8s_openapi::api::core::v1::Pod>,
) -> Vec<String> {
    let mut texts = Vec::new();
    let ns = p.r.namespace.as_deref().unwrap_or("");
    let Some(spec) = p.o.spec.as_ref() else {
        return texts;
    };
    for ctr in all_containers(spec) {
        texts.extend(ctr.command.iter().flatten().cloned());
        texts.extend(ctr.args.iter().flatten().cloned());
        texts.extend(ctr.env.iter().flatten().filter_map(|e| e.value.clone()));
    }
    for (kind, name, _) in pod_spec_refs(spec) {
        if kind == "ConfigMap" {
            if let Some(cm) = c.configmap(ns, &name) {
                texts.extend(cm.o.data.iter().flatten().map(|(_, v)| v.clone()));
            }
        }
    }
    texts
}

/// How a host name is looked up when a Service changes: an IP as written, a name by its
/// first DNS label (what [`Cluster::resolve_service`] resolves by), lower case.
pub fn host_key(host: &str) -> String {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host.to_string();
    }
    let host = host.trim_end_matches('.');
    host.split('.').next().unwrap_or(host).to_ascii_lowercase()
}

/// Services a pod calls, from its configuration and the peers its log lines name, and the
/// [`host_key`]s of every host name they mention (resolved or not).
pub fn calls(
    c: &Cluster,
    p: &crate::snapshot::Obj<k8s_openapi::api::core::v1::Pod>,
    log_peers: &[&str],
) -> (Vec<ObjectRef>, Vec<String>) {
    static HOST: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*").expect("valid regex")
    });
    let ns = p.r.namespace.as_deref().unwrap_or("");
    let mut out: Vec<ObjectRef> = Vec::new();
    let own: Vec<ObjectRef> = c
        .services_selecting(ns, p.o.metadata.labels.as_ref())
        .into_iter()
        .map(|s| s.r.clone())
        .collect();
    let mut keys: Vec<String> = Vec::new();
    for text in config_texts(c, p) {
        for m in HOST.find_iter(&text) {
            keys.push(host_key(m.as_str()));
            if let Some(s) = c.resolve_service(m.as_str(), ns) {
                if !own.contains(&s) && !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    for peer in log_peers {
        keys.push(host_key(peer));
        if let Some(s) = c.resolve_service(peer, ns) {
            if !own.contains(&s) && !out.contains(&s) {
                out.push(s);
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    (out, keys)
}
