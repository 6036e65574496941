//! Detection: which objects show a state symptom now, and which workload (the diagnosis
//! target) each belongs to. A symptom only makes watch mode *look*; the daemon's diagnosis says
//! what is wrong, and a healthy verdict opens nothing.
//!
//! The reasons are Kubernetes' own, each from where it is set:
//! - container waiting reasons: kubelet `pkg/kubelet/images/types.go` (`ErrImagePull`,
//!   `ImagePullBackOff`, `ErrImageNeverPull`, `InvalidImageName`),
//!   `pkg/kubelet/kuberuntime/kuberuntime_container.go` (`CreateContainerConfigError`,
//!   `CreateContainerError`, `PreStartHookError`, `PostStartHookError`),
//!   `pkg/kubelet/container/sync_result.go` (`CrashLoopBackOff`, `RunContainerError`);
//! - terminated reasons: the runtime's (`OOMKilled`, `Error`, `ContainerCannotRun`,
//!   `StartError`, `DeadlineExceeded`);
//! - pod conditions: scheduler `PodScheduled=False, Unschedulable`
//!   (`pkg/scheduler/schedule_one.go`), kubelet `Ready=False`, eviction `Failed/Evicted`
//!   (`pkg/kubelet/eviction/eviction_manager.go`);
//! - node conditions: kubelet `pkg/kubelet/nodestatus/setters.go` (`Ready`, `MemoryPressure`,
//!   `DiskPressure`, `PIDPressure`), `NetworkUnavailable`;
//! - workload conditions: deployment controller `pkg/controller/deployment/util`
//!   (`ProgressDeadlineExceeded`, `ReplicaFailure/FailedCreate`), job controller
//!   (`BackoffLimitExceeded`, `DeadlineExceeded`);
//! - warning events: [`WARNING_REASONS`].

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use metakube_shared::object::DIAGNOSABLE;
use metakube_shared::{KindInfo, KubeObject, ObjectRef, Trigger};
use serde_json::Value;

use super::store::Store;

/// Container waiting reasons that mean the container cannot run.
pub const WAITING_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreStartHookError",
    "PostStartHookError",
];

/// Terminated reasons that mean the last run failed.
pub const TERMINATED_REASONS: &[&str] = &[
    "OOMKilled",
    "Error",
    "ContainerCannotRun",
    "StartError",
    "DeadlineExceeded",
];

/// Warning event reasons that count as a symptom of the object they are about (kubelet,
/// scheduler, volume, replica-set/job/statefulset controllers, PV controller, node problem
/// detector). `Unhealthy` (probe failures) counts from its third occurrence, the default
/// `failureThreshold`.
pub const WARNING_REASONS: &[&str] = &[
    "FailedScheduling",
    "FailedMount",
    "FailedAttachVolume",
    "FailedMapVolume",
    "FailedCreate",
    "FailedCreatePodSandBox",
    "FailedPostStartHook",
    "BackOff",
    "Failed",
    "Evicted",
    "OOMKilling",
    "ProvisioningFailed",
    "FailedBinding",
    "NetworkNotReady",
    "FailedKillPod",
    "Unhealthy",
];

/// How long a state may last before it counts, and how long an event counts.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// A pod Pending (not unschedulable) for longer than this.
    pub pending: SignedDuration,
    /// A running pod not Ready, or a workload short of ready replicas, for longer than this.
    pub not_ready: SignedDuration,
    /// A warning event (or a failed pod, a last OOM kill) counts for this long after it.
    pub event_window: SignedDuration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            pending: SignedDuration::from_secs(120),
            not_ready: SignedDuration::from_secs(60),
            event_window: SignedDuration::from_secs(300),
        }
    }
}

/// The symptoms of one object now, and whether they may change with time alone (a grace
/// period running, an event ageing out).
#[derive(Debug, Default)]
struct Seen {
    triggers: Vec<Trigger>,
    timed: bool,
}

/// What detection knows: the symptoms of every object, grouped by target.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Thresholds in use.
    pub thresholds: Thresholds,
    active: HashMap<ObjectRef, (ObjectRef, Vec<Trigger>)>,
    timed: HashSet<ObjectRef>,
    first_observed: HashMap<(ObjectRef, String), Timestamp>,
    /// Per target: the index of the watch event at which its first current symptom appeared,
    /// and that time.
    onset: HashMap<ObjectRef, (u64, Timestamp)>,
}

impl Tracker {
    /// A tracker with these thresholds.
    pub fn new(thresholds: Thresholds) -> Tracker {
        Tracker {
            thresholds,
            ..Default::default()
        }
    }

    /// Re-evaluates the objects that changed and those whose symptoms depend on time.
    /// `changed` holds each changed object with the index of the watch event that changed it
    /// and the stream's time then (an object that shows a symptom at once has its onset there;
    /// one that shows it after a grace period, when the period ends: `index`, `now`).
    pub fn update(
        &mut self,
        store: &Store,
        changed: &[(ObjectRef, u64, Option<Timestamp>)],
        now: Timestamp,
        index: u64,
    ) {
        let mut when: HashMap<&ObjectRef, (u64, Timestamp)> = HashMap::new();
        for (r, i, t) in changed {
            when.entry(r).or_insert((*i, t.unwrap_or(now)));
        }
        let mut todo: Vec<ObjectRef> = changed.iter().map(|(r, _, _)| r.clone()).collect();
        todo.extend(self.timed.iter().cloned());
        todo.sort();
        todo.dedup();
        for r in todo {
            let seen = match store.get(&r) {
                Some(o) => self.evaluate(store, o, now),
                None => Seen::default(),
            };
            if seen.timed {
                self.timed.insert(r.clone());
            } else {
                self.timed.remove(&r);
            }
            if seen.triggers.is_empty() {
                self.active.remove(&r);
                continue;
            }
            let target = target_of(store, &r, &seen.triggers[0]);
            let Some(target) = target else {
                self.active.remove(&r);
                continue;
            };
            let at = match when.get(&r) {
                Some(w) => *w,
                _ => (index, now),
            };
            self.onset.entry(target.clone()).or_insert(at);
            self.active.insert(r, (target, seen.triggers));
        }
        // A target with no symptom left has no onset any more.
        let live: HashSet<&ObjectRef> = self.active.values().map(|(t, _)| t).collect();
        self.onset.retain(|t, _| live.contains(t));
        self.first_observed
            .retain(|(r, _), _| self.active.contains_key(r) || self.timed.contains(r));
    }

    /// Targets showing symptoms now, with the symptoms of their objects.
    pub fn symptomatic(&self) -> BTreeMap<ObjectRef, Vec<Trigger>> {
        let mut out: BTreeMap<ObjectRef, Vec<Trigger>> = BTreeMap::new();
        for (target, triggers) in self.active.values() {
            out.entry(target.clone())
                .or_default()
                .extend(triggers.iter().cloned());
        }
        for v in out.values_mut() {
            v.sort_by(|a, b| (&a.object, &a.reason).cmp(&(&b.object, &b.reason)));
            v.dedup_by(|a, b| a.object == b.object && a.reason == b.reason);
        }
        out
    }

    /// When (event index, stream time) a target's current symptoms began.
    pub fn onset(&self, target: &ObjectRef) -> Option<(u64, Timestamp)> {
        self.onset.get(target).copied()
    }

    fn evaluate(&mut self, store: &Store, o: &KubeObject, now: Timestamp) -> Seen {
        let mut seen = Seen::default();
        let r = o.object_ref();
        let t = self.thresholds;
        match o.kind() {
            "Pod" => pod(o, &r, now, t, &mut seen),
            "Node" => node(o, &r, &mut seen),
            "Deployment" | "ReplicaSet" => conditions(o, &r, now, t, &mut seen),
            "StatefulSet" | "DaemonSet" => {
                let (want, ready) = if o.kind() == "StatefulSet" {
                    (
                        num(o, "/spec/replicas").unwrap_or(1),
                        num(o, "/status/readyReplicas").unwrap_or(0),
                    )
                } else {
                    (
                        num(o, "/status/desiredNumberScheduled").unwrap_or(0),
                        num(o, "/status/numberReady").unwrap_or(0),
                    )
                };
                if ready < want {
                    let since = *self
                        .first_observed
                        .entry((r.clone(), "ReplicasNotReady".into()))
                        .or_insert(now);
                    seen.timed = true;
                    if now.duration_since(since) >= t.not_ready {
                        seen.triggers
                            .push(trigger(&r, "ReplicasNotReady", Some(since)));
                    }
                } else {
                    self.first_observed
                        .remove(&(r.clone(), "ReplicasNotReady".into()));
                }
            }
            "Job" => {
                for c in array(o, "/status/conditions") {
                    if str_at(c, "type") == "Failed" && str_at(c, "status") == "True" {
                        let reason = non_empty(str_at(c, "reason"), "JobFailed");
                        seen.triggers
                            .push(trigger(&r, reason, time_at(c, "lastTransitionTime")));
                    }
                }
            }
            "PersistentVolumeClaim" => match str_ptr(o, "/status/phase") {
                "Lost" => seen.triggers.push(trigger(&r, "ClaimLost", None)),
                "Pending" => {
                    let since = created(o).unwrap_or(now);
                    seen.timed = true;
                    if now.duration_since(since) >= t.pending {
                        seen.triggers.push(trigger(&r, "ClaimPending", Some(since)));
                    }
                }
                _ => {}
            },
            "Event" => event(store, o, now, t, &mut seen),
            "Endpoints" => {
                // The endpoints controller (pkg/controller/endpoint) lists a selector Service's
                // ready pods here; none means every caller of the Service fails.
                let svc = ObjectRef {
                    kind: "Service".into(),
                    ..r.clone()
                };
                let selects = store
                    .get(&svc)
                    .and_then(|s| s.pointer("/spec/selector"))
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty());
                let ready = array(o, "/subsets").iter().any(|s| {
                    s.get("addresses")
                        .and_then(Value::as_array)
                        .is_some_and(|a| !a.is_empty())
                });
                let key = (r.clone(), "NoReadyEndpoints".to_string());
                if selects && !ready {
                    // The controller stamps when it last changed them; else since first seen.
                    let stamped = o
                        .pointer("/metadata/annotations/endpoints.kubernetes.io~1last-change-trigger-time")
                        .and_then(Value::as_str)
                        .and_then(|t| t.parse::<Timestamp>().ok());
                    let since = *self
                        .first_observed
                        .entry(key)
                        .or_insert(stamped.unwrap_or(now));
                    seen.timed = true;
                    if now.duration_since(since) >= t.not_ready {
                        seen.triggers
                            .push(trigger(&svc, "NoReadyEndpoints", Some(since)));
                    }
                } else {
                    self.first_observed.remove(&key);
                }
            }
            _ => {}
        }
        seen
    }
}

fn pod(o: &KubeObject, r: &ObjectRef, now: Timestamp, t: Thresholds, seen: &mut Seen) {
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        return; // going away: its replacement is what counts
    }
    let phase = str_ptr(o, "/status/phase");
    for path in ["/status/initContainerStatuses", "/status/containerStatuses"] {
        for c in array(o, path) {
            let waiting = c.pointer("/state/waiting/reason").and_then(Value::as_str);
            if let Some(w) = waiting.filter(|w| WAITING_REASONS.contains(w)) {
                seen.triggers.push(trigger(r, w, None));
                continue;
            }
            if let Some(term) = c.pointer("/state/terminated") {
                let reason = str_at(term, "reason");
                if TERMINATED_REASONS.contains(&reason) && phase != "Succeeded" {
                    seen.triggers
                        .push(trigger(r, reason, time_at(term, "finishedAt")));
                    continue;
                }
            }
            // A recent failed run of a container that is running again (restarts between
            // back-offs): counts for the event window.
            if let Some(last) = c.pointer("/lastState/terminated") {
                let reason = str_at(last, "reason");
                if TERMINATED_REASONS.contains(&reason) {
                    if let Some(at) = time_at(last, "finishedAt") {
                        if now.duration_since(at) < t.event_window {
                            seen.timed = true;
                            seen.triggers.push(trigger(r, reason, Some(at)));
                        }
                    }
                }
            }
        }
    }
    let cond = |ty: &str| {
        array(o, "/status/conditions")
            .iter()
            .find(|c| str_at(c, "type") == ty)
            .copied()
    };
    match phase {
        "Pending" => {
            if let Some(c) = cond("PodScheduled").filter(|c| str_at(c, "status") == "False") {
                let reason = non_empty(str_at(c, "reason"), "Unschedulable");
                seen.triggers
                    .push(trigger(r, reason, time_at(c, "lastTransitionTime")));
            } else if seen.triggers.is_empty() {
                let since = created(o).unwrap_or(now);
                seen.timed = true;
                if now.duration_since(since) >= t.pending {
                    seen.triggers
                        .push(trigger(r, "PendingTooLong", Some(since)));
                }
            }
        }
        "Failed" => {
            let at = cond("Ready")
                .and_then(|c| time_at(c, "lastTransitionTime"))
                .or_else(|| time_ptr(o, "/status/startTime"));
            if at.is_none_or(|at| now.duration_since(at) < t.event_window) {
                let reason = non_empty(str_ptr(o, "/status/reason"), "PodFailed");
                seen.timed = true;
                seen.triggers.push(trigger(r, reason, at));
            }
        }
        "Running" if seen.triggers.is_empty() => {
            if let Some(c) = cond("Ready").filter(|c| str_at(c, "status") == "False") {
                let since = time_at(c, "lastTransitionTime").unwrap_or(now);
                seen.timed = true;
                if now.duration_since(since) >= t.not_ready {
                    seen.triggers.push(trigger(r, "NotReady", Some(since)));
                }
            }
        }
        _ => {}
    }
}

fn node(o: &KubeObject, r: &ObjectRef, seen: &mut Seen) {
    for c in array(o, "/status/conditions") {
        let (ty, status) = (str_at(c, "type"), str_at(c, "status"));
        let bad = match ty {
            "Ready" => status != "True",
            "MemoryPressure" | "DiskPressure" | "PIDPressure" | "NetworkUnavailable" => {
                status == "True"
            }
            _ => false,
        };
        if bad {
            let reason = if ty == "Ready" {
                "NodeNotReady".to_string()
            } else {
                format!("Node{ty}")
            };
            seen.triggers
                .push(trigger(r, &reason, time_at(c, "lastTransitionTime")));
        }
    }
}

fn conditions(o: &KubeObject, r: &ObjectRef, now: Timestamp, t: Thresholds, seen: &mut Seen) {
    for c in array(o, "/status/conditions") {
        let (ty, status, reason) = (str_at(c, "type"), str_at(c, "status"), str_at(c, "reason"));
        let at = time_at(c, "lastTransitionTime");
        match (ty, status) {
            ("Progressing", "False") => {
                seen.triggers.push(trigger(
                    r,
                    non_empty(reason, "ProgressDeadlineExceeded"),
                    at,
                ));
            }
            ("ReplicaFailure", "True") => {
                seen.triggers
                    .push(trigger(r, non_empty(reason, "FailedCreate"), at));
            }
            ("Available", "False") => {
                let since = at.unwrap_or(now);
                seen.timed = true;
                if now.duration_since(since) >= t.not_ready {
                    seen.triggers.push(trigger(
                        r,
                        non_empty(reason, "MinimumReplicasUnavailable"),
                        at,
                    ));
                }
            }
            _ => {}
        }
    }
}

fn event(store: &Store, o: &KubeObject, now: Timestamp, t: Thresholds, seen: &mut Seen) {
    if str_ptr(o, "/type") != "Warning" {
        return;
    }
    let reason = str_ptr(o, "/reason");
    if !WARNING_REASONS.contains(&reason) {
        return;
    }
    let count = o
        .pointer("/count")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .max(
            o.pointer("/series/count")
                .and_then(Value::as_u64)
                .unwrap_or(1),
        );
    if reason == "Unhealthy" && count < 3 {
        return;
    }
    let at = [
        "/lastTimestamp",
        "/series/lastObservedTime",
        "/eventTime",
        "/firstTimestamp",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find_map(|p| time_ptr(o, p));
    let Some(at) = at else { return };
    if now.duration_since(at) >= t.event_window {
        return; // old news: what it was about has had time to recover or show in state
    }
    let Some(kind) = o.pointer("/involvedObject/kind").and_then(Value::as_str) else {
        return;
    };
    let name = str_ptr(o, "/involvedObject/name");
    let ns = o
        .pointer("/involvedObject/namespace")
        .and_then(Value::as_str)
        .or(o.namespace());
    let about = match KindInfo::lookup(kind) {
        Some(k) if k.namespaced => ObjectRef::new(k.kind, ns.unwrap_or(""), name),
        Some(k) => ObjectRef::cluster(k.kind, name),
        None => return,
    };
    // An event about a pod that is gone says nothing about what runs now; nor does one about
    // an object that has become Ready (a pod) or Available (a workload) since it last happened.
    match store.get(&about) {
        None if about.kind == "Pod" => return,
        Some(o) if recovered_since(o, at) => return,
        _ => {}
    }
    seen.timed = true;
    let mut tr = trigger(&about, reason, Some(at));
    tr.object = about;
    seen.triggers.push(tr);
}

/// Whether an object's Ready (pods, nodes) or Available (workloads) condition turned True at or
/// after `at`.
fn recovered_since(o: &KubeObject, at: Timestamp) -> bool {
    array(o, "/status/conditions").iter().any(|c| {
        matches!(str_at(c, "type"), "Ready" | "Available")
            && str_at(c, "status") == "True"
            && time_at(c, "lastTransitionTime").is_some_and(|t| t >= at)
    })
}

/// The diagnosis target for a symptom: the workload of a pod or ReplicaSet, the object itself
/// for other kinds a user may diagnose; none for kinds that cannot be diagnosed.
fn target_of(store: &Store, source: &ObjectRef, first: &Trigger) -> Option<ObjectRef> {
    // An event's symptom is about the object it names, an Endpoints' about its Service.
    let about = if matches!(source.kind.as_str(), "Event" | "Endpoints") {
        &first.object
    } else {
        source
    };
    let t = match about.kind.as_str() {
        "Pod" | "ReplicaSet" => store.workload_of(about),
        _ => about.clone(),
    };
    DIAGNOSABLE.contains(&t.kind.as_str()).then_some(t)
}

fn trigger(r: &ObjectRef, reason: &str, since: Option<Timestamp>) -> Trigger {
    Trigger {
        object: r.clone(),
        reason: reason.to_string(),
        since,
    }
}

fn array<'a>(o: &'a KubeObject, ptr: &str) -> Vec<&'a Value> {
    o.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn str_ptr<'a>(o: &'a KubeObject, ptr: &str) -> &'a str {
    o.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn num(o: &KubeObject, ptr: &str) -> Option<i64> {
    o.pointer(ptr).and_then(Value::as_i64)
}

fn non_empty<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() {
        default
    } else {
        s
    }
}

fn time_at(v: &Value, key: &str) -> Option<Timestamp> {
    v.get(key)?.as_str()?.parse().ok()
}

fn time_ptr(o: &KubeObject, ptr: &str) -> Option<Timestamp> {
    o.pointer(ptr)?.as_str()?.parse().ok()
}

fn created(o: &KubeObject) -> Option<Timestamp> {
    time_ptr(o, "/metadata/creationTimestamp")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::event::{EventType, WatchEvent};
    use serde_json::json;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn add(store: &mut Store, o: Value) -> ObjectRef {
        let r = KubeObject::ref_of(&o);
        store.apply(WatchEvent {
            kind: EventType::Added,
            object: o,
        });
        r
    }

    fn pod(ready: bool, since: Timestamp) -> Value {
        json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "web-1-a", "namespace": "n", "creationTimestamp": t(-3600).to_string(),
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "controller": true}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": since.to_string()}],
                "containerStatuses": [{"name": "app", "ready": ready, "restartCount": 0, "state": {"running": {}}}]}})
    }

    fn backoff(at: Timestamp) -> Value {
        json!({"kind": "Event", "apiVersion": "v1", "metadata": {"name": "web-1-a.1", "namespace": "n"},
            "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
            "involvedObject": {"kind": "Pod", "namespace": "n", "name": "web-1-a"}, "count": 4, "lastTimestamp": at.to_string()})
    }

    #[test]
    fn a_warning_counts_until_its_object_recovers_or_it_ages_out() {
        let mut s = Store::default();
        add(
            &mut s,
            json!({"kind": "ReplicaSet", "apiVersion": "apps/v1", "metadata": {"name": "web-1", "namespace": "n",
            "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": true}]}}),
        );
        add(
            &mut s,
            json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "web", "namespace": "n"}}),
        );
        let p = add(&mut s, pod(true, t(-3600)));
        let e = add(&mut s, backoff(t(0)));
        let mut tr = Tracker::new(Thresholds::default());
        tr.update(&s, &[(p.clone(), 1, None), (e.clone(), 2, None)], t(10), 2);
        let web = ObjectRef::new("Deployment", "n", "web");
        let sym = tr.symptomatic();
        assert_eq!(
            sym[&web][0].reason, "BackOff",
            "the pod's workload is the target"
        );
        assert_eq!(tr.onset(&web), Some((2, t(10))));
        // Old news: past the event window it no longer counts.
        tr.update(&s, &[], t(10 + 300), 3);
        assert!(tr.symptomatic().is_empty());
        // A fresh one counts again — until the pod turns Ready after it.
        add(&mut s, backoff(t(400)));
        tr.update(&s, &[(e.clone(), 4, None)], t(405), 4);
        assert!(!tr.symptomatic().is_empty());
        add(&mut s, pod(true, t(410)));
        tr.update(&s, &[(p, 5, None)], t(411), 5);
        assert!(tr.symptomatic().is_empty(), "{:?}", tr.symptomatic());
    }

    #[test]
    fn not_ready_counts_after_its_grace_period() {
        let mut s = Store::default();
        let p = add(&mut s, pod(false, t(0)));
        let mut tr = Tracker::new(Thresholds::default());
        tr.update(&s, &[(p.clone(), 1, None)], t(30), 1);
        assert!(tr.symptomatic().is_empty(), "starting pods are not faults");
        tr.update(&s, &[], t(61), 9);
        let sym = tr.symptomatic();
        let (target, triggers) = sym.iter().next().unwrap();
        assert_eq!(
            target,
            &ObjectRef::new("ReplicaSet", "n", "web-1"),
            "the pod's controller, when its owner is not known"
        );
        assert_eq!(triggers[0].reason, "NotReady");
        assert_eq!(
            tr.onset(target),
            Some((9, t(61))),
            "onset when the grace ended"
        );
    }
}
