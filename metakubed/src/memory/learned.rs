//! A learned cause, found again. A recalled episode that a correction made carries the cause's
//! relation path from the target, its name (relative to the target's) and the symptoms it
//! showed; here that is mapped onto the new snapshot and, when the object is there and shows
//! what it showed then, becomes a finding the controller can choose like any verified one.
//!
//! What keeps a similar-looking but different fault from getting the learned cause: the path
//! must lead to an object of the remembered kind, that object must show (or be named by) one
//! of the remembered symptoms when it showed any, and a learned cause only outranks the
//! analytical answer when that answer is the one the correction refuted (or there is none).

use std::collections::BTreeMap;

use metakube_shared::{Evidence, EvidenceSource, ObjectRef};
use serde_json::json;

use super::correction::{fill_template, LearnedCause};
use super::Recalled;
use crate::graph::instance::KubeGraph;
use crate::graph::relations::{resolve, CodesByObject};
use crate::graph::search::Finding;
use crate::memory::controller::VERIFY_FLOOR;
use crate::snapshot::Cluster;

/// Signature similarity a learned cause needs to be carried over. No rule of the engine
/// verifies it, so only a near-identical set of symptoms vouches for it (a family's repeats
/// embed at ≥ 0.99; different faults that share most symptoms at 0.85–0.93).
pub const LEARNED_MIN_SIMILARITY: f64 = 0.95;

/// What the mapping needs from the analysis of the new snapshot.
pub struct Here<'a> {
    /// The typed snapshot.
    pub cluster: &'a Cluster,
    /// Its instance graph.
    pub graph: &'a KubeGraph,
    /// Symptom codes per object.
    pub codes: &'a CodesByObject,
    /// The target.
    pub target: &'a ObjectRef,
    /// The analytical findings, best first.
    pub findings: &'a [Finding],
}

/// Findings for the learned causes of the recalled episodes that verify here.
pub fn materialize(recalled: &[Recalled], here: &Here<'_>) -> Vec<Finding> {
    let top = here
        .findings
        .iter()
        .find(|f| f.learned_from.is_none() && f.score >= VERIFY_FLOOR);
    let mut out: Vec<Finding> = Vec::new();
    for r in recalled {
        let e = &r.episode;
        let (Some(l), Some(category)) = (&e.learned, e.outcome.category) else {
            continue;
        };
        if r.similarity < LEARNED_MIN_SIMILARITY {
            continue;
        }
        let kind = &e.context.cause_kind;
        // A built-in verifier that finds the same cause answers for it.
        if here.findings.iter().any(|f| {
            f.reason == e.outcome.reason
                && &f.object.kind == kind
                && f.category == category
                && f.score >= VERIFY_FLOOR
        }) {
            continue;
        }
        let Some((object, how)) = locate(l, kind, here) else {
            continue;
        };
        if out
            .iter()
            .any(|f| f.object == object && f.reason == e.outcome.reason)
        {
            continue;
        }
        let shows = here.codes.of(&object);
        let shared: Vec<&String> = l.codes.iter().filter(|c| shows.contains(*c)).collect();
        if !l.codes.is_empty() && shared.is_empty() {
            continue; // it showed something then and nothing of it now: another fault
        }
        // Outrank the analytical answer only where the correction refuted that very answer.
        let refuted_again = match (top, &l.refuted) {
            (None, _) => true,
            (Some(t), Some(rf)) => t.reason == rf.reason && t.object.kind == rf.kind,
            (Some(_), None) => false,
        };
        let top_score = top.map_or(0.5, |t| t.score).max(VERIFY_FLOOR);
        let score = if refuted_again {
            top_score
        } else {
            top_score * 0.5
        };
        let note = e.outcome.note.clone().unwrap_or_default();
        let mut params = BTreeMap::new();
        params.insert("episode".to_string(), json!(e.id));
        params.insert("resolution".to_string(), json!(note));
        if let Some(cmd) = &l.fix_command {
            params.insert(
                "command".to_string(),
                json!(rename(cmd, &object, here.target)),
            );
        }
        let detail = format!(
            "{how}, like the cause confirmed in episode {}{}",
            e.id,
            if shared.is_empty() {
                String::new()
            } else {
                format!("; shows {} as it did then", join(&shared))
            }
        );
        out.push(Finding {
            reason: e.outcome.reason.clone(),
            category,
            object: object.clone(),
            score: score.clamp(0.0, 0.99),
            summary: format!(
                "{} {}: {} (a cause learned from a correction{})",
                object.kind,
                object.name,
                e.outcome.reason,
                if note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", first_sentence(&note))
                }
            ),
            evidence: vec![Evidence {
                source: EvidenceSource::Memory,
                object: object.clone(),
                detail,
                pointer: Some(format!("episode/{}", e.id)),
            }],
            symptoms: shared.into_iter().cloned().collect(),
            path: vec![here.target.clone(), object],
            fix: "remembered".into(),
            params,
            note: if refuted_again {
                String::new()
            } else {
                "learned cause; the analytical answer is not the one it corrected".into()
            },
            learned_from: Some(e.id),
        });
    }
    out
}

/// Where the learned cause is in this snapshot, and how it was found.
fn locate(l: &LearnedCause, kind: &str, here: &Here<'_>) -> Option<(ObjectRef, String)> {
    let name = fill_template(&l.name, here.target);
    if let Some(path) = &l.path {
        let found: Vec<ObjectRef> = resolve(here.graph, here.cluster, here.target, path)
            .into_iter()
            .filter(|r| r.kind == kind)
            .collect();
        let by_name = found.iter().find(|r| r.name == name);
        let by_codes: Vec<&ObjectRef> = found
            .iter()
            .filter(|r| {
                let c = here.codes.of(r);
                l.codes.iter().any(|x| c.contains(x))
            })
            .collect();
        let chosen = by_name
            .or(if found.len() == 1 {
                found.first()
            } else {
                None
            })
            .or(if by_codes.len() == 1 {
                by_codes.first().copied()
            } else {
                None
            });
        if let Some(r) = chosen {
            return Some((r.clone(), format!("reached as {path}")));
        }
    }
    // Not related to the target in the graph (or the path leads elsewhere now): by name.
    let r = if metakube_shared::KindInfo::lookup(kind).is_none_or(|k| k.namespaced) {
        let ns = match &l.namespace {
            Some(ns) => fill_template(ns, here.target),
            None => here.target.namespace.clone().unwrap_or_default(),
        };
        ObjectRef::new(kind, &ns, &name)
    } else {
        ObjectRef::cluster(kind, &name)
    };
    (here.cluster.exists(&r) || here.graph.exists(&r).is_some())
        .then(|| (r, "found by name".to_string()))
}

/// A remembered command for this snapshot's names.
fn rename(template: &str, object: &ObjectRef, target: &ObjectRef) -> String {
    fill_template(&template.replace("{cause}", &object.name), target)
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

fn first_sentence(s: &str) -> &str {
    let end = s.find(". ").map_or(s.len(), |i| i + 1);
    let s = &s[..end];
    match s.char_indices().nth(160) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
