//! The diagnosis result. Its JSON form is a public contract, documented in `docs/output.md`:
//! fields are only ever added, never renamed or removed, within protocol major version 1.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::object::ObjectRef;
use crate::snapshot::Gap;

/// Fault category. `storage` and `application` are finer splits of the MetaKube paper's
/// `system` category (see docs/output.md for the mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Memory/CPU limits, quotas, LimitRanges, evictions, autoscaling ceilings.
    Resource,
    /// Services, endpoints, DNS, ports, NetworkPolicies, Ingress backends.
    Network,
    /// The scheduler cannot place a pod (resources, taints, affinity, volumes).
    Scheduling,
    /// Image pull failures: missing image or tag, registry auth, bad names.
    Image,
    /// Wrong or missing configuration: ConfigMaps, Secrets, commands, probes, RBAC.
    Configuration,
    /// Volumes, claims, provisioning, full or read-only disks.
    Storage,
    /// Nodes, kubelet, container runtime, cluster add-ons such as CoreDNS.
    System,
    /// A bug in the application or bad data from an upstream, while infrastructure is healthy.
    Application,
}

impl Category {
    /// Every category, in documentation order.
    pub const ALL: [Category; 8] = [
        Category::Resource,
        Category::Network,
        Category::Scheduling,
        Category::Image,
        Category::Configuration,
        Category::Storage,
        Category::System,
        Category::Application,
    ];

    /// The lower-case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Resource => "resource",
            Category::Network => "network",
            Category::Scheduling => "scheduling",
            Category::Image => "image",
            Category::Configuration => "configuration",
            Category::Storage => "storage",
            Category::System => "system",
            Category::Application => "application",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which pathway of the meta-cognitive controller produced the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pathway {
    /// Signals → graph traversal → ranked hypotheses (and the LLM for the explanation).
    Analytical,
    /// Recalled from episodic memory and re-verified against the snapshot.
    Intuitive,
}

/// What the answer amounts to, so a reader (or a script) never mistakes "could not tell" for
/// "healthy".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A verified root cause was found (`root_cause` is set).
    RootCause,
    /// Something is broken (`symptoms` says what), but no cause could be verified.
    SymptomsOnly,
    /// Every input was read and nothing is wrong with the target or around it.
    Healthy,
    /// Nothing was found, but input the answer depends on could not be read (`gaps` says
    /// which): the target may still be broken.
    #[default]
    Inconclusive,
}

impl Verdict {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::RootCause => "root_cause",
            Verdict::SymptomsOnly => "symptoms_only",
            Verdict::Healthy => "healthy",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a piece of evidence was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceSource {
    /// An object's `status`.
    Status,
    /// An object's `spec` (or ConfigMap data).
    Spec,
    /// A Kubernetes Event.
    Event,
    /// A container log line.
    Log,
    /// A relation found in the KubeGraph (selector matching, ownership, references).
    Graph,
    /// Episodic memory.
    Memory,
}

/// One checkable fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Where it was read.
    pub source: EvidenceSource,
    /// The object it is about.
    pub object: ObjectRef,
    /// The fact, in words, quoting the API or log text.
    pub detail: String,
    /// Exact pointer: a field path (`status.containerStatuses[0].lastState.terminated.reason`),
    /// an event reason, or a log line number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

/// A symptom found in the snapshot, normalised (names kept for people; memory masks them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Symptom {
    /// The object showing it.
    pub object: ObjectRef,
    /// A stable code (`OOMKilled`, `CrashLoopBackOff`, `FailedScheduling`, `ProbeFailed`, …).
    pub reason: String,
    /// What was seen.
    pub detail: String,
    /// The category this symptom points at on its own, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_hint: Option<Category>,
}

/// The object that is actually broken, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCause {
    /// The broken object (often not the one asked about).
    pub object: ObjectRef,
    /// Reason code (`SelectorMatchesNoPods`, `MemoryLimitTooLow`, …).
    pub reason: String,
    /// One sentence a person can act on.
    pub summary: String,
}

/// One candidate explanation, ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    /// Where the fault would live.
    pub object: ObjectRef,
    /// Reason code.
    pub reason: String,
    /// Category of the fault.
    pub category: Category,
    /// Score in 0–1; hypotheses are sorted by it, highest first.
    pub score: f64,
    /// Why it ranks where it does (for runners-up: why it lost).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The evidence behind this hypothesis, with exact pointers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

/// How risky a fix is to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Changes nothing running, or only metadata.
    Low,
    /// Restarts pods (rolls a workload) or changes routing.
    Medium,
    /// Could lose data or availability; needs a person's judgement.
    High,
}

/// One fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remediation {
    /// What it does, in words.
    pub summary: String,
    /// Risk of applying it.
    pub risk: Risk,
    /// A ready `kubectl` command line (`kubectl -n ns patch deployment x --type merge -p '…'`),
    /// or absent when the fix is a manual action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The patch itself, when the fix is a patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Patch>,
}

/// A patch against one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patch {
    /// The object to patch.
    pub object: ObjectRef,
    /// `merge`, `strategic` or `json`, as `kubectl patch --type` takes it.
    #[serde(rename = "type")]
    pub patch_type: String,
    /// The patch body.
    pub body: serde_json::Value,
    /// Whether it was validated (deserializes into the k8s-openapi type; re-diagnosis no
    /// longer reports the cause).
    #[serde(default)]
    pub validated: bool,
}

/// How long each stage took, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Total time in the daemon.
    pub total: f64,
    /// Per stage (`signals`, `graph`, `rank`, …).
    #[serde(default, flatten)]
    pub stages: std::collections::BTreeMap<String, f64>,
}

/// The answer to `diagnose`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Unique id; pass it to `kubectl metakube feedback`.
    pub id: String,
    /// The object asked about.
    pub target: ObjectRef,
    /// What the answer amounts to: `root_cause`, `symptoms_only`, `healthy` or
    /// `inconclusive` (added in protocol 1.2; older daemons omit it).
    #[serde(default)]
    pub verdict: Verdict,
    /// Fault category of the root cause; absent when no cause was inferred.
    pub category: Option<Category>,
    /// The root cause; absent when the evidence does not support one (then `symptoms` says
    /// what was seen).
    pub root_cause: Option<RootCause>,
    /// Ranked hypotheses, best first.
    #[serde(default)]
    pub hypotheses: Vec<Hypothesis>,
    /// Confidence in the root cause, 0–1.
    pub confidence: f64,
    /// Which pathway answered.
    pub pathway: Pathway,
    /// Evidence for the root cause, in the order a person should check it.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// Fixes, best first.
    #[serde(default)]
    pub remediation: Vec<Remediation>,
    /// A short explanation in words (written by the LLM from the evidence when enabled).
    #[serde(default)]
    pub explanation: String,
    /// Symptoms found, whether or not a cause was inferred.
    #[serde(default)]
    pub symptoms: Vec<Symptom>,
    /// What could not be collected, so a person knows what the answer did not see.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
    /// Time spent per stage.
    pub timings_ms: Timings,
    /// What episodic memory recalled and why the controller chose the pathway it did; absent
    /// when memory was off for this request or not loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryReport>,
    /// The model-written explanation, when one was streamed (the plugin fills it in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<crate::protocol::Explanation>,
    /// Changes near the target and the root cause from 30 minutes before the first failure:
    /// rollout revisions (any snapshot) and, for a live cluster diagnosed before, what the
    /// daemon's history saw change since; oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<crate::change::Change>,
}

/// The meta-cognitive controller's account of one decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// The threshold θ in force: confidence at or above it takes the intuitive pathway.
    pub theta: f64,
    /// Confidence of the best recalled episode whose cause verified here (0 when none).
    pub confidence: f64,
    /// Why this pathway, in words.
    pub why: String,
    /// The recalled cause's pattern: confirmed incidents of this fault family.
    pub seen: u32,
    /// Of those, how many the fix was confirmed to work for.
    pub worked: u32,
    /// The most similar episodes, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub similar: Vec<SimilarEpisode>,
}

/// One recalled episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarEpisode {
    /// Episode id (`kubectl metakube memory show ID`).
    pub episode: u64,
    /// The cause it confirmed.
    pub reason: String,
    /// Kind of the object the cause lived in.
    pub cause_kind: String,
    /// Cosine similarity of the symptom signatures.
    pub similarity: f64,
    /// Retrieval score λ·similarity + (1−λ)·recency.
    pub score: f64,
    /// Whether its cause verified in this snapshot.
    pub verified: bool,
}

impl Diagnosis {
    /// Whether a problem was found (a cause, or at least a symptom).
    pub fn found_problem(&self) -> bool {
        self.root_cause.is_some() || !self.symptoms.is_empty()
    }
}
