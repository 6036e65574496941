//! Watch mode's output: an incident is one fault (or one anomaly) as it was detected, grouped and
//! diagnosed while watching a cluster. Its JSON form (one line per change under `watch -o json`)
//! is a public contract like the diagnosis it carries (`docs/output.md`): fields are only added.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::diagnosis::Diagnosis;
use crate::object::ObjectRef;

/// What opened an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// State says something is broken (a waiting reason, a failed condition, a warning event),
    /// and the diagnosis names why.
    Fault,
    /// No state symptom, but a series (restarts, event rates, pending time, Prometheus metrics)
    /// left its usual range.
    Anomaly,
}

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// At least one affected object still shows a symptom.
    Open,
    /// Every affected object has stopped showing symptoms.
    Resolved,
}

/// Why a line about an incident was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentChange {
    /// A new incident.
    Opened,
    /// Its diagnosis, affected objects or actions changed.
    Updated,
    /// Every affected object recovered.
    Resolved,
    /// A resolved incident's fault came back.
    Reopened,
    /// Automatic remediation did not clear it: a person must look.
    Escalated,
}

/// A state symptom that made watch mode look at an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// The object that shows it (a Pod, Node, Deployment, the object an Event is about).
    pub object: ObjectRef,
    /// The reason as Kubernetes spells it (`CrashLoopBackOff`, `Unschedulable`, `NodeNotReady`).
    pub reason: String,
    /// Since when, where the object says (a condition's transition, an event's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

/// How fast the incident was found: from the first symptom among its affected objects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Watch events received after the first one that showed a symptom, until the incident
    /// opened.
    pub events: u64,
    /// Seconds between that event and the opening, on the stream's clock.
    pub seconds: f64,
    /// How many watch events had been received when it opened (to compare with where a fault
    /// began in a recorded stream).
    #[serde(default)]
    pub at_event: u64,
}

/// An anomaly's evidence: the series that left its range and how unusual it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyReport {
    /// Half-Space Trees mass score of the latest window (lower is more unusual).
    pub score: f64,
    /// The score below which a window counts as anomalous.
    pub threshold: f64,
    /// The series of the anomalous window, by name (`restarts`, `warning_events`,
    /// `not_ready_pods`, `pending_pods`, `cpu_cores`, `memory_bytes`).
    pub series: std::collections::BTreeMap<String, f64>,
    /// Length of the window, seconds.
    pub window_s: f64,
}

/// What guarded remediation did about an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// The typed action (`patch_resources`, `scale`, `rollout_restart`, `rollout_undo`,
    /// `delete_pod`), or `none` when nothing was allowed.
    pub action: String,
    /// The object acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// `suggested`, `applied`, `dry_run_failed`, `failed`, `refused`, `verified`,
    /// `not_verified`, `rolled_back`.
    pub result: String,
    /// Why (the guard that refused, the API server's error, the deadline missed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// When, on the stream's clock.
    pub at: Timestamp,
}

/// One incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Its id within the watch (`inc-3`).
    pub incident: String,
    /// Fault or anomaly.
    pub kind: IncidentKind,
    /// Open or resolved.
    pub status: IncidentStatus,
    /// The first symptom of any affected object.
    pub first_seen: Timestamp,
    /// The latest time a symptom was seen.
    pub last_seen: Timestamp,
    /// Every object that showed the fault's symptoms (the cascade of one broken Service is one
    /// incident with each failing caller here).
    pub affected: Vec<ObjectRef>,
    /// The state symptoms seen on the affected objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    /// How fast it was found.
    #[serde(default)]
    pub detection: Detection,
    /// For an anomaly: the series and score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<AnomalyReport>,
    /// What guarded remediation did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionRecord>,
    /// The diagnosis of the first affected object (the usual contract: root cause, category,
    /// evidence, fix). Its `changes` hold the changes near the incident: those the daemon found
    /// (rollout revisions) and those the watch saw to its objects and their neighbours (the
    /// workload, the root cause, Services selecting it, ConfigMaps it reads, nodes) from 30
    /// minutes before its first symptom on ("image changed 4 min before the first failure").
    #[serde(flatten)]
    pub diagnosis: Diagnosis,
}

/// One line of `watch -o json`: an incident and why it is printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentUpdate {
    /// Why this line was written.
    pub change: IncidentChange,
    /// The incident as it stands after the change.
    #[serde(flatten)]
    pub incident: Incident,
}
