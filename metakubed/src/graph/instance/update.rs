//! Building a graph, and re-linking a kept one from a new snapshot of the same cluster.
//!
//! An object whose resourceVersion (and, for a pod, whose log peers) did not move says the same
//! relations as before and is not looked at again. Derived again are: objects that are new or
//! moved; for an object that appeared or went, every object related to it (their edges name
//! it, and its existence is what they record); for a ConfigMap, Service or NetworkPolicy that
//! changed, every object related to it (their relations read its data); and what a change may
//! newly relate ([`derive::reach`]: a Service's newly selected pods, the pods naming it).
//! Building is the same walk from an empty graph, so a kept graph re-linked and a graph built
//! afresh from the same snapshot are the same graph (`tests/graph_update.rs`).

use std::hash::{BuildHasher, Hash, Hasher};

use foldhash::HashSet;
use metakube_shared::ObjectRef;
use petgraph::stable_graph::{EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::derive::{self, deriver_is_source, Relate};
use super::{Edge, GraphNode, KubeGraph};
use crate::signals::Signal;
use crate::snapshot::Cluster;

/// What one update did, and which node records it changed (for the store).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Relinked {
    /// Objects in the snapshot.
    pub objects: usize,
    /// Of those, new or moved (or asked to be treated so).
    pub changed: usize,
    /// Objects kept from before that are no longer in the snapshot.
    pub gone: usize,
    /// Objects whose relations were derived again.
    pub derived: usize,
    /// Nodes whose record is new or different (sorted).
    pub written: Vec<u32>,
    /// Nodes removed (sorted).
    pub dropped: Vec<u32>,
}

/// Kinds whose node exists whenever it is related (they are not snapshot objects).
pub(super) fn structural(kind: &str) -> bool {
    matches!(kind, "Namespace" | "Container")
}

/// Kinds whose data (not only existence) other objects' relations read.
fn read_by_others(kind: &str) -> bool {
    matches!(kind, "ConfigMap" | "Service" | "NetworkPolicy")
}

/// The version an object's relations are derived from: its resourceVersion and, for a pod, its
/// log peers; `None` without a resourceVersion. A fixed-seed hash, so a stored graph compares
/// with the next daemon's snapshots.
fn version(rv: Option<&str>, peers: Option<&Vec<&str>>) -> Option<u64> {
    let rv = rv.filter(|v| !v.is_empty())?;
    let mut h = foldhash::fast::FixedState::with_seed(0x6d65_7461_6b75_6265).build_hasher();
    rv.hash(&mut h);
    peers.hash(&mut h);
    Some(h.finish())
}

impl KubeGraph {
    /// Re-links the graph to a new snapshot of the same cluster: only what moved is derived
    /// again. `also` names objects to treat as changed whatever their version says (a patched
    /// object, whose resourceVersion the patch did not move).
    pub fn update(&mut self, c: &Cluster, signals: &[Signal], also: &[ObjectRef]) -> Relinked {
        let peers = derive::peers_by_pod(signals);
        let objects = c.objects();
        let mut out = Relinked {
            objects: objects.len(),
            ..Relinked::default()
        };
        let mut touched: HashSet<NodeIndex> = HashSet::default();
        let mut present: HashSet<NodeIndex> = HashSet::default();
        present.reserve(objects.len());
        // (node, whether it appeared or went: then its existence is what changed)
        let mut dirty: Vec<(NodeIndex, bool)> = Vec::new();
        for (r, meta) in objects {
            let v = version(meta.resource_version.as_deref(), peers.get(r));
            let i = self.node(r, &mut touched);
            present.insert(i);
            let appeared = !self.g[i].exists || !self.versions.contains_key(&i);
            if appeared || v.is_none() || self.versions.get(&i) != Some(&v) || also.contains(r) {
                self.g[i].exists = true;
                self.versions.insert(i, v);
                touched.insert(i);
                dirty.push((i, appeared));
            }
        }
        out.changed = dirty.len();
        let gone: Vec<NodeIndex> = self
            .versions
            .keys()
            .filter(|i| !present.contains(i))
            .copied()
            .collect();
        out.gone = gone.len();
        for &i in &gone {
            self.versions.remove(&i);
            self.g[i].exists = structural(&self.g[i].r.kind);
            touched.insert(i);
            dirty.push((i, true));
        }
        let redo = self.affected(c, &dirty, &present);
        out.derived = redo.len();
        let mut orphans: Vec<NodeIndex> = gone.clone();
        for &i in &gone {
            self.unlink(i, &mut orphans);
            self.set_hosts(i, Vec::new());
        }
        for r in &redo {
            let i = self.idx[r];
            self.unlink(i, &mut orphans);
            touched.insert(i);
        }
        let mut linker = Linker {
            kg: self,
            touched: &mut touched,
        };
        derive::derive(c, &peers, &|r| redo.contains(r), &mut linker);
        for i in orphans {
            if self.g.contains_node(i)
                && !self.versions.contains_key(&i)
                && self.g.neighbors_undirected(i).next().is_none()
            {
                if let Some(n) = self.g.remove_node(i) {
                    self.idx.remove(&n.r);
                }
                touched.remove(&i);
                out.dropped.push(i.index() as u32);
            }
        }
        out.written = touched.into_iter().map(|i| i.index() as u32).collect();
        out.written.sort_unstable();
        out.dropped.sort_unstable();
        out.dropped.dedup();
        for &d in &out.dropped {
            self.unsaved.remove(&d);
            self.dropped.insert(d);
        }
        for &w in &out.written {
            self.dropped.remove(&w);
            self.unsaved.insert(w);
        }
        out
    }

    /// The node records changed and the nodes removed since the last call (or since the graph
    /// was built or loaded), sorted: what a store of the graph writes and deletes.
    pub fn take_unsaved(&mut self) -> (Vec<u32>, Vec<u32>) {
        let mut w: Vec<u32> = self.unsaved.drain().collect();
        let mut d: Vec<u32> = self.dropped.drain().collect();
        w.sort_unstable();
        d.sort_unstable();
        (w, d)
    }

    /// Adds an object of a cluster read some other way than a snapshot (a synthetic cluster in
    /// a bench), with the version its relations are said at.
    pub fn add_object(&mut self, r: &ObjectRef, resource_version: Option<&str>) {
        let mut touched = HashSet::default();
        let i = self.node(r, &mut touched);
        self.g[i].exists = true;
        self.versions.insert(i, version(resource_version, None));
        self.unsaved.insert(i.index() as u32);
        self.unsaved
            .extend(touched.into_iter().map(|i| i.index() as u32));
    }

    /// Adds a relation as its deriving object's data would say it (see [`add_object`]).
    ///
    /// [`add_object`]: KubeGraph::add_object
    pub fn add_relation(&mut self, from: &ObjectRef, to: &ObjectRef, e: Edge) {
        let mut touched = HashSet::default();
        let a = self.node(from, &mut touched);
        let b = self.node(to, &mut touched);
        self.link(a, b, e);
        let d = if deriver_is_source(e, &to.kind) { a } else { b };
        touched.insert(d);
        self.unsaved
            .extend(touched.into_iter().map(|i| i.index() as u32));
    }

    /// The present objects whose relations are to be derived again.
    fn affected(
        &self,
        c: &Cluster,
        dirty: &[(NodeIndex, bool)],
        present: &HashSet<NodeIndex>,
    ) -> HashSet<ObjectRef> {
        let mut redo: HashSet<ObjectRef> = HashSet::default();
        if dirty.iter().filter(|(i, _)| present.contains(i)).count() == present.len() {
            // Every object is new or moved (a graph built afresh): nothing else to find.
            redo.extend(present.iter().map(|&i| self.g[i].r.clone()));
            return redo;
        }
        let add = |i: NodeIndex, redo: &mut HashSet<ObjectRef>| {
            if present.contains(&i) {
                redo.insert(self.g[i].r.clone());
            }
        };
        for &(i, existence) in dirty {
            add(i, &mut redo);
            let r = &self.g[i].r;
            if existence || read_by_others(&r.kind) {
                for e in self.g.edges_directed(i, Direction::Outgoing) {
                    add(self.deriver(e.id()), &mut redo);
                }
                for e in self.g.edges_directed(i, Direction::Incoming) {
                    add(self.deriver(e.id()), &mut redo);
                }
            }
            let reach = derive::reach(c, r);
            for o in reach.objects {
                if let Some(&j) = self.idx.get(&o) {
                    add(j, &mut redo);
                }
            }
            for h in reach.hosts {
                for &p in self.by_host.get(&h).into_iter().flatten() {
                    add(p, &mut redo);
                }
            }
        }
        redo
    }

    /// The object whose data says an edge.
    fn deriver(&self, e: EdgeIndex) -> NodeIndex {
        let (a, b) = self.g.edge_endpoints(e).expect("edge of this graph");
        if deriver_is_source(self.g[e], &self.g[b].r.kind) {
            a
        } else {
            b
        }
    }

    /// Edges an object said, with the deriver's side first.
    pub(super) fn derived_by(&self, i: NodeIndex) -> Vec<(EdgeIndex, Edge, NodeIndex, bool)> {
        let out = self
            .g
            .edges_directed(i, Direction::Outgoing)
            .map(|e| (e.id(), *e.weight(), e.target(), true));
        let inc = self
            .g
            .edges_directed(i, Direction::Incoming)
            .map(|e| (e.id(), *e.weight(), e.source(), false));
        out.chain(inc)
            .filter(|&(id, ..)| self.deriver(id) == i)
            .collect()
    }

    /// Removes the edges an object said; their other ends may now be orphans.
    fn unlink(&mut self, i: NodeIndex, orphans: &mut Vec<NodeIndex>) {
        for (id, _, other, _) in self.derived_by(i) {
            self.g.remove_edge(id);
            orphans.push(other);
        }
    }

    /// The node of an object, made (as absent, unless structural) when it has none.
    pub(super) fn node(&mut self, r: &ObjectRef, touched: &mut HashSet<NodeIndex>) -> NodeIndex {
        if let Some(&i) = self.idx.get(r) {
            return i;
        }
        let i = self.g.add_node(GraphNode {
            r: r.clone(),
            exists: structural(&r.kind),
        });
        self.idx.insert(r.clone(), i);
        touched.insert(i);
        i
    }

    /// Records the host keys a pod names (replacing what it named before).
    pub(super) fn set_hosts(&mut self, i: NodeIndex, keys: Vec<String>) {
        for k in self.hosts_of.remove(&i).unwrap_or_default() {
            if let Some(s) = self.by_host.get_mut(&k) {
                s.remove(&i);
                if s.is_empty() {
                    self.by_host.remove(&k);
                }
            }
        }
        for k in &keys {
            self.by_host.entry(k.clone()).or_default().insert(i);
        }
        if !keys.is_empty() {
            self.hosts_of.insert(i, keys);
        }
    }

    /// Adds an edge unless the deriver already said it.
    pub(super) fn link(&mut self, a: NodeIndex, b: NodeIndex, e: Edge) {
        let from_source = deriver_is_source(e, &self.g[b].r.kind);
        let dup = if from_source {
            self.g
                .edges_directed(a, Direction::Outgoing)
                .any(|x| x.target() == b && *x.weight() == e)
        } else {
            self.g
                .edges_directed(b, Direction::Incoming)
                .any(|x| x.source() == a && *x.weight() == e)
        };
        if !dup {
            self.g.add_edge(a, b, e);
        }
    }
}

/// Adds what [`derive::derive`] says to the graph.
struct Linker<'a> {
    kg: &'a mut KubeGraph,
    touched: &'a mut HashSet<NodeIndex>,
}

impl Relate for Linker<'_> {
    fn relate(&mut self, from: &ObjectRef, to: &ObjectRef, e: Edge) {
        let a = self.kg.node(from, self.touched);
        let b = self.kg.node(to, self.touched);
        self.kg.link(a, b, e);
    }

    fn hosts(&mut self, pod: &ObjectRef, keys: Vec<String>) {
        let i = self.kg.node(pod, self.touched);
        self.kg.set_hosts(i, keys);
    }
}
