//! Controller- and pod-state symptoms that no container reports: a workload short of the
//! replicas it asks for, a workload scaled to zero behind a Service, a pod the scheduler never
//! looked at, a pod stuck before its containers start.
//!
//! These are what keep a visibly broken target from being called healthy: the replica counts
//! and conditions are written by the Deployment, StatefulSet and DaemonSet controllers
//! (`pkg/controller/deployment/sync.go`, `statefulset/stateful_set_status.go`,
//! `daemon/daemon_controller.go` in kubernetes/kubernetes), the `PodScheduled` condition by the
//! scheduler (`pkg/scheduler/schedule_one.go`), and `ContainerCreating` by the kubelet
//! (`pkg/kubelet/kubelet_pods.go`).

use k8s_openapi::api::core::v1::Pod;
use metakube_shared::{Category, EvidenceSource, ObjectRef};

use super::{human_secs, live_events, Signal};
use crate::snapshot::{Cluster, Obj};

/// How long a pod may wait for the scheduler before that is a symptom (the scheduler binds
/// a schedulable pod within seconds; a minute leaves room for a busy queue).
const UNSCHEDULED_AFTER_SECS: f64 = 60.0;
/// How long a pod may stay in `ContainerCreating` before that is a symptom (image pulls and
/// volume attachment of healthy pods finish well within this).
const CREATING_AFTER_SECS: f64 = 120.0;

pub(super) fn workload_signals(c: &Cluster, out: &mut Vec<Signal>) {
    for d in &c.deployments {
        let spec = d.o.spec.as_ref();
        let want = spec.and_then(|s| s.replicas).unwrap_or(1);
        let labels = spec.and_then(|s| s.template.metadata.as_ref()?.labels.as_ref());
        let st = d.o.status.as_ref();
        let available = st.and_then(|s| s.available_replicas).unwrap_or(0);
        let conditions: Vec<_> = st
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .collect();
        shortfall(
            out,
            &d.r,
            want,
            available,
            "available",
            conditions
                .iter()
                .filter(|c| {
                    (c.type_ == "Available" && c.status == "False")
                        || (c.type_ == "ReplicaFailure" && c.status == "True")
                        || (c.type_ == "Progressing"
                            && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
                })
                .map(|c| {
                    format!(
                        "{}={} ({}): {}",
                        c.type_,
                        c.status,
                        c.reason.as_deref().unwrap_or(""),
                        c.message.as_deref().unwrap_or("")
                    )
                })
                .collect(),
        );
        if want == 0 {
            scaled_to_zero(c, out, &d.r, labels);
        }
    }
    for s in &c.statefulsets {
        let spec = s.o.spec.as_ref();
        let want = spec.and_then(|s| s.replicas).unwrap_or(1);
        let ready =
            s.o.status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
        shortfall(out, &s.r, want, ready, "ready", Vec::new());
        if want == 0 {
            let labels = spec.and_then(|s| s.template.metadata.as_ref()?.labels.as_ref());
            scaled_to_zero(c, out, &s.r, labels);
        }
    }
    for d in &c.daemonsets {
        let st = d.o.status.as_ref();
        let want = st.map_or(0, |s| s.desired_number_scheduled);
        let ready = st.map_or(0, |s| s.number_ready);
        shortfall(out, &d.r, want, ready, "ready", Vec::new());
    }
    for rs in &c.replicasets {
        stalled_replicaset(c, rs, out);
    }
    for p in &c.pods {
        pod_state_signals(c, p, out);
    }
}

/// A ReplicaSet that wants more pods than exist, with no FailedCreate to say why: the
/// ReplicaSet controller (kube-controller-manager) is not acting on it. A quota or admission
/// refusal always leaves a FailedCreate event (`pkg/controller/replicaset/replica_set.go`).
fn stalled_replicaset(
    c: &Cluster,
    rs: &Obj<k8s_openapi::api::apps::v1::ReplicaSet>,
    out: &mut Vec<Signal>,
) {
    let want = rs.o.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if want <= 0 || !c.pods_read(rs.r.namespace.as_deref().unwrap_or("")) {
        return;
    }
    let have = c
        .pods_controlled_by(&rs.r)
        .filter(|p| p.o.metadata.deletion_timestamp.is_none())
        .count() as i32;
    if have >= want || !live_events(c, &rs.r, "FailedCreate").is_empty() {
        return;
    }
    let age =
        rs.o.metadata
            .creation_timestamp
            .as_ref()
            .map_or(0.0, |t| (c.now - t.0).get_seconds() as f64);
    if age < UNSCHEDULED_AFTER_SECS {
        return;
    }
    out.push(
        Signal::new(
            "replicas_not_created",
            &rs.r,
            EvidenceSource::Status,
            format!(
                "ReplicaSet {} wants {want} pods, {have} exist, and no FailedCreate event says why: its controller has not acted",
                rs.r.name
            ),
            Some("spec.replicas".into()),
        )
        .value(f64::from(want - have))
        .hint(Category::System),
    );
}

fn shortfall(
    out: &mut Vec<Signal>,
    r: &ObjectRef,
    want: i32,
    have: i32,
    what: &str,
    conditions: Vec<String>,
) {
    if want <= 0 || have >= want {
        return;
    }
    let mut detail = format!("{} {} has {have} of {want} replicas {what}", r.kind, r.name);
    if !conditions.is_empty() {
        detail.push_str("; ");
        detail.push_str(&conditions.join("; "));
    }
    let mut s = Signal::new(
        "workload_unavailable",
        r,
        EvidenceSource::Status,
        detail,
        Some(format!("status.{what}Replicas")),
    )
    .value(f64::from(want - have));
    s.strength = 0.5;
    out.push(s);
}

/// A workload scaled to 0 is a symptom only when something expects it to serve: a Service
/// whose selector its pod template satisfies.
fn scaled_to_zero(
    c: &Cluster,
    out: &mut Vec<Signal>,
    r: &ObjectRef,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) {
    let Some(svc) = c
        .services_selecting(r.namespace.as_deref().unwrap_or(""), labels)
        .into_iter()
        .next()
    else {
        return;
    };
    out.push(
        Signal::new(
            "scaled_to_zero",
            r,
            EvidenceSource::Spec,
            format!(
                "{} {} is scaled to 0 replicas while Service {} selects its pods",
                r.kind, r.name, svc.r.name
            ),
            Some("spec.replicas".into()),
        )
        .peer(svc.r.name.clone())
        .hint(Category::Configuration),
    );
}

fn age_secs(c: &Cluster, p: &Obj<Pod>) -> f64 {
    p.o.metadata
        .creation_timestamp
        .as_ref()
        .map_or(0.0, |t| (c.now - t.0).get_seconds() as f64)
}

fn pod_state_signals(c: &Cluster, p: &Obj<Pod>, out: &mut Vec<Signal>) {
    let Some(status) = p.o.status.as_ref() else {
        return;
    };
    if status.phase.as_deref() != Some("Pending") || p.o.metadata.deletion_timestamp.is_some() {
        return;
    }
    let node = p.o.spec.as_ref().and_then(|s| s.node_name.clone());
    let age = age_secs(c, p);
    match node {
        None => {
            // The scheduler writes PodScheduled (True or False) on every pod it has tried; a
            // pod without the condition and without a FailedScheduling event was never seen.
            let tried = status
                .conditions
                .iter()
                .flatten()
                .any(|cond| cond.type_ == "PodScheduled")
                || !live_events(c, &p.r, "FailedScheduling").is_empty();
            if tried || age < UNSCHEDULED_AFTER_SECS {
                return;
            }
            let scheduler =
                p.o.spec
                    .as_ref()
                    .and_then(|s| s.scheduler_name.clone())
                    .unwrap_or_else(|| "default-scheduler".into());
            out.push(
                Signal::new(
                    "pod_unscheduled",
                    &p.r,
                    EvidenceSource::Status,
                    format!(
                        "pod has been Pending for {} with no node, no PodScheduled condition and no scheduling event: {scheduler} has not tried to place it",
                        human_secs(age)
                    ),
                    Some("status.conditions".into()),
                )
                .peer(scheduler)
                .value(age)
                .hint(Category::System),
            );
        }
        Some(node) => {
            let creating = status
                .container_statuses
                .iter()
                .flatten()
                .chain(status.init_container_statuses.iter().flatten())
                .filter_map(|cs| cs.state.as_ref()?.waiting.as_ref()?.reason.as_deref())
                .find(|r| matches!(*r, "ContainerCreating" | "PodInitializing"));
            let no_status = status.container_statuses.as_ref().is_none_or(Vec::is_empty);
            if age < CREATING_AFTER_SECS || !(creating.is_some() || no_status) {
                return;
            }
            out.push(
                Signal::new(
                    "pod_stuck_creating",
                    &p.r,
                    EvidenceSource::Status,
                    format!(
                        "pod was bound to node {node} {} ago and its containers have not started ({})",
                        human_secs(age),
                        creating.unwrap_or("no container status reported")
                    ),
                    Some("status.containerStatuses[].state.waiting.reason".into()),
                )
                .peer(node)
                .value(age),
            );
        }
    }
}
