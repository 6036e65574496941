//! A graph as stored: one record per node, keyed by the node's index (indices are stable while
//! a graph is re-linked, so an update rewrites only the records it touched).
//!
//! A record holds the node's object, whether it exists, the version its relations were derived
//! from, a pod's host keys, and the edges the object says (each edge is stored once, in its
//! deriver's record). Encoded with postcard.

use metakube_shared::ObjectRef;
use petgraph::stable_graph::NodeIndex;
use petgraph::visit::NodeIndexable;
use serde::{Deserialize, Serialize};

use super::{Edge, GraphNode, KubeGraph};

/// One node as stored.
#[derive(Debug, Serialize, Deserialize)]
struct NodeRecord {
    /// Kind, namespace, name (not [`ObjectRef`]'s own serde form, which leaves out an absent
    /// namespace: postcard is not self-describing).
    r: (String, Option<String>, String),
    exists: bool,
    /// For a snapshot object, the version its relations were derived from (itself `None`
    /// without a resourceVersion); `None` for a node that only stands for a reference.
    version: Option<Option<u64>>,
    hosts: Vec<String>,
    /// (edge code, the node at the other end, whether this node is the edge's source)
    edges: Vec<(u8, u32, bool)>,
}

/// Why stored records do not make a graph.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A record does not decode.
    #[error("the stored graph's record of node {index} is not readable")]
    Decode {
        /// The node.
        index: u32,
        /// The decoder's complaint.
        #[source]
        source: postcard::Error,
    },
    /// A record names an edge type this version does not know.
    #[error("the stored graph's node {index} has an edge of unknown type {code}")]
    UnknownEdge {
        /// The node.
        index: u32,
        /// The stored code.
        code: u8,
    },
    /// An edge leads to a node with no record.
    #[error("the stored graph's node {index} links to node {other}, which has no record")]
    Dangling {
        /// The node.
        index: u32,
        /// The missing node.
        other: u32,
    },
    /// Records out of order (the store yields keys in order).
    #[error("the stored graph's records are out of order at node {index}")]
    Order {
        /// The node.
        index: u32,
    },
}

impl KubeGraph {
    /// The record of node `index`, or `None` when the graph has no such node.
    pub fn record(&self, index: u32) -> Option<Vec<u8>> {
        let i = NodeIndex::new(index as usize);
        let n = self.g.node_weight(i)?;
        let rec = NodeRecord {
            r: (n.r.kind.clone(), n.r.namespace.clone(), n.r.name.clone()),
            exists: n.exists,
            version: self.versions.get(&i).copied(),
            hosts: self.hosts_of.get(&i).cloned().unwrap_or_default(),
            edges: self
                .derived_by(i)
                .into_iter()
                .map(|(_, e, other, source)| (e as u8, other.index() as u32, source))
                .collect(),
        };
        Some(postcard::to_allocvec(&rec).expect("a graph record always encodes"))
    }

    /// Every node's index, in order (what a first store of a graph writes).
    pub fn indices(&self) -> Vec<u32> {
        self.g.node_indices().map(|i| i.index() as u32).collect()
    }
}

/// Rebuilds a graph from its records, given in index order.
#[derive(Default)]
pub struct Loader {
    kg: KubeGraph,
    edges: Vec<(u32, u32, Edge)>,
    holes: Vec<NodeIndex>,
}

impl Loader {
    /// Adds the record of node `index`.
    pub fn push(&mut self, index: u32, bytes: &[u8]) -> Result<(), RecordError> {
        let rec: NodeRecord =
            postcard::from_bytes(bytes).map_err(|source| RecordError::Decode { index, source })?;
        let g = &mut self.kg.g;
        if (index as usize) < g.node_bound() {
            return Err(RecordError::Order { index });
        }
        while g.node_bound() < index as usize {
            self.holes.push(g.add_node(GraphNode {
                r: ObjectRef::default(),
                exists: false,
            }));
        }
        for &(code, other, source) in &rec.edges {
            let e = Edge::from_code(code).ok_or(RecordError::UnknownEdge { index, code })?;
            self.edges.push(if source {
                (index, other, e)
            } else {
                (other, index, e)
            });
        }
        let (kind, namespace, name) = rec.r;
        let r = ObjectRef {
            kind,
            namespace,
            name,
        };
        let i = g.add_node(GraphNode {
            r: r.clone(),
            exists: rec.exists,
        });
        if let Some(v) = rec.version {
            self.kg.versions.insert(i, v);
        }
        if !rec.hosts.is_empty() {
            self.kg.set_hosts(i, rec.hosts);
        }
        self.kg.idx.insert(r, i);
        Ok(())
    }

    /// The graph.
    pub fn finish(mut self) -> Result<KubeGraph, RecordError> {
        let g = &mut self.kg.g;
        g.reserve_edges(self.edges.len());
        let live = |g: &petgraph::stable_graph::StableDiGraph<GraphNode, Edge>, n: u32| {
            g.node_weight(NodeIndex::new(n as usize))
                .is_some_and(|w| !w.r.kind.is_empty())
        };
        for &(a, b, e) in &self.edges {
            for (index, other) in [(a, b), (b, a)] {
                if !live(g, other) {
                    return Err(RecordError::Dangling { index, other });
                }
            }
            g.add_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize), e);
        }
        for h in self.holes {
            g.remove_node(h);
        }
        Ok(self.kg)
    }
}
