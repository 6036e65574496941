//! The symptom signature an episode is remembered by: kinds, symptom codes, exit codes, probe
//! kinds, log templates and the relations between the objects showing them, with every name
//! masked. Two incidents of one fault family in different deployments share a signature, and
//! nothing embedded or exported names a cluster's objects.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::engine::Analysis;
use crate::signals::Signal;

/// The masked signature of one diagnosis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// Sorted, unique signature lines (`Pod oom killed at start`, `relation Deployment → Pod`).
    pub lines: Vec<String>,
    /// The context it was seen in.
    pub context: Context,
}

/// Where a fault was seen: kinds only, no names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Kind of the object asked about.
    pub target_kind: String,
    /// Symptom codes seen in the target's scope.
    pub codes: BTreeSet<String>,
}

/// Most signature lines kept (the embedder reads at most 256 word pieces).
pub const MAX_LINES: usize = 24;

impl Signature {
    /// The signature of an analysis: symptoms in the target's scope and on the paths of the
    /// three best verified findings, with the relations along those paths.
    pub fn of(a: &Analysis, target_kind: &str) -> Signature {
        let mut on_paths: BTreeSet<&metakube_shared::ObjectRef> = BTreeSet::new();
        let mut lines = BTreeSet::new();
        for f in a.findings.iter().take(3) {
            on_paths.extend(f.path.iter());
            if f.path.len() > 1 {
                let kinds: Vec<&str> = f.path.iter().map(|r| r.kind.as_str()).collect();
                lines.insert(format!("relation {}", kinds.join(" → ")));
            }
        }
        let mut codes = BTreeSet::new();
        let scope: std::collections::HashSet<&metakube_shared::ObjectRef> =
            a.scope.iter().collect();
        for s in &a.signals {
            if !(scope.contains(&s.object) || on_paths.contains(&s.object)) {
                continue;
            }
            codes.insert(s.code.clone());
            lines.insert(line(s));
        }
        let mut lines: Vec<String> = lines.into_iter().collect();
        // Symptoms first (they say most), relations after; both sorted for stability.
        lines.sort_by_key(|l| (l.starts_with("relation"), l.clone()));
        lines.truncate(MAX_LINES);
        Signature {
            lines,
            context: Context {
                target_kind: target_kind.to_string(),
                codes,
            },
        }
    }

    /// The text embedded for retrieval.
    pub fn text(&self) -> String {
        format!(
            "{} problem. {}.",
            self.context.target_kind,
            self.lines.join(". ")
        )
    }

    /// Whether there is anything to remember.
    pub fn is_empty(&self) -> bool {
        self.context.codes.is_empty()
    }
}

/// One masked line for a signal: the kind, the code in words, and the name-free payload.
fn line(s: &Signal) -> String {
    let mut l = format!("{} {}", s.object.kind, s.code.replace('_', " "));
    if s.container.is_some() {
        // Containers are named by the workload's author: keep only that it is one.
        l.push_str(" in container");
    }
    match s.code.as_str() {
        "exit_error" | "crash_loop" | "start_error" => {
            if let Some(v) = s.value {
                l.push_str(&format!(" exit code {}", v as i64));
            }
        }
        c if (c.starts_with("log_") || c.contains("refused") || c.contains("dns"))
            && s.peer.is_some() =>
        {
            l.push_str(" naming a peer");
        }
        _ => {}
    }
    l
}
