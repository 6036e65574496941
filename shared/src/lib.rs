//! Types shared by the `kubectl-metakube` plugin and the `metakubed` daemon.
//!
//! This crate holds the wire protocol (version 1), the snapshot model that the plugin collects
//! and the daemon diagnoses, object references with kubectl's short names, and the diagnosis
//! result whose JSON form is the public contract documented in `docs/output.md`.
//!
//! It does no I/O and links no runtime, model, index or database: it is what both sides must
//! agree on, and nothing more (like kube-rs's `kube-core`).

pub mod change;
pub mod diagnosis;
pub mod incident;
pub mod object;
pub mod paths;
pub mod protocol;
pub mod snapshot;

pub use change::{field_changes, Change, FieldChange, TRACKED};
pub use diagnosis::{
    Category, Diagnosis, Evidence, EvidenceSource, Hypothesis, MemoryReport, Patch, Pathway,
    Remediation, Risk, RootCause, SimilarEpisode, Symptom, Timings, Verdict,
};
pub use incident::{
    ActionRecord, AnomalyReport, Detection, Incident, IncidentChange, IncidentKind, IncidentStatus,
    IncidentUpdate, Trigger,
};
pub use object::{KindError, KindInfo, ObjectRef, TargetRef, KINDS};
pub use protocol::{
    ChangesRequest, ChangesResponse, ComponentState, ComponentStatus, DiagnoseOptions,
    DiagnoseRequest, ErrorBody, ErrorCode, Explanation, FeedbackOutcome, FeedbackRequest,
    FeedbackResponse, Health, JudgedSentence, ProtocolVersion, Stats, StreamEvent, NDJSON,
    PROTOCOL, PROTOCOL_HEADER,
};
pub use snapshot::{
    strip_secret_values, CollectionMeta, ContainerLog, Gap, KubeObject, Snapshot, SnapshotError,
    SnapshotSource,
};
