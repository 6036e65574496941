//! Verifiers for faults in the cluster's machinery rather than in a workload: a scheduler
//! that never looks at a pod, nodes cordoned out of scheduling.

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, PodSpec, Taint, Toleration};
use metakube_shared::{Evidence, EvidenceSource, ObjectRef};
use petgraph::Direction;
use serde_json::json;

use super::{Finding, KindName, Search, Verified};
use crate::graph::instance::Edge;
use crate::signals::{event_last_seen, Signal};
use crate::snapshot::Obj;

/// The taint the node controller mirrors from `spec.unschedulable`
/// (`pkg/controller/nodelifecycle`, `node.kubernetes.io/unschedulable:NoSchedule`).
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Whether a node runs the control plane: kubeadm's and kubeasz's role labels, or the name.
pub(super) fn is_control_plane(n: &Obj<Node>) -> bool {
    let labelled = n.o.metadata.labels.as_ref().is_some_and(|l| {
        l.contains_key("node-role.kubernetes.io/control-plane")
            || l.contains_key("node-role.kubernetes.io/master")
            || l.get("kubernetes.io/role").is_some_and(|r| r == "master")
    });
    labelled || n.r.name == "master" || n.r.name.contains("control-plane")
}

impl Search<'_> {
    /// The control-plane nodes, by name.
    fn control_plane_nodes(&self) -> Vec<&Obj<Node>> {
        let mut planes: Vec<&Obj<Node>> = self
            .c
            .nodes
            .iter()
            .filter(|n| is_control_plane(n))
            .collect();
        planes.sort_by(|a, b| a.r.name.cmp(&b.r.name));
        planes
    }

    /// A pod the scheduler never tried (no PodScheduled condition, no scheduling event) while
    /// nothing else was scheduled since it was created: the scheduler is not running.
    pub(super) fn scheduler_not_running(&self, sig: &Signal) -> Option<Verified> {
        if sig.code != "pod_unscheduled" {
            return None;
        }
        let pod = self.pod(&sig.object)?;
        let created = pod.o.metadata.creation_timestamp.as_ref()?.0;
        let scheduler = sig.peer.as_deref().unwrap_or("default-scheduler");
        // The scheduler is alive if it placed any pod after this one was created.
        let scheduled_since = self.c.events.iter().any(|e| {
            e.o.reason.as_deref() == Some("Scheduled")
                && event_last_seen(&e.o).is_some_and(|t| t > created)
        }) || self.c.pods.iter().any(|p| {
            p.o.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "True"
                        && c.last_transition_time
                            .as_ref()
                            .is_some_and(|t| t.0 > created)
                })
        });
        if scheduled_since {
            return None;
        }
        let planes = self.control_plane_nodes();
        let w = self.workload(&sig.object);
        let (object, strength, where_) = match planes.first() {
            Some(n) => (
                n.r.clone(),
                1.0,
                format!("on control-plane node {}", n.r.name),
            ),
            // A managed control plane is not in the dump: the pod is where it shows.
            None => (
                sig.object.clone(),
                0.7,
                "on the (managed) control plane".to_string(),
            ),
        };
        let mut v = Verified::new(
            object,
            strength,
            format!(
                "{scheduler} is not running {where_}: {} has waited {} with no PodScheduled condition and no scheduling event, and no pod has been scheduled since it was created",
                w.kind_name(),
                sig.value.map_or("long".into(), crate::signals::human_secs)
            ),
        )
        .param("scheduler", json!(scheduler));
        if let Some(n) = planes.first() {
            v = v.param("node", json!(n.r.name)).ev(
                EvidenceSource::Graph,
                &n.r,
                format!(
                    "node {} runs the control plane (kube-scheduler lives there)",
                    n.r.name
                ),
                "metadata.labels",
            );
        }
        Some(v)
    }

    /// A ReplicaSet short of pods with no FailedCreate, while no controller event has been
    /// written since: kube-controller-manager is not running.
    pub(super) fn controller_manager_not_running(&self, sig: &Signal) -> Option<Verified> {
        if sig.code != "replicas_not_created" {
            return None;
        }
        // Any controller event newer than the ReplicaSet's own last event proves the
        // controllers run.
        let last_own = self
            .c
            .events_for(&sig.object)
            .filter_map(|e| event_last_seen(&e.o))
            .max();
        let newer_controller_event = self.c.events.iter().any(|e| {
            matches!(
                e.o.reason.as_deref(),
                Some("SuccessfulCreate" | "ScalingReplicaSet" | "SuccessfulDelete")
            ) && last_own.is_some_and(|own| event_last_seen(&e.o).is_some_and(|t| t > own))
        });
        if newer_controller_event {
            return None;
        }
        let planes = self.control_plane_nodes();
        let (object, strength) = match planes.first() {
            Some(n) => (n.r.clone(), 0.9),
            None => (sig.object.clone(), 0.6),
        };
        let w = self.workload(&sig.object);
        Some(
            Verified::new(
                object,
                strength,
                format!(
                    "kube-controller-manager is not running: {} ({})",
                    w.kind_name(),
                    sig.detail
                ),
            )
            .param("component", json!("kube-controller-manager"))
            .param("node", json!(planes.first().map(|n| n.r.name.clone()))),
        )
    }

    /// "N node(s) were unschedulable": the cordoned nodes the workload could otherwise run on.
    pub(super) fn nodes_cordoned(&self, sig: &Signal) -> Option<Verified> {
        let w = self.workload(&sig.object);
        let (spec, _) = self.template(&w)?;
        let mut eligible: Vec<&Obj<Node>> = self
            .c
            .nodes
            .iter()
            .filter(|n| n.o.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
            .filter(|n| node_admits(spec, n))
            .collect();
        // Workers first: a cordoned control plane is the normal state of many clusters.
        eligible.sort_by_key(|n| (is_control_plane(n), n.r.name.clone()));
        let first = eligible.first()?;
        let workers = eligible.iter().filter(|n| !is_control_plane(n)).count();
        let names: Vec<&str> = eligible.iter().map(|n| n.r.name.as_str()).collect();
        let mut v = Verified::new(
            first.r.clone(),
            if workers > 0 { 1.0 } else { 0.5 },
            format!(
                "{} may run on node{} {}, but {} cordoned (spec.unschedulable), so its pods stay Pending",
                w.kind_name(),
                if names.len() > 1 { "s" } else { "" },
                names.join(", "),
                if names.len() > 1 { "they are" } else { "it is" }
            ),
        )
        .param("nodes", json!(names));
        for n in &eligible {
            v = v.ev(
                EvidenceSource::Spec,
                &n.r,
                format!("node {} has spec.unschedulable = true", n.r.name),
                "spec.unschedulable",
            );
        }
        Some(v)
    }
}

impl Search<'_> {
    /// A connect-level timeout (`dial tcp CLUSTER-IP:PORT: i/o timeout`) to a Service whose
    /// endpoints are ready, whose port is right and that no NetworkPolicy isolates: packets to
    /// the ClusterIP are not translated on the caller's node, so the node's Service proxy
    /// (kube-proxy's iptables/IPVS rules) is stale or stopped.
    pub(super) fn node_service_proxy(&self, sig: &Signal, path: &[ObjectRef]) -> Option<Verified> {
        if sig.code != "log_timeout" {
            return None;
        }
        let lower = sig.detail.to_ascii_lowercase();
        if !(lower.contains("dial tcp") && lower.contains("i/o timeout")) {
            return None;
        }
        let svc = self.peer_service(sig, path)?;
        let s = self.c.service(super::ns_of(&svc), &svc.name)?;
        let spec = s.o.spec.as_ref()?;
        if let Some(port) = sig.port {
            if !spec.ports.iter().flatten().any(|p| p.port == port) {
                return None; // a wrong port is the caller's configuration
            }
        }
        let backends = self.selected_pods(&svc);
        if backends.is_empty() || !backends.iter().all(|p| super::pod_ready(&p.o)) {
            return None;
        }
        let isolated = self.c.netpols.iter().any(|np| {
            np.r.namespace == svc.namespace
                && np.o.spec.as_ref().is_some_and(|sp| {
                    backends.iter().any(|p| {
                        sp.pod_selector.as_ref().is_none_or(|sel| {
                            crate::snapshot::label_selector_matches(
                                sel,
                                p.o.metadata.labels.as_ref(),
                            )
                        })
                    })
                })
        });
        // An egress policy on the caller drops the packets just the same.
        let caller = self.pod(&sig.object)?;
        let egress_limited = self.c.netpols.iter().any(|np| {
            np.r.namespace == sig.object.namespace
                && np.o.spec.as_ref().is_some_and(|sp| {
                    sp.policy_types
                        .as_ref()
                        .is_some_and(|t| t.iter().any(|t| t == "Egress"))
                        && sp.pod_selector.as_ref().is_none_or(|sel| {
                            crate::snapshot::label_selector_matches(
                                sel,
                                caller.o.metadata.labels.as_ref(),
                            )
                        })
                })
        });
        if isolated || egress_limited || self.target_port_mismatch(&svc).is_some() {
            return None;
        }
        let node = caller.o.spec.as_ref()?.node_name.clone()?;
        let node_ref = ObjectRef::cluster("Node", &node);
        Some(
            Verified::new(
                node_ref.clone(),
                0.8,
                format!(
                    "{} on node {node} times out connecting to Service {} ({}) although its {} endpoint(s) are ready and nothing isolates them: the Service rules on {node} (kube-proxy) are not working",
                    sig.object.name,
                    svc.name,
                    spec.cluster_ip.as_deref().unwrap_or(""),
                    backends.len()
                ),
            )
            .ev(
                EvidenceSource::Graph,
                &svc,
                format!("Service {} has {} ready endpoint(s)", svc.name, backends.len()),
                "endpoints",
            )
            .param("node", json!(node)),
        )
        .map(|mut v| {
            v.via = vec![svc.clone()];
            v
        })
    }
}

impl Search<'_> {
    /// A caller's log relays the target's own failure: a gRPC error whose message carries the
    /// error the target got from its own call (`rpc error: … desc = cart failure: … rpc error:
    /// … dial tcp IP:PORT: i/o timeout`). When the caller calls the target's Service, the inner
    /// dial timeout happened on the target's node: check that node's Service proxy as if the
    /// target had logged it.
    pub(super) fn relayed_proxy_failures(
        &self,
        target: &ObjectRef,
        scope: &[ObjectRef],
    ) -> Vec<Finding> {
        let pods: Vec<&ObjectRef> = scope.iter().filter(|r| r.kind == "Pod").collect();
        let Some(pod) = pods.first() else {
            return Vec::new();
        };
        let services: Vec<&ObjectRef> = pods
            .iter()
            .flat_map(|p| self.g.neighbors(p, Edge::Selects, Direction::Incoming))
            .filter(|s| s.kind == "Service")
            .collect();
        let mut out = Vec::new();
        // Callers of the target's Services (outside the target), and the lines of their logs
        // that relay a dial timeout the target hit.
        let callers: Vec<&ObjectRef> = services
            .iter()
            .flat_map(|s| self.g.neighbors(s, Edge::DependsOn, Direction::Incoming))
            .filter(|c| c.kind == "Pod" && !scope.contains(c))
            .collect();
        for caller in callers {
            let ns = super::ns_of(caller);
            let line = self.c.logs_of(ns, &caller.name).find_map(|l| {
                l.text
                    .lines()
                    .find(|line| {
                        line.contains("dial tcp")
                            && line.contains("i/o timeout")
                            && line.matches("rpc error").count() >= 2
                    })
                    .map(|line| (l.container.clone(), line.trim().to_string()))
            });
            let Some((container, line)) = line else {
                continue;
            };
            let peers = crate::signals::extract_peers(&line);
            // The Service the target itself dialled (not the target's own, which the caller
            // reached: the error came back from it).
            let Some(host) = peers
                .iter()
                .find(|p| {
                    self.c
                        .resolve_service(p, ns)
                        .is_some_and(|s| !services.contains(&&s))
                })
                .cloned()
            else {
                continue;
            };
            let mut relayed = Signal::new(
                "log_timeout",
                pod,
                EvidenceSource::Log,
                format!(
                    "relayed in the log of {} (container {container}): {line}",
                    caller.name
                ),
                Some(format!("logs/{container}")),
            );
            relayed.port = crate::signals::peer_port(&line, &host);
            relayed.peer = Some(host);
            let sig = &relayed;
            let Some(cause) = self.d.cause("NodeServiceProxyBroken") else {
                continue;
            };
            let Some(w) = self
                .d
                .causes_for("log_timeout")
                .find(|(c, _)| c.reason == cause.reason)
                .map(|(_, w)| w)
            else {
                continue;
            };
            let Some(mut v) = self.node_service_proxy(sig, std::slice::from_ref(target)) else {
                continue;
            };
            v.evidence.insert(
                0,
                Evidence {
                    source: EvidenceSource::Log,
                    object: caller.clone(),
                    detail: format!(
                        "{} relays the error {} got from its own call: {line}",
                        caller.name, target.name
                    ),
                    pointer: sig.evidence.pointer.clone(),
                },
            );
            let mut path = vec![target.clone()];
            path.extend(v.via.iter().cloned());
            path.push(v.object.clone());
            out.push(Finding {
                reason: cause.reason.clone(),
                category: cause.category,
                object: v.object,
                // Relayed, so one step less direct than the target's own log.
                score: (w * v.strength * 0.7).clamp(0.0, 0.99),
                summary: v.summary,
                evidence: v.evidence,
                symptoms: vec![sig.code.clone()],
                path,
                fix: cause.fix.clone(),
                params: v.params,
                note: String::new(),
                learned_from: None,
            });
            break;
        }
        out
    }
}

/// Whether a pod with this spec could run on the node if it were not cordoned: its
/// nodeName, nodeSelector, required node affinity and tolerations (the scheduler's NodeName,
/// NodeAffinity and TaintToleration filters, `pkg/scheduler/framework/plugins`).
pub(super) fn node_admits(spec: &PodSpec, n: &Obj<Node>) -> bool {
    if spec
        .node_name
        .as_deref()
        .is_some_and(|name| name != n.r.name)
    {
        return false;
    }
    let empty = Default::default();
    let labels = n.o.metadata.labels.as_ref().unwrap_or(&empty);
    if let Some(sel) = &spec.node_selector {
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(req) = required {
        let any_term = req.node_selector_terms.iter().any(|t| {
            t.match_expressions
                .iter()
                .flatten()
                .all(|e| requirement_holds(e, labels.get(&e.key).map(String::as_str)))
                && t.match_fields
                    .iter()
                    .flatten()
                    .all(|e| e.key != "metadata.name" || requirement_holds(e, Some(&n.r.name)))
        });
        if !any_term {
            return false;
        }
    }
    n.o.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.key != UNSCHEDULABLE_TAINT && t.effect != "PreferNoSchedule")
        .all(|t| {
            spec.tolerations
                .iter()
                .flatten()
                .any(|tol| tolerates(tol, t))
        })
}

fn requirement_holds(e: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let vals = e.values.as_deref().unwrap_or_default();
    let num = |s: &str| s.parse::<i64>().ok();
    match e.operator.as_str() {
        "In" => value.is_some_and(|v| vals.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !vals.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => {
            matches!((value.and_then(num), vals.first().and_then(|x| num(x))), (Some(a), Some(b)) if a > b)
        }
        "Lt" => {
            matches!((value.and_then(num), vals.first().and_then(|x| num(x))), (Some(a), Some(b)) if a < b)
        }
        _ => false,
    }
}

/// `Toleration.ToleratesTaint` of `k8s.io/api/core/v1/toleration.go`.
pub(super) fn tolerates(tol: &Toleration, t: &Taint) -> bool {
    if tol
        .effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != t.effect)
    {
        return false;
    }
    let key_ok = match tol.key.as_deref() {
        None | Some("") => tol.operator.as_deref() == Some("Exists"),
        Some(k) => k == t.key,
    };
    key_ok
        && match tol.operator.as_deref() {
            Some("Exists") => true,
            _ => tol.value.as_deref().unwrap_or("") == t.value.as_deref().unwrap_or(""),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: Some(value.into()),
            effect: effect.into(),
            time_added: None,
        }
    }

    #[test]
    fn tolerations_follow_the_api_rules() {
        let t = taint("critical", "true", "NoSchedule");
        let exists_all = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert!(tolerates(&exists_all, &t));
        let equal = Toleration {
            key: Some("critical".into()),
            operator: Some("Equal".into()),
            value: Some("true".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        };
        assert!(tolerates(&equal, &t));
        let wrong_value = Toleration {
            value: Some("false".into()),
            ..equal.clone()
        };
        assert!(!tolerates(&wrong_value, &t));
        let wrong_effect = Toleration {
            effect: Some("NoExecute".into()),
            ..equal
        };
        assert!(!tolerates(&wrong_effect, &t));
    }

    #[test]
    fn node_affinity_operators() {
        let req = |op: &str, vals: &[&str]| NodeSelectorRequirement {
            key: "env".into(),
            operator: op.into(),
            values: Some(vals.iter().map(|s| s.to_string()).collect()),
        };
        assert!(requirement_holds(
            &req("In", &["prod", "staging"]),
            Some("prod")
        ));
        assert!(!requirement_holds(
            &req("In", &["prod", "staging"]),
            Some("dev")
        ));
        assert!(requirement_holds(&req("NotIn", &["maintenance"]), None));
        assert!(!requirement_holds(
            &req("NotIn", &["maintenance"]),
            Some("maintenance")
        ));
        assert!(requirement_holds(&req("Gt", &["3"]), Some("4")));
        assert!(!requirement_holds(&req("Exists", &[]), None));
    }
}
