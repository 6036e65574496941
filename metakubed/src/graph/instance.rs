//! The instance KubeGraph: the snapshot's objects as a typed graph (petgraph).
//!
//! Nodes are objects (and containers); a node may stand for an object that is referenced but
//! absent (a missing ConfigMap), since absence is often the fault. Edges are typed relations.

use std::collections::BTreeMap;

// The graph's index by object: foldhash, not SipHash (the keys are the user's own snapshot).
use foldhash::HashMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use metakube_shared::ObjectRef;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use regex::Regex;

use crate::signals::Signal;
use crate::snapshot::{label_selector_matches, Cluster};

/// A typed relation between two objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    /// The object.
    pub r: ObjectRef,
    /// False for objects that are referenced but were not found in the snapshot.
    pub exists: bool,
}

/// The instance graph of one snapshot.
#[derive(Debug, Default)]
pub struct KubeGraph {
    g: DiGraph<GraphNode, Edge>,
    idx: HashMap<ObjectRef, NodeIndex>,
    /// Edges present, for a constant-time duplicate check (a namespace or node has thousands).
    edges: std::collections::HashSet<(NodeIndex, NodeIndex, Edge)>,
}

impl KubeGraph {
    /// Builds the graph.
    pub fn build(c: &Cluster, signals: &[Signal]) -> KubeGraph {
        let mut kg = KubeGraph::default();
        kg.add_objects(c);
        kg.add_ownership(c);
        kg.add_pod_relations(c);
        kg.add_service_relations(c);
        kg.add_storage_relations(c);
        kg.add_policy_relations(c);
        kg.add_dependencies(c, signals);
        kg
    }

    fn node(&mut self, r: &ObjectRef, exists: bool) -> NodeIndex {
        if let Some(&i) = self.idx.get(r) {
            if exists {
                self.g[i].exists = true;
            }
            return i;
        }
        let i = self.g.add_node(GraphNode {
            r: r.clone(),
            exists,
        });
        self.idx.insert(r.clone(), i);
        i
    }

    fn edge(&mut self, from: &ObjectRef, to: &ObjectRef, e: Edge, to_exists: bool) {
        let a = self.node(from, true);
        let b = self.node(to, to_exists);
        if self.edges.insert((a, b, e)) {
            self.g.add_edge(a, b, e);
        }
    }

    fn add_objects(&mut self, c: &Cluster) {
        macro_rules! all {
            ($($v:ident),*) => { $( for o in &c.$v { self.node(&o.r, true); } )* };
        }
        all!(
            pods,
            nodes,
            services,
            endpoints,
            deployments,
            replicasets,
            statefulsets,
            daemonsets,
            jobs,
            cronjobs,
            configmaps,
            secrets,
            serviceaccounts,
            pvcs,
            pvs,
            storageclasses,
            netpols,
            ingresses,
            quotas,
            limitranges,
            hpas
        );
        let mut namespaces: Vec<String> = c
            .pods
            .iter()
            .filter_map(|p| p.r.namespace.clone())
            .collect();
        namespaces.sort();
        namespaces.dedup();
        for ns in namespaces {
            self.node(&ObjectRef::cluster("Namespace", ns), true);
        }
    }

    fn add_ownership(&mut self, c: &Cluster) {
        let metas = c
            .pods
            .iter()
            .map(|o| (&o.r, &o.o.metadata))
            .chain(c.replicasets.iter().map(|o| (&o.r, &o.o.metadata)))
            .chain(c.jobs.iter().map(|o| (&o.r, &o.o.metadata)))
            .chain(c.endpoints.iter().map(|o| (&o.r, &o.o.metadata)));
        let pairs: Vec<(ObjectRef, ObjectRef)> = metas
            .filter_map(|(r, m)| c.owner_of(m).map(|o| (o, r.clone())))
            .collect();
        for (owner, owned) in pairs {
            let exists = c.exists(&owner);
            self.edge(&owner, &owned, Edge::Owns, true);
            if !exists {
                self.g[self.idx[&owner]].exists = false;
            }
        }
    }

    fn add_pod_relations(&mut self, c: &Cluster) {
        for p in &c.pods {
            let ns = p.r.namespace.clone().unwrap_or_default();
            let Some(spec) = p.o.spec.as_ref() else {
                continue;
            };
            if let Some(n) = &spec.node_name {
                let nr = ObjectRef::cluster("Node", n);
                let exists = c.node(n).is_some();
                self.edge(&p.r, &nr, Edge::RunsOn, exists);
            }
            for (kind, name, edge) in pod_spec_refs(spec) {
                let r = ObjectRef::new(kind, &ns, &name);
                let exists = c.exists(&r);
                self.edge(&p.r, &r, edge, exists);
            }
            for ctr in spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
            {
                let cr = ObjectRef::new("Container", &ns, format!("{}/{}", p.r.name, ctr.name));
                self.edge(&p.r, &cr, Edge::Owns, true);
            }
            self.edge(
                &ObjectRef::cluster("Namespace", &ns),
                &p.r,
                Edge::Owns,
                true,
            );
        }
    }

    fn add_service_relations(&mut self, c: &Cluster) {
        // Each workload's template against the Services that may select it (the selector
        // index), in the order of the Services and then of the workloads.
        let workloads = c
            .deployments
            .iter()
            .map(|o| &o.r)
            .chain(c.statefulsets.iter().map(|o| &o.r))
            .chain(c.daemonsets.iter().map(|o| &o.r));
        let mut backs: Vec<(usize, usize, ObjectRef, ObjectRef)> = Vec::new();
        for (wi, r) in workloads.enumerate() {
            let Some(labels) = c.template_labels(r) else {
                continue;
            };
            for s in c.services_selecting(r.namespace.as_deref().unwrap_or(""), Some(labels)) {
                let si = c.position(&s.r).unwrap_or(usize::MAX);
                backs.push((si, wi, s.r.clone(), r.clone()));
            }
        }
        backs.sort_by_key(|(si, wi, ..)| (*si, *wi));
        let backs = backs.into_iter().map(|(_, _, s, w)| (s, w));
        for (svc, w) in backs {
            self.edge(&svc, &w, Edge::SelectsWorkload, true);
        }
        for s in &c.services {
            let ns = s.r.namespace.as_deref();
            if let Some(sel) = s.o.spec.as_ref().and_then(|sp| sp.selector.as_ref()) {
                let matched: Vec<ObjectRef> = c
                    .pods_selected_by(ns.unwrap_or(""), sel)
                    .into_iter()
                    .map(|p| p.r.clone())
                    .collect();
                for p in matched {
                    self.edge(&s.r, &p, Edge::Selects, true);
                }
            }
            if let Some(ep) = c.endpoints_of(&s.r) {
                let epr = ep.r.clone();
                self.edge(&s.r, &epr, Edge::Exposes, true);
            }
        }
        for ing in &c.ingresses {
            let ns = ing.r.namespace.clone().unwrap_or_default();
            let spec = ing.o.spec.as_ref();
            let names: Vec<String> = spec
                .and_then(|s| s.rules.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|r| r.http.as_ref())
                .flat_map(|h| {
                    h.paths
                        .iter()
                        .filter_map(|p| p.backend.service.as_ref().map(|s| s.name.clone()))
                })
                .chain(
                    spec.and_then(|s| s.default_backend.as_ref())
                        .and_then(|b| b.service.as_ref())
                        .map(|s| s.name.clone()),
                )
                .collect();
            for n in names {
                let r = ObjectRef::new("Service", &ns, &n);
                let exists = c.service(&ns, &n).is_some();
                self.edge(&ing.r, &r, Edge::RoutesTo, exists);
            }
        }
    }

    fn add_storage_relations(&mut self, c: &Cluster) {
        for pvc in &c.pvcs {
            let spec = pvc.o.spec.as_ref();
            if let Some(v) = spec.and_then(|s| s.volume_name.as_ref()) {
                let r = ObjectRef::cluster("PersistentVolume", v);
                let exists = c.exists(&r);
                self.edge(&pvc.r, &r, Edge::Binds, exists);
            }
            if let Some(sc) = spec
                .and_then(|s| s.storage_class_name.as_ref())
                .filter(|s| !s.is_empty())
            {
                let r = ObjectRef::cluster("StorageClass", sc);
                let exists = c.exists(&r);
                self.edge(&pvc.r, &r, Edge::UsesClass, exists);
            }
        }
    }

    fn add_policy_relations(&mut self, c: &Cluster) {
        for np in &c.netpols {
            let ns = np.r.namespace.as_deref();
            let Some(spec) = np.o.spec.as_ref() else {
                continue;
            };
            let matched: Vec<ObjectRef> = c
                .pods
                .iter()
                .filter(|p| {
                    p.r.namespace.as_deref() == ns
                        && spec.pod_selector.as_ref().is_none_or(|sel| {
                            label_selector_matches(sel, p.o.metadata.labels.as_ref())
                        })
                })
                .map(|p| p.r.clone())
                .collect();
            for p in matched {
                self.edge(&np.r, &p, Edge::Selects, true);
            }
        }
        for q in c
            .quotas
            .iter()
            .map(|q| &q.r)
            .chain(c.limitranges.iter().map(|l| &l.r))
        {
            if let Some(ns) = &q.namespace {
                let r = q.clone();
                self.edge(
                    &r,
                    &ObjectRef::cluster("Namespace", ns),
                    Edge::Constrains,
                    true,
                );
            }
        }
        for h in &c.hpas {
            let ns = h.r.namespace.clone().unwrap_or_default();
            if let Some(t) = h.o.spec.as_ref().map(|s| &s.scale_target_ref) {
                let r = ObjectRef::new(&t.kind, &ns, &t.name);
                let exists = c.exists(&r);
                let hr = h.r.clone();
                self.edge(&hr, &r, Edge::Scales, exists);
            }
        }
    }

    fn add_dependencies(&mut self, c: &Cluster, signals: &[Signal]) {
        // Log peers per pod, gathered once (a scan per pod grows with the square of the pods).
        let mut peers_of: HashMap<&ObjectRef, Vec<&str>> = HashMap::default();
        for s in signals.iter().filter(|s| s.code.starts_with("log_")) {
            if let Some(p) = s.peer.as_deref() {
                peers_of.entry(&s.object).or_default().push(p);
            }
        }
        let deps: Vec<(ObjectRef, ObjectRef)> = c
            .pods
            .iter()
            .flat_map(|p| {
                let peers = peers_of.get(&p.r).into_iter().flatten().copied();
                dependencies_of(c, p, peers)
                    .into_iter()
                    .map(move |s| (p.r.clone(), s))
            })
            .collect();
        for (p, s) in deps {
            self.edge(&p, &s, Edge::DependsOn, true);
        }
    }

    /// Neighbours along edges of one type, outgoing or incoming.
    pub fn neighbors(&self, r: &ObjectRef, e: Edge, dir: Direction) -> Vec<&ObjectRef> {
        let Some(&i) = self.idx.get(r) else {
            return Vec::new();
        };
        self.g
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
            .collect()
    }

    /// Every relation of an object: (edge, followed outgoing, the object at its other end).
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
        out.chain(inc).collect()
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

/// Services a pod calls, from its configuration and the peers its log lines name.
pub fn dependencies_of<'p>(
    c: &Cluster,
    p: &crate::snapshot::Obj<k8s_openapi::api::core::v1::Pod>,
    log_peers: impl Iterator<Item = &'p str>,
) -> Vec<ObjectRef> {
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
    for text in config_texts(c, p) {
        for m in HOST.find_iter(&text) {
            if let Some(s) = c.resolve_service(m.as_str(), ns) {
                if !own.contains(&s) && !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    for peer in log_peers {
        if let Some(s) = c.resolve_service(peer, ns) {
            if !own.contains(&s) && !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}
