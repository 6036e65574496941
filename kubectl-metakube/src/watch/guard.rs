//! Guarded remediation: the only changes watch mode makes on its own are the typed actions of
//! [`ActionKind`], taken from a diagnosis' fixes, each behind a per-object cooldown, a
//! cluster-wide rate limit and a circuit breaker, and each verified afterwards: the incident
//! must resolve within a deadline, or the action is rolled back where it can be and the
//! incident escalated to a person. PVCs, PVs, Namespaces and Secrets are never acted on.

use std::collections::{HashMap, VecDeque};

use jiff::{SignedDuration, Timestamp};
use metakube_shared::{Diagnosis, KubeObject, ObjectRef, Patch};
use serde_json::{json, Map, Value};

use super::store::Store;

/// The registry: every action watch mode may take by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// Set `spec.replicas` of a workload.
    Scale,
    /// Restart a workload's pods (`kubectl rollout restart`: a template annotation).
    RolloutRestart,
    /// Put back an earlier revision's pod template (`kubectl rollout undo`).
    RolloutUndo,
    /// Change container resources (requests/limits) of a workload.
    PatchResources,
    /// Delete one pod its controller recreates.
    DeletePod,
}

impl ActionKind {
    /// The name in output and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Scale => "scale",
            ActionKind::RolloutRestart => "rollout_restart",
            ActionKind::RolloutUndo => "rollout_undo",
            ActionKind::PatchResources => "patch_resources",
            ActionKind::DeletePod => "delete_pod",
        }
    }
}

/// Kinds no action ever touches.
pub const NEVER_TOUCHED: &[&str] = &[
    "PersistentVolumeClaim",
    "PersistentVolume",
    "Namespace",
    "Secret",
];

const WORKLOADS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"];

/// An action planned from a diagnosis.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Which registry entry.
    pub kind: ActionKind,
    /// What it changes (for `DeletePod`, the pod).
    pub object: ObjectRef,
    /// The change, as a patch (none for `DeletePod`).
    pub patch: Option<Patch>,
    /// The patch that puts the object back as it was before, where one exists.
    pub rollback: Option<Patch>,
}

/// Maps a diagnosis' fixes to a registry action: the first validated patch whose every change
/// is one action's (replicas; container resources; the restart annotation), or a `rollout undo`
/// / `rollout restart` / `delete pod` command of the fix list. `Err` says why none applies.
pub fn plan(d: &Diagnosis, store: &Store, now: Timestamp) -> Result<Planned, String> {
    let Some(rc) = &d.root_cause else {
        return Err("no verified root cause".into());
    };
    let mut why = Vec::new();
    for rem in &d.remediation {
        if let Some(p) = &rem.patch {
            if NEVER_TOUCHED.contains(&p.object.kind.as_str()) {
                why.push(format!("{} is never changed automatically", p.object));
                continue;
            }
            if !p.validated {
                why.push(format!("the patch of {} did not validate", p.object));
                continue;
            }
            match classify(p) {
                Some(kind) if WORKLOADS.contains(&p.object.kind.as_str()) => {
                    let before = store.get(&p.object);
                    return Ok(Planned {
                        kind,
                        object: p.object.clone(),
                        patch: Some(p.clone()),
                        rollback: before.and_then(|b| inverse(p, b)),
                    });
                }
                _ => why.push(format!(
                    "changing {} that way is not an action in the registry",
                    p.object
                )),
            }
        }
        if let Some(cmd) = &rem.command {
            if let Some(p) = from_command(cmd, rc.object.namespace.as_deref(), store, now) {
                return p;
            }
        }
    }
    if why.is_empty() {
        why.push("the fix is a manual step".into());
    }
    Err(why.join("; "))
}

/// Which action a patch is, by the fields it changes.
fn classify(p: &Patch) -> Option<ActionKind> {
    let paths = changed_paths(p);
    if paths.is_empty() {
        return None;
    }
    let all = |f: &dyn Fn(&str) -> bool| paths.iter().all(|x| f(x));
    if all(&|x| x == "/spec/replicas") {
        return Some(ActionKind::Scale);
    }
    let resources = |x: &str| {
        x.strip_prefix("/spec/template/spec/containers/")
            .or_else(|| x.strip_prefix("/spec/template/spec/initContainers/"))
            .and_then(|r| r.split_once('/'))
            .is_some_and(|(_, field)| field == "resources" || field.starts_with("resources/"))
    };
    let lists = |x: &str| {
        x == "/spec/template/spec/containers" || x == "/spec/template/spec/initContainers"
    };
    // A JSON patch by path; a strategic patch merges container lists by name, so each entry
    // must set nothing but resources (a merge patch would replace the whole list).
    let resources_only = match p.patch_type.as_str() {
        "json" => all(&resources),
        "strategic" => all(&lists) && only_resources(&p.body),
        _ => false,
    };
    if resources_only {
        return Some(ActionKind::PatchResources);
    }
    if all(&|x| x == "/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt") {
        return Some(ActionKind::RolloutRestart);
    }
    None
}

fn only_resources(body: &Value) -> bool {
    let containers = ["containers", "initContainers"].map(|c| {
        body.pointer(&format!("/spec/template/spec/{c}"))
            .and_then(Value::as_array)
    });
    containers.iter().flatten().all(|cs| {
        cs.iter().all(|c| {
            c.as_object().is_some_and(|m| {
                m.keys().all(|k| k == "name" || k == "resources") && m.contains_key("name")
            })
        })
    })
}

/// JSON pointers a patch changes: each op's path, or each leaf of a merge body (a container
/// list counts as one leaf at the list).
fn changed_paths(p: &Patch) -> Vec<String> {
    if p.patch_type == "json" {
        return p
            .body
            .as_array()
            .map(|ops| {
                ops.iter()
                    .map(|o| {
                        o.get("path")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    walk(
                        x,
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            _ => out.push(at),
        }
    }
    let mut out = Vec::new();
    walk(&p.body, String::new(), &mut out);
    out
}

/// The patch that undoes `p` on the object as it was before (`before`): for a JSON patch, each
/// path put back to its old value (or removed); for a merge patch, the old value of each leaf
/// (null where there was none); for a strategic patch of containers by name, their old
/// resources.
fn inverse(p: &Patch, before: &KubeObject) -> Option<Patch> {
    let body = match p.patch_type.as_str() {
        "json" => {
            let ops: Vec<Value> = p
                .body
                .as_array()?
                .iter()
                .map(|o| {
                    let path = o.get("path").and_then(Value::as_str).unwrap_or("");
                    match before.value().pointer(path) {
                        Some(old) => json!({"op": "replace", "path": path, "value": old}),
                        None => json!({"op": "remove", "path": path}),
                    }
                })
                .collect();
            Value::Array(ops)
        }
        "merge" => inverse_merge(&p.body, Some(before.value())),
        "strategic" => {
            let mut b = inverse_merge(&p.body, Some(before.value()));
            for c in ["containers", "initContainers"] {
                let ptr = format!("/spec/template/spec/{c}");
                if let Some(list) = p.body.pointer(&ptr).and_then(Value::as_array) {
                    let old: Vec<Value> = list
                        .iter()
                        .filter_map(|x| x.get("name"))
                        .map(|name| {
                            let prev = before
                                .value()
                                .pointer(&ptr)
                                .and_then(Value::as_array)
                                .and_then(|cs| cs.iter().find(|c| c.get("name") == Some(name)));
                            json!({"name": name, "resources": prev.and_then(|c| c.get("resources")).cloned().unwrap_or(json!({}))})
                        })
                        .collect();
                    if let Some(slot) = b.pointer_mut(&ptr) {
                        *slot = Value::Array(old);
                    }
                }
            }
            b
        }
        _ => return None,
    };
    Some(Patch {
        object: p.object.clone(),
        patch_type: p.patch_type.clone(),
        body,
        validated: false,
    })
}

fn inverse_merge(body: &Value, before: Option<&Value>) -> Value {
    match body {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(k.clone(), inverse_merge(v, before.and_then(|b| b.get(k))));
            }
            Value::Object(out)
        }
        _ => before.cloned().unwrap_or(Value::Null),
    }
}

/// A registry action from a fix command (`kubectl -n ns rollout undo deployment/x
/// --to-revision=3`, `… rollout restart deployment/x`, `… delete pod x`).
fn from_command(
    cmd: &str,
    ns: Option<&str>,
    store: &Store,
    now: Timestamp,
) -> Option<Result<Planned, String>> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let ns = words
        .windows(2)
        .find(|w| w[0] == "-n" || w[0] == "--namespace")
        .map(|w| w[1].trim_matches('\''))
        .or(ns)
        .unwrap_or("default");
    let pos = |w: &str| words.iter().position(|x| *x == w);
    let target = |i: usize| -> Option<ObjectRef> {
        let t = words.get(i)?.trim_matches('\'');
        let (kind, name) = t.split_once('/')?;
        let info = metakube_shared::KindInfo::lookup(kind)?;
        Some(ObjectRef::new(info.kind, ns, name))
    };
    if let Some(i) = pos("rollout") {
        let verb = *words.get(i + 1)?;
        let object = target(i + 2)?;
        if !WORKLOADS.contains(&object.kind.as_str()) {
            return Some(Err(format!("{object} is not a workload")));
        }
        return Some(match verb {
            "restart" => Ok(Planned {
                kind: ActionKind::RolloutRestart,
                patch: Some(Patch {
                    object: object.clone(),
                    patch_type: "strategic".into(),
                    body: json!({"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt": now.to_string()}}}}}),
                    validated: false,
                }),
                rollback: None,
                object,
            }),
            "undo" => {
                let rev = words
                    .iter()
                    .find_map(|w| w.strip_prefix("--to-revision="))
                    .map(str::to_string);
                undo(store, &object, rev.as_deref())
            }
            _ => return None,
        });
    }
    if let (Some(i), true) = (pos("delete"), words.contains(&"pod")) {
        let name = words.get(i + 2)?.trim_matches('\'');
        let pod = ObjectRef::new("Pod", ns, name);
        let owned = store
            .get(&pod)
            .and_then(|p| p.pointer("/metadata/ownerReferences"))
            .and_then(Value::as_array)
            .is_some_and(|o| {
                o.iter()
                    .any(|x| x.get("controller") == Some(&Value::Bool(true)))
            });
        return Some(if owned {
            Ok(Planned {
                kind: ActionKind::DeletePod,
                object: pod,
                patch: None,
                rollback: None,
            })
        } else {
            Err(format!("{pod} has no controller to recreate it"))
        });
    }
    None
}

/// `rollout undo`: the Deployment's pod template replaced by that of the ReplicaSet of the
/// revision asked (the previous one by default), as `kubectl rollout undo` does, without the
/// `pod-template-hash` label.
fn undo(store: &Store, dep: &ObjectRef, rev: Option<&str>) -> Result<Planned, String> {
    let cur = store
        .get(dep)
        .ok_or_else(|| format!("{dep} is not in the watched state"))?;
    let revision = |o: &KubeObject| {
        o.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
            .and_then(Value::as_str)
            .and_then(|r| r.parse::<u64>().ok())
    };
    let ns = dep.namespace.as_deref().unwrap_or("");
    let mut sets: Vec<(u64, &KubeObject)> = store
        .of_kind(ns, "ReplicaSet")
        .filter(|o| {
            o.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|a| {
                    a.iter().any(|x| {
                        x.get("kind").and_then(Value::as_str) == Some("Deployment")
                            && x.get("name").and_then(Value::as_str) == Some(&dep.name)
                    })
                })
        })
        .filter_map(|o| Some((revision(o)?, o)))
        .collect();
    sets.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
    let wanted = match rev.and_then(|r| r.parse::<u64>().ok()) {
        Some(r) => sets.iter().find(|(x, _)| *x == r),
        None => sets.get(1),
    }
    .ok_or_else(|| format!("no earlier revision of {dep} in the watched state"))?;
    let mut template = wanted
        .1
        .pointer("/spec/template")
        .cloned()
        .ok_or_else(|| format!("ReplicaSet {} has no template", wanted.1.name()))?;
    if let Some(l) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove("pod-template-hash");
    }
    let old = cur
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    Ok(Planned {
        kind: ActionKind::RolloutUndo,
        object: dep.clone(),
        patch: Some(Patch {
            object: dep.clone(),
            patch_type: "json".into(),
            body: json!([{"op": "replace", "path": "/spec/template", "value": template}]),
            validated: false,
        }),
        rollback: Some(Patch {
            object: dep.clone(),
            patch_type: "json".into(),
            body: json!([{"op": "replace", "path": "/spec/template", "value": old}]),
            validated: false,
        }),
    })
}

/// Limits on acting.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// No second action on the same object within this.
    pub cooldown: SignedDuration,
    /// At most this many actions cluster-wide …
    pub max_actions: usize,
    /// … within this.
    pub per: SignedDuration,
    /// The breaker opens (no more actions) after this many failed verifications.
    pub breaker_after: u32,
    /// The incident must resolve within this after an action.
    pub verify_within: SignedDuration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cooldown: SignedDuration::from_secs(600),
            max_actions: 3,
            per: SignedDuration::from_secs(600),
            breaker_after: 2,
            verify_within: SignedDuration::from_secs(300),
        }
    }
}

/// An action waiting for its verification.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The incident it was taken for.
    pub incident: String,
    /// The action.
    pub planned: Planned,
    /// When it was applied.
    pub at: Timestamp,
}

/// The outcome of a verification.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The action.
    pub pending: Pending,
    /// Whether the incident resolved in time.
    pub ok: bool,
}

/// The guards' state.
#[derive(Debug, Default)]
pub struct Guards {
    /// Limits in use.
    pub limits: Limits,
    last: HashMap<ObjectRef, Timestamp>,
    recent: VecDeque<Timestamp>,
    failures: u32,
    pending: Vec<Pending>,
}

impl Guards {
    /// Guards with these limits.
    pub fn new(limits: Limits) -> Guards {
        Guards {
            limits,
            ..Default::default()
        }
    }

    /// Whether the breaker is open.
    pub fn tripped(&self) -> bool {
        self.failures >= self.limits.breaker_after
    }

    /// Whether an action may be taken now; `Err` names the guard that refuses.
    pub fn admit(&mut self, p: &Planned, incident: &str, now: Timestamp) -> Result<(), String> {
        if self.tripped() {
            return Err(format!(
                "circuit breaker open: {} action(s) did not clear their incident; acting stopped until a person looks",
                self.failures
            ));
        }
        if NEVER_TOUCHED.contains(&p.object.kind.as_str()) {
            return Err(format!("{} is never changed automatically", p.object));
        }
        if self.pending.iter().any(|x| x.incident == incident) {
            return Err("an action for this incident is still being verified".into());
        }
        if let Some(t) = self.last.get(&p.object) {
            let left = self.limits.cooldown - now.duration_since(*t);
            if left.is_positive() {
                return Err(format!(
                    "cooldown: {} was acted on {}s ago (cooldown {}s)",
                    p.object,
                    now.duration_since(*t).as_secs(),
                    self.limits.cooldown.as_secs()
                ));
            }
        }
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.limits.per)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.limits.max_actions {
            return Err(format!(
                "rate limit: {} action(s) in the last {}s",
                self.recent.len(),
                self.limits.per.as_secs()
            ));
        }
        Ok(())
    }

    /// Records an applied action; its verification starts now.
    pub fn applied(&mut self, p: Planned, incident: &str, now: Timestamp) {
        self.last.insert(p.object.clone(), now);
        self.recent.push_back(now);
        self.pending.push(Pending {
            incident: incident.to_string(),
            planned: p,
            at: now,
        });
    }

    /// Verifies pending actions: `resolved(incident)` says whether its incident is resolved.
    /// An action whose incident resolved is verified; one past its deadline is not, and counts
    /// towards the breaker.
    pub fn verify(&mut self, resolved: &dyn Fn(&str) -> bool, now: Timestamp) -> Vec<Verified> {
        let mut out = Vec::new();
        let limit = self.limits.verify_within;
        let mut keep = Vec::new();
        for p in self.pending.drain(..) {
            if resolved(&p.incident) {
                out.push(Verified {
                    pending: p,
                    ok: true,
                });
            } else if now.duration_since(p.at) >= limit {
                out.push(Verified {
                    pending: p,
                    ok: false,
                });
            } else {
                keep.push(p);
            }
        }
        self.pending = keep;
        self.failures += out.iter().filter(|v| !v.ok).count() as u32;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::event::{EventType, WatchEvent};
    use metakube_shared::{Remediation, Risk, RootCause};

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn diagnosis(rem: Vec<Remediation>) -> Diagnosis {
        let mut d: Diagnosis = serde_json::from_value(json!({
            "id": "d1", "target": {"kind": "Deployment", "namespace": "n", "name": "web"},
            "category": "resource", "root_cause": null, "confidence": 0.9, "pathway": "analytical",
            "timings_ms": {"total": 1.0}
        }))
        .unwrap();
        d.root_cause = Some(RootCause {
            object: ObjectRef::new("Deployment", "n", "web"),
            reason: "MemoryLimitTooLow".into(),
            summary: String::new(),
        });
        d.remediation = rem;
        d
    }

    fn patch_rem(kind: &str, ty: &str, body: Value) -> Remediation {
        Remediation {
            summary: "s".into(),
            risk: Risk::Medium,
            command: None,
            patch: Some(Patch {
                object: ObjectRef::new(kind, "n", "web"),
                patch_type: ty.into(),
                body,
                validated: true,
            }),
        }
    }

    fn store() -> Store {
        let mut s = Store::default();
        s.apply(WatchEvent {
            kind: EventType::Added,
            object: json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"n"},
                "spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"app","image":"a:2","resources":{"limits":{"memory":"64Mi"}}}]}}}}),
        });
        s
    }

    #[test]
    fn patches_are_classified_and_get_a_rollback() {
        let s = store();
        let d = diagnosis(vec![patch_rem(
            "Deployment",
            "json",
            json!([{"op":"replace","path":"/spec/template/spec/containers/0/resources/limits/memory","value":"128Mi"}]),
        )]);
        let p = plan(&d, &s, t(0)).unwrap();
        assert_eq!(p.kind, ActionKind::PatchResources);
        assert_eq!(
            p.rollback.unwrap().body,
            json!([{"op":"replace","path":"/spec/template/spec/containers/0/resources/limits/memory","value":"64Mi"}])
        );
        let d = diagnosis(vec![patch_rem(
            "Deployment",
            "strategic",
            json!({"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"limits":{"memory":"128Mi"}}}]}}}}),
        )]);
        let p = plan(&d, &s, t(0)).unwrap();
        assert_eq!(p.kind, ActionKind::PatchResources);
        assert_eq!(
            p.rollback.unwrap().body,
            json!({"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"limits":{"memory":"64Mi"}}}]}}}})
        );
        let d = diagnosis(vec![patch_rem(
            "Deployment",
            "merge",
            json!({"spec":{"replicas":3}}),
        )]);
        let p = plan(&d, &s, t(0)).unwrap();
        assert_eq!(
            (p.kind, p.rollback.unwrap().body),
            (ActionKind::Scale, json!({"spec":{"replicas":2}}))
        );
    }

    #[test]
    fn what_is_not_in_the_registry_is_refused_by_name() {
        let s = store();
        // An image change by patch, a Service selector, a Secret: suggest only.
        let d = diagnosis(vec![
            patch_rem(
                "Deployment",
                "json",
                json!([{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"a:1"}]),
            ),
            patch_rem(
                "Service",
                "merge",
                json!({"spec":{"selector":{"app":"web"}}}),
            ),
            patch_rem("Secret", "merge", json!({"data":{"k":""}})),
        ]);
        let e = plan(&d, &s, t(0)).unwrap_err();
        assert!(
            e.contains(
                "changing Deployment/web (namespace n) that way is not an action in the registry"
            ),
            "{e}"
        );
        assert!(e.contains("changing Service/web (namespace n)"), "{e}");
        assert!(
            e.contains("Secret/web (namespace n) is never changed automatically"),
            "{e}"
        );
        // A strategic patch that sets more than resources on a container.
        let d = diagnosis(vec![patch_rem(
            "Deployment",
            "strategic",
            json!({"spec":{"template":{"spec":{"containers":[{"name":"app","image":"x","resources":{}}]}}}}),
        )]);
        assert!(plan(&d, &s, t(0)).is_err());
    }

    #[test]
    fn cooldown_rate_limit_and_breaker() {
        let mut g = Guards::new(Limits {
            max_actions: 2,
            breaker_after: 1,
            ..Default::default()
        });
        let p = |name: &str| Planned {
            kind: ActionKind::Scale,
            object: ObjectRef::new("Deployment", "n", name),
            patch: None,
            rollback: None,
        };
        g.admit(&p("a"), "inc-1", t(0)).unwrap();
        g.applied(p("a"), "inc-1", t(0));
        // Same incident while verifying; same object within the cooldown.
        assert!(g
            .admit(&p("b"), "inc-1", t(1))
            .unwrap_err()
            .contains("being verified"));
        let v = g.verify(&|i| i == "inc-1", t(10));
        assert!(v[0].ok);
        assert!(g
            .admit(&p("a"), "inc-2", t(20))
            .unwrap_err()
            .starts_with("cooldown"));
        g.admit(&p("b"), "inc-3", t(30)).unwrap();
        g.applied(p("b"), "inc-3", t(30));
        assert!(g
            .admit(&p("c"), "inc-4", t(40))
            .unwrap_err()
            .starts_with("rate limit"));
        // inc-3 never resolves: past the deadline it fails, and the breaker opens.
        assert!(g.verify(&|_| false, t(31)).is_empty());
        let v = g.verify(&|_| false, t(30 + 300));
        assert!(!v[0].ok);
        assert!(g.tripped());
        assert!(g
            .admit(&p("d"), "inc-5", t(2000))
            .unwrap_err()
            .starts_with("circuit breaker open"));
        let secret = Planned {
            object: ObjectRef::new("Secret", "n", "s"),
            ..p("x")
        };
        let mut g2 = Guards::default();
        assert!(g2
            .admit(&secret, "inc-9", t(0))
            .unwrap_err()
            .contains("never changed"));
    }
}
