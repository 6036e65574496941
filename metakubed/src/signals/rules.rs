//! Symptom templates as data (`knowledge/symptom_rules.yaml`): the event reasons and message
//! formats, container waiting/terminated reasons, pod status reasons, scheduler filter
//! messages and node conditions that Kubernetes components emit, each citing the file of
//! kubernetes/kubernetes it was read from, with where the fault lives (`at`), its category
//! and fix.
//!
//! A template that the hand-written stages already read (OOMKilled, FailedScheduling parts,
//! FailedMount of a ConfigMap…) adds nothing twice: the rule only fires where no signal of its
//! symptom code exists yet on the same object. Everything else Kubernetes says becomes a
//! symptom with a cause, instead of silence.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Event;
use metakube_shared::{Category, EvidenceSource, ObjectRef};
use regex::Regex;
use serde::Deserialize;

use super::{event_count, event_last_seen, event_message, KnowledgeError, RuleHit, Signal};
use crate::graph::domain::At;
use crate::snapshot::Cluster;

/// The shipped templates.
pub const SYMPTOM_RULES_YAML: &str = include_str!("../../knowledge/symptom_rules.yaml");

/// Where a template's text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum On {
    /// An Event's reason and message.
    Event,
    /// A container's `state.waiting` reason and message.
    ContainerWaiting,
    /// A container's `state.terminated` / `lastState.terminated` reason and message.
    ContainerTerminated,
    /// A pod's `status.reason` and `status.message`.
    PodStatus,
    /// One part of a FailedScheduling message ("3 node(s) had untolerated taint …").
    Scheduling,
    /// A node condition that is in its bad state.
    NodeCondition,
    /// A controller's (Deployment, ReplicaSet, Job…) condition.
    ControllerCondition,
}

/// One template, as written in the YAML.
#[derive(Debug, Clone, Deserialize)]
pub struct RuleSpec {
    /// Unique id (`kubelet.FailedMount.configmap_not_found`).
    pub id: String,
    /// Where the text is read.
    pub on: On,
    /// The reason (event reason, waiting/terminated reason, condition type); empty for
    /// scheduler parts.
    #[serde(default)]
    pub reason: String,
    /// Regex over the message; empty matches any. A `name` group captures the object the
    /// fault lives in when the message names it.
    #[serde(default)]
    pub message: String,
    /// Kind of the object the text is on.
    #[serde(default)]
    pub involved: String,
    /// Symptom code.
    pub symptom: String,
    /// Cause code.
    pub cause: String,
    /// Category of the cause.
    pub category: Category,
    /// Where the fault lives relative to the object showing it.
    pub at: String,
    /// File in kubernetes/kubernetes the reason or message format is defined in.
    pub source: String,
    /// The format string or constant as written there.
    #[serde(default)]
    pub quote: String,
    /// The behaviour, in one sentence.
    pub meaning: String,
    /// The fix, in one sentence.
    pub fix: String,
}

#[derive(Debug, Deserialize)]
struct RulesFile {
    commit: String,
    rules: Vec<RuleSpec>,
}

/// Compiled templates.
#[derive(Debug, Clone)]
pub struct SymptomRules {
    /// The kubernetes/kubernetes commit the templates were read at.
    pub commit: String,
    specs: Vec<RuleSpec>,
    regexes: Vec<Option<Regex>>,
}

impl SymptomRules {
    /// Parses and compiles templates.
    pub fn from_yaml(yaml: &str) -> Result<SymptomRules, KnowledgeError> {
        let f: RulesFile = serde_norway::from_str(yaml).map_err(|source| KnowledgeError::Yaml {
            file: "symptom_rules.yaml",
            source,
        })?;
        let regexes = f
            .rules
            .iter()
            .map(|r| {
                if r.message.is_empty() {
                    return Ok(None);
                }
                Regex::new(&r.message)
                    .map(Some)
                    .map_err(|source| KnowledgeError::Regex {
                        class: r.id.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SymptomRules {
            commit: f.commit,
            specs: f.rules,
            regexes,
        })
    }

    /// The shipped templates.
    pub fn builtin() -> SymptomRules {
        // Tested at build time; a failure is a defect in the shipped file, not bad input.
        SymptomRules::from_yaml(SYMPTOM_RULES_YAML).expect("shipped symptom_rules.yaml is valid")
    }

    /// Every template.
    pub fn specs(&self) -> &[RuleSpec] {
        &self.specs
    }

    /// The first template for this text, with the name it captures.
    pub fn find(
        &self,
        on: On,
        reason: &str,
        involved: &str,
        message: &str,
    ) -> Option<(&RuleSpec, Option<String>)> {
        self.specs
            .iter()
            .zip(&self.regexes)
            .filter(|(s, _)| s.on == on)
            .filter(|(s, _)| s.reason.is_empty() || s.reason == reason)
            .filter(|(s, _)| s.involved.is_empty() || involved.is_empty() || s.involved == involved)
            .find_map(|(s, re)| match re {
                None => Some((s, None)),
                Some(re) => re
                    .captures(message)
                    .map(|c| (s, c.name("name").map(|m| m.as_str().to_string()))),
            })
    }
}

fn signal(
    rule: &RuleSpec,
    r: &ObjectRef,
    source: EvidenceSource,
    detail: String,
    pointer: String,
    name: Option<String>,
) -> Signal {
    let mut s = Signal::new(&rule.symptom, r, source, detail, Some(pointer)).hint(rule.category);
    s.strength = 0.8;
    s.rule = Some(RuleHit {
        id: rule.id.clone(),
        cause: rule.cause.clone(),
        at: serde_json::from_value(serde_json::Value::String(rule.at.clone()))
            .unwrap_or(At::Itself),
        category: rule.category,
    });
    if let Some(n) = name {
        s = s.peer(n);
    }
    s
}

/// Signals from the templates, for what the hand-written stages did not already report.
pub(super) fn rule_signals(c: &Cluster, rules: &SymptomRules, out: &mut Vec<Signal>) {
    let mut have: BTreeSet<(String, ObjectRef)> = out
        .iter()
        .map(|s| (s.code.clone(), s.object.clone()))
        .collect();
    // What the hand-written stages already read, by object: the event reasons, the status
    // fields (per container) and conditions. A template never reads the same text twice.
    let read: BTreeSet<(ObjectRef, String)> = out
        .iter()
        // The hand-written stages' catch-all for a FailedCreate they do not know leaves the
        // event to the templates.
        .filter(|s| s.code != "failed_create")
        .filter_map(|s| {
            let p = s.evidence.pointer.as_deref()?;
            let key = if let Some(r) = p.strip_prefix("event reason=") {
                format!("event:{r}")
            } else if p.contains("state.waiting") || p.contains("terminated") {
                format!(
                    "container:{}:{}",
                    s.container.as_deref().unwrap_or(""),
                    if p.contains("waiting") {
                        "waiting"
                    } else {
                        "terminated"
                    }
                )
            } else {
                p.to_string()
            };
            Some((s.object.clone(), key))
        })
        .collect();
    let seen = |r: &ObjectRef, key: String| read.contains(&(r.clone(), key));
    let mut push = |s: Signal, out: &mut Vec<Signal>| {
        if have.insert((s.code.clone(), s.object.clone())) {
            out.push(s);
        }
    };
    // Events: Warning events still standing (a later event of the same object with another
    // reason and type Normal after it means the object recovered).
    for e in &c.events {
        if e.o.type_.as_deref() != Some("Warning") {
            continue;
        }
        let Some(r) = involved(&e.o) else { continue };
        if recovered(c, &r, &e.o) {
            continue;
        }
        let reason = e.o.reason.as_deref().unwrap_or("");
        let msg = event_message(&e.o);
        if reason == "FailedScheduling" {
            // "0/4 nodes are available: 1 node(s) had untolerated taint {…}, 3 Insufficient cpu.
            // preemption: …": each filter's part on its own.
            let body = msg.split(". preemption:").next().unwrap_or(msg);
            let body = body.split_once("are available: ").map_or(body, |(_, b)| b);
            for part in body.split(", ").map(|p| p.trim().trim_end_matches('.')) {
                if !super::scheduling_parts(part).is_empty() {
                    continue; // read by the hand-written scheduler stage
                }
                if let Some((rule, name)) = rules.find(On::Scheduling, "", &r.kind, part) {
                    let s = signal(
                        rule,
                        &r,
                        EvidenceSource::Event,
                        format!("FailedScheduling: {msg}"),
                        "event reason=FailedScheduling".into(),
                        name.or(Some(part.to_string())),
                    );
                    push(s, out);
                }
            }
            continue;
        }
        if seen(&r, format!("event:{reason}")) {
            continue;
        }
        if let Some((rule, name)) = rules.find(On::Event, reason, &r.kind, msg) {
            let mut s = signal(
                rule,
                &r,
                EvidenceSource::Event,
                format!("{reason}: {msg}"),
                format!("event reason={reason}"),
                name,
            );
            s.count = event_count(&e.o);
            push(s, out);
        }
    }
    for p in &c.pods {
        let Some(st) = p.o.status.as_ref() else {
            continue;
        };
        if let Some(reason) = st
            .reason
            .as_deref()
            .filter(|_| !seen(&p.r, "status.reason".into()))
        {
            let msg = st.message.as_deref().unwrap_or("");
            if let Some((rule, name)) = rules.find(On::PodStatus, reason, "Pod", msg) {
                push(
                    signal(
                        rule,
                        &p.r,
                        EvidenceSource::Status,
                        format!("pod {reason}: {msg}"),
                        "status.reason".into(),
                        name,
                    ),
                    out,
                );
            }
        }
        let containers = st
            .init_container_statuses
            .iter()
            .flatten()
            .map(|c| (c, "initContainerStatuses"))
            .chain(
                st.container_statuses
                    .iter()
                    .flatten()
                    .map(|c| (c, "containerStatuses")),
            );
        for (cs, field) in containers {
            let waiting_read = seen(&p.r, format!("container:{}:waiting", cs.name));
            let terminated_read = seen(&p.r, format!("container:{}:terminated", cs.name));
            if let Some(w) = cs
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .filter(|_| !waiting_read)
            {
                let reason = w.reason.as_deref().unwrap_or("");
                let msg = w.message.as_deref().unwrap_or("");
                if let Some((rule, name)) = rules.find(On::ContainerWaiting, reason, "Pod", msg) {
                    let s = signal(
                        rule,
                        &p.r,
                        EvidenceSource::Status,
                        format!("container {} is waiting ({reason}): {msg}", cs.name),
                        format!("status.{field}[name={}].state.waiting", cs.name),
                        name,
                    )
                    .container(&cs.name);
                    push(s, out);
                }
            }
            let terminated = cs
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .or_else(|| cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()));
            if let Some(t) = terminated.filter(|t| t.exit_code != 0 && !terminated_read) {
                let reason = t.reason.as_deref().unwrap_or("");
                let msg = t.message.as_deref().unwrap_or("");
                if let Some((rule, name)) = rules.find(On::ContainerTerminated, reason, "Pod", msg)
                {
                    let s = signal(
                        rule,
                        &p.r,
                        EvidenceSource::Status,
                        format!(
                            "container {} terminated ({reason}, exit {}): {msg}",
                            cs.name, t.exit_code
                        ),
                        format!("status.{field}[name={}].state.terminated", cs.name),
                        name,
                    )
                    .container(&cs.name);
                    push(s, out);
                }
            }
        }
    }
    for n in &c.nodes {
        for cond in
            n.o.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
        {
            let bad = if cond.type_ == "Ready" {
                cond.status != "True"
            } else {
                cond.status == "True"
            };
            if !bad || seen(&n.r, format!("status.conditions[type={}]", cond.type_)) {
                continue;
            }
            let msg = cond.message.as_deref().unwrap_or("");
            if let Some((rule, name)) = rules.find(On::NodeCondition, &cond.type_, "Node", msg) {
                push(
                    signal(
                        rule,
                        &n.r,
                        EvidenceSource::Status,
                        format!(
                            "node {} condition {}={} ({}): {msg}",
                            n.r.name,
                            cond.type_,
                            cond.status,
                            cond.reason.as_deref().unwrap_or("")
                        ),
                        format!("status.conditions[type={}]", cond.type_),
                        name,
                    ),
                    out,
                );
            }
        }
    }
    // (object, type, status, reason, message) of the controllers' conditions: three types of
    // the same shape.
    macro_rules! conditions {
        ($objs:expr) => {
            $objs.iter().flat_map(|d| {
                d.o.status
                    .iter()
                    .flat_map(|s| s.conditions.iter().flatten())
                    .map(move |c| {
                        (
                            &d.r,
                            c.type_.as_str(),
                            c.status.as_str(),
                            c.reason.as_deref(),
                            c.message.as_deref(),
                        )
                    })
            })
        };
    }
    let controller_conditions = conditions!(c.deployments)
        .chain(conditions!(c.replicasets))
        .chain(conditions!(c.jobs));
    for (r, type_, status, reason, msg) in controller_conditions {
        // Conditions in their bad state only: Available/Progressing False, the others True.
        let bad = match type_ {
            "Available" | "Progressing" | "Complete" => status == "False",
            _ => status == "True",
        };
        if !bad {
            continue;
        }
        let msg = msg.unwrap_or("");
        let hit = reason
            .and_then(|rs| rules.find(On::ControllerCondition, rs, &r.kind, msg))
            .or_else(|| rules.find(On::ControllerCondition, type_, &r.kind, msg));
        if let Some((rule, name)) = hit {
            push(
                signal(
                    rule,
                    r,
                    EvidenceSource::Status,
                    format!(
                        "{} {} condition {type_}={status} ({}): {msg}",
                        r.kind,
                        r.name,
                        reason.unwrap_or("")
                    ),
                    format!("status.conditions[type={type_}]"),
                    name,
                ),
                out,
            );
        }
    }
}

/// The object an event is about.
fn involved(e: &Event) -> Option<ObjectRef> {
    let io = &e.involved_object;
    let kind = io.kind.as_deref()?;
    let name = io.name.as_deref()?;
    Some(match io.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => ObjectRef::new(kind, ns, name),
        _ => ObjectRef::cluster(kind, name),
    })
}

/// Whether a Normal event of the same object came after this Warning (it recovered).
fn recovered(c: &Cluster, r: &ObjectRef, e: &Event) -> bool {
    let Some(t) = event_last_seen(e) else {
        return false;
    };
    // The object's own state says it recovered after the event: a pod Ready, a Deployment
    // Available since then (the kubelet and the deployment controller set these conditions
    // from what they see now; an event only says what happened then).
    if ready_since(c, r).is_some_and(|since| since >= t) {
        return true;
    }
    c.events_for(r).any(|o| {
        o.o.type_.as_deref() == Some("Normal")
            && matches!(
                o.o.reason.as_deref(),
                Some(
                    "Scheduled"
                        | "Started"
                        | "SuccessfulCreate"
                        | "ProvisioningSucceeded"
                        | "SuccessfulAttachVolume"
                        | "Pulled"
                        | "NodeReady"
                        | "Completed"
                        | "SuccessfulMountVolume"
                )
            )
            && event_last_seen(&o.o).is_some_and(|ot| ot >= t)
    })
}

/// Since when a pod has been Ready, or a Deployment Available.
fn ready_since(c: &Cluster, r: &ObjectRef) -> Option<jiff::Timestamp> {
    type Time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    fn true_since<'a>(
        conditions: impl Iterator<Item = (&'a str, &'a str, Option<&'a Time>)>,
        wanted: &str,
    ) -> Option<jiff::Timestamp> {
        conditions
            .into_iter()
            .find(|(ty, status, _)| *ty == wanted && *status == "True")
            .and_then(|(_, _, t)| t.map(|t| t.0))
    }
    let ns = r.namespace.as_deref().unwrap_or("");
    match r.kind.as_str() {
        "Pod" => {
            let conditions = c.pod(ns, &r.name)?.o.status.as_ref()?.conditions.as_ref()?;
            true_since(
                conditions.iter().map(|x| {
                    (
                        x.type_.as_str(),
                        x.status.as_str(),
                        x.last_transition_time.as_ref(),
                    )
                }),
                "Ready",
            )
        }
        "Deployment" => {
            let d = c.deployments.iter().find(|d| d.r == *r)?;
            let conditions = d.o.status.as_ref()?.conditions.as_ref()?;
            true_since(
                conditions.iter().map(|x| {
                    (
                        x.type_.as_str(),
                        x.status.as_str(),
                        x.last_transition_time.as_ref(),
                    )
                }),
                "Available",
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_its_pod_has_recovered_from_since_is_not_a_symptom() {
        use metakube_shared::{CollectionMeta, KubeObject, Snapshot, SnapshotSource};
        let snap = |ready_at: &str| {
            let pod = serde_json::json!({"kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": "web-1", "namespace": "n"},
                "spec": {"containers": [{"name": "app", "image": "a"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]}});
            let ev = serde_json::json!({"kind": "Event", "apiVersion": "v1",
                "metadata": {"name": "web-1.1", "namespace": "n"}, "type": "Warning", "reason": "BackOff",
                "message": "Back-off restarting failed container app in pod web-1_n(uid)", "count": 5,
                "involvedObject": {"kind": "Pod", "namespace": "n", "name": "web-1"},
                "lastTimestamp": "2026-01-01T10:00:00Z"});
            Snapshot {
                target: ObjectRef::new("Pod", "n", "web-1"),
                objects: vec![KubeObject::new(pod), KubeObject::new(ev)],
                logs: vec![],
                meta: CollectionMeta {
                    source: SnapshotSource::Dump { path: ".".into() },
                    namespace: "n".into(),
                    collected_at: "2026-01-01T10:05:00Z".parse().unwrap(),
                    gaps: vec![],
                    collector_version: "test".into(),
                },
            }
        };
        let codes = |ready_at: &str| {
            let c = Cluster::from_snapshot(&snap(ready_at));
            let mut out = Vec::new();
            rule_signals(&c, &SymptomRules::builtin(), &mut out);
            out.into_iter().map(|s| s.code).collect::<Vec<_>>()
        };
        // Ready before the last back-off: the crash loop stands.
        assert!(codes("2026-01-01T09:00:00Z")
            .iter()
            .any(|c| c == "crash_loop"));
        // Ready since it: old news.
        assert!(!codes("2026-01-01T10:01:00Z")
            .iter()
            .any(|c| c == "crash_loop"));
    }

    #[test]
    fn shipped_templates_compile_and_cite_their_source() {
        let r = SymptomRules::builtin();
        assert!(r.specs().len() >= 300, "{} templates", r.specs().len());
        assert_eq!(r.commit.len(), 40, "commit is a full sha");
        let mut ids = BTreeSet::new();
        for s in r.specs() {
            assert!(ids.insert(s.id.as_str()), "duplicate id {}", s.id);
            assert!(
                s.source.starts_with("pkg/")
                    || s.source.starts_with("plugin/")
                    || s.source.starts_with("staging/")
                    || s.source.starts_with("cmd/"),
                "{} cites {:?}, not a kubernetes/kubernetes path",
                s.id,
                s.source
            );
            assert!(!s.meaning.is_empty() && !s.fix.is_empty(), "{}", s.id);
            assert!(
                serde_json::from_value::<At>(serde_json::Value::String(s.at.clone())).is_ok(),
                "{}: at {:?}",
                s.id,
                s.at
            );
        }
    }

    #[test]
    fn real_messages_match_their_templates_and_capture_the_object() {
        let r = SymptomRules::builtin();
        let (rule, name) = r
            .find(
                On::Event,
                "FailedMount",
                "Pod",
                r#"MountVolume.SetUp failed for volume "config" : configmap "app-config" not found"#,
            )
            .expect("FailedMount of a missing ConfigMap");
        assert_eq!(rule.symptom, "mount_missing_configmap");
        assert_eq!(name.as_deref(), Some("app-config"));
        let (rule, name) = r
            .find(
                On::Event,
                "FailedCreate",
                "ReplicaSet",
                r#"Error creating: pods "cartservice-7d4b9c-x2x9z" is forbidden: exceeded quota: boutique-quota, requested: pods=1, used: pods=10, limited: pods=10"#,
            )
            .expect("FailedCreate over quota");
        assert_eq!(rule.category, Category::Resource);
        assert_eq!(name.as_deref(), Some("boutique-quota"));
        let (rule, _) = r
            .find(
                On::Event,
                "Failed",
                "Pod",
                r#"Failed to pull image "corp-registry.internal/shop/currency:v1": failed to resolve reference "corp-registry.internal/shop/currency:v1": failed to do request: Head "https://corp-registry.internal/v2/shop/currency/manifests/v1": dial tcp: lookup corp-registry.internal on 10.0.0.2:53: no such host"#,
            )
            .expect("pull from a registry that does not resolve");
        assert_eq!(rule.on, On::Event);
        assert!(r
            .find(On::Scheduling, "", "Pod", "3 node(s) were unschedulable")
            .is_some());
        // A message no component writes matches nothing.
        assert!(r
            .find(On::Event, "FailedMount", "Pod", "the weather is fine")
            .is_none_or(|(s, _)| s.message.is_empty()));
    }
}
