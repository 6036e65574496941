//! Root-cause search: from the target's signals, candidate causes come from the domain graph;
//! each is verified on the instance graph, at most 3 hops away (caller → Service → its pods →
//! their node or workload), and ranked.
//!
//! A verifier checks the faulty *configuration* in the object where the fault lives (the pod
//! template's limit, the Service's selector, the probe's port), not only the symptom, so a
//! snapshot with the fix applied no longer reports the cause: that is how fixes are validated.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use metakube_shared::{Category, Evidence, EvidenceSource, ObjectRef};
use petgraph::Direction;
use serde_json::{json, Value};

use super::domain::{Cause, DomainGraph, TEMPLATE_WEIGHT};
use super::instance::{pod_spec_refs, Edge, KubeGraph};
use crate::signals::Signal;
use crate::snapshot::{label_selector_matches, parse_quantity, selector_matches, Cluster, Obj};

mod control_plane;
mod dependencies;
mod policies;
mod probes;
mod template;
mod volumes;

/// Most hops a causal path may take from the target.
pub const MAX_HOPS: usize = 3;

/// One verified cause.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Reason code (a cause of the domain graph).
    pub reason: String,
    /// Category.
    pub category: Category,
    /// Where the fault lives.
    pub object: ObjectRef,
    /// Score, 0–1.
    pub score: f64,
    /// One sentence.
    pub summary: String,
    /// Evidence, strongest first.
    pub evidence: Vec<Evidence>,
    /// Symptom codes this cause explains.
    pub symptoms: Vec<String>,
    /// The objects on the causal path, target first.
    pub path: Vec<ObjectRef>,
    /// Fix kind.
    pub fix: String,
    /// Parameters the remediation stage needs (container index, new values, …).
    pub params: BTreeMap<String, Value>,
    /// Why it ranks where it does.
    pub note: String,
    /// The episode whose learned cause this is (None: a built-in verifier found it).
    pub learned_from: Option<u64>,
}

struct Verified {
    object: ObjectRef,
    strength: f64,
    summary: String,
    evidence: Vec<Evidence>,
    params: BTreeMap<String, Value>,
    via: Vec<ObjectRef>,
}

impl Verified {
    fn new(object: ObjectRef, strength: f64, summary: String) -> Verified {
        Verified {
            object,
            strength,
            summary,
            evidence: Vec::new(),
            params: BTreeMap::new(),
            via: Vec::new(),
        }
    }
    fn ev(
        mut self,
        source: EvidenceSource,
        object: &ObjectRef,
        detail: String,
        pointer: &str,
    ) -> Verified {
        self.evidence.push(Evidence {
            source,
            object: object.clone(),
            detail,
            pointer: Some(pointer.to_string()),
        });
        self
    }
    fn param(mut self, k: &str, v: Value) -> Verified {
        self.params.insert(k.to_string(), v);
        self
    }
}

/// The search context: one snapshot, its graph, the knowledge and the signals.
pub struct Search<'a> {
    c: &'a Cluster,
    g: &'a KubeGraph,
    d: &'a DomainGraph,
    signals: &'a [Signal],
    /// The signals per object: verifiers ask "what else does this pod show" for every
    /// signal, and a scan each time would grow with the square of the pods.
    by_object: HashMap<&'a ObjectRef, Vec<&'a Signal>>,
}

/// The objects a target stands for: itself, its owners, what it owns, and the pods it runs
/// (or selects, for a Service; or routes to, for an Ingress; or mounts, for a PVC).
pub fn scope_of(c: &Cluster, g: &KubeGraph, target: &ObjectRef) -> Vec<ObjectRef> {
    let mut out = vec![target.clone()];
    out.extend(c.owner_chain(target));
    let mut frontier = vec![target.clone()];
    match target.kind.as_str() {
        "Service" => frontier.extend(
            g.neighbors(target, Edge::Selects, Direction::Outgoing)
                .into_iter()
                .cloned(),
        ),
        "Ingress" => {
            for s in g.neighbors(target, Edge::RoutesTo, Direction::Outgoing) {
                out.push(s.clone());
                frontier.extend(
                    g.neighbors(s, Edge::Selects, Direction::Outgoing)
                        .into_iter()
                        .cloned(),
                );
            }
        }
        "PersistentVolumeClaim" => frontier.extend(
            g.neighbors(target, Edge::Mounts, Direction::Incoming)
                .into_iter()
                .cloned(),
        ),
        "Node" => frontier.extend(
            g.neighbors(target, Edge::RunsOn, Direction::Incoming)
                .into_iter()
                .cloned(),
        ),
        _ => {}
    }
    let mut have: HashSet<ObjectRef> = out.iter().cloned().collect();
    for _ in 0..3 {
        let mut next = Vec::new();
        for r in &frontier {
            if have.insert(r.clone()) {
                out.push(r.clone());
            }
            for o in g.neighbors(r, Edge::Owns, Direction::Outgoing) {
                if o.kind != "Container" && !have.contains(o) {
                    next.push(o.clone());
                }
            }
        }
        frontier = next;
    }
    for r in frontier {
        if have.insert(r.clone()) {
            out.push(r);
        }
    }
    // A Service meant for the target's pods that selects none of them (a selector gone
    // wrong) shows the target's fault from the callers' side: every selector key is a label of
    // the target's pods with a close value, or the Service carries the workload's name.
    if let Some((spec_labels, ns)) = matches!(
        target.kind.as_str(),
        "Deployment" | "StatefulSet" | "DaemonSet"
    )
    .then(|| c.template_labels(target))
    .flatten()
    .zip(target.namespace.as_deref())
    {
        for svc in c
            .services
            .iter()
            .filter(|s| s.r.namespace.as_deref() == Some(ns))
        {
            let Some(sel) = svc
                .o
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .filter(|s| !s.is_empty())
            else {
                continue;
            };
            if selector_matches(sel, Some(spec_labels))
                || !g
                    .neighbors(&svc.r, Edge::Selects, Direction::Outgoing)
                    .is_empty()
            {
                continue;
            }
            let close = sel.iter().all(|(k, v)| {
                spec_labels
                    .get(k)
                    .is_some_and(|pv| label_similarity(v, pv) >= 0.5)
            });
            let named =
                svc.r.name == target.name && sel.keys().any(|k| spec_labels.contains_key(k));
            if (close || named) && !out.contains(&svc.r) {
                out.push(svc.r.clone());
            }
        }
    }
    // Owners of selected pods (Service targets) belong too.
    let pods: Vec<ObjectRef> = out.iter().filter(|r| r.kind == "Pod").cloned().collect();
    for p in pods {
        for o in c.owner_chain(&p) {
            if !out.contains(&o) {
                out.push(o);
            }
        }
    }
    out
}

impl<'a> Search<'a> {
    /// A search over one snapshot.
    pub fn new(
        c: &'a Cluster,
        g: &'a KubeGraph,
        d: &'a DomainGraph,
        signals: &'a [Signal],
    ) -> Search<'a> {
        let mut by_object: HashMap<&'a ObjectRef, Vec<&'a Signal>> = HashMap::new();
        for sig in signals {
            by_object.entry(&sig.object).or_default().push(sig);
        }
        Search {
            c,
            g,
            d,
            signals,
            by_object,
        }
    }

    /// The signals an object shows, in extraction order.
    fn on(&self, r: &ObjectRef) -> impl Iterator<Item = &'a Signal> + '_ {
        self.by_object.get(r).into_iter().flatten().copied()
    }

    /// Ranked findings for the target (whose scope is `scope`, see [`scope_of`]), best first,
    /// merged per (reason, object).
    pub fn run(&self, target: &ObjectRef, scope: &[ObjectRef]) -> Vec<Finding> {
        let mut raw = self.analyze(scope, vec![target.clone()], 0);
        raw.extend(self.relayed_proxy_failures(target, scope));
        // Nothing in the target's own scope: the target may be a bystander whose owner is
        // fine; look at what the target itself references (e.g. a missing ConfigMap).
        raw.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut merged = merge(raw);
        self.demote_explained(&mut merged);
        merged.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.reason.cmp(&b.reason))
        });
        annotate(&mut merged);
        merged
    }

    fn analyze(&self, scope: &[ObjectRef], path: Vec<ObjectRef>, depth: usize) -> Vec<Finding> {
        let mut out = Vec::new();
        let in_scope: HashSet<&ObjectRef> = scope.iter().collect();
        let mut scoped: Vec<&Signal> = self
            .signals
            .iter()
            .filter(|s| in_scope.contains(&s.object))
            .collect();
        // Hop to the nodes the scope's pods run on.
        let nodes: BTreeSet<&ObjectRef> = scope
            .iter()
            .filter(|r| r.kind == "Pod")
            .flat_map(|p| self.g.neighbors(p, Edge::RunsOn, Direction::Outgoing))
            .collect();
        scoped.extend(self.signals.iter().filter(|s| nodes.contains(&s.object)));
        // And to the claims they mount.
        let pvcs: BTreeSet<&ObjectRef> = scope
            .iter()
            .filter(|r| r.kind == "Pod")
            .flat_map(|p| self.g.neighbors(p, Edge::Mounts, Direction::Outgoing))
            .filter(|r| r.kind == "PersistentVolumeClaim")
            .collect();
        scoped.extend(self.signals.iter().filter(|s| pvcs.contains(&s.object)));
        for sig in scoped {
            for (cause, w) in self.candidates(sig) {
                for mut v in self.verify(cause, sig, scope, &path, depth) {
                    // A finding from a recursive search keeps its own cause.
                    let own = v
                        .params
                        .remove("_reason")
                        .and_then(|r| r.as_str().and_then(|r| self.d.cause(r)));
                    // A cause verified further down the path already carries its own score;
                    // the link to it (a verified Service → backend hop) costs little.
                    let score = match own {
                        Some(_) => v.strength * (0.85 + 0.15 * w),
                        None => w * v.strength * sig.strength.max(0.5),
                    };
                    let cause = own.unwrap_or(cause);
                    let mut p = path.clone();
                    p.extend(v.via.iter().cloned());
                    if p.last() != Some(&v.object) {
                        p.push(v.object.clone());
                    }
                    let mut evidence = vec![sig.evidence.clone()];
                    evidence.extend(v.evidence);
                    // A template finding takes the template's category (one cause code may be
                    // named by templates of several categories).
                    let category = match (&sig.rule, own) {
                        (Some(hit), None) if hit.cause == cause.reason => hit.category,
                        _ => cause.category,
                    };
                    out.push(Finding {
                        reason: cause.reason.clone(),
                        category,
                        object: v.object,
                        score: score.clamp(0.0, 0.99),
                        summary: v.summary,
                        evidence,
                        symptoms: vec![sig.code.clone()],
                        path: p,
                        fix: cause.fix.clone(),
                        params: v.params,
                        note: String::new(),
                        learned_from: None,
                    });
                }
            }
        }
        // Follow the Services the scope's pods call when they are failing (≤ 3 hops).
        if depth + 1 < MAX_HOPS {
            out.extend(self.follow_dependencies(scope, &path, depth));
        }
        out
    }

    /// The causes a signal may have: the domain graph's, where a cause that comes from a
    /// template only takes the signals its own template produced; and a template's own cause
    /// for the signals it produced.
    fn candidates(&self, sig: &'a Signal) -> Vec<(&'a Cause, f64)> {
        let own = sig.rule.as_ref().map(|h| h.cause.as_str());
        let mut out: Vec<(&Cause, f64)> = self
            .d
            .causes_for(&sig.code)
            .filter(|(c, _)| c.source.is_empty() || own == Some(c.reason.as_str()))
            .collect();
        if let Some(c) = own.and_then(|r| self.d.cause(r)) {
            if !out.iter().any(|(o, _)| o.reason == c.reason) {
                out.push((c, TEMPLATE_WEIGHT));
            }
        }
        out
    }

    /// Failing pods whose logs name no peer may still fail because a Service they depend on
    /// (from env, args, ConfigMaps) has no ready backend.
    fn follow_dependencies(
        &self,
        scope: &[ObjectRef],
        path: &[ObjectRef],
        depth: usize,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let failing: Vec<&ObjectRef> = scope
            .iter()
            .filter(|r| r.kind == "Pod")
            .filter(|r| self.on(r).any(|s| is_failure(&s.code)))
            .collect();
        let mut seen = BTreeSet::new();
        for pod in failing {
            for svc in self.g.neighbors(pod, Edge::DependsOn, Direction::Outgoing) {
                if !seen.insert(svc.clone()) || path.contains(svc) {
                    continue;
                }
                let named_in_logs = self.on(pod).any(|s| {
                    s.peer.as_deref().is_some_and(|p| {
                        self.c.resolve_service(p, ns_of(pod)).as_ref() == Some(svc)
                    })
                });
                if named_in_logs {
                    continue; // handled through the log symptom
                }
                if let Some(sig) = self.on(svc).find(|s| s.code.starts_with("service_no")) {
                    let mut p = path.to_vec();
                    p.push(svc.clone());
                    for (cause, w) in self.d.causes_for(&sig.code) {
                        for v in self.verify(cause, sig, std::slice::from_ref(svc), &p, depth + 1) {
                            let mut evidence = vec![sig.evidence.clone()];
                            evidence.push(Evidence {
                                source: EvidenceSource::Graph,
                                object: pod.clone(),
                                detail: format!(
                                    "pod {} depends on Service {} (named in its configuration)",
                                    pod.name, svc.name
                                ),
                                pointer: Some("depends_on".into()),
                            });
                            evidence.extend(v.evidence);
                            let mut pp = p.clone();
                            pp.extend(v.via);
                            if pp.last() != Some(&v.object) {
                                pp.push(v.object.clone());
                            }
                            out.push(Finding {
                                reason: cause.reason.clone(),
                                category: cause.category,
                                object: v.object,
                                score: (w * v.strength * 0.8).clamp(0.0, 0.99),
                                summary: v.summary,
                                evidence,
                                symptoms: vec![sig.code.clone()],
                                path: pp,
                                fix: cause.fix.clone(),
                                params: v.params,
                                note: String::new(),
                                learned_from: None,
                            });
                        }
                    }
                }
            }
        }
        out
    }

    /// Generic causes at a caller (its own crash, an unreachable dependency) lose weight when
    /// a verified cause further down the path explains the same symptoms.
    fn demote_explained(&self, findings: &mut [Finding]) {
        let deeper: Vec<(usize, BTreeSet<String>, String)> = findings
            .iter()
            .filter(|f| {
                f.path.len() > 2
                    || matches!(
                        f.object.kind.as_str(),
                        "Service" | "NetworkPolicy" | "Node" | "ConfigMap"
                    )
            })
            .map(|f| {
                (
                    f.path.len(),
                    f.symptoms.iter().cloned().collect(),
                    format!("{} at {}", f.reason, f.object),
                )
            })
            .collect();
        for f in findings.iter_mut() {
            if !matches!(
                f.reason.as_str(),
                "ApplicationCrash" | "DependencyUnreachable" | "BackendNotReady"
            ) {
                continue;
            }
            let explained = deeper.iter().find(|(len, syms, _)| {
                *len > f.path.len()
                    || syms
                        .iter()
                        .any(|s| f.symptoms.contains(s) && s.starts_with("log_"))
            });
            if let Some((_, _, by)) = explained {
                f.score *= 0.5;
                f.note = format!("explained by {by}");
            }
        }
        // A stronger cause on another object, read from the same scope's logs (the database the
        // crashing caller names), explains a plain crash too.
        let stronger: Vec<(ObjectRef, f64, String)> = findings
            .iter()
            .filter(|g| g.symptoms.iter().any(|s| s.starts_with("log_")))
            .map(|g| {
                (
                    g.object.clone(),
                    g.score,
                    format!("{} at {}", g.reason, g.object),
                )
            })
            .collect();
        for f in findings
            .iter_mut()
            .filter(|f| f.reason == "ApplicationCrash" && f.note.is_empty())
        {
            if let Some((_, _, by)) = stronger
                .iter()
                .find(|(o, score, _)| *o != f.object && *score > f.score)
            {
                f.score *= 0.5;
                f.note = format!("explained by {by}");
            }
        }
        // A plain crash is the least specific answer: a more specific cause verified on the
        // same object (an unreachable dependency, a refused configuration) says why it crashes.
        let specific: Vec<(ObjectRef, String)> = findings
            .iter()
            .filter(|f| f.reason != "ApplicationCrash" && f.score >= 0.25)
            .map(|f| (f.object.clone(), f.reason.clone()))
            .collect();
        for f in findings
            .iter_mut()
            .filter(|f| f.reason == "ApplicationCrash" && f.note.is_empty())
        {
            if let Some((_, r)) = specific.iter().find(|(o, _)| *o == f.object) {
                f.score *= 0.5;
                f.note = format!("{r} on the same object says why it fails");
            }
        }
    }

    fn verify(
        &self,
        cause: &Cause,
        sig: &Signal,
        scope: &[ObjectRef],
        path: &[ObjectRef],
        depth: usize,
    ) -> Vec<Verified> {
        // A template's signal: the hand-written check of its cause when there is one (what it
        // rejects stays rejected: it reads the configuration itself); else the template's own
        // placement.
        if let Some(hit) = sig.rule.as_ref().filter(|h| h.cause == cause.reason) {
            if cause.source.is_empty() {
                return self.verify_builtin(cause, sig, scope, path, depth);
            }
            return self
                .template_cause(cause, hit.at, sig)
                .into_iter()
                .collect();
        }
        if !cause.source.is_empty() {
            return Vec::new();
        }
        self.verify_builtin(cause, sig, scope, path, depth)
    }

    fn verify_builtin(
        &self,
        cause: &Cause,
        sig: &Signal,
        scope: &[ObjectRef],
        path: &[ObjectRef],
        depth: usize,
    ) -> Vec<Verified> {
        let one = |v: Option<Verified>| v.into_iter().collect::<Vec<_>>();
        match cause.reason.as_str() {
            "MemoryLimitTooLow" => one(self.memory_limit(sig, true)),
            "MemoryLeak" => one(self.memory_limit(sig, false)),
            "QuotaExceeded" => one(self.quota(sig)),
            "LimitRangeViolation" => one(self.limitrange(sig)),
            "EvictedForMemory" => one(self.at_workload(sig, 0.7, "pods are evicted for memory: the node ran short and these pods use more than they request")),
            "HpaAtMaxReplicas" => one(self.hpa(sig)),
            "CpuThrottled" => one(self.cpu_throttled(sig)),
            "SelectorMatchesNoPods" => one(self.peer_service(sig, path).and_then(|s| self.selector_mismatch(&s))),
            "TargetPortMismatch" => one(self.peer_service(sig, path).and_then(|s| self.target_port_mismatch(&s))),
            "NetworkPolicyBlocks" => one(self.peer_service(sig, path).and_then(|s| self.netpol_blocks(&s, &sig.object, sig.code == "log_timeout"))),
            "BackendNotReady" => self.backend_not_ready(sig, path, depth),
            "ServiceNotFound" => one(self.service_not_found(sig)),
            "IngressBackendMissing" => one(Some(Verified::new(sig.object.clone(), 1.0, sig.detail.clone()).param("service", json!(sig.peer)))),
            "InsufficientResources" | "UntoleratedTaint" | "NodeSelectorMismatch" | "PodAffinityUnsatisfied" | "PodAntiAffinityConflict" => {
                one(self.scheduling(cause, sig))
            }
            "ImageNotFound" | "ImagePullUnauthorized" | "InvalidImageName" => one(self.image(cause, sig)),
            "MissingConfigMap" => one(self.missing_ref(sig, "ConfigMap")),
            "MissingSecret" => one(self.missing_ref(sig, "Secret")),
            "MissingConfigKey" => one(self.missing_key(sig)),
            "BadCommand" => one(self.bad_command(sig)),
            "LivenessProbeWrongPort" => one(self.probe_port(
                sig,
                if sig.detail.contains("Startup probe") { "startup" } else { "liveness" },
            )),
            "ReadinessProbeWrongPort" => one(self.probe_port(sig, "readiness")),
            "ProbeWrongPath" => one(self.probe_path(sig)),
            "MainThreadBlocked" => one(self.main_thread_blocked(sig)),
            "ConfigRejectedByApp" => one(self.config_rejected(sig, scope)),
            "RbacForbidden" => one(self.rbac(sig)),
            "MissingServiceAccount" => one(self.missing_sa(sig)),
            "StorageClassMissing" => one(self.storage_class_missing(sig)),
            "NoMatchingPersistentVolume" => one(self.no_matching_pv(sig)),
            "VolumeNodeAffinityConflict" => one(self.volume_node_conflict(sig)),
            "VolumeFull" => one(self.volume_full(sig)),
            "VolumeReadOnly" => one(self.at_workload(sig, 0.8, "writes fail on a read-only filesystem")),
            "MountFailed" => one(self.mount_failed(sig)),
            "NodeDiskPressure" => one(self.node_condition(sig, "DiskPressure", scope)),
            "NodeMemoryPressure" => one(self.node_condition(sig, "MemoryPressure", scope)),
            "NodePIDPressure" => one(self.node_condition(sig, "PIDPressure", scope)),
            "NodeNotReady" => one(self.node_condition(sig, "Ready", scope)),
            "NodePodCapacity" => one(self.node_pod_capacity(sig)),
            "UpstreamMalformedData" => one(self.upstream_malformed(sig, path)),
            "ApplicationCrash" => one(self.app_crash(sig, scope)),
            "CoreDnsDown" => one(self.coredns_down(sig)),
            "DependencyUnreachable" => one(self.dependency_unreachable(sig)),
            "SchedulerNotRunning" => one(self.scheduler_not_running(sig)),
            "NodesCordoned" => one(self.nodes_cordoned(sig)),
            "ControllerManagerNotRunning" => one(self.controller_manager_not_running(sig)),
            "NodeServiceProxyBroken" => one(self.node_service_proxy(sig, path)),
            "ScaledToZero" => one(self.scaled_to_zero(sig, path)),
            "WrongServicePort" => one(self.wrong_service_port(sig, path)),
            "PodDnsConfigBroken" => one(self.pod_dns_config(sig)),
            "QuotaBlocksCreation" => one(self.quota_blocks_creation(sig)),
            "DatabaseRejects" => one(self.database_rejects(sig, path)),
            "DependencyAuthFailed" => one(self.dependency_auth(sig)),
            "NetworkPolicyBlocksEgress" => one(self.egress_blocks(sig)),
            "VolumePermissionDenied" => one(self.volume_permission(sig)),
            "UpstreamServerError" => self.upstream_server_error(sig, path, depth),
            "ProbeWrongProtocol" => one(self.probe_protocol(sig)),
            "SlowDependency" => one(self.at_workload(sig, 0.9, "requests are slow because a call the application makes takes seconds").map(|v| {
                let secs = sig.value.unwrap_or(0.0);
                Verified { summary: format!("{} spends {secs:.1}s in a call it makes (log: {}), while pods, node and network are healthy", v.object.name, trim(&sig.detail)), ..v }
            })),
            _ => Vec::new(),
        }
    }

    // ----------------------------------------------------------------- helpers

    fn pod(&self, r: &ObjectRef) -> Option<&Obj<Pod>> {
        if r.kind != "Pod" {
            return None;
        }
        self.c.pod(r.namespace.as_deref()?, &r.name)
    }

    fn workload(&self, r: &ObjectRef) -> ObjectRef {
        self.c.workload_of(r)
    }

    /// The pod template of a workload and the JSON pointer of its `spec`.
    fn template(&self, w: &ObjectRef) -> Option<(&PodSpec, &'static str)> {
        self.c.template_of(w)
    }

    /// The workload of a signal's object (a pod, a ReplicaSet, a Job), with its template.
    fn signal_workload(&self, sig: &Signal) -> ObjectRef {
        self.workload(&sig.object)
    }

    fn at_workload(&self, sig: &Signal, strength: f64, why: &str) -> Option<Verified> {
        let w = self.signal_workload(sig);
        Some(Verified::new(
            w.clone(),
            strength,
            format!("{}: {why}", w.kind_name()),
        ))
    }

    /// A container of a template by name, with its index among `containers`/`initContainers`.
    fn container<'s>(&self, spec: &'s PodSpec, name: &str) -> Option<(&'s Container, String)> {
        if let Some((i, c)) = spec
            .containers
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == name)
        {
            return Some((c, format!("containers/{i}")));
        }
        spec.init_containers
            .iter()
            .flatten()
            .enumerate()
            .find(|(_, c)| c.name == name)
            .map(|(i, c)| (c, format!("initContainers/{i}")))
    }

    /// The Service a caller's log line names, resolved in the caller's namespace.
    fn peer_service(&self, sig: &Signal, path: &[ObjectRef]) -> Option<ObjectRef> {
        if sig.object.kind == "Service" {
            return Some(sig.object.clone());
        }
        let peer = sig.peer.as_deref()?;
        let s = self.c.resolve_service(peer, ns_of(&sig.object))?;
        (!path.contains(&s)).then_some(s)
    }

    fn selected_pods(&self, svc: &ObjectRef) -> Vec<&Obj<Pod>> {
        self.g
            .neighbors(svc, Edge::Selects, Direction::Outgoing)
            .into_iter()
            .filter_map(|p| self.pod(p))
            .collect()
    }

    // ----------------------------------------------------------------- resource

    fn memory_limit(&self, sig: &Signal, at_start: bool) -> Option<Verified> {
        if !sig.code.starts_with("oom_killed") {
            return None;
        }
        let pod = self.pod(&sig.object)?;
        let cname = sig.container.as_deref()?;
        let w = self.workload(&sig.object);
        let (tspec, prefix) = self.template(&w)?;
        let (tctr, cpath) = self.container(tspec, cname)?;
        let killed_limit = pod
            .o
            .spec
            .as_ref()
            .and_then(|s| self.container(s, cname))
            .and_then(|(c, _)| limit_of(c, "memory"));
        let tmpl_limit = limit_of(tctr, "memory");
        if let (Some(k), Some(t)) = (killed_limit, tmpl_limit) {
            if t > k * 1.01 {
                return None; // the template already carries a higher limit: fix rolled out
            }
        }
        let limit_txt = tctr
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("memory"))
            .map(|q| q.0.clone());
        let uptime = sig.value.unwrap_or(0.0);
        let mut v = if at_start {
            let new = tmpl_limit.map(|l| crate::snapshot::format_mebibytes(l * 2.0));
            let mut v = Verified::new(
                w.clone(),
                if tmpl_limit.is_some() { 1.0 } else { 0.6 },
                format!(
                    "{} container {cname} is OOMKilled {uptime:.0}s after start: memory limit {} is below what it needs to start",
                    w.kind_name(),
                    limit_txt.clone().unwrap_or_else(|| "(none: node memory)".into())
                ),
            );
            if let Some(new) = new {
                v = v.param("memory", json!(new));
            }
            v
        } else {
            Verified::new(
                w.clone(),
                0.9,
                format!(
                    "{} container {cname} is OOMKilled only after {:.1}h of uptime with limit {}: its memory grows over time (a leak); a higher limit only delays the next kill",
                    w.kind_name(),
                    uptime / 3600.0,
                    limit_txt.clone().unwrap_or_else(|| "(none)".into())
                ),
            )
        };
        v = v
            .param("container", json!(cname))
            .param(
                "pointer",
                json!(format!("{prefix}/{cpath}/resources/limits/memory")),
            )
            .param(
                "has_limits",
                json!(tctr
                    .resources
                    .as_ref()
                    .and_then(|r| r.limits.as_ref())
                    .is_some()),
            )
            .param(
                "limits_pointer",
                json!(format!("{prefix}/{cpath}/resources/limits")),
            );
        if let Some(l) = &limit_txt {
            v = v.ev(
                EvidenceSource::Spec,
                &w,
                format!("container {cname} limits.memory = {l}"),
                &format!("{}.resources.limits.memory", ptr_to_field(prefix, &cpath)),
            );
        }
        Some(v)
    }

    fn quota(&self, sig: &Signal) -> Option<Verified> {
        let ns = ns_of(&sig.object);
        let qname = sig.peer.clone()?;
        let q = self
            .c
            .quotas
            .iter()
            .find(|q| q.r.name == qname && q.r.namespace.as_deref() == Some(ns));
        let w = self.workload(&sig.object);
        let qref = q
            .map(|q| q.r.clone())
            .unwrap_or_else(|| ObjectRef::new("ResourceQuota", ns, &qname));
        // "must specify limits.cpu": the workload omits a resource the quota constrains.
        if let Some(res) = sig.detail.split("must specify ").nth(1) {
            let res: Vec<String> = res
                .split(" for")
                .next()
                .unwrap_or("")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let (spec, prefix) = self.template(&w)?;
            let missing: Vec<(usize, String, String)> = spec
                .containers
                .iter()
                .enumerate()
                .flat_map(|(i, ctr)| {
                    res.iter()
                        .filter(move |r| !has_resource(ctr, r))
                        .map(move |r| (i, ctr.name.clone(), r.clone()))
                })
                .collect();
            if missing.is_empty() {
                return None; // the template now specifies them
            }
            let summary = format!(
                "ResourceQuota {qname} constrains {}, which {} does not set, so admission rejects every pod",
                res.join(", "),
                w.kind_name()
            );
            let mut v = Verified::new(qref, 1.0, summary)
                .param("workload", serde_json::to_value(&w).ok()?)
                .param("prefix", json!(prefix))
                .param("missing", json!(missing))
                .param(
                    "quota_hard",
                    json!(q
                        .and_then(|q| q.o.spec.as_ref())
                        .and_then(|s| s.hard.as_ref())
                        .map(|h| h
                            .iter()
                            .map(|(k, v)| (k.clone(), v.0.clone()))
                            .collect::<BTreeMap<_, _>>())),
                );
            for (i, _, r) in &missing {
                v = v.ev(
                    EvidenceSource::Spec,
                    &w,
                    format!("container {} sets no {r}", spec.containers[*i].name),
                    &format!("spec.template.spec.containers[{i}].resources"),
                );
            }
            return Some(v);
        }
        Some(
            Verified::new(
                qref,
                0.9,
                format!(
                    "ResourceQuota {qname} is exhausted, so admission rejects new pods of {}",
                    w.kind_name()
                ),
            )
            .param("workload", serde_json::to_value(&w).ok()?),
        )
    }

    fn limitrange(&self, sig: &Signal) -> Option<Verified> {
        // "maximum cpu usage per Container is 700m, but limit is 900m"
        let msg = &sig.detail;
        let bound = if msg.contains("maximum") {
            "max"
        } else {
            "min"
        };
        let res = ["cpu", "memory", "ephemeral-storage"]
            .into_iter()
            .find(|r| msg.contains(&format!(" {r} usage")))?;
        let allowed = msg
            .split(" per Container is ")
            .nth(1)
            .or_else(|| msg.split(" per Pod is ").nth(1))?
            .split(',')
            .next()?
            .trim()
            .to_string();
        let w = self.workload(&sig.object);
        let (spec, prefix) = self.template(&w)?;
        let allowed_q = parse_quantity(&allowed)?;
        let bad: Vec<(usize, String)> = spec
            .containers
            .iter()
            .enumerate()
            .filter(|(_, ctr)| {
                let l = limit_of(ctr, res);
                match (bound, l) {
                    ("max", Some(l)) => l > allowed_q * 1.0001,
                    ("min", Some(l)) => l < allowed_q * 0.9999,
                    _ => false,
                }
            })
            .map(|(i, ctr)| (i, ctr.name.clone()))
            .collect();
        if bad.is_empty() {
            return None;
        }
        let lr = self
            .c
            .limitranges
            .iter()
            .find(|l| l.r.namespace == w.namespace)
            .map(|l| l.r.clone());
        let mut v = Verified::new(
            w.clone(),
            1.0,
            format!(
                "{} sets limits.{res} outside the namespace LimitRange{} ({bound} {allowed} per container), so admission rejects every pod",
                w.kind_name(),
                lr.as_ref().map(|l| format!(" {}", l.name)).unwrap_or_default()
            ),
        )
        .param("resource", json!(res))
        .param("value", json!(allowed))
        .param("prefix", json!(prefix))
        .param("containers", json!(bad));
        if let Some(lr) = lr {
            v = v.ev(
                EvidenceSource::Spec,
                &lr,
                format!(
                    "LimitRange {} allows {bound} {res} {allowed} per container",
                    lr.name
                ),
                &format!("spec.limits[type=Container].{bound}.{res}"),
            );
        }
        Some(v)
    }

    fn hpa(&self, sig: &Signal) -> Option<Verified> {
        let h = self.c.hpas.iter().find(|h| h.r == sig.object)?;
        let max = h.o.spec.as_ref()?.max_replicas;
        Some(
            Verified::new(
                h.r.clone(),
                0.8,
                format!(
                    "HPA {} is pinned at maxReplicas {max} and cannot add capacity",
                    h.r.name
                ),
            )
            .param("max", json!(max)),
        )
    }

    fn cpu_throttled(&self, sig: &Signal) -> Option<Verified> {
        let pod = self.pod(&sig.object)?;
        let spec = pod.o.spec.as_ref()?;
        let low = spec
            .containers
            .iter()
            .filter_map(|c| limit_of(c, "cpu"))
            .fold(f64::MAX, f64::min);
        if low > 0.25 {
            return None;
        }
        self.at_workload(
            sig,
            0.6,
            &format!(
                "a CPU limit of {:.0}m throttles the container so its probes time out",
                low * 1000.0
            ),
        )
    }

    // ----------------------------------------------------------------- network

    fn selector_mismatch(&self, svc: &ObjectRef) -> Option<Verified> {
        let ns = ns_of(svc);
        let s = self.c.service(ns, &svc.name)?;
        let sel =
            s.o.spec
                .as_ref()?
                .selector
                .clone()
                .filter(|m| !m.is_empty())?;
        if !self.c.pods_selected_by(ns, &sel).is_empty() {
            return None;
        }
        let pods: Vec<&Obj<Pod>> = self
            .c
            .pods
            .iter()
            .filter(|p| p.r.namespace.as_deref() == Some(ns))
            .collect();
        // A workload whose pod template the selector matches would give it endpoints: the
        // selector is right and the pods are missing for another reason (scaled to 0).
        let templated = self
            .c
            .templated_workloads(ns)
            .any(|(_, _, labels, _)| selector_matches(&sel, labels));
        if templated {
            return None;
        }
        // The pods the selector was meant for. A Service rarely selects its own callers, and
        // its pods serve its targetPort: score each pod by shared selector pairs, label values
        // close to the selector's (redis vs redis-cache), the port, and whether another Service
        // already selects it. No candidate with real support means no selector patch.
        let target_ports: Vec<IntOrString> =
            s.o.spec
                .as_ref()
                .and_then(|sp| sp.ports.as_ref())
                .map(|ps| {
                    ps.iter()
                        .map(|p| p.target_port.clone().unwrap_or(IntOrString::Int(p.port)))
                        .collect()
                })
                .unwrap_or_default();
        let callers: Vec<&ObjectRef> = self.g.neighbors(svc, Edge::DependsOn, Direction::Incoming);
        let best = pods
            .iter()
            .filter(|p| !callers.contains(&&p.r))
            .filter_map(|p| {
                let labels = p.o.metadata.labels.as_ref()?;
                let shared = sel
                    .iter()
                    .filter(|(k, v)| labels.get(*k) == Some(*v))
                    .count() as f64;
                let similar: f64 = sel
                    .iter()
                    .filter_map(|(k, v)| labels.get(k).map(|pv| label_similarity(v, pv)))
                    .sum::<f64>();
                let serves = p.o.spec.as_ref().is_some_and(|spec| {
                    spec.containers
                        .iter()
                        .flat_map(|c| c.ports.iter().flatten())
                        .any(|cp| {
                            target_ports.iter().any(|tp| match tp {
                                IntOrString::Int(n) => *n == cp.container_port,
                                IntOrString::String(name) => {
                                    cp.name.as_deref() == Some(name.as_str())
                                }
                            })
                        })
                });
                let selected_elsewhere = self
                    .g
                    .neighbors(&p.r, Edge::Selects, Direction::Incoming)
                    .iter()
                    .any(|o| o.kind == "Service" && *o != svc);
                let score = 2.0 * shared + 2.0 * similar + if serves { 2.0 } else { 0.0 }
                    - if selected_elsewhere { 1.0 } else { 0.0 };
                (serves || similar >= 0.5 || shared > 0.0).then_some((score, *p))
            })
            .filter(|(score, _)| *score > 1.0)
            .max_by(|a, b| {
                a.0.total_cmp(&b.0)
                    .then_with(|| b.1.r.name.cmp(&a.1.r.name))
            })
            .map(|(score, p)| (score, 0, p));
        let sel_txt = fmt_labels(&sel);
        let mut v = Verified::new(
            svc.clone(),
            1.0,
            format!(
                "Service {} selects {sel_txt}, which matches no pod, so it has no endpoints",
                svc.name
            ),
        )
        .ev(
            EvidenceSource::Spec,
            svc,
            format!("spec.selector = {sel_txt}"),
            "spec.selector",
        );
        if let Some((_, _, p)) = best {
            let labels = p.o.metadata.labels.clone().unwrap_or_default();
            let mut new_sel = serde_json::Map::new();
            for k in sel.keys() {
                new_sel.insert(k.clone(), labels.get(k).map_or(Value::Null, |v| json!(v)));
            }
            let differing: Vec<String> = sel
                .iter()
                .filter(|(k, v)| labels.get(*k) != Some(*v))
                .map(|(k, v)| {
                    format!(
                        "{k}: selector wants {v:?}, pod has {:?}",
                        labels.get(k).map(String::as_str).unwrap_or("(absent)")
                    )
                })
                .collect();
            let wl = self.workload(&p.r);
            v.summary = format!(
                "Service {} selects {sel_txt}, but the {} pods are labelled {} ({}), so it has no endpoints",
                svc.name,
                wl.name,
                fmt_labels(&labels.iter().filter(|(k, _)| sel.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect()),
                differing.join("; ")
            );
            v = v
                .ev(
                    EvidenceSource::Graph,
                    &p.r,
                    format!("closest pods {} carry {}", p.r.name, fmt_labels(&labels)),
                    "metadata.labels",
                )
                .param("selector", Value::Object(new_sel));
        }
        Some(v)
    }

    fn target_port_mismatch(&self, svc: &ObjectRef) -> Option<Verified> {
        let s = self.c.services.iter().find(|s| s.r == *svc)?;
        let ports = s.o.spec.as_ref()?.ports.clone()?;
        let pods = self.selected_pods(svc);
        if pods.is_empty() {
            return None;
        }
        let ready_any = pods.iter().any(|p| pod_ready(&p.o));
        for (i, sp) in ports.iter().enumerate() {
            let tp = sp.target_port.clone().unwrap_or(IntOrString::Int(sp.port));
            let mut serving: Vec<i32> = Vec::new();
            let mut resolved = false;
            for p in &pods {
                let Some(spec) = p.o.spec.as_ref() else {
                    continue;
                };
                for ctr in &spec.containers {
                    for cp in ctr.ports.iter().flatten() {
                        serving.push(cp.container_port);
                        match &tp {
                            IntOrString::Int(n) if *n == cp.container_port => resolved = true,
                            IntOrString::String(name) if cp.name.as_deref() == Some(name) => {
                                resolved = true
                            }
                            _ => {}
                        }
                    }
                }
                serving.extend(self.listening_ports(&p.r));
            }
            if let IntOrString::Int(n) = &tp {
                if serving.contains(n) {
                    resolved = true;
                }
            }
            serving.sort();
            serving.dedup();
            if resolved || serving.is_empty() {
                continue;
            }
            let port = serving[0];
            let tp_txt = match &tp {
                IntOrString::Int(n) => n.to_string(),
                IntOrString::String(s) => s.clone(),
            };
            return Some(
                Verified::new(
                    svc.clone(),
                    if ready_any { 1.0 } else { 0.7 },
                    format!(
                        "Service {} sends port {} to targetPort {tp_txt}, but its pods serve on {}: connections are refused",
                        svc.name,
                        sp.port,
                        serving.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                )
                .ev(EvidenceSource::Spec, svc, format!("spec.ports[{i}].targetPort = {tp_txt}"), &format!("spec.ports[{i}].targetPort"))
                .ev(EvidenceSource::Spec, &pods[0].r, format!("container ports of {}: {:?}", pods[0].r.name, serving), "spec.containers[].ports")
                .param("index", json!(i))
                .param("port", json!(port)),
            );
        }
        None
    }

    /// Ports a pod's log says it listens on ("listening on port 8080", "running on http://0.0.0.0:8000").
    fn listening_ports(&self, pod: &ObjectRef) -> Vec<i32> {
        static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(r"(?i)(?:listen(?:ing)?|running|serving|started|server)\b[^\n]{0,40}?(?::|port:?\s*|on\s+)(\d{2,5})\b").expect("valid regex")
        });
        let mut out = Vec::new();
        for l in self.c.logs_of(ns_of(pod), &pod.name) {
            for line in l.text.lines().take(200) {
                if let Some(cap) = RE.captures(line) {
                    if let Ok(p) = cap[1].parse::<i32>() {
                        if !out.contains(&p) {
                            out.push(p);
                        }
                    }
                }
            }
        }
        out
    }

    fn netpol_blocks(
        &self,
        svc: &ObjectRef,
        caller: &ObjectRef,
        timed_out: bool,
    ) -> Option<Verified> {
        let backends = self.selected_pods(svc);
        let caller_pod = self.pod(caller)?;
        let caller_labels = caller_pod.o.metadata.labels.clone().unwrap_or_default();
        for np in &self.c.netpols {
            if np.r.namespace != svc.namespace {
                continue;
            }
            let Some(spec) = np.o.spec.as_ref() else {
                continue;
            };
            let ingress_policy = spec
                .policy_types
                .as_ref()
                .is_none_or(|t| t.iter().any(|t| t == "Ingress"));
            if !ingress_policy
                || !backends.iter().any(|p| {
                    spec.pod_selector
                        .as_ref()
                        .is_none_or(|sel| label_selector_matches(sel, p.o.metadata.labels.as_ref()))
                })
            {
                continue;
            }
            // Allowed if any policy selecting the backends admits the caller.
            let allowed = self
                .c
                .netpols
                .iter()
                .filter(|o| o.r.namespace == svc.namespace)
                .any(|o| {
                    let Some(s) = o.o.spec.as_ref() else {
                        return false;
                    };
                    backends.iter().any(|p| {
                        s.pod_selector.as_ref().is_none_or(|sel| {
                            label_selector_matches(sel, p.o.metadata.labels.as_ref())
                        })
                    }) && s.ingress.iter().flatten().any(|rule| {
                        rule.from.as_ref().is_none_or(|from| {
                            from.is_empty()
                                || from.iter().any(|peer| {
                                    let same_ns = caller.namespace == o.r.namespace;
                                    match (&peer.pod_selector, &peer.namespace_selector) {
                                        (Some(ps), None) => {
                                            same_ns
                                                && label_selector_matches(ps, Some(&caller_labels))
                                        }
                                        (Some(ps), Some(_)) => {
                                            label_selector_matches(ps, Some(&caller_labels))
                                        }
                                        (None, Some(_)) => true,
                                        (None, None) => peer.ip_block.is_none(),
                                    }
                                })
                        })
                    })
                });
            if allowed {
                return None;
            }
            let from_txt = spec
                .ingress
                .iter()
                .flatten()
                .flat_map(|r| r.from.iter().flatten())
                .filter_map(|p| {
                    p.pod_selector
                        .as_ref()
                        .and_then(|s| s.match_labels.as_ref())
                        .map(fmt_labels)
                })
                .collect::<Vec<_>>()
                .join(" or ");
            let keep: BTreeMap<String, String> = caller_labels
                .iter()
                .filter(|(k, _)| {
                    !k.contains("pod-template-hash")
                        && !k.contains("controller-uid")
                        && !k.starts_with("batch.kubernetes.io")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            return Some(
                Verified::new(
                    np.r.clone(),
                    if timed_out { 1.0 } else { 0.6 },
                    format!(
                        "NetworkPolicy {} isolates the {} pods and admits ingress only from {}; caller {} ({}) is not admitted, so its connections {}",
                        np.r.name,
                        svc.name,
                        if from_txt.is_empty() { "nobody".into() } else { from_txt.clone() },
                        caller.name,
                        fmt_labels(&keep),
                        if timed_out { "time out" } else { "fail" }
                    ),
                )
                .ev(EvidenceSource::Spec, &np.r, format!("spec.ingress[].from = {}", if from_txt.is_empty() { "[]".into() } else { from_txt }), "spec.ingress")
                .ev(EvidenceSource::Graph, &np.r, format!("NetworkPolicy {} selects the pods behind Service {}", np.r.name, svc.name), "spec.podSelector")
                .param("labels", json!(keep))
                .param("has_ingress", json!(spec.ingress.is_some()))
                .param("ports", json!(self.c.services.iter().find(|s| s.r == *svc).and_then(|s| s.o.spec.as_ref()).and_then(|s| s.ports.as_ref()).map(|p| p.iter().map(|p| p.target_port.clone().unwrap_or(IntOrString::Int(p.port))).collect::<Vec<_>>()))),
            );
        }
        None
    }

    fn backend_not_ready(&self, sig: &Signal, path: &[ObjectRef], depth: usize) -> Vec<Verified> {
        let Some(svc) = self.peer_service(sig, path) else {
            return Vec::new();
        };
        let pods = self.selected_pods(&svc);
        if pods.is_empty() || pods.iter().any(|p| pod_ready(&p.o)) {
            return Vec::new();
        }
        let backend = self.workload(&pods[0].r);
        if path.contains(&backend) {
            return Vec::new();
        }
        let mut out = Vec::new();
        // Recurse into the backend (hops: caller → Service → backend pods → their causes).
        if depth + 2 < MAX_HOPS + 1 {
            let mut p = path.to_vec();
            p.push(svc.clone());
            let scope = scope_of(self.c, self.g, &backend);
            let deeper = self.analyze(
                &scope,
                {
                    let mut pp = p.clone();
                    pp.push(backend.clone());
                    pp
                },
                depth + 2,
            );
            for f in deeper
                .into_iter()
                .filter(|f| !matches!(f.reason.as_str(), "BackendNotReady"))
            {
                let mut v = Verified::new(
                    f.object.clone(),
                    f.score,
                    format!("{} (behind Service {})", f.summary, svc.name),
                );
                v.evidence = f.evidence;
                v.params = f.params;
                v.via = f.path[path.len()..].to_vec();
                v.params.insert("_reason".into(), json!(f.reason));
                out.push(v);
            }
        }
        out.push(
            Verified::new(
                backend.clone(),
                0.5,
                format!(
                    "no pod behind Service {} is ready, so callers cannot connect",
                    svc.name
                ),
            )
            .ev(
                EvidenceSource::Graph,
                &svc,
                format!(
                    "Service {} selects {} pods, none ready",
                    svc.name,
                    pods.len()
                ),
                "endpoints",
            ),
        );
        out.iter_mut().for_each(|v| {
            if v.via.is_empty() {
                v.via = vec![svc.clone()];
            }
        });
        out
    }

    fn dns_down(&self) -> bool {
        self.signals.iter().any(|s| s.code == "coredns_down")
    }

    fn service_not_found(&self, sig: &Signal) -> Option<Verified> {
        if self.dns_down() {
            return None; // nothing resolves: a missing name proves nothing
        }
        let peer = sig.peer.as_deref()?;
        let in_cluster = !peer.contains('.')
            || peer.ends_with(".svc")
            || peer.contains(".svc.")
            || peer.split('.').count() == 2 && !peer.ends_with(".com");
        if !in_cluster
            || self.c.resolve_service(peer, ns_of(&sig.object)).is_some()
            || peer.parse::<std::net::IpAddr>().is_ok()
        {
            return None;
        }
        let w = self.workload(&sig.object);
        // Where the host is configured: the pod template's env, or a ConfigMap it reads.
        let (object, pointer) = match self.configured_in(&w, peer) {
            Some((o, p)) => (o, Some(p)),
            None => (w.clone(), None),
        };
        let mut v = Verified::new(
            object.clone(),
            0.9,
            format!(
                "{} calls {peer:?}{}, but no Service of that name exists, so cluster DNS cannot resolve it",
                w.kind_name(),
                pointer.as_ref().map_or(String::new(), |p| format!(" (configured in {} {p})", object.kind_name()))
            ),
        )
        .param("host", json!(peer));
        if let Some(p) = pointer {
            v = v.ev(
                EvidenceSource::Spec,
                &object,
                format!("{p} names {peer}"),
                &p,
            );
        }
        Some(v)
    }

    // ----------------------------------------------------------------- scheduling

    fn scheduling(&self, cause: &Cause, sig: &Signal) -> Option<Verified> {
        let w = self.workload(&sig.object);
        let (spec, prefix) = self.template(&w)?;
        let part = sig.peer.clone().unwrap_or_default();
        let field = ptr_to_field(prefix, "");
        let mut v = Verified::new(w.clone(), 1.0, String::new()).param("prefix", json!(prefix));
        match cause.reason.as_str() {
            "UntoleratedTaint" => {
                let (key, value, effect) = parse_taint(&part, &self.c.nodes);
                if key.starts_with("node-role.kubernetes.io/")
                    || key.starts_with("node.kubernetes.io/")
                {
                    return None; // control-plane and condition taints are working as intended
                }
                if spec
                    .tolerations
                    .iter()
                    .flatten()
                    .any(|t| t.key.as_deref() == Some(key.as_str()))
                {
                    return None;
                }
                v.summary = format!("{} does not tolerate taint {key}={value}:{effect} carried by the nodes, so its pods stay Pending", w.kind_name());
                v = v
                    .param("key", json!(key))
                    .param("value", json!(value))
                    .param("effect", json!(effect))
                    .param("has_tolerations", json!(spec.tolerations.is_some()));
                if let Some(n) = self.c.nodes.iter().find(|n| {
                    n.o.spec
                        .as_ref()
                        .and_then(|s| s.taints.as_ref())
                        .is_some_and(|t| t.iter().any(|t| t.key == key))
                }) {
                    v = v.ev(
                        EvidenceSource::Spec,
                        &n.r,
                        format!("node {} carries taint {key}={value}:{effect}", n.r.name),
                        "spec.taints",
                    );
                }
            }
            "NodeSelectorMismatch" => {
                let sel = spec.node_selector.clone().unwrap_or_default();
                let unsatisfiable: Vec<String> = sel
                    .iter()
                    .filter(|(k, val)| {
                        !self.c.nodes.iter().any(|n| {
                            n.o.metadata.labels.as_ref().and_then(|l| l.get(*k)) == Some(*val)
                        })
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                let affinity = spec
                    .affinity
                    .as_ref()
                    .and_then(|a| a.node_affinity.as_ref())
                    .and_then(|n| {
                        n.required_during_scheduling_ignored_during_execution
                            .as_ref()
                    });
                if unsatisfiable.is_empty() && affinity.is_none() {
                    if sel.is_empty() {
                        return None;
                    }
                    // Every selector label exists somewhere, but on nodes excluded for other
                    // reasons (full, tainted): the part is a consequence, not the cause.
                    v.strength = 0.3;
                }
                let what = if !unsatisfiable.is_empty() {
                    format!(
                        "nodeSelector {} that no node carries",
                        unsatisfiable
                            .iter()
                            .map(|k| format!("{k}={}", sel[k]))
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                } else if affinity.is_some() {
                    "a required node affinity that no node satisfies".to_string()
                } else {
                    format!("nodeSelector {}", fmt_labels(&sel))
                };
                v.summary = format!(
                    "{} requires {what}, so its pods stay Pending",
                    w.kind_name()
                );
                v = v
                    .param("remove_keys", json!(unsatisfiable))
                    .param("has_affinity", json!(affinity.is_some()));
                v = v.ev(
                    EvidenceSource::Spec,
                    &w,
                    what.to_string(),
                    &format!("{field}.nodeSelector / affinity.nodeAffinity"),
                );
            }
            "PodAffinityUnsatisfied" => {
                spec.affinity
                    .as_ref()
                    .and_then(|a| a.pod_affinity.as_ref())?;
                v.summary = format!("{} requires pod affinity to pods that do not exist in the topology domain, so its pods stay Pending", w.kind_name());
                v = v.ev(
                    EvidenceSource::Spec,
                    &w,
                    "required podAffinity term matches no running pod".into(),
                    &format!("{field}.affinity.podAffinity"),
                );
            }
            "PodAntiAffinityConflict" => {
                spec.affinity
                    .as_ref()
                    .and_then(|a| a.pod_anti_affinity.as_ref())?;
                v.strength = 0.7;
                v.summary = format!(
                    "{}'s required pod anti-affinity leaves no eligible node for another replica",
                    w.kind_name()
                );
            }
            _ => {
                v.summary = format!(
                    "no node has enough free resources for {}'s requests ({part})",
                    w.kind_name()
                );
                v.strength = 0.9;
            }
        }
        Some(v)
    }

    // ----------------------------------------------------------------- image

    fn image(&self, cause: &Cause, sig: &Signal) -> Option<Verified> {
        let w = self.workload(&sig.object);
        let cname = sig.container.as_deref()?;
        let pod = self.pod(&sig.object)?;
        let failing_image = pod
            .o
            .spec
            .as_ref()
            .and_then(|s| self.container(s, cname))
            .and_then(|(c, _)| c.image.clone())?;
        let (spec, prefix) = self.template(&w)?;
        let (ctr, cpath) = self.container(spec, cname)?;
        if ctr.image.as_deref() != Some(failing_image.as_str()) {
            return None; // the template now names another image
        }
        let secrets = |spec: &PodSpec| -> Vec<String> {
            spec.image_pull_secrets
                .iter()
                .flatten()
                .map(|s| s.name.clone())
                .collect()
        };
        let pod_secrets = pod.o.spec.as_ref().map(secrets).unwrap_or_default();
        if cause.reason == "ImagePullUnauthorized"
            && secrets(spec).iter().any(|s| !pod_secrets.contains(s))
        {
            return None; // the template now carries a pull secret the failing pod lacked
        }
        let summary = match cause.reason.as_str() {
            "ImageNotFound" => format!("image {failing_image} does not exist in its registry (repository or tag not found)"),
            "ImagePullUnauthorized" => format!("the registry refuses to serve {failing_image} without credentials, and the pod has no imagePullSecret that works"),
            _ => format!("image reference {failing_image} is not a valid image name"),
        };
        let previous = self.previous_image(&w, cname, &failing_image);
        let mut v = Verified::new(w.clone(), 1.0, format!("{}: {summary}", w.kind_name()))
            .ev(
                EvidenceSource::Spec,
                &w,
                format!("container {cname} image = {failing_image}"),
                &format!("{}.image", ptr_to_field(prefix, &cpath)),
            )
            .param("container", json!(cname))
            .param("image", json!(failing_image))
            .param("pointer", json!(format!("{prefix}/{cpath}/image")))
            .param("prefix", json!(prefix))
            .param("has_pull_secrets", json!(spec.image_pull_secrets.is_some()));
        if let Some((rev, img)) = previous {
            v = v
                .param("previous_revision", json!(rev))
                .param("previous_image", json!(img));
        }
        Some(v)
    }

    /// The last ReplicaSet of a Deployment that ran another image for this container.
    fn previous_image(&self, w: &ObjectRef, cname: &str, bad: &str) -> Option<(String, String)> {
        if w.kind != "Deployment" {
            return None;
        }
        self.c
            .replicasets
            .iter()
            .filter(|rs| self.c.owner_of(&rs.o.metadata).as_ref() == Some(w))
            .filter_map(|rs| {
                let rev =
                    rs.o.metadata
                        .annotations
                        .as_ref()?
                        .get("deployment.kubernetes.io/revision")?
                        .clone();
                let img =
                    rs.o.spec
                        .as_ref()?
                        .template
                        .as_ref()?
                        .spec
                        .as_ref()?
                        .containers
                        .iter()
                        .find(|c| c.name == cname)?
                        .image
                        .clone()?;
                (img != bad).then_some((rev, img))
            })
            .max_by_key(|(rev, _)| rev.parse::<u64>().unwrap_or(0))
    }

    // ----------------------------------------------------------------- configuration

    fn missing_ref(&self, sig: &Signal, kind: &str) -> Option<Verified> {
        let name = sig.peer.clone()?;
        let ns = ns_of(&sig.object);
        let r = ObjectRef::new(kind, ns, &name);
        let collected = self.c.has_kind(kind);
        if self.c.exists(&r) {
            return None;
        }
        let msg_kind = if kind == "ConfigMap" {
            "configmap"
        } else {
            "secret"
        };
        if !sig
            .detail
            .to_ascii_lowercase()
            .contains(&format!("{msg_kind} \"{name}\" not found"))
            && !collected
        {
            return None;
        }
        // Still referenced by the template?
        let w = self.workload(&sig.object);
        let (spec, prefix) = self.template(&w)?;
        let refs = pod_spec_refs(spec);
        if !refs.iter().any(|(k, n, _)| *k == kind && *n == name) {
            return None;
        }
        let similar = self.similar_name(kind, ns, &name);
        let mut v = Verified::new(
            r.clone(),
            1.0,
            format!(
                "{} references {kind} {name}, which does not exist in namespace {ns}{}",
                w.kind_name(),
                similar
                    .as_ref()
                    .map(|s| format!(" (there is {kind} {s})"))
                    .unwrap_or_default()
            ),
        )
        .param("workload", serde_json::to_value(&w).ok()?)
        .param("prefix", json!(prefix))
        .param("name", json!(name));
        if let Some(s) = similar {
            let vol = spec.volumes.iter().flatten().position(|v| {
                v.config_map.as_ref().is_some_and(|c| c.name == name)
                    || v.secret
                        .as_ref()
                        .is_some_and(|s| s.secret_name.as_deref() == Some(name.as_str()))
            });
            v = v.param("similar", json!(s));
            if let Some(i) = vol {
                v = v.param("volume_index", json!(i));
            }
        }
        Some(v)
    }

    fn similar_name(&self, kind: &str, ns: &str, name: &str) -> Option<String> {
        let names: Vec<&str> = match kind {
            "ConfigMap" => self
                .c
                .configmaps
                .iter()
                .filter(|o| o.r.namespace.as_deref() == Some(ns))
                .map(|o| o.r.name.as_str())
                .collect(),
            _ => self
                .c
                .secrets
                .iter()
                .filter(|o| o.r.namespace.as_deref() == Some(ns))
                .map(|o| o.r.name.as_str())
                .collect(),
        };
        names
            .into_iter()
            .filter(|n| *n != "kube-root-ca.crt")
            .filter(|n| n.starts_with(name) || name.starts_with(n) || edit_distance(n, name) <= 2)
            .min_by_key(|n| edit_distance(n, name))
            .map(str::to_string)
    }

    fn missing_key(&self, sig: &Signal) -> Option<Verified> {
        if !sig.detail.contains("couldn't find key") {
            return None;
        }
        let w = self.workload(&sig.object);
        Some(Verified::new(
            w.clone(),
            1.0,
            format!("{}: {}", w.kind_name(), trim(&sig.detail)),
        ))
    }

    fn bad_command(&self, sig: &Signal) -> Option<Verified> {
        let w = self.workload(&sig.object);
        let cname = sig.container.as_deref()?;
        let (spec, prefix) = self.template(&w)?;
        let (ctr, cpath) = self.container(spec, cname)?;
        let cmd: Vec<String> = ctr
            .command
            .iter()
            .flatten()
            .chain(ctr.args.iter().flatten())
            .cloned()
            .collect();
        // The executable the runtime could not find, if the message names it.
        let missing = sig
            .detail
            .split("exec: \"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .map(str::to_string);
        if let Some(m) = &missing {
            if !cmd
                .iter()
                .any(|c| c == m || c.starts_with(&format!("{m} ")))
                && ctr.command.is_some()
            {
                return None; // the template no longer runs it
            }
        }
        Some(
            Verified::new(
                w.clone(),
                1.0,
                format!(
                    "container {cname} of {} runs {}, which the image cannot execute{}",
                    w.kind_name(),
                    if cmd.is_empty() {
                        "its entrypoint".to_string()
                    } else {
                        format!("{:?}", cmd.join(" "))
                    },
                    missing
                        .as_ref()
                        .map(|m| format!(" ({m:?} is not in $PATH)"))
                        .unwrap_or_default()
                ),
            )
            .ev(
                EvidenceSource::Spec,
                &w,
                format!("command/args = {cmd:?}"),
                &format!("{}.command", ptr_to_field(prefix, &cpath)),
            )
            .param("container", json!(cname))
            .param("command", json!(cmd)),
        )
    }

    /// The probe of a container and the port it targets, resolved to a number when named.
    fn probe_target(&self, ctr: &Container, which: &str) -> Option<(String, Option<i32>, String)> {
        let probe = match which {
            "liveness" => ctr.liveness_probe.as_ref(),
            "readiness" => ctr.readiness_probe.as_ref(),
            _ => ctr.startup_probe.as_ref(),
        }?;
        let (port, kind) = if let Some(h) = &probe.http_get {
            (h.port.clone(), "httpGet")
        } else if let Some(t) = &probe.tcp_socket {
            (t.port.clone(), "tcpSocket")
        } else if let Some(g) = &probe.grpc {
            (IntOrString::Int(g.port), "grpc")
        } else {
            return None;
        };
        let num = match &port {
            IntOrString::Int(n) => Some(*n),
            IntOrString::String(name) => ctr
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .map(|p| p.container_port),
        };
        let txt = match port {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(s) => s,
        };
        Some((txt, num, kind.to_string()))
    }

    fn probe_port(&self, sig: &Signal, which: &str) -> Option<Verified> {
        let pod = self.pod(&sig.object)?;
        let lower = sig.detail.to_ascii_lowercase();
        if lower.contains("statuscode: 404") {
            return None;
        }
        // A timeout is a wrong port only when the probe's port is not one the container serves
        // (checked below); on a served port it is a slow or blocked process.
        let w = self.workload(&sig.object);
        let (spec, prefix) = self.template(&w)?;
        let pspec = pod.o.spec.as_ref()?;
        for (i, ctr) in spec.containers.iter().enumerate() {
            let Some((txt, num, kind)) = self.probe_target(ctr, which) else {
                continue;
            };
            let mut serving: Vec<i32> = ctr
                .ports
                .iter()
                .flatten()
                .map(|p| p.container_port)
                .collect();
            if pspec.containers.len() == 1 {
                serving.extend(self.listening_ports(&pod.r));
            }
            serving.sort();
            serving.dedup();
            let named_unresolved = num.is_none();
            if serving.is_empty() && !named_unresolved {
                continue;
            }
            if num.is_some_and(|n| serving.contains(&n)) {
                continue; // the probe targets a port the container serves: not a wrong port
            }
            let field = format!("{which}Probe");
            let good = serving.first().copied();
            let mut v = Verified::new(
                w.clone(),
                1.0,
                format!(
                    "the {which} probe of container {} checks port {txt}, but the container serves on {}: the probe fails with connection refused and the kubelet {}",
                    ctr.name,
                    if serving.is_empty() { "no such port".into() } else { serving.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ") },
                    if which == "liveness" { "keeps restarting a healthy container" } else { "keeps the pod out of its Service" }
                ),
            )
            .ev(EvidenceSource::Spec, &w, format!("{field}.{kind}.port = {txt}"), &format!("{}.{field}.{kind}.port", ptr_to_field(prefix, &format!("containers/{i}"))))
            .param("pointer", json!(format!("{prefix}/containers/{i}/{field}/{kind}/port")));
            if let Some(g) = good {
                v = v.param("port", json!(g));
            }
            return Some(v);
        }
        None
    }

    fn probe_path(&self, sig: &Signal) -> Option<Verified> {
        if !sig.detail.contains("statuscode: 404") {
            return None;
        }
        let w = self.workload(&sig.object);
        Some(Verified::new(
            w.clone(),
            1.0,
            format!("{}: the HTTP probe path is not served (404)", w.kind_name()),
        ))
    }

    fn main_thread_blocked(&self, sig: &Signal) -> Option<Verified> {
        if !(sig.code == "probe_timeout"
            || sig.detail.to_ascii_lowercase().contains("timeout")
            || sig.detail.contains("deadline exceeded"))
        {
            // A refused probe on the right port is also possible, but weaker evidence.
            if self.probe_port(sig, "liveness").is_some() {
                return None;
            }
            let w = self.workload(&sig.object);
            return Some(Verified::new(
                w.clone(),
                0.5,
                format!(
                    "{} stops answering its liveness probe on the port it serves",
                    w.kind_name()
                ),
            ));
        }
        let pod = self.pod(&sig.object)?;
        let spec = pod.o.spec.as_ref()?;
        let right_port = spec.containers.iter().any(|ctr| {
            self.probe_target(ctr, "liveness").is_some_and(|(_, n, _)| {
                let serving: Vec<i32> = ctr
                    .ports
                    .iter()
                    .flatten()
                    .map(|p| p.container_port)
                    .chain(self.listening_ports(&pod.r))
                    .collect();
                n.is_some_and(|n| serving.is_empty() || serving.contains(&n))
            })
        });
        if !right_port {
            return None;
        }
        let w = self.workload(&sig.object);
        Some(Verified::new(
            w.clone(),
            0.95,
            format!(
                "{}'s liveness probe times out on the port the application serves: the process stops answering (a blocked main thread or deadlock), so the kubelet restarts it",
                w.kind_name()
            ),
        ))
    }

    fn config_rejected(&self, sig: &Signal, _scope: &[ObjectRef]) -> Option<Verified> {
        let failing = self.on(&sig.object).any(|s| is_failure(&s.code));
        if sig.code.starts_with("log_") && !failing {
            return None;
        }
        let w = self.workload(&sig.object);
        let cname = sig.container.as_deref().unwrap_or("");
        let mut v = Verified::new(
            w.clone(),
            1.0,
            format!(
                "container {cname} of {} exits at start because its configuration is refused: {}",
                w.kind_name(),
                trim(&sig.detail)
            ),
        );
        if let Some((spec, prefix)) = self.template(&w) {
            if let Some((ctr, cpath)) = self.container(spec, cname) {
                if let Some(cmd) = &ctr.command {
                    v = v
                        .param(
                            "command_pointer",
                            json!(format!("{prefix}/{cpath}/command")),
                        )
                        .param("container", json!(cname));
                    v = v.ev(
                        EvidenceSource::Spec,
                        &w,
                        format!(
                            "container {cname} overrides the image entrypoint with command {cmd:?}"
                        ),
                        &format!("{}.command", ptr_to_field(prefix, &cpath)),
                    );
                }
            }
        }
        Some(v)
    }

    fn rbac(&self, sig: &Signal) -> Option<Verified> {
        let pod = self.pod(&sig.object)?;
        let sa = pod
            .o
            .spec
            .as_ref()?
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into());
        Some(
            Verified::new(
                ObjectRef::new("ServiceAccount", ns_of(&sig.object), &sa),
                1.0,
                format!(
                    "ServiceAccount {sa} lacks the RBAC permission the application needs: {}",
                    trim(&sig.detail)
                ),
            )
            .param("sa", json!(sa)),
        )
    }

    fn missing_sa(&self, sig: &Signal) -> Option<Verified> {
        let sa = sig.peer.clone()?;
        let r = ObjectRef::new("ServiceAccount", ns_of(&sig.object), &sa);
        if self.c.exists(&r) {
            return None;
        }
        let w = self.workload(&sig.object);
        Some(Verified::new(w.clone(), 1.0, format!("{} runs as ServiceAccount {sa}, which does not exist, so no pod can be created", w.kind_name())).param("sa", json!(sa)))
    }

    // ----------------------------------------------------------------- storage

    /// PVCs mounted by a pod, or the PVC a signal is about.
    fn claims(&self, sig: &Signal) -> Vec<&Obj<k8s_openapi::api::core::v1::PersistentVolumeClaim>> {
        if sig.object.kind == "PersistentVolumeClaim" {
            return self.c.pvcs.iter().filter(|p| p.r == sig.object).collect();
        }
        self.g
            .neighbors(&sig.object, Edge::Mounts, Direction::Outgoing)
            .into_iter()
            .filter(|r| r.kind == "PersistentVolumeClaim")
            .filter_map(|r| self.c.pvc(ns_of(r), &r.name))
            .collect()
    }

    fn storage_class_missing(&self, sig: &Signal) -> Option<Verified> {
        for pvc in self.claims(sig) {
            let phase = pvc
                .o
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("");
            if phase == "Bound" {
                continue;
            }
            let sc = pvc
                .o
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.clone());
            let Some(sc) = sc.filter(|s| !s.is_empty()) else {
                continue;
            };
            let exists = self.c.storageclasses.iter().any(|s| s.r.name == sc);
            let said = self.c.events_for(&pvc.r).any(|e| {
                e.o.message.as_deref().is_some_and(|m| {
                    m.contains(&format!("storageclass.storage.k8s.io \"{sc}\" not found"))
                })
            });
            if exists || !(said || self.c.has_kind("StorageClass")) {
                continue;
            }
            let default = self.c.storageclasses.iter().find(|s| {
                s.o.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
                    .map(String::as_str)
                    == Some("true")
            });
            let mut v = Verified::new(pvc.r.clone(), 1.0, format!("PersistentVolumeClaim {} asks for StorageClass {sc:?}, which does not exist, so it is never provisioned and stays Pending", pvc.r.name))
                .ev(EvidenceSource::Spec, &pvc.r, format!("spec.storageClassName = {sc}"), "spec.storageClassName")
                .param("storage_class", json!(sc));
            if let Some(d) = default {
                v = v.param("default_class", json!(d.r.name));
            }
            return Some(v);
        }
        None
    }

    fn no_matching_pv(&self, sig: &Signal) -> Option<Verified> {
        for pvc in self.claims(sig) {
            let phase = pvc
                .o
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("");
            if phase != "Pending" {
                continue;
            }
            let sc = pvc
                .o
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.clone())
                .unwrap_or_default();
            if !sc.is_empty()
                && !self.c.storageclasses.iter().any(|s| s.r.name == sc)
                && self.c.has_kind("StorageClass")
            {
                continue; // StorageClassMissing explains it
            }
            return Some(Verified::new(pvc.r.clone(), 0.7, format!("PersistentVolumeClaim {} is Pending: no PersistentVolume matches it and nothing provisions one", pvc.r.name)));
        }
        None
    }

    fn volume_node_conflict(&self, sig: &Signal) -> Option<Verified> {
        let w = self.workload(&sig.object);
        let pvc = self.claims(sig).into_iter().next();
        let rwo = pvc.is_some_and(|p| {
            p.o.spec
                .as_ref()
                .and_then(|s| s.access_modes.as_ref())
                .is_some_and(|m| m.iter().any(|m| m == "ReadWriteOnce"))
        });
        let obj = pvc.map(|p| p.r.clone()).unwrap_or_else(|| w.clone());
        let replicas = self
            .c
            .deployments
            .iter()
            .find(|d| d.r == w)
            .and_then(|d| d.o.spec.as_ref()?.replicas)
            .unwrap_or(1);
        Some(
            Verified::new(
                obj.clone(),
                if rwo && replicas > 1 { 1.0 } else { 0.8 },
                format!(
                    "{} shares {} across {replicas} replicas; its volume is bound to one node, so replicas that must go elsewhere (anti-affinity, taints) stay Pending",
                    w.kind_name(),
                    pvc.map(|p| format!("ReadWriteOnce claim {}", p.r.name)).unwrap_or_else(|| "a node-pinned volume".into())
                ),
            )
            .param("workload", serde_json::to_value(&w).ok()?),
        )
    }

    fn volume_full(&self, sig: &Signal) -> Option<Verified> {
        let w = self.workload(&sig.object);
        if let Some(pvc) = self.claims(sig).into_iter().next() {
            let size = pvc
                .o
                .spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .map(|q| q.0.clone());
            let requested = size.as_deref().and_then(parse_quantity);
            let capacity = pvc
                .o
                .status
                .as_ref()
                .and_then(|s| s.capacity.as_ref())
                .and_then(|c| c.get("storage"))
                .and_then(|q| parse_quantity(&q.0));
            if let (Some(r), Some(cap)) = (requested, capacity) {
                if r > cap * 1.01 {
                    return None; // an expansion is already requested
                }
            }
            let expandable = pvc
                .o
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.as_ref())
                .and_then(|sc| self.c.storageclasses.iter().find(|s| &s.r.name == sc))
                .and_then(|s| s.o.allow_volume_expansion);
            let mut v = Verified::new(pvc.r.clone(), 1.0, format!("the volume of claim {} ({}) is full: writes fail with 'No space left on device'", pvc.r.name, size.clone().unwrap_or_default()))
                .ev(EvidenceSource::Spec, &pvc.r, format!("spec.resources.requests.storage = {}", size.clone().unwrap_or_default()), "spec.resources.requests.storage")
                .param("expandable", json!(expandable));
            if let Some(s) = requested {
                v = v.param("storage", json!(crate::snapshot::format_mebibytes(s * 2.0)));
            }
            return Some(v);
        }
        Some(Verified::new(
            w.clone(),
            0.7,
            format!(
                "{}: a filesystem it writes to is full (No space left on device)",
                w.kind_name()
            ),
        ))
    }

    fn mount_failed(&self, sig: &Signal) -> Option<Verified> {
        if let Some(pvc) = self.claims(sig).into_iter().next() {
            return Some(Verified::new(
                pvc.r.clone(),
                0.8,
                format!(
                    "volume of claim {} cannot be attached or mounted: {}",
                    pvc.r.name,
                    trim(&sig.detail)
                ),
            ));
        }
        let w = self.workload(&sig.object);
        Some(Verified::new(
            w.clone(),
            0.6,
            format!(
                "{}: a volume cannot be mounted: {}",
                w.kind_name(),
                trim(&sig.detail)
            ),
        ))
    }

    // ----------------------------------------------------------------- system

    fn node_condition(&self, sig: &Signal, cond: &str, scope: &[ObjectRef]) -> Option<Verified> {
        // The node: the signal's object (a node signal) or the evicted/rejected pod's node.
        let node_name = if sig.object.kind == "Node" {
            sig.object.name.clone()
        } else {
            sig.peer.clone()?
        };
        let node = self.c.node(&node_name);
        let has_cond = node.is_some_and(|n| {
            n.o.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| {
                    c.type_ == cond
                        && if cond == "Ready" {
                            c.status != "True"
                        } else {
                            c.status == "True"
                        }
                })
        });
        let node_ref = ObjectRef::cluster("Node", &node_name);
        let reclaim = self
            .c
            .events_for(&node_ref)
            .any(|e| e.o.reason.as_deref() == Some("EvictionThresholdMet"));
        let named = sig.detail.contains(&format!("[{cond}]"))
            || (cond == "DiskPressure"
                && (sig.code == "evicted_disk"
                    || sig.detail.contains("ephemeral-storage")
                    || sig.detail.contains("nodefs")))
            || (cond == "MemoryPressure" && sig.code == "evicted_memory");
        if !(has_cond || named) {
            return None;
        }
        // A node condition alone is a red herring unless the target's pods suffer from it —
        // or the node is what was asked about: then its own condition is the fault.
        let asked = self.c.target.kind == "Node" && self.c.target.name == node_name;
        if sig.object.kind == "Node" && !asked {
            let suffering = scope.iter().filter(|r| r.kind == "Pod").any(|p| {
                self.g
                    .neighbors(p, Edge::RunsOn, Direction::Outgoing)
                    .iter()
                    .any(|n| n.name == node_name)
                    && self.on(p).any(|s| is_failure(&s.code))
            });
            if !suffering {
                return None;
            }
        }
        let strength = if has_cond || reclaim { 1.0 } else { 0.8 };
        let mut v = Verified::new(
            node_ref.clone(),
            strength,
            format!(
                "node {node_name} {}, so the kubelet {}",
                if cond == "Ready" {
                    "is NotReady".to_string()
                } else {
                    format!("is under {cond}")
                },
                if cond == "Ready" {
                    "no longer runs the pods"
                } else {
                    "evicts pods and rejects new ones"
                }
            ),
        );
        if reclaim {
            v = v.ev(
                EvidenceSource::Event,
                &node_ref,
                format!("node {node_name}: EvictionThresholdMet (Attempting to reclaim resources)"),
                "event reason=EvictionThresholdMet",
            );
        }
        // Workloads pinned to the node keep landing there.
        let pinned: Vec<ObjectRef> = scope
            .iter()
            .filter(|r| matches!(r.kind.as_str(), "Deployment" | "StatefulSet" | "Job"))
            .filter(|w| {
                self.template(w)
                    .is_some_and(|(s, _)| s.node_name.as_deref() == Some(node_name.as_str()))
            })
            .cloned()
            .collect();
        if let Some(w) = pinned.first() {
            v.summary.push_str(&format!("; {} is pinned to the node with spec.nodeName, so every replacement is rejected too", w.kind_name()));
            v = v.param("pinned", serde_json::to_value(w).ok()?);
        }
        Some(
            v.param("node", json!(node_name))
                .param("condition", json!(cond)),
        )
    }

    fn node_pod_capacity(&self, sig: &Signal) -> Option<Verified> {
        let w = self.workload(&sig.object);
        let (spec, _) = self.template(&w)?;
        // The node the pod is pinned to (nodeName, or a hostname selector), if any.
        let pinned = spec.node_name.clone().or_else(|| {
            spec.node_selector
                .as_ref()
                .and_then(|s| s.get("kubernetes.io/hostname").cloned())
        });
        let full = self.c.nodes.iter().find(|n| {
            let cap =
                n.o.status
                    .as_ref()
                    .and_then(|s| s.allocatable.as_ref())
                    .and_then(|a| a.get("pods"))
                    .and_then(|q| parse_quantity(&q.0));
            let running = self
                .c
                .pods
                .iter()
                .filter(|p| {
                    p.o.spec.as_ref().and_then(|s| s.node_name.as_deref())
                        == Some(n.r.name.as_str())
                        && !pod_terminal(&p.o)
                })
                .count() as f64;
            pinned.as_deref().is_none_or(|p| p == n.r.name) && cap.is_some_and(|c| running >= c)
        });
        let node = full
            .map(|n| n.r.clone())
            .or_else(|| pinned.clone().map(|p| ObjectRef::cluster("Node", p)))?;
        let mut v = Verified::new(
            node.clone(),
            if full.is_some() { 1.0 } else { 0.7 },
            format!(
                "node {} already runs its maximum number of pods{}, so the scheduler cannot place more",
                node.name,
                pinned.as_ref().map(|_| format!(" and {} pins its pods to it", w.kind_name())).unwrap_or_default()
            ),
        )
        .param("workload", serde_json::to_value(&w).ok()?);
        if let Some(n) = full {
            let cap =
                n.o.status
                    .as_ref()
                    .and_then(|s| s.allocatable.as_ref())
                    .and_then(|a| a.get("pods"))
                    .map(|q| q.0.clone())
                    .unwrap_or_default();
            v = v.ev(
                EvidenceSource::Status,
                &node,
                format!("status.allocatable.pods = {cap}"),
                "status.allocatable.pods",
            );
        }
        if pinned.is_some() {
            v = v.param("pinned", json!(true));
        }
        Some(v)
    }

    // ----------------------------------------------------------------- application

    fn upstream_malformed(&self, sig: &Signal, path: &[ObjectRef]) -> Option<Verified> {
        // The upstream named in the log, or else the one Service the pod's configuration calls
        // whose pods are healthy.
        let svc = self.peer_service(sig, path).or_else(|| {
            self.g
                .neighbors(&sig.object, Edge::DependsOn, Direction::Outgoing)
                .into_iter()
                .find(|s| {
                    !path.contains(s) && self.selected_pods(s).iter().any(|p| pod_ready(&p.o))
                })
                .cloned()
        })?;
        let pods = self.selected_pods(&svc);
        if pods.is_empty() || !pods.iter().any(|p| pod_ready(&p.o)) {
            return None; // an unreachable upstream is a different fault
        }
        let upstream = self.workload(&pods[0].r);
        Some(
            Verified::new(
                upstream.clone(),
                1.0,
                format!(
                    "{} answers {} with data it cannot parse while its pods are Running and Ready: the upstream returns malformed responses (HTTP 200)",
                    upstream.kind_name(),
                    self.workload(&sig.object).name
                ),
            )
            .ev(EvidenceSource::Graph, &svc, format!("{} calls Service {} → {}", sig.object.name, svc.name, upstream.name), "depends_on")
            .param("_via", json!(svc)),
        )
        .map(|mut v| {
            v.via = vec![svc.clone()];
            v
        })
    }

    fn coredns_down(&self, sig: &Signal) -> Option<Verified> {
        let dns = self.signals.iter().find(|s| s.code == "coredns_down")?;
        let is_dns_timeout = sig.code == "log_dns_failure" || sig.detail.contains(":53");
        if !is_dns_timeout {
            return None;
        }
        let mut v = Verified::new(
            dns.object.clone(),
            1.0,
            format!(
                "the cluster DNS ({}) has no ready pod, so {} cannot resolve {} (or any Service name)",
                dns.object.kind_name(),
                self.workload(&sig.object).name,
                sig.peer.as_deref().unwrap_or("its dependencies")
            ),
        );
        v.evidence.push(dns.evidence.clone());
        for s in self
            .signals
            .iter()
            .filter(|s| {
                s.object.namespace == dns.object.namespace
                    && s.object.kind == "Pod"
                    && is_failure(&s.code)
            })
            .take(2)
        {
            v.evidence.push(s.evidence.clone());
        }
        Some(v)
    }

    fn app_crash(&self, sig: &Signal, _scope: &[ObjectRef]) -> Option<Verified> {
        let w = self.workload(&sig.object);
        // An infrastructure symptom in the same pod makes a plain crash a consequence.
        let infra = self.on(&sig.object).any(|s| {
            matches!(
                s.hint,
                Some(
                    Category::Resource
                        | Category::Image
                        | Category::Configuration
                        | Category::Storage
                        | Category::System
                )
            )
        });
        let line = self
            .on(&sig.object)
            .filter(|s| s.code.starts_with("log_") && s.code != "log_error_line")
            .map(|s| trim(&s.detail))
            .next()
            .or_else(|| {
                self.on(&sig.object)
                    .filter(|s| s.code == "log_error_line")
                    .map(|s| trim(&s.detail))
                    .next()
            });
        Some(Verified::new(
            w.clone(),
            if infra { 0.3 } else { 0.8 },
            format!(
                "{} fails on its own ({}){}",
                w.kind_name(),
                trim(&sig.detail),
                line.map(|l| format!("; its log says: {l}"))
                    .unwrap_or_default()
            ),
        ))
    }

    fn dependency_unreachable(&self, sig: &Signal) -> Option<Verified> {
        if sig.code == "log_dns_failure" && self.dns_down() {
            return None;
        }
        let peer = sig.peer.as_deref()?;
        if self.c.resolve_service(peer, ns_of(&sig.object)).is_some() {
            return None; // a Service in the cluster: the network causes apply
        }
        let w = self.workload(&sig.object);
        let in_cluster_name = !peer.contains('.') && peer.parse::<std::net::IpAddr>().is_err();
        Some(
            Verified::new(
                w.clone(),
                if in_cluster_name { 0.7 } else { 0.9 },
                format!("{} cannot reach {peer}, a dependency outside the cluster's Services, while the cluster is healthy ({})", w.kind_name(), trim(&sig.detail)),
            )
            .param("host", json!(peer)),
        )
    }
}

// --------------------------------------------------------------------- free helpers

fn ns_of(r: &ObjectRef) -> &str {
    r.namespace.as_deref().unwrap_or("")
}

/// Whether a symptom code means something is failing (as opposed to a hint).
pub fn is_failure(code: &str) -> bool {
    !matches!(
        code,
        "log_error_line" | "log_slow_call" | "readiness_failed"
    ) && !code.starts_with("node_")
        && code != "service_no_endpoints"
}

fn trim(s: &str) -> String {
    let s = s.trim();
    if s.len() > 240 {
        let mut end = 240;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

/// How alike two label values are, 0–1: one a prefix of the other (`redis`, `redis-cache`)
/// or a small edit distance relative to their length.
fn label_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    if a.starts_with(b) || b.starts_with(a) {
        return 0.8;
    }
    let d = edit_distance(a, b) as f64;
    let n = a.len().max(b.len()).max(1) as f64;
    (1.0 - d / n).max(0.0) * 0.8
}

fn limit_of(c: &Container, res: &str) -> Option<f64> {
    c.resources
        .as_ref()?
        .limits
        .as_ref()?
        .get(res)
        .and_then(|q| parse_quantity(&q.0))
}

fn has_resource(c: &Container, res: &str) -> bool {
    let (section, name) = res.split_once('.').unwrap_or(("requests", res));
    let r = c.resources.as_ref();
    match section {
        "limits" => r
            .and_then(|r| r.limits.as_ref())
            .is_some_and(|l| l.contains_key(name)),
        _ => r
            .and_then(|r| r.requests.as_ref())
            .is_some_and(|l| l.contains_key(name)),
    }
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn pod_terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn fmt_labels(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `/spec/template/spec` + `containers/0` → `spec.template.spec.containers[0]`.
fn ptr_to_field(prefix: &str, rest: &str) -> String {
    let mut out = String::new();
    for seg in prefix
        .split('/')
        .chain(rest.split('/'))
        .filter(|s| !s.is_empty())
    {
        if seg.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// `had untolerated taint {key1: value1}` → (key1, value1, effect from the node).
fn parse_taint(
    part: &str,
    nodes: &[Obj<k8s_openapi::api::core::v1::Node>],
) -> (String, String, String) {
    let inner = part
        .split('{')
        .nth(1)
        .and_then(|s| s.split('}').next())
        .unwrap_or("");
    let (k, v) = inner
        .split_once(':')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .unwrap_or((inner.trim().to_string(), String::new()));
    let effect = nodes
        .iter()
        .flat_map(|n| {
            n.o.spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default()
        })
        .find(|t| t.key == k)
        .map(|t| t.effect)
        .unwrap_or_else(|| "NoSchedule".into());
    (k, v, effect)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Merges findings about the same (reason, object): scores combine as a noisy-OR, evidence
/// and symptoms are united.
/// Evidence items kept per finding: a fault shown by thousands of pods is shown as well by
/// its first few, and the answer stays readable (and merging linear).
const MAX_EVIDENCE: usize = 16;

fn merge(raw: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut at: HashMap<(String, ObjectRef), usize> = HashMap::new();
    let mut seen: Vec<HashSet<String>> = Vec::new();
    for f in raw {
        let k = (f.reason.clone(), f.object.clone());
        if let Some(&i) = at.get(&k) {
            let m = &mut out[i];
            m.score = (1.0 - (1.0 - m.score) * (1.0 - f.score * 0.5)).min(0.99);
            for e in f.evidence {
                if m.evidence.len() < MAX_EVIDENCE && seen[i].insert(e.detail.clone()) {
                    m.evidence.push(e);
                }
            }
            for s in f.symptoms {
                if !m.symptoms.contains(&s) {
                    m.symptoms.push(s);
                }
            }
            for (k, v) in f.params {
                m.params.entry(k).or_insert(v);
            }
        } else {
            at.insert(k, out.len());
            seen.push(f.evidence.iter().map(|e| e.detail.clone()).collect());
            out.push(f);
        }
    }
    out
}

fn annotate(findings: &mut [Finding]) {
    let Some(top) = findings.first().cloned() else {
        return;
    };
    for f in findings.iter_mut().skip(1) {
        if f.note.is_empty() {
            f.note = if f.object == top.object {
                format!(
                    "same object as the top cause; weaker evidence ({:.2} vs {:.2})",
                    f.score, top.score
                )
            } else if top.path.len() > f.path.len() && top.path.contains(&f.object) {
                format!(
                    "{} is on the path to {}, which explains its symptoms",
                    f.object.name, top.object.name
                )
            } else {
                format!(
                    "less evidence: {:.2} vs {:.2} for {} at {}",
                    f.score, top.score, top.reason, top.object.name
                )
            };
        }
    }
    if let Some(f) = findings.first_mut() {
        if f.note.is_empty() {
            f.note = format!("explains {}", f.symptoms.join(", "));
        }
    }
}

/// Short `Kind/name` for summaries.
pub trait KindName {
    /// `Deployment/checkout`.
    fn kind_name(&self) -> String;
}

impl KindName for ObjectRef {
    fn kind_name(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}
