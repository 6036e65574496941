//! What a correction teaches. `feedback ID --not-fixed --cause KIND/NAME [--reason R]
//! [--category C] [--note "…"] [--fix-command "…"]` names the object the fault really lived in;
//! this module turns that into a learned cause: where the object sat relative to the target (its
//! relation path in KubeGraph, recorded with the diagnosis), the symptoms it showed or was named
//! by, its reason and category (given, known, or read from the note), and the answer it refutes.
//! [`super::learned`] carries it to the next incident of the family.

use std::sync::OnceLock;

use metakube_shared::{Category, FeedbackOutcome, FeedbackRequest, ObjectRef};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::graph::relations::RelationPath;
use crate::store::StoredDiagnosis;

/// The vocabulary a note's category is read by.
pub const CORRECTION_WORDS_YAML: &str = include_str!("../../knowledge/correction_words.yaml");

/// A cause taught by a correction, as an episode keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedCause {
    /// How the cause was reached from the target, when it was in the graph around it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<RelationPath>,
    /// Its name, with the target's name written `{target}` and its namespace `{namespace}`
    /// (so `{target}-config` follows a renamed target).
    pub name: String,
    /// Its namespace: `{namespace}` when it is the target's, the name when it is another
    /// (`kube-system`), absent for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Symptom codes the cause showed or was named by when it was corrected.
    #[serde(default)]
    pub codes: Vec<String>,
    /// The answer the correction refuted, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuted: Option<Refuted>,
    /// Whether the reason is a cause the analytical engine knows.
    pub known: bool,
    /// The command that resolved it (`--fix-command`), with the cause's, target's and
    /// namespace's names written `{cause}`, `{target}`, `{namespace}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_command: Option<String>,
    /// Where the category came from (`given`, `known cause`, `note`, `finding`, `kind`).
    pub category_from: String,
}

/// An object around a diagnosis' target, as its trace records it for a later correction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NearObject {
    /// The object.
    pub object: ObjectRef,
    /// How it is reached from the target.
    pub path: RelationPath,
    /// Symptom codes it showed or was named by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<String>,
}

/// A verified finding, as a diagnosis' trace records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Brief {
    /// Where the fault lived.
    pub object: ObjectRef,
    /// Its reason.
    pub reason: String,
    /// Its category.
    pub category: Category,
}

/// The answer a correction refuted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refuted {
    /// Its reason.
    pub reason: String,
    /// The kind it blamed.
    pub kind: String,
}

/// A correction, understood.
#[derive(Debug, Clone, PartialEq)]
pub struct Correction {
    /// The object the fault lived in.
    pub cause: ObjectRef,
    /// Its reason code.
    pub reason: String,
    /// Its category.
    pub category: Category,
    /// What memory keeps to find it again.
    pub learned: LearnedCause,
    /// One line for the user on what was learnt.
    pub message: String,
}

#[derive(Debug, Deserialize)]
struct Words {
    notes: Vec<NoteWords>,
    kinds: std::collections::BTreeMap<String, Category>,
}

#[derive(Debug, Deserialize)]
struct NoteWords {
    category: Category,
    #[serde(default)]
    strong: Vec<String>,
    #[serde(default)]
    weak: Vec<String>,
}

/// One category's words as regular expressions: the strong ones, then the weak ones.
struct Tiers {
    category: Category,
    strong: Vec<Regex>,
    weak: Vec<Regex>,
}

struct Vocabulary {
    notes: Vec<Tiers>,
    kinds: std::collections::BTreeMap<String, Category>,
}

fn vocabulary() -> &'static Vocabulary {
    static V: OnceLock<Vocabulary> = OnceLock::new();
    V.get_or_init(|| {
        // Bundled and checked by the `vocabulary_parses` test: a failure here is a build bug.
        let w: Words = serde_norway::from_str(CORRECTION_WORDS_YAML).unwrap_or(Words {
            notes: Vec::new(),
            kinds: Default::default(),
        });
        let notes = w
            .notes
            .into_iter()
            .map(|n| Tiers {
                category: n.category,
                strong: crate::words::expressions(&n.strong),
                weak: crate::words::expressions(&n.weak),
            })
            .collect();
        Vocabulary {
            notes,
            kinds: w.kinds,
        }
    })
}

/// The category a note names: the category of its earliest strong word (the longer match at
/// the same place), else of its earliest weak word.
pub fn category_from_note(note: &str) -> Option<Category> {
    let earliest = |tier: fn(&Tiers) -> &[Regex]| {
        vocabulary()
            .notes
            .iter()
            .flat_map(|t| {
                tier(t)
                    .iter()
                    .filter_map(|r| r.find(note))
                    .map(|m| (m.start(), std::cmp::Reverse(m.len()), t.category))
            })
            .min_by_key(|(start, len, _)| (*start, *len))
            .map(|(_, _, c)| c)
    };
    earliest(|t| &t.strong).or_else(|| earliest(|t| &t.weak))
}

/// The category a kind usually carries faults of.
pub fn category_from_kind(kind: &str) -> Option<Category> {
    vocabulary().kinds.get(kind).copied()
}

/// `name` with the target's name and namespace written as placeholders.
pub fn name_template(name: &str, target: &ObjectRef) -> String {
    let mut out = name.replace(&target.name, "{target}");
    if let Some(ns) = target.namespace.as_deref().filter(|n| n.len() > 2) {
        out = out.replace(ns, "{namespace}");
    }
    out
}

/// A command with the names of its incident written as placeholders, longest first (a cause
/// named `checkout-config` is `{cause}`, not `{target}-config`).
pub fn command_template(cmd: &str, cause: &ObjectRef, target: &ObjectRef) -> String {
    let mut names = vec![
        (cause.name.as_str(), "{cause}"),
        (target.name.as_str(), "{target}"),
    ];
    if let Some(ns) = target.namespace.as_deref().filter(|n| n.len() > 2) {
        names.push((ns, "{namespace}"));
    }
    names.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let mut out = cmd.to_string();
    for (n, ph) in names {
        if !n.is_empty() {
            out = out.replace(n, ph);
        }
    }
    out
}

/// Fills a [`name_template`] for another target.
pub fn fill_template(template: &str, target: &ObjectRef) -> String {
    template
        .replace("{target}", &target.name)
        .replace("{namespace}", target.namespace.as_deref().unwrap_or(""))
}

/// What a correction means, or None when the feedback confirms the answer as given (or
/// refutes it without naming anything else). `known` gives the category of a reason the
/// analytical engine knows.
pub fn interpret(
    stored: &StoredDiagnosis,
    req: &FeedbackRequest,
    known: &dyn Fn(&str) -> Option<Category>,
) -> Option<Correction> {
    let d = &stored.diagnosis;
    let answered = d.root_cause.as_ref();
    let cause = req
        .cause
        .clone()
        .map(|mut c| {
            if c.namespace.is_none()
                && metakube_shared::KindInfo::lookup(&c.kind).is_none_or(|k| k.namespaced)
            {
                c.namespace = d.target.namespace.clone();
            }
            c
        })
        .or_else(|| answered.map(|r| r.object.clone()))
        .unwrap_or_else(|| d.target.clone());
    let same_object = answered.is_some_and(|r| r.object == cause);
    let same_reason = req
        .reason
        .as_ref()
        .is_none_or(|r| answered.is_some_and(|a| &a.reason == r));
    let note_category = req.note.as_deref().and_then(category_from_note);
    let trace = stored.trace.as_ref();
    let refuted = answered.map(|a| Refuted {
        reason: a.reason.clone(),
        kind: a.object.kind.clone(),
    });
    // A finding the engine verified on the corrected object (not the refuted answer).
    let finding = trace.and_then(|t| {
        t.findings.iter().find(|f| {
            f.object == cause
                && !(answered.is_some_and(|a| a.object == f.object && a.reason == f.reason))
        })
    });
    let (category, category_from) = match (req.category, req.reason.as_deref().and_then(known)) {
        (Some(c), _) => (c, "given"),
        (None, Some(c)) => (c, "known cause"),
        _ => match (note_category, finding) {
            (Some(c), _) => (c, "note"),
            (None, Some(f)) => (f.category, "finding"),
            (None, None) => match category_from_kind(&cause.kind) {
                Some(c) => (c, "kind"),
                None => (d.category.unwrap_or(Category::Configuration), "answer"),
            },
        },
    };
    let fixed = req.outcome == FeedbackOutcome::Fixed;
    let same_category = d.category == Some(category);
    // The answer stands: nothing to learn beyond the confirmation memory already makes.
    if same_object && same_reason && (fixed || same_category) {
        return None;
    }
    if !fixed && same_object && same_reason && req.category.is_none() && note_category.is_none() {
        // "Not fixed" with nothing else said refutes the answer but teaches no cause.
        return None;
    }
    let reason = match (&req.reason, finding) {
        (Some(r), _) => r.clone(),
        (None, Some(f)) if f.category == category => f.reason.clone(),
        (None, _) if same_object => answered.map(|a| a.reason.clone()).unwrap_or_default(),
        (None, _) => format!("{}{}Fault", cause.kind, capitalised(category.as_str())),
    };
    let is_known = known(&reason).is_some();
    let near = trace.and_then(|t| t.near.iter().find(|n| n.object == cause));
    let learned = LearnedCause {
        path: near.map(|n| n.path.clone()),
        name: name_template(&cause.name, &d.target),
        namespace: cause.namespace.as_ref().map(|ns| {
            if Some(ns) == d.target.namespace.as_ref() {
                "{namespace}".to_string()
            } else {
                ns.clone()
            }
        }),
        codes: near.map(|n| n.codes.clone()).unwrap_or_default(),
        refuted,
        known: is_known,
        fix_command: req
            .fix_command
            .as_deref()
            .map(|c| command_template(c, &cause, &d.target)),
        category_from: category_from.to_string(),
    };
    let message = format!(
        "learned {}: {reason} ({category}, category from {category_from}) on {} {}, {}{}",
        if is_known {
            "a known cause"
        } else {
            "a new cause"
        },
        cause.kind,
        cause.name,
        match &learned.path {
            Some(p) => format!("reached as {p}"),
            None => "not related to the target in the snapshot; found again by name".into(),
        },
        if learned.codes.is_empty() {
            String::new()
        } else {
            format!(", showing {}", learned.codes.join(", "))
        }
    );
    Some(Correction {
        cause,
        reason,
        category,
        learned,
        message,
    })
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_parses() {
        let w: Words = serde_norway::from_str(CORRECTION_WORDS_YAML).unwrap();
        assert_eq!(vocabulary().notes.len(), w.notes.len());
        for (n, t) in w.notes.iter().zip(&vocabulary().notes) {
            let res = n
                .strong
                .iter()
                .chain(&n.weak)
                .filter(|x| x.starts_with("re:"))
                .count();
            // Every `re:` entry compiled, plus one alternation per tier of plain words.
            let plain = usize::from(n.strong.iter().any(|x| !x.starts_with("re:")))
                + usize::from(n.weak.iter().any(|x| !x.starts_with("re:")));
            assert_eq!(
                t.strong.len() + t.weak.len(),
                res + plain,
                "{:?}",
                n.category
            );
        }
        assert!(!w.kinds.is_empty());
    }

    #[test]
    fn the_earliest_word_of_a_note_names_its_category() {
        let cases = [
            (
                "ResourceQuota q allows 10 pods, so the Service has no endpoints",
                Category::Resource,
            ),
            (
                "The kubelet on worker-1 stopped; pods there are unreachable",
                Category::System,
            ),
            (
                "emailservice's image tag v0.9 does not exist in the registry",
                Category::Image,
            ),
            (
                "currencyservice's nodeSelector matches only a tainted node",
                Category::Scheduling,
            ),
            (
                "PVC data requests 2Gi but the only PV offers 1Gi",
                Category::Storage,
            ),
            (
                "a NetworkPolicy denies egress to the database port",
                Category::Network,
            ),
            (
                "Deployment payments is scaled to 0 replicas, so callers get 503",
                Category::Configuration,
            ),
            (
                "loads its settings with envFrom secretRef db-creds, which is missing",
                Category::Configuration,
            ),
            // A strong word later in the note beats a weak one before it.
            (
                "the pod mounts ConfigMap app-config, which does not exist",
                Category::Configuration,
            ),
            (
                "the image allocates 180M while the container is OOMKilled",
                Category::Resource,
            ),
            (
                "frontend's CURRENCY_SERVICE_ADDR names port 7001, which is not exposed",
                Category::Configuration,
            ),
        ];
        for (note, want) in cases {
            assert_eq!(category_from_note(note), Some(want), "{note}");
        }
        assert_eq!(category_from_note("it was broken"), None);
    }

    #[test]
    fn names_follow_a_renamed_target() {
        let t = ObjectRef::new("Deployment", "shop", "checkout");
        let tpl = name_template("checkout-config", &t);
        assert_eq!(tpl, "{target}-config");
        let t2 = ObjectRef::new("Deployment", "shop-b", "pay");
        assert_eq!(fill_template(&tpl, &t2), "pay-config");
        assert_eq!(name_template("redis", &t), "redis");
        let cause = ObjectRef::new("ConfigMap", "shop", "checkout-config");
        let cmd = command_template(
            "kubectl -n shop edit configmap checkout-config # then restart checkout",
            &cause,
            &t,
        );
        assert_eq!(
            cmd,
            "kubectl -n {namespace} edit configmap {cause} # then restart {target}"
        );
    }
}
