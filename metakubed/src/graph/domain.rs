//! The domain graph: symptom → cause → fix knowledge, seeded from `knowledge/domain.yaml`.
//!
//! Edge weights (symptom → cause) start at the seeded priors; confirmed diagnoses adjust them
//! (memory-biased traversal) and the store persists them.

use std::collections::BTreeMap;

use metakube_shared::Category;
use serde::{Deserialize, Serialize};

use crate::signals::rules::{SymptomRules, SYMPTOM_RULES_YAML};
use crate::signals::KnowledgeError;

/// Prior weight of a symptom → cause edge that comes from a template.
pub const TEMPLATE_WEIGHT: f64 = 0.8;

/// The shipped domain knowledge.
pub const DOMAIN_YAML: &str = include_str!("../../knowledge/domain.yaml");

/// Where a cause lives, relative to the symptom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum At {
    /// The top of the owner chain (Deployment, StatefulSet, DaemonSet, Job, CronJob, bare Pod).
    Workload,
    /// The pod itself.
    Pod,
    /// A Service.
    Service,
    /// A Node.
    Node,
    /// A PersistentVolumeClaim.
    Pvc,
    /// A StorageClass.
    Storageclass,
    /// A ResourceQuota.
    Quota,
    /// A LimitRange.
    Limitrange,
    /// A NetworkPolicy.
    Networkpolicy,
    /// A ConfigMap.
    Configmap,
    /// A Secret.
    Secret,
    /// A ServiceAccount.
    Serviceaccount,
    /// An Ingress.
    Ingress,
    /// An HPA.
    Hpa,
    /// The workload behind a Service the symptom's pod calls.
    Upstream,
    /// The cluster DNS (CoreDNS) Deployment.
    Dns,
    /// The object showing the symptom.
    #[serde(rename = "self")]
    Itself,
    /// A PersistentVolume.
    Pv,
    /// The namespace.
    Namespace,
}

/// One cause in the domain graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    /// Reason code.
    pub reason: String,
    /// Fault category.
    pub category: Category,
    /// Where the fault lives.
    pub at: At,
    /// The Kubernetes behaviour the rule encodes.
    pub behaviour: String,
    /// Symptom code → prior weight.
    pub symptoms: BTreeMap<String, f64>,
    /// Fix kind (see `remediation`).
    pub fix: String,
    /// For a cause that comes from a symptom template (`knowledge/symptom_rules.yaml`): the
    /// file of kubernetes/kubernetes it was read from. Such causes are verified by locating
    /// `at` from the symptom's object, since no hand-written check knows them.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The fix in words, for causes from templates.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fix_text: String,
}

#[derive(Debug, Deserialize)]
struct DomainFile {
    causes: Vec<Cause>,
}

/// The domain graph.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainGraph {
    causes: Vec<Cause>,
    /// (symptom, reason) → weight, starting at the priors.
    weights: BTreeMap<(String, String), f64>,
}

/// Bounds memory may move an edge weight within.
pub const WEIGHT_BOUNDS: (f64, f64) = (0.05, 1.0);

impl DomainGraph {
    /// Parses domain knowledge.
    pub fn from_yaml(yaml: &str) -> Result<DomainGraph, KnowledgeError> {
        let f: DomainFile =
            serde_norway::from_str(yaml).map_err(|source| KnowledgeError::Yaml {
                file: "domain.yaml",
                source,
            })?;
        let mut weights = BTreeMap::new();
        for c in &f.causes {
            for (s, w) in &c.symptoms {
                weights.insert((s.clone(), c.reason.clone()), *w);
            }
        }
        Ok(DomainGraph {
            causes: f.causes,
            weights,
        })
    }

    /// Builds the graph from causes (as loaded from the store).
    pub fn from_causes(causes: Vec<Cause>) -> DomainGraph {
        let mut weights = BTreeMap::new();
        for c in &causes {
            for (s, w) in &c.symptoms {
                weights.insert((s.clone(), c.reason.clone()), *w);
            }
        }
        DomainGraph { causes, weights }
    }

    /// Adds the causes of symptom templates: a template whose cause the YAML already has adds
    /// an edge to it; a new cause becomes a template cause (located by `at`, see
    /// [`Cause::source`]).
    pub fn with_rules(mut self, rules: &SymptomRules) -> DomainGraph {
        for r in rules.specs() {
            let key = (r.symptom.clone(), r.cause.clone());
            // A template naming a hand-written cause adds no edge: the edge would send every
            // signal of that code (from any stage) to the cause meant for one message. Its own
            // signals still reach the cause (the search asks the template).
            if self.causes.iter().any(|c| c.reason == r.cause) {
                if let Some(c) = self
                    .causes
                    .iter_mut()
                    .find(|c| c.reason == r.cause && !c.source.is_empty())
                {
                    c.symptoms.insert(r.symptom.clone(), TEMPLATE_WEIGHT);
                    self.weights.insert(key, TEMPLATE_WEIGHT);
                }
                continue;
            }
            let at = serde_json::from_value(serde_json::Value::String(r.at.clone()))
                .unwrap_or(At::Itself);
            self.causes.push(Cause {
                reason: r.cause.clone(),
                category: r.category,
                at,
                behaviour: r.meaning.clone(),
                symptoms: [(r.symptom.clone(), TEMPLATE_WEIGHT)].into(),
                fix: "template".into(),
                source: r.source.clone(),
                fix_text: r.fix.clone(),
            });
            self.weights.insert(key, TEMPLATE_WEIGHT);
        }
        self
    }

    /// A stable fingerprint of the shipped knowledge (FNV-1a of the YAML files), so the store
    /// can tell when a new version ships other causes.
    pub fn seed_fingerprint() -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in DOMAIN_YAML.bytes().chain(SYMPTOM_RULES_YAML.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// The shipped knowledge.
    pub fn builtin() -> DomainGraph {
        // Tested at build time; a failure is a defect in the shipped file, not bad input.
        DomainGraph::from_yaml(DOMAIN_YAML)
            .expect("shipped domain.yaml is valid")
            .with_rules(&SymptomRules::builtin())
    }

    /// Candidate causes of a symptom, with the edge weight.
    pub fn causes_for<'a>(
        &'a self,
        symptom: &'a str,
    ) -> impl Iterator<Item = (&'a Cause, f64)> + 'a {
        self.causes.iter().filter_map(move |c| {
            self.weights
                .get(&(symptom.to_string(), c.reason.clone()))
                .map(|w| (c, *w))
        })
    }

    /// A cause by reason code.
    pub fn cause(&self, reason: &str) -> Option<&Cause> {
        self.causes.iter().find(|c| c.reason == reason)
    }

    /// All causes.
    pub fn causes(&self) -> &[Cause] {
        &self.causes
    }

    /// Current edge weights.
    pub fn weights(&self) -> &BTreeMap<(String, String), f64> {
        &self.weights
    }

    /// Replaces edge weights (loaded from the store); unknown edges are ignored.
    pub fn set_weights(&mut self, w: impl IntoIterator<Item = ((String, String), f64)>) {
        for (k, v) in w {
            if let Some(slot) = self.weights.get_mut(&k) {
                *slot = v.clamp(WEIGHT_BOUNDS.0, WEIGHT_BOUNDS.1);
            }
        }
    }

    /// Moves an edge weight by `delta` within [`WEIGHT_BOUNDS`]; returns the new weight.
    pub fn adjust(&mut self, symptom: &str, reason: &str, delta: f64) -> Option<f64> {
        let w = self
            .weights
            .get_mut(&(symptom.to_string(), reason.to_string()))?;
        *w = (*w + delta).clamp(WEIGHT_BOUNDS.0, WEIGHT_BOUNDS.1);
        Some(*w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_domain_graph_is_complete() {
        let d = DomainGraph::builtin();
        assert!(d.causes().len() >= 40);
        for cat in Category::ALL {
            assert!(
                d.causes().iter().filter(|c| c.category == cat).count() >= 3,
                "{cat}"
            );
        }
        for c in d.causes() {
            assert!(
                !c.behaviour.is_empty() && !c.symptoms.is_empty(),
                "{}",
                c.reason
            );
        }
        let oom: Vec<_> = d
            .causes_for("oom_killed_at_start")
            .map(|(c, _)| c.reason.as_str())
            .collect();
        assert_eq!(oom, vec!["MemoryLimitTooLow"]);
    }

    #[test]
    fn weights_move_within_bounds() {
        let mut d = DomainGraph::builtin();
        assert_eq!(
            d.adjust("oom_killed_at_start", "MemoryLimitTooLow", 1.0),
            Some(1.0)
        );
        assert_eq!(
            d.adjust("oom_killed_at_start", "MemoryLimitTooLow", -5.0),
            Some(WEIGHT_BOUNDS.0)
        );
        assert_eq!(d.adjust("nope", "MemoryLimitTooLow", 0.1), None);
    }
}
