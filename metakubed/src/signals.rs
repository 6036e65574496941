//! Stage 2: signals. Normalised symptoms read from pod and container status, events, probe
//! failures, logs, node conditions and the state of Services, claims and controllers.
//!
//! Each signal carries a stable symptom code (the keys of the domain graph's `symptoms`), the
//! object showing it, and the exact evidence (field path, event reason and message, log line).
//! Nothing here infers a cause: that is the graph stage's job.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Event, Pod};
use metakube_shared::{Category, Evidence, EvidenceSource, ObjectRef, Symptom};
use regex::Regex;
use serde::Deserialize;

use crate::snapshot::{Cluster, Obj};

pub mod rules;
mod workloads;

use rules::SymptomRules;

/// One normalised symptom.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// Symptom code (`oom_killed_at_start`, `log_connection_refused`, …).
    pub code: String,
    /// The object showing it.
    pub object: ObjectRef,
    /// Container, for container-level symptoms.
    pub container: Option<String>,
    /// What was seen, in words.
    pub detail: String,
    /// Where it was read.
    pub evidence: Evidence,
    /// A host or object the symptom names (a peer in a log line, a missing ConfigMap, a
    /// taint, a node).
    pub peer: Option<String>,
    /// The port the symptom names with its peer (`redis-cart:6380`, `dial tcp IP:7001`).
    pub port: Option<i32>,
    /// A numeric payload (seconds of uptime before an OOM kill, exit code, seconds of a call).
    pub value: Option<f64>,
    /// How clearly the evidence shows the symptom, 0–1.
    pub strength: f64,
    /// The category the symptom points at on its own.
    pub hint: Option<Category>,
    /// How many times it was seen (event count, matching log lines).
    pub count: u32,
    /// The symptom template that produced it, when it came from `symptom_rules.yaml`.
    pub rule: Option<RuleHit>,
}

/// Which template produced a signal, and what the template says about the cause.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleHit {
    /// Template id.
    pub id: String,
    /// The cause code it names.
    pub cause: String,
    /// Where that cause lives.
    pub at: crate::graph::domain::At,
    /// Its category.
    pub category: Category,
}

impl Signal {
    pub(crate) fn new(
        code: &str,
        object: &ObjectRef,
        source: EvidenceSource,
        detail: String,
        pointer: Option<String>,
    ) -> Signal {
        Signal {
            code: code.to_string(),
            object: object.clone(),
            container: None,
            evidence: Evidence {
                source,
                object: object.clone(),
                detail: detail.clone(),
                pointer,
            },
            detail,
            peer: None,
            port: None,
            value: None,
            strength: 1.0,
            hint: None,
            count: 1,
            rule: None,
        }
    }

    fn container(mut self, c: &str) -> Signal {
        self.container = Some(c.to_string());
        self
    }

    fn peer(mut self, p: impl Into<String>) -> Signal {
        self.peer = Some(p.into());
        self
    }

    fn value(mut self, v: f64) -> Signal {
        self.value = Some(v);
        self
    }

    fn hint(mut self, c: Category) -> Signal {
        self.hint = Some(c);
        self
    }

    /// The public form of this signal.
    pub fn to_symptom(&self) -> Symptom {
        Symptom {
            object: self.object.clone(),
            reason: self.code.clone(),
            detail: self.detail.clone(),
            category_hint: self.hint,
        }
    }
}

/// A log line template from `knowledge/log_patterns.yaml`.
#[derive(Debug, Clone, Deserialize)]
pub struct LogPatternSpec {
    /// What the line means (`connection_refused`).
    pub class: String,
    /// The category it points at.
    pub category: Category,
    /// How strongly, 0–1.
    pub strength: f64,
    /// Whether the line names the host it talks to.
    #[serde(default)]
    pub peer: bool,
    /// The regex.
    pub regex: String,
}

/// Compiled log templates.
#[derive(Debug, Clone)]
pub struct LogPatterns {
    specs: Vec<LogPatternSpec>,
    regexes: Vec<Regex>,
    set: regex::RegexSet,
}

/// The log templates shipped with metakube.
pub const LOG_PATTERNS_YAML: &str = include_str!("../knowledge/log_patterns.yaml");

/// Errors loading knowledge files.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The YAML does not parse.
    #[error("knowledge file {file} is not valid: {source}")]
    Yaml {
        /// Which file.
        file: &'static str,
        /// Parser error.
        #[source]
        source: serde_norway::Error,
    },
    /// A regex does not compile.
    #[error("log pattern {class} has an invalid regex: {source}")]
    Regex {
        /// The pattern's class.
        class: String,
        /// Regex error.
        #[source]
        source: regex::Error,
    },
}

impl LogPatterns {
    /// Parses and compiles templates.
    pub fn from_yaml(yaml: &str) -> Result<LogPatterns, KnowledgeError> {
        let specs: Vec<LogPatternSpec> =
            serde_norway::from_str(yaml).map_err(|source| KnowledgeError::Yaml {
                file: "log_patterns.yaml",
                source,
            })?;
        let regexes = specs
            .iter()
            .map(|s| {
                Regex::new(&s.regex).map_err(|source| KnowledgeError::Regex {
                    class: s.class.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let set = regex::RegexSet::new(specs.iter().map(|s| &s.regex)).map_err(|source| {
            KnowledgeError::Regex {
                class: "set".into(),
                source,
            }
        })?;
        Ok(LogPatterns {
            specs,
            regexes,
            set,
        })
    }

    /// The shipped templates.
    pub fn builtin() -> LogPatterns {
        // The shipped file is tested; failing here is a build defect, not bad input.
        LogPatterns::from_yaml(LOG_PATTERNS_YAML).expect("shipped log_patterns.yaml is valid")
    }

    /// The first template matching a line.
    pub fn classify(&self, line: &str) -> Option<(&LogPatternSpec, &Regex)> {
        let m = self.set.matches(line);
        let i = m.iter().next()?;
        Some((&self.specs[i], &self.regexes[i]))
    }
}

/// Reads every signal in the snapshot.
pub fn extract(c: &Cluster, patterns: &LogPatterns, rules: &SymptomRules) -> Vec<Signal> {
    let mut out = Vec::new();
    for p in &c.pods {
        pod_signals(c, p, &mut out);
        log_signals(c, p, patterns, &mut out);
    }
    controller_event_signals(c, &mut out);
    dns_signals(c, &mut out);
    service_signals(c, &mut out);
    node_signals(c, &mut out);
    pvc_signals(c, &mut out);
    hpa_signals(c, &mut out);
    ingress_signals(c, &mut out);
    workloads::workload_signals(c, &mut out);
    rules::rule_signals(c, rules, &mut out);
    out
}

fn ts(t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Option<Timestamp> {
    t.as_ref().map(|t| t.0)
}

/// When an event last happened (core/v1 or events.k8s.io shape).
pub fn event_last_seen(e: &Event) -> Option<Timestamp> {
    ts(&e.last_timestamp)
        .or_else(|| {
            e.series
                .as_ref()
                .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
        })
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| ts(&e.first_timestamp))
}

fn event_count(e: &Event) -> u32 {
    e.series
        .as_ref()
        .and_then(|s| s.count)
        .or(e.count)
        .unwrap_or(1)
        .max(1) as u32
}

/// An event's message without the aggregator's prefix.
fn event_message(e: &Event) -> &str {
    let m = e.message.as_deref().unwrap_or("");
    m.strip_prefix("(combined from similar events): ")
        .unwrap_or(m)
}

fn event_evidence(r: &ObjectRef, e: &Event, code: &str) -> Signal {
    let reason = e.reason.as_deref().unwrap_or("");
    let mut s = Signal::new(
        code,
        r,
        EvidenceSource::Event,
        format!("{reason}: {}", event_message(e)),
        Some(format!("event reason={reason}")),
    );
    s.count = event_count(e);
    s
}

/// Events about `r` with this reason, newest first, dropping those that a later success of
/// the same object resolved (FailedCreate → SuccessfulCreate, FailedScheduling → Scheduled).
fn live_events<'a>(c: &'a Cluster, r: &'a ObjectRef, reason: &'a str) -> Vec<&'a Obj<Event>> {
    let resolver = match reason {
        "FailedCreate" => Some("SuccessfulCreate"),
        "FailedScheduling" => Some("Scheduled"),
        "FailedMount" => Some("Started"),
        "FailedAttachVolume" => Some("SuccessfulAttachVolume"),
        "ProvisioningFailed" => Some("ProvisioningSucceeded"),
        _ => None,
    };
    let all: Vec<&Obj<Event>> = c.events_for(r).collect();
    let resolved_at = resolver.and_then(|rs| {
        all.iter()
            .filter(|e| e.o.reason.as_deref() == Some(rs))
            .filter_map(|e| event_last_seen(&e.o))
            .max()
    });
    let mut v: Vec<&Obj<Event>> = all
        .into_iter()
        .filter(|e| e.o.reason.as_deref() == Some(reason))
        .filter(|e| match (resolved_at, event_last_seen(&e.o)) {
            (Some(ok), Some(t)) => t > ok,
            _ => true,
        })
        .collect();
    v.sort_by_key(|e| std::cmp::Reverse(event_last_seen(&e.o)));
    v
}

fn statuses(pod: &Pod) -> impl Iterator<Item = (&ContainerStatus, bool, usize)> {
    let st = pod.status.as_ref();
    let init = st
        .and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| (c, true, i));
    let main = st
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| (c, false, i));
    init.chain(main)
}

/// Classifies an image pull failure message.
pub fn classify_pull(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("invalidimagename")
        || m.contains("invalid reference format")
        || m.contains("couldn't parse image")
    {
        "image_invalid_name"
    } else if m.contains("pull access denied")
        || m.contains("unauthorized")
        || m.contains("403 forbidden")
        || m.contains("401")
        || m.contains("failed to authorize")
        || m.contains("authentication required")
        || m.contains("denied")
    {
        // Docker Hub answers "pull access denied ... repository does not exist or may
        // require authorization" for a repository that does not exist at all.
        if m.contains("repository does not exist") || m.contains("does not exist") {
            "image_not_found"
        } else {
            "image_unauthorized"
        }
    } else if m.contains("not found")
        || m.contains("manifest unknown")
        || m.contains("name unknown")
    {
        "image_not_found"
    } else {
        "image_pull_failed"
    }
}

fn terminated_signal(
    pr: &ObjectRef,
    cs: &ContainerStatus,
    t: &k8s_openapi::api::core::v1::ContainerStateTerminated,
    field: &str,
    init: bool,
    out: &mut Vec<Signal>,
) {
    let reason = t.reason.as_deref().unwrap_or("");
    let uptime = match (ts(&t.started_at), ts(&t.finished_at)) {
        (Some(a), Some(b)) => Some((b - a).get_seconds() as f64),
        _ => None,
    };
    let ptr = Some(format!("{field}.terminated.reason"));
    let restarts = cs.restart_count;
    if reason == "OOMKilled" {
        // Start-up vs leak: a container that dies within two minutes of starting needs more
        // than its limit just to come up.
        let at_start = uptime.is_none_or(|u| u <= 120.0);
        let code = if at_start {
            "oom_killed_at_start"
        } else {
            "oom_killed_after_uptime"
        };
        let detail = format!(
            "container {} was OOMKilled (exit {}) after {} of uptime; {restarts} restarts",
            cs.name,
            t.exit_code,
            uptime.map_or("unknown".into(), human_secs)
        );
        out.push(
            Signal::new(code, pr, EvidenceSource::Status, detail, ptr)
                .container(&cs.name)
                .value(uptime.unwrap_or(0.0))
                .hint(Category::Resource),
        );
        return;
    }
    if t.exit_code == 0 {
        return;
    }
    let msg = t.message.as_deref().unwrap_or("");
    let exec_fail = matches!(
        reason,
        "StartError" | "ContainerCannotRun" | "RunContainerError"
    ) || matches!(t.exit_code, 126 | 127)
        || msg.contains("executable file not found")
        || msg.contains("no such file or directory") && msg.contains("exec");
    if exec_fail {
        let detail = format!(
            "container {} could not start its command ({reason}, exit {}): {}",
            cs.name,
            t.exit_code,
            first_line(msg)
        );
        out.push(
            Signal::new("start_error", pr, EvidenceSource::Status, detail, ptr)
                .container(&cs.name)
                .value(t.exit_code as f64)
                .hint(Category::Configuration),
        );
        return;
    }
    let kind = if init { "init container" } else { "container" };
    let detail = format!(
        "{kind} {} exited with code {} ({reason}) after {}; {restarts} restarts",
        cs.name,
        t.exit_code,
        uptime.map_or("unknown time".into(), human_secs)
    );
    let mut s = Signal::new("exit_error", pr, EvidenceSource::Status, detail, ptr)
        .container(&cs.name)
        .value(t.exit_code as f64);
    s.count = restarts.max(1) as u32;
    out.push(s);
}

/// Seconds as a short human duration (`45s`, `3.2m`, `1.5h`, `2.0d`).
pub fn human_secs(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0}s")
    } else if s < 7200.0 {
        format!("{:.0}m", s / 60.0)
    } else if s < 172800.0 {
        format!("{:.1}h", s / 3600.0)
    } else {
        format!("{:.1}d", s / 86400.0)
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

fn pod_signals(c: &Cluster, p: &Obj<Pod>, out: &mut Vec<Signal>) {
    let pr = &p.r;
    let status = p.o.status.as_ref();
    // Eviction and admission rejection.
    if let Some(reason) = status.and_then(|s| s.reason.as_deref()) {
        let msg = status.and_then(|s| s.message.as_deref()).unwrap_or("");
        if reason == "Evicted"
            || msg.contains("The node had condition")
            || msg.contains("low on resource")
        {
            let code = if msg.contains("The node had condition") {
                "node_rejected"
            } else if msg.contains("memory") {
                "evicted_memory"
            } else {
                "evicted_disk"
            };
            let node = p.o.spec.as_ref().and_then(|s| s.node_name.clone());
            let mut s = Signal::new(
                code,
                pr,
                EvidenceSource::Status,
                format!("pod {reason}: {msg}"),
                Some("status.reason".into()),
            );
            if let Some(n) = node {
                s = s.peer(n);
            }
            out.push(s.hint(Category::System));
        }
    }
    // Scheduling.
    let unschedulable = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|cond| cond.type_ == "PodScheduled" && cond.status == "False");
    if let Some(cond) = unschedulable {
        let msg = cond.message.clone().unwrap_or_default();
        let age =
            p.o.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| (c.now - t.0).get_seconds() as f64)
                .unwrap_or(0.0);
        out.push(
            Signal::new(
                "pod_pending",
                pr,
                EvidenceSource::Status,
                format!(
                    "pod is Pending and unscheduled for {}: {msg}",
                    human_secs(age.max(0.0))
                ),
                Some("status.conditions[type=PodScheduled]".into()),
            )
            .value(age),
        );
        let msg = live_events(c, pr, "FailedScheduling")
            .first()
            .map(|e| event_message(&e.o).to_string())
            .unwrap_or(msg);
        for (code, part) in scheduling_parts(&msg) {
            out.push(
                Signal::new(
                    code,
                    pr,
                    EvidenceSource::Event,
                    format!("FailedScheduling: {msg}"),
                    Some("event reason=FailedScheduling".into()),
                )
                .peer(part)
                .hint(Category::Scheduling),
            );
        }
    }
    // Running but not Ready, with no container-level reason (e.g. its node stopped reporting).
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    let not_ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|cond| cond.type_ == "Ready" && cond.status != "True");
    if let (Some(cond), "Running") = (not_ready, phase) {
        // On a node that stopped reporting, the node controller marks every pod not ready,
        // restarted or not.
        let node_down =
            p.o.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .and_then(|n| c.node(n))
                .is_some_and(|n| {
                    n.o.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .into_iter()
                        .flatten()
                        .any(|c| c.type_ == "Ready" && c.status != "True")
                });
        let all_running = statuses(&p.o)
            .filter(|(_, init, _)| !init)
            .all(|(cs, _, _)| {
                cs.state.as_ref().is_some_and(|s| s.running.is_some())
                    && (cs.restart_count == 0 || node_down)
            });
        if all_running {
            let mut s = Signal::new(
                "pod_not_ready",
                pr,
                EvidenceSource::Status,
                format!(
                    "pod is Running but not Ready ({}): {}",
                    cond.reason.as_deref().unwrap_or(""),
                    cond.message.as_deref().unwrap_or("")
                ),
                Some("status.conditions[type=Ready]".into()),
            );
            if let Some(n) = p.o.spec.as_ref().and_then(|s| s.node_name.clone()) {
                s = s.peer(n);
            }
            out.push(s);
        }
    }
    // Containers.
    for (cs, init, idx) in statuses(&p.o) {
        let field = format!(
            "status.{}[{idx}]",
            if init {
                "initContainerStatuses"
            } else {
                "containerStatuses"
            }
        );
        if let Some(ContainerState {
            waiting: Some(w), ..
        }) = &cs.state
        {
            let reason = w.reason.as_deref().unwrap_or("");
            let msg = w.message.as_deref().unwrap_or("");
            let ptr = Some(format!("{field}.state.waiting.reason"));
            match reason {
                "CrashLoopBackOff" => {
                    let mut s = Signal::new(
                        "crash_loop",
                        pr,
                        EvidenceSource::Status,
                        format!(
                            "container {} is in CrashLoopBackOff after {} restarts",
                            cs.name, cs.restart_count
                        ),
                        ptr,
                    )
                    .container(&cs.name);
                    s.count = cs.restart_count.max(1) as u32;
                    out.push(s);
                }
                "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                    // The registry's reason is in the kubelet's Failed event, not the status.
                    let pull_msg = c
                        .events_for(pr)
                        .filter(|e| e.o.reason.as_deref() == Some("Failed"))
                        .map(|e| event_message(&e.o))
                        .find(|m| {
                            m.starts_with("Failed to pull image") || m.contains("InvalidImageName")
                        })
                        .unwrap_or(msg);
                    let code = if reason == "InvalidImageName" {
                        "image_invalid_name"
                    } else {
                        classify_pull(pull_msg)
                    };
                    out.push(
                        Signal::new(
                            code,
                            pr,
                            EvidenceSource::Event,
                            format!(
                                "container {} cannot pull image {:?} ({reason}): {}",
                                cs.name,
                                cs.image,
                                first_line(pull_msg)
                            ),
                            Some(format!("{field}.state.waiting.reason")),
                        )
                        .container(&cs.name)
                        .peer(cs.image.clone())
                        .hint(Category::Image),
                    );
                }
                "CreateContainerConfigError" => {
                    let mut s = Signal::new(
                        "create_config_error",
                        pr,
                        EvidenceSource::Status,
                        format!("container {} cannot be created: {msg}", cs.name),
                        ptr,
                    )
                    .container(&cs.name)
                    .hint(Category::Configuration);
                    if let Some(name) =
                        quoted_after(msg, "configmap ").or_else(|| quoted_after(msg, "secret "))
                    {
                        s = s.peer(name);
                    }
                    out.push(s);
                }
                "RunContainerError" | "StartError" | "CreateContainerError" => out.push(
                    Signal::new(
                        "start_error",
                        pr,
                        EvidenceSource::Status,
                        format!(
                            "container {} failed to start ({reason}): {}",
                            cs.name,
                            first_line(msg)
                        ),
                        ptr,
                    )
                    .container(&cs.name)
                    .hint(Category::Configuration),
                ),
                _ => {}
            }
        }
        if let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) {
            terminated_signal(pr, cs, t, &format!("{field}.state"), init, out);
        }
        if let Some(t) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
            terminated_signal(pr, cs, t, &format!("{field}.lastState"), init, out);
        }
    }
    // Probe failures, mounts: kubelet events.
    for e in c.events_for(pr) {
        let reason = e.o.reason.as_deref().unwrap_or("");
        let msg = event_message(&e.o);
        match reason {
            "Unhealthy" => {
                let probe = if msg.starts_with("Liveness") {
                    "liveness_failed"
                } else if msg.starts_with("Readiness") {
                    "readiness_failed"
                } else if msg.starts_with("Startup") {
                    "liveness_failed"
                } else {
                    continue;
                };
                let mut s = event_evidence(pr, &e.o, probe);
                if let Some(port) = probe_port_in(msg) {
                    s = s.peer(port);
                }
                out.push(s);
                let lower = msg.to_ascii_lowercase();
                if lower.contains("timeout") || lower.contains("deadline exceeded") {
                    out.push(event_evidence(pr, &e.o, "probe_timeout"));
                }
            }
            "FailedMount" | "FailedAttachVolume" if !live_events(c, pr, reason).is_empty() => {
                let code = if msg.contains("configmap") && msg.contains("not found") {
                    "mount_missing_configmap"
                } else if msg.contains("secret") && msg.contains("not found") {
                    "mount_missing_secret"
                } else {
                    "mount_failed"
                };
                let mut s = event_evidence(pr, &e.o, code);
                if let Some(name) =
                    quoted_after(msg, "configmap ").or_else(|| quoted_after(msg, "secret "))
                {
                    s = s.peer(name);
                } else if let Some(v) = quoted_after(msg, "volume ") {
                    s = s.peer(v);
                }
                if !out.iter().any(|o| o.code == s.code && o.object == s.object) {
                    out.push(s.hint(if code == "mount_failed" {
                        Category::Storage
                    } else {
                        Category::Configuration
                    }));
                }
            }
            _ => {}
        }
    }
}

/// The port in a probe failure message (`dial tcp 10.0.0.1:8080: connect: connection refused`).
fn probe_port_in(msg: &str) -> Option<String> {
    static RE: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"(?:\d{1,3}\.){3}\d{1,3}:(\d+)").expect("valid regex")
    });
    RE.captures(msg).map(|c| c[1].to_string())
}

/// The first `"quoted"` word after `prefix` (`configmap "app-config" not found`).
pub fn quoted_after(msg: &str, prefix: &str) -> Option<String> {
    let i = msg.find(prefix)? + prefix.len();
    let rest = msg[i..].strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}

/// Splits a scheduler message into its parts, as symptom codes with the text of each part.
pub fn scheduling_parts(msg: &str) -> Vec<(&'static str, String)> {
    // "0/3 nodes are available: 1 Too many pods, 2 node(s) didn't match ... preemption: ..."
    let body = msg.split(". preemption:").next().unwrap_or(msg);
    let body = body.split_once("are available: ").map_or(body, |(_, b)| b);
    let mut out = Vec::new();
    for part in body.split(", ") {
        let p = part.trim().trim_end_matches('.');
        let code = if p.contains("Insufficient") {
            "sched_insufficient"
        } else if p.contains("untolerated taint") || p.contains("had taint") {
            "sched_taint"
        } else if p.contains("didn't match Pod's node affinity")
            || p.contains("node affinity/selector")
        {
            "sched_node_selector"
        } else if p.contains("didn't match pod anti-affinity") || p.contains("anti-affinity") {
            "sched_anti_affinity"
        } else if p.contains("didn't match pod affinity") {
            "sched_pod_affinity"
        } else if p.contains("unbound immediate PersistentVolumeClaims") || p.contains("unbound") {
            "sched_unbound_pvc"
        } else if p.contains("volume node affinity conflict") {
            "sched_volume_node_conflict"
        } else if p.contains("Too many pods") {
            "sched_too_many_pods"
        } else if p.contains("were unschedulable") || p.contains("unschedulable") {
            "sched_node_unschedulable"
        } else {
            continue;
        };
        if !out.iter().any(|(c, _)| *c == code) {
            out.push((code, p.to_string()));
        }
    }
    out
}

fn log_signals(c: &Cluster, p: &Obj<Pod>, patterns: &LogPatterns, out: &mut Vec<Signal>) {
    let ns = p.r.namespace.as_deref().unwrap_or("");
    // (container, class) -> signal; the first matching line is the evidence.
    let mut found: BTreeMap<(String, String), Signal> = BTreeMap::new();
    for log in c.logs_of(ns, &p.r.name) {
        let lines: Vec<&str> = log.text.lines().collect();
        // A peer-less error line ("wget: download timed out", a traceback's last line) talks to
        // the host the lines just before it name ("Connecting to backend:80").
        // Of the hosts a line names, one that is a Service of the cluster beats a URL in a
        // help text ("see https://stackexchange.github.io/…"); the port comes with it.
        let pick = |no: usize| -> Option<(String, Option<i32>)> {
            let peers = extract_peers(lines[no]);
            // An API path that names a Service (`/api/v1/orderservice/…` → ts-order-service)
            // counts when nothing else resolves.
            let host = peers
                .iter()
                .find(|p| c.resolve_service(p, ns).is_some())
                .cloned()
                .or_else(|| {
                    peers
                        .iter()
                        .find_map(|p| c.service_named_like(p, ns))
                        .map(|r| r.name)
                })
                .or_else(|| peers.first().cloned())?;
            let port = peer_port(lines[no], &host);
            Some((host, port))
        };
        let peer_near = |no: usize| -> Option<(String, Option<i32>)> {
            pick(no).or_else(|| (no.saturating_sub(8)..no).rev().find_map(pick))
        };
        for (no, line) in lines.iter().copied().enumerate() {
            if line.starts_with("Request log error:") || line.len() > 4096 {
                continue;
            }
            let Some((spec, re)) = patterns.classify(line) else {
                continue;
            };
            let key = (log.container.clone(), spec.class.clone());
            if let Some(s) = found.get_mut(&key) {
                s.count += 1;
                // Prefer, as evidence, a line naming a peer that is a Service of the cluster.
                let resolves =
                    |p: Option<&str>| p.is_some_and(|p| c.resolve_service(p, ns).is_some());
                if spec.peer && !resolves(s.peer.as_deref()) {
                    let peer = peer_near(no);
                    if resolves(peer.as_ref().map(|(h, _)| h.as_str())) {
                        let (host, port) = peer.unwrap_or_default();
                        s.peer = Some(host);
                        s.port = port;
                        s.detail = format!(
                            "log of container {} ({}): {}",
                            log.container,
                            if log.previous {
                                "previous run"
                            } else {
                                "current run"
                            },
                            line.trim()
                        );
                        s.evidence.detail = s.detail.clone();
                        s.evidence.pointer = Some(format!(
                            "logs/{}{}:{}",
                            log.container,
                            if log.previous { " (previous)" } else { "" },
                            no + 1
                        ));
                    }
                }
                continue;
            }
            let code = format!("log_{}", spec.class);
            let which = if log.previous {
                "previous run"
            } else {
                "current run"
            };
            let mut s = Signal::new(
                &code,
                &p.r,
                EvidenceSource::Log,
                format!(
                    "log of container {} ({which}): {}",
                    log.container,
                    line.trim()
                ),
                Some(format!(
                    "logs/{}{}:{}",
                    log.container,
                    if log.previous { " (previous)" } else { "" },
                    no + 1
                )),
            )
            .container(&log.container)
            .hint(spec.category);
            s.strength = spec.strength;
            if spec.peer {
                if let Some((peer, port)) = peer_near(no) {
                    s = s.peer(peer);
                    s.port = port;
                }
            }
            if spec.class == "slow_call" {
                let secs = re.captures(line).and_then(|cap| {
                    cap.name("secs")
                        .and_then(|m| m.as_str().parse::<f64>().ok())
                });
                match secs {
                    Some(v) if v >= 2.0 => s = s.value(v),
                    _ => continue,
                }
            }
            found.insert(key, s);
        }
    }
    out.extend(found.into_values());
}

/// The host a log line talks to: `host:port`, a URL host, `tried: host:port`, a quoted host or
/// the host after `resolve host:`.
pub fn extract_peer(line: &str) -> Option<String> {
    extract_peers(line).into_iter().next()
}

/// The port written right after `host` in a line (`redis-cart:6380`, `10.0.0.7:7001`).
pub fn peer_port(line: &str, host: &str) -> Option<i32> {
    let mut rest = line;
    while let Some(i) = rest.find(host) {
        let after = &rest[i + host.len()..];
        if let Some(digits) = after.strip_prefix(':') {
            let n: String = digits.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(p) = n.parse::<i32>() {
                if (1..=65535).contains(&p) {
                    return Some(p);
                }
            }
        }
        rest = after;
    }
    None
}

/// Every host a log line names, in the order of [`extract_peer`]'s preferences, without
/// duplicates.
pub fn extract_peers(line: &str) -> Vec<String> {
    static RES: std::sync::LazyLock<Vec<Regex>> = std::sync::LazyLock::new(|| {
        [
            r"(?i)resolve host:?\s+([A-Za-z0-9][A-Za-z0-9.-]*)",
            r"(?i)(?:for|instances? of) service:?\s+([A-Za-z0-9][A-Za-z0-9.-]*)",
            r"UnknownHostException: ([A-Za-z0-9][A-Za-z0-9.-]*)",
            r"/api/v\d+/([A-Za-z][A-Za-z0-9-]{3,})",
            r"(?:EAI_AGAIN|ENOTFOUND|EAI_NONAME)\s+([A-Za-z0-9][A-Za-z0-9.-]*)",
            r"(?i)lookup ([A-Za-z0-9][A-Za-z0-9.-]*)",
            r"(?i)[a-z][a-z0-9+.-]*://([A-Za-z0-9][A-Za-z0-9.-]*)",
            r"(?i)(?:connecting to|connect to|tried:|host|dial tcp|to)\s+\(?([A-Za-z0-9][A-Za-z0-9.-]*):\d+",
            r"\b([A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*):\d{2,5}\b",
            r"\(((?:\d{1,3}\.){3}\d{1,3})\)",
            r"(?i)connecting to ([A-Za-z0-9][A-Za-z0-9.-]*)",
            r"(?i)connect(?:ion)? to ([A-Za-z0-9][A-Za-z0-9.-]*)",
            r"(?i)\b(?:to|from|reach|reaching|calling)\s+([A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*)\b",
        ]
        .iter()
        .map(|r| Regex::new(r).expect("valid regex"))
        .collect()
    });
    let mut out: Vec<String> = Vec::new();
    for re in RES.iter() {
        for c in re.captures_iter(line) {
            let h = c[1].trim_end_matches('.').to_string();
            if h.eq_ignore_ascii_case("localhost") || h == "127.0.0.1" || h == "0.0.0.0" {
                continue;
            }
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

fn controller_event_signals(c: &Cluster, out: &mut Vec<Signal>) {
    let owners: Vec<ObjectRef> = c
        .replicasets
        .iter()
        .map(|o| o.r.clone())
        .chain(c.jobs.iter().map(|o| o.r.clone()))
        .chain(c.statefulsets.iter().map(|o| o.r.clone()))
        .chain(c.daemonsets.iter().map(|o| o.r.clone()))
        .chain(c.deployments.iter().map(|o| o.r.clone()))
        .collect();
    for r in &owners {
        if let Some(e) = live_events(c, r, "FailedCreate").first() {
            let msg = event_message(&e.o);
            let code = if msg.contains("exceeded quota") || msg.contains("failed quota") {
                "failed_create_quota"
            } else if msg.contains("per Container is")
                || msg.contains("per Pod is")
                || msg.contains("LimitRange")
                || (msg.contains("maximum") || msg.contains("minimum")) && msg.contains("usage per")
            {
                "failed_create_limitrange"
            } else if msg.contains("serviceaccount") && msg.contains("not found") {
                "failed_create_sa"
            } else {
                "failed_create"
            };
            let mut s = event_evidence(r, &e.o, code).hint(Category::Resource);
            s.count = live_events(c, r, "FailedCreate")
                .iter()
                .map(|e| event_count(&e.o))
                .sum();
            if code == "failed_create_quota" {
                if let Some(q) = msg
                    .split("failed quota: ")
                    .nth(1)
                    .or_else(|| msg.split("exceeded quota: ").nth(1))
                {
                    s = s.peer(q.split([':', ',']).next().unwrap_or("").trim().to_string());
                }
            }
            if code == "failed_create_sa" {
                if let Some(sa) = quoted_after(msg, "serviceaccount ") {
                    s = s.peer(sa);
                }
            }
            out.push(s);
        }
        for e in live_events(c, r, "BackoffLimitExceeded")
            .into_iter()
            .chain(live_events(c, r, "DeadlineExceeded"))
        {
            out.push(event_evidence(r, &e.o, "job_backoff_limit"));
        }
    }
}

/// The cluster DNS: a `k8s-app=kube-dns` Deployment with no ready replica.
fn dns_signals(c: &Cluster, out: &mut Vec<Signal>) {
    for d in &c.deployments {
        let dns =
            d.o.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("k8s-app"))
                .map(String::as_str)
                == Some("kube-dns");
        if !dns {
            continue;
        }
        let want = d.o.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let ready =
            d.o.status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
        if want > 0 && ready == 0 {
            out.push(
                Signal::new(
                    "coredns_down",
                    &d.r,
                    EvidenceSource::Status,
                    format!(
                        "cluster DNS Deployment {} has 0 of {want} replicas ready",
                        d.r.name
                    ),
                    Some("status.readyReplicas".into()),
                )
                .hint(Category::System),
            );
        }
    }
}

fn service_signals(c: &Cluster, out: &mut Vec<Signal>) {
    if !c.has_kind("Endpoints") {
        return;
    }
    for svc in &c.services {
        let Some(spec) = svc.o.spec.as_ref() else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let Some(sel) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let ep = c.endpoints_of(&svc.r);
        let subsets = ep.and_then(|e| e.o.subsets.as_ref());
        let ready = subsets
            .into_iter()
            .flatten()
            .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
            .sum::<usize>();
        let not_ready = subsets
            .into_iter()
            .flatten()
            .map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len))
            .sum::<usize>();
        let sel_txt = sel
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        if ready == 0 && not_ready == 0 {
            out.push(
                Signal::new(
                    "service_no_endpoints",
                    &svc.r,
                    EvidenceSource::Status,
                    format!(
                        "Service {} (selector {sel_txt}) has no endpoints",
                        svc.r.name
                    ),
                    Some("endpoints.subsets".into()),
                )
                .hint(Category::Network),
            );
        } else if ready == 0 {
            out.push(
                Signal::new(
                    "service_no_ready_endpoints",
                    &svc.r,
                    EvidenceSource::Status,
                    format!(
                        "Service {} has {not_ready} endpoints, none ready",
                        svc.r.name
                    ),
                    Some("endpoints.subsets[].notReadyAddresses".into()),
                )
                .hint(Category::Network),
            );
        }
    }
}

fn node_signals(c: &Cluster, out: &mut Vec<Signal>) {
    for n in &c.nodes {
        for cond in
            n.o.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
        {
            let bad = match cond.type_.as_str() {
                "Ready" => cond.status != "True",
                "DiskPressure" | "MemoryPressure" | "PIDPressure" | "NetworkUnavailable" => {
                    cond.status == "True"
                }
                _ => false,
            };
            if !bad {
                continue;
            }
            let code = match cond.type_.as_str() {
                "Ready" => "node_not_ready",
                "DiskPressure" => "node_disk_pressure",
                "MemoryPressure" => "node_memory_pressure",
                "PIDPressure" => "node_pid_pressure",
                _ => "node_not_ready",
            };
            out.push(
                Signal::new(
                    code,
                    &n.r,
                    EvidenceSource::Status,
                    format!(
                        "node {} condition {}={} ({}): {}",
                        n.r.name,
                        cond.type_,
                        cond.status,
                        cond.reason.as_deref().unwrap_or(""),
                        cond.message.as_deref().unwrap_or("")
                    ),
                    Some(format!("status.conditions[type={}]", cond.type_)),
                )
                .hint(Category::System),
            );
        }
    }
}

fn pvc_signals(c: &Cluster, out: &mut Vec<Signal>) {
    for pvc in &c.pvcs {
        let phase = pvc
            .o
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("");
        if phase == "Pending" {
            out.push(
                Signal::new(
                    "pvc_pending",
                    &pvc.r,
                    EvidenceSource::Status,
                    format!("PersistentVolumeClaim {} is Pending", pvc.r.name),
                    Some("status.phase".into()),
                )
                .hint(Category::Storage),
            );
            if let Some(e) = live_events(c, &pvc.r, "ProvisioningFailed").first() {
                out.push(
                    event_evidence(&pvc.r, &e.o, "provisioning_failed").hint(Category::Storage),
                );
            }
        } else if phase == "Lost" {
            out.push(
                Signal::new(
                    "mount_failed",
                    &pvc.r,
                    EvidenceSource::Status,
                    format!("PersistentVolumeClaim {} is Lost", pvc.r.name),
                    Some("status.phase".into()),
                )
                .hint(Category::Storage),
            );
        }
    }
}

fn hpa_signals(c: &Cluster, out: &mut Vec<Signal>) {
    for h in &c.hpas {
        let limited =
            h.o.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .find(|cond| {
                    cond.type_ == "ScalingLimited"
                        && cond.status == "True"
                        && cond.reason.as_deref() == Some("TooManyReplicas")
                });
        if let Some(cond) = limited {
            out.push(
                Signal::new(
                    "hpa_at_max",
                    &h.r,
                    EvidenceSource::Status,
                    format!(
                        "HPA {} is at maxReplicas {}: {}",
                        h.r.name,
                        h.o.spec.as_ref().map_or(0, |s| s.max_replicas),
                        cond.message.as_deref().unwrap_or("")
                    ),
                    Some("status.conditions[type=ScalingLimited]".into()),
                )
                .hint(Category::Resource),
            );
        }
    }
}

fn ingress_signals(c: &Cluster, out: &mut Vec<Signal>) {
    if !c.has_kind("Service") {
        return;
    }
    for ing in &c.ingresses {
        let ns = ing.r.namespace.as_deref().unwrap_or("");
        let spec = ing.o.spec.as_ref();
        let backends = spec
            .and_then(|s| s.rules.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|r| r.http.as_ref())
            .flat_map(|h| h.paths.iter().map(|p| p.backend.clone()))
            .chain(spec.and_then(|s| s.default_backend.clone()));
        for b in backends {
            let Some(svc) = b.service else { continue };
            if c.service(ns, &svc.name).is_none() {
                out.push(
                    Signal::new(
                        "ingress_backend_missing",
                        &ing.r,
                        EvidenceSource::Spec,
                        format!(
                            "Ingress {} routes to Service {} which does not exist",
                            ing.r.name, svc.name
                        ),
                        Some("spec.rules[].http.paths[].backend.service.name".into()),
                    )
                    .peer(svc.name.clone())
                    .hint(Category::Network),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_patterns_compile_and_classify() {
        let p = LogPatterns::builtin();
        let class = |l: &str| p.classify(l).map(|(s, _)| s.class.clone());
        assert_eq!(
            class("wget: can't connect to remote host (10.96.200.239): Connection refused")
                .as_deref(),
            Some("connection_refused")
        );
        assert_eq!(
            class("curl: (6) Could not resolve host: example.invalid").as_deref(),
            Some("dns_failure")
        );
        assert_eq!(
            class("json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)")
                .as_deref(),
            Some("decode_error")
        );
        assert_eq!(
            class("OSError: [Errno 28] No space left on device").as_deref(),
            Some("disk_full")
        );
        assert_eq!(
            class("\"root\" execution of the PostgreSQL server is not permitted.").as_deref(),
            Some("config_rejected")
        );
        assert_eq!(
            class("INFO:app:Database call completed in 8.01 seconds.").as_deref(),
            Some("slow_call")
        );
        assert_eq!(class("all good"), None);
    }

    #[test]
    fn peers_are_extracted() {
        assert_eq!(
            extract_peer("Connecting to backend-service:80 (10.96.200.239:80)").as_deref(),
            Some("backend-service")
        );
        assert_eq!(
            extract_peer("All host(s) tried for db query failed (tried: prod-db:3333)").as_deref(),
            Some("prod-db")
        );
        assert_eq!(
            extract_peer("curl: (6) Could not resolve host: foo.example.com").as_deref(),
            Some("foo.example.com")
        );
        assert_eq!(
            extract_peer("wget: can't connect to remote host (10.96.108.35): Connection refused")
                .as_deref(),
            Some("10.96.108.35")
        );
        assert_eq!(
            extract_peer("postgres:5432 - no response").as_deref(),
            Some("postgres")
        );
        assert_eq!(
            extract_peer("requests.get('http://quotes.default.svc.cluster.local/api')").as_deref(),
            Some("quotes.default.svc.cluster.local")
        );
    }

    #[test]
    fn scheduler_messages_split_into_parts() {
        let parts = scheduling_parts("0/3 nodes are available: 1 Too many pods, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod.");
        let codes: Vec<_> = parts.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, vec!["sched_too_many_pods", "sched_node_selector"]);
        let parts = scheduling_parts("0/1 nodes are available: 1 node(s) had untolerated taint {key1: value1}. preemption: 0/1");
        assert_eq!(parts[0].0, "sched_taint");
        assert_eq!(parts[0].1, "1 node(s) had untolerated taint {key1: value1}");
    }

    #[test]
    fn pull_errors_are_told_apart() {
        assert_eq!(classify_pull("failed to resolve reference \"docker.io/library/nginx:invalid-tag\": docker.io/library/nginx:invalid-tag: not found"), "image_not_found");
        assert_eq!(
            classify_pull(
                "pull access denied, repository does not exist or may require authorization"
            ),
            "image_not_found"
        );
        assert_eq!(classify_pull("failed to authorize: failed to fetch anonymous token: unexpected status: 403 Forbidden"), "image_unauthorized");
        assert_eq!(
            classify_pull("Get https://r.example/v2/: dial tcp: i/o timeout"),
            "image_pull_failed"
        );
    }
}
