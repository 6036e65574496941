//! Where an object sits relative to a diagnosis target, as a relation path in the instance
//! KubeGraph (`target's pod → depends_on → Service → selects_workload → StatefulSet`), and the
//! way back: the objects a remembered path leads to in another snapshot. Episodic memory uses it
//! to carry a corrected cause from one incident to the next of its family, whatever the objects
//! are called there.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;

use metakube_shared::ObjectRef;
use serde::{Deserialize, Serialize};

use super::instance::{Edge, KubeGraph};
use crate::snapshot::Cluster;

/// Hops a relation path may take from its origin (the paper's traversal bound).
pub const MAX_HOPS: usize = 3;

/// Most objects recorded around one target.
pub const MAX_NEAR: usize = 400;

/// Most of the target's own pods recorded (all of them are starting points).
const MAX_OWN_PODS: usize = 16;

/// Where a relation path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The object asked about.
    Target,
    /// Any of its pods (the target itself when it is a pod).
    TargetPod,
    /// Its namespace (quotas, limit ranges, policies when no pod exists).
    Namespace,
}

/// One hop: the relation followed, its direction and the kind reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Step {
    /// The relation (`runs_on`, `depends_on`, …, as [`Edge::as_str`] names it).
    pub edge: String,
    /// Followed from its source to its target (false: against it).
    pub outgoing: bool,
    /// Kind of the object reached.
    pub kind: String,
}

/// A relation path from a target to an object, with no names in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RelationPath {
    /// Where it starts.
    pub origin: Origin,
    /// The hops, in order.
    pub steps: Vec<Step>,
}

impl fmt::Display for RelationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.origin {
            Origin::Target => "target",
            Origin::TargetPod => "target's pod",
            Origin::Namespace => "target's namespace",
        })?;
        for s in &self.steps {
            if s.outgoing {
                write!(f, " → {} → {}", s.edge, s.kind)?;
            } else {
                write!(f, " ← {} ← {}", s.edge, s.kind)?;
            }
        }
        Ok(())
    }
}

/// An object near the target and the shortest relation path to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Near {
    /// The object.
    pub object: ObjectRef,
    /// How it is reached from the target.
    pub path: RelationPath,
}

/// The starting points of every path: the target, its pods, its namespace.
fn origins(g: &KubeGraph, c: &Cluster, target: &ObjectRef) -> Vec<(ObjectRef, Origin)> {
    let mut out = Vec::new();
    if target.kind == "Pod" {
        out.push((target.clone(), Origin::TargetPod));
    } else {
        out.push((target.clone(), Origin::Target));
        out.extend(
            c.pods_of(target)
                .into_iter()
                .map(|p| (p.r.clone(), Origin::TargetPod)),
        );
    }
    if let Some(ns) = &target.namespace {
        let n = ObjectRef::cluster("Namespace", ns);
        if g.exists(&n).is_some() {
            out.push((n, Origin::Namespace));
        }
    }
    out
}

/// Whether a hop may be taken. A namespace owns every pod in it and a container is part of
/// its pod, so those hops would make everything near everything.
fn walkable(from: &ObjectRef, edge: Edge, to: &ObjectRef) -> bool {
    !(edge == Edge::Owns && (from.kind == "Namespace" || to.kind == "Namespace"))
        && to.kind != "Container"
}

/// Objects within [`MAX_HOPS`] of the target, each with its shortest relation path, nearest
/// first, at most [`MAX_NEAR`].
pub fn neighbourhood(g: &KubeGraph, c: &Cluster, target: &ObjectRef) -> Vec<Near> {
    let mut seen: HashSet<ObjectRef> = HashSet::new();
    let mut out = Vec::new();
    let mut queue: VecDeque<(ObjectRef, RelationPath)> = VecDeque::new();
    // Every pod of the target is a starting point (what its pods reach is near), but a
    // workload's pods are alike: only the first few are recorded themselves.
    let mut pods_recorded = 0;
    for (r, origin) in origins(g, c, target) {
        if seen.insert(r.clone()) {
            let path = RelationPath {
                origin,
                steps: Vec::new(),
            };
            let record = origin != Origin::TargetPod || pods_recorded < MAX_OWN_PODS;
            if record {
                pods_recorded += usize::from(origin == Origin::TargetPod);
                out.push(Near {
                    object: r.clone(),
                    path: path.clone(),
                });
            }
            queue.push_back((r, path));
        }
    }
    while let Some((r, path)) = queue.pop_front() {
        if path.steps.len() >= MAX_HOPS || out.len() >= MAX_NEAR {
            continue;
        }
        for (edge, outgoing, other) in g.edges_of(&r) {
            if !walkable(&r, edge, other) || !seen.insert(other.clone()) {
                continue;
            }
            let mut p = path.clone();
            p.steps.push(Step {
                edge: edge.as_str().to_string(),
                outgoing,
                kind: other.kind.clone(),
            });
            out.push(Near {
                object: other.clone(),
                path: p.clone(),
            });
            if out.len() >= MAX_NEAR {
                return out;
            }
            queue.push_back((other.clone(), p));
        }
    }
    out
}

/// The objects a remembered path leads to from this target (at most 64).
pub fn resolve(
    g: &KubeGraph,
    c: &Cluster,
    target: &ObjectRef,
    path: &RelationPath,
) -> Vec<ObjectRef> {
    let mut frontier: BTreeSet<ObjectRef> = origins(g, c, target)
        .into_iter()
        // A pod target is its own pod: paths remembered from a workload start there too.
        .filter(|(_, o)| {
            *o == path.origin
                || (path.origin == Origin::Target
                    && *o == Origin::TargetPod
                    && target.kind == "Pod")
        })
        .map(|(r, _)| r)
        .collect();
    for step in &path.steps {
        let mut next = BTreeSet::new();
        for r in &frontier {
            for (edge, outgoing, other) in g.edges_of(r) {
                if edge.as_str() == step.edge
                    && outgoing == step.outgoing
                    && other.kind == step.kind
                    && walkable(r, edge, other)
                {
                    next.insert(other.clone());
                }
            }
            if next.len() >= 64 {
                break;
            }
        }
        frontier = next;
        if frontier.is_empty() {
            break;
        }
    }
    frontier.into_iter().take(64).collect()
}

/// Symptom codes per object: those it shows and those that name it (a log line's peer, a
/// missing ConfigMap's name), for deciding whether a remembered cause shows here what it
/// showed then.
pub fn codes_by_object(signals: &[crate::signals::Signal]) -> CodesByObject {
    let mut by_ref: HashMap<ObjectRef, BTreeSet<String>> = HashMap::new();
    let mut by_name: HashMap<String, BTreeSet<String>> = HashMap::new();
    for s in signals {
        by_ref
            .entry(s.object.clone())
            .or_default()
            .insert(s.code.clone());
        if let Some(p) = &s.peer {
            // `redis-cart.shop.svc:6379` and `secret "db-creds"` both name `…`'s first token.
            let host = p
                .trim_matches(|c: char| c == '"' || c == '\'')
                .split([':', '.', '/', ' '])
                .next()
                .unwrap_or("");
            if !host.is_empty() {
                by_name
                    .entry(host.to_string())
                    .or_default()
                    .insert(s.code.clone());
            }
        }
    }
    CodesByObject { by_ref, by_name }
}

/// See [`codes_by_object`].
#[derive(Debug, Default)]
pub struct CodesByObject {
    by_ref: HashMap<ObjectRef, BTreeSet<String>>,
    by_name: HashMap<String, BTreeSet<String>>,
}

impl CodesByObject {
    /// The codes an object shows or is named by, sorted.
    pub fn of(&self, r: &ObjectRef) -> BTreeSet<String> {
        let mut out = self.by_ref.get(r).cloned().unwrap_or_default();
        if let Some(v) = self.by_name.get(&r.name) {
            out.extend(v.iter().cloned());
        }
        out
    }
}
