//! Protocol v1 between the plugin and the daemon: HTTP/1.1 over a Unix socket, JSON bodies.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | GET  | `/v1/health`   | — | [`Health`] |
//! | POST | `/v1/diagnose` | [`DiagnoseRequest`] | [`crate::Diagnosis`] |
//! | POST | `/v1/feedback` | [`FeedbackRequest`] | [`FeedbackResponse`] |
//! | GET  | `/v1/stats`    | — | [`Stats`] |
//! | GET  | `/v1/memory/stats` | — | episode, pattern and θ statistics (JSON) |
//! | GET  | `/v1/memory/episodes?limit=N` | — | episodes, newest first (JSON array) |
//! | GET / DELETE | `/v1/memory/episodes/{id}` | — | one episode / forget it |
//! | GET  | `/v1/memory/export?unmasked=true` | — | KFRD records, JSON Lines |
//! | POST | `/v1/memory/import` | episodes, JSON Lines | `{"imported": N}` |
//! | GET  | `/metrics`     | — | Prometheus text format |
//!
//! `POST /v1/diagnose` with `Accept: application/x-ndjson` (protocol 1.1) answers a stream of
//! [`StreamEvent`]s, one JSON object a line: the diagnosis at once, then the explanation as the
//! model writes it, then the checked explanation.
//!
//! Every request carries the [`PROTOCOL_HEADER`] header with the client's `major.minor`; the
//! daemon refuses another major version with [`ErrorCode::ProtocolMismatch`]. Errors are an
//! [`ErrorBody`] with a non-2xx status.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::object::ObjectRef;
use crate::snapshot::Snapshot;

/// The header carrying the client's protocol version.
pub const PROTOCOL_HEADER: &str = "x-metakube-protocol";

/// The protocol version this build speaks.
pub const PROTOCOL: ProtocolVersion = ProtocolVersion { major: 1, minor: 6 };

/// Media type of the streamed diagnose answer.
pub const NDJSON: &str = "application/x-ndjson";

/// One line of a streamed diagnose answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The structured answer; always first, never waits for the model.
    Diagnosis {
        /// The diagnosis.
        diagnosis: Box<crate::Diagnosis>,
    },
    /// A piece of explanation text as the model writes it (unchecked).
    Token {
        /// The text.
        text: String,
    },
    /// The explanation after the grounding check; always last.
    Explanation {
        /// The explanation.
        explanation: Explanation,
    },
}

/// The model-written explanation, after the grounding check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The checked text (empty when the model was unavailable or every sentence failed).
    pub text: String,
    /// Which model wrote it (`candle:SmolLM2-135M-Instruct.Q4_1.gguf (llama, cpu)`).
    pub backend: String,
    /// Sentences removed because they stated names or values the snapshot does not hold, or
    /// something the facts do not say (each with why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Every sentence the model wrote, in order, with the judge's verdict (protocol 1.6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sentences: Vec<JudgedSentence>,
    /// The facts the model was given, one a line: what each sentence was judged against
    /// (protocol 1.6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<String>,
    /// Why there is no explanation, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: usize,
    /// Generated tokens.
    #[serde(default)]
    pub tokens: usize,
    /// Time to the first token, ms.
    #[serde(default)]
    pub first_token_ms: f64,
    /// Decode speed, tokens/s.
    #[serde(default)]
    pub tokens_per_s: f64,
}

/// One sentence of a model's explanation and whether it was shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgedSentence {
    /// The sentence as written.
    pub text: String,
    /// Whether it passed the check and was shown.
    pub shown: bool,
    /// Why it was not (empty when shown): each claim the facts and snapshot do not support.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<String>,
}

/// A protocol version: the major must match, minors are backwards compatible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ProtocolVersion {
    /// Incompatible changes bump this.
    pub major: u32,
    /// Additive changes bump this.
    pub minor: u32,
}

impl ProtocolVersion {
    /// Whether a peer speaking `other` can talk to us.
    pub fn compatible_with(self, other: ProtocolVersion) -> bool {
        self.major == other.major
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ProtocolVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (major, minor) = s.trim().split_once('.').unwrap_or((s.trim(), "0"));
        let parse = |p: &str| {
            p.parse::<u32>()
                .map_err(|_| format!("protocol version {s:?} is not MAJOR.MINOR"))
        };
        Ok(ProtocolVersion {
            major: parse(major)?,
            minor: parse(minor)?,
        })
    }
}

impl From<ProtocolVersion> for String {
    fn from(v: ProtocolVersion) -> String {
        v.to_string()
    }
}

impl TryFrom<String> for ProtocolVersion {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Options of one diagnose request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiagnoseOptions {
    /// Skip the LLM explanation (the structured answer never waits for it anyway).
    #[serde(default)]
    pub no_llm: bool,
    /// Ask for the model's explanation (`--explain`): `Some(true)` asks, `Some(false)` declines,
    /// absent leaves it to the daemon's `[llm] default` (off unless a model was evaluated as
    /// faithful and the operator turned it on). `no_llm` always wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<bool>,
    /// Skip episodic memory: always take the analytical pathway.
    #[serde(default)]
    pub no_memory: bool,
}

/// `POST /v1/diagnose`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnoseRequest {
    /// What was collected.
    pub snapshot: Snapshot,
    /// Request options.
    #[serde(default)]
    pub options: DiagnoseOptions,
}

/// `POST /v1/changes`: what changed near a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangesRequest {
    /// What was collected for the target (the same selection a diagnosis makes).
    pub snapshot: Snapshot,
    /// How far back, in seconds [default: the last hour, and at least from 30 minutes before
    /// the first failure near the target].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_s: Option<u64>,
}

/// The answer to [`ChangesRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangesResponse {
    /// The object asked about.
    pub target: ObjectRef,
    /// The cluster whose history was read (`None` for a dump: only rollout revisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// When the daemon started keeping this cluster's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracked_since: Option<jiff::Timestamp>,
    /// The earliest failure seen near the target (a warning event, a pod not Ready), which
    /// `before_first_symptom_s` counts from; absent when nothing near it is failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<jiff::Timestamp>,
    /// The start of the window.
    pub since: jiff::Timestamp,
    /// The objects whose changes were looked for.
    pub near: Vec<ObjectRef>,
    /// Changes in the window, oldest first.
    pub changes: Vec<crate::change::Change>,
    /// Objects of the snapshot compared with the history, and of those how many had the same
    /// resourceVersion as last time (not looked at again).
    pub compared: usize,
    /// See `compared`.
    pub unchanged: usize,
}

/// Whether a diagnosis was right, as the user found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackOutcome {
    /// The cause was right and the fix worked.
    Fixed,
    /// The cause or the fix was wrong.
    NotFixed,
}

/// `POST /v1/feedback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRequest {
    /// The `id` of the diagnosis.
    pub diagnosis_id: String,
    /// What happened.
    pub outcome: FeedbackOutcome,
    /// The real cause, when the user knows it was another object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<ObjectRef>,
    /// The real reason code, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Free text: what the fault was and how it was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The real category, when the answer's was wrong (read from the note or the cause's
    /// kind when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<crate::Category>,
    /// The command that resolved it, remembered with the learned cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_command: Option<String>,
    /// Replace the feedback already given for this diagnosis (one outcome per diagnosis: a
    /// different one without this is refused with `conflict`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace: bool,
}

/// Answer to `POST /v1/feedback`: written durably before it is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackResponse {
    /// The diagnosis the feedback was recorded for.
    pub diagnosis_id: String,
    /// Whether it was stored (always true in a 2xx answer).
    pub recorded: bool,
    /// The episode episodic memory made of it, when it confirmed a cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<u64>,
    /// What a correction taught, in one line (the cause, its category, how it is found again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned: Option<String>,
    /// The same feedback was already recorded for this diagnosis: nothing changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
}

/// State of one warm component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    /// Being loaded in the background.
    Loading,
    /// Loaded and in use.
    Ready,
    /// Turned off by configuration.
    Disabled,
    /// Failed to load; `detail` says why. Diagnosis goes on without it.
    Failed,
}

/// One warm component in [`Health`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentStatus {
    /// `store`, `domain_graph`, `embedder`, `episode_index`, `llm`.
    pub name: String,
    /// Its state.
    pub state: ComponentState,
    /// What is loaded, or why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Daemon version.
    pub version: String,
    /// Protocol the daemon speaks.
    pub protocol: ProtocolVersion,
    /// Seconds since start.
    pub uptime_s: f64,
    /// Process id.
    pub pid: u32,
    /// Warm components.
    pub components: Vec<ComponentStatus>,
}

/// `GET /v1/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Diagnoses answered since start.
    pub diagnoses: u64,
    /// Diagnoses answered from memory since start.
    pub intuitive: u64,
    /// Requests refused (bad input, protocol mismatch, too large).
    pub rejected: u64,
    /// Feedback records stored in total.
    pub feedback_total: u64,
    /// Diagnoses stored in total.
    pub diagnoses_stored: u64,
    /// Median diagnose latency since start, ms.
    pub latency_p50_ms: f64,
    /// 99th percentile diagnose latency since start, ms.
    pub latency_p99_ms: f64,
}

/// Machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON for the endpoint.
    BadRequest,
    /// The client speaks another major protocol version.
    ProtocolMismatch,
    /// The body exceeds the daemon's limit.
    TooLarge,
    /// No such endpoint.
    NotFound,
    /// Wrong method for the endpoint.
    MethodNotAllowed,
    /// The referenced diagnosis is unknown.
    UnknownDiagnosis,
    /// The snapshot is well-formed JSON but cannot be diagnosed.
    InvalidSnapshot,
    /// The daemon failed; the message says where.
    Internal,
    /// The daemon is shutting down, or what the request needs (the store) is not open.
    Unavailable,
    /// The request contradicts what is recorded (other feedback for the same diagnosis).
    Conflict,
}

/// Body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What was wrong, naming the field, object or limit.
    pub message: String,
    /// The protocol versions the daemon speaks (set on `protocol_mismatch`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_protocols: Vec<ProtocolVersion>,
}

impl ErrorBody {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            code,
            message: message.into(),
            server_protocols: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        let v: ProtocolVersion = "1.4".parse().unwrap();
        assert!(PROTOCOL.compatible_with(v));
        assert!(!PROTOCOL.compatible_with("2.0".parse().unwrap()));
        assert_eq!(
            "1".parse::<ProtocolVersion>().unwrap(),
            ProtocolVersion { major: 1, minor: 0 }
        );
        assert!("x.y".parse::<ProtocolVersion>().is_err());
        assert_eq!(serde_json::to_string(&PROTOCOL).unwrap(), "\"1.6\"");
        // 1.1 added the NDJSON stream, 1.2 the verdict, 1.3 a correction's category and fix
        // command, 1.4 the `explain` option, 1.5 `changes` (the field and `/v1/changes`), 1.6
        // the explanation's judged `sentences` and `facts`: a 1.0
        // peer still talks to it.
        assert!(PROTOCOL.compatible_with("1.0".parse().unwrap()));
    }
}
