//! Collection: what the plugin gathers about a target, live (kube-rs) or offline (a dump), and
//! the one selection both share, so a live diagnosis and a replayed dump see the same objects.

pub mod dump;
pub mod list;
pub mod live;
mod now;
pub mod write;

pub use now::{latest_in, latest_timestamp};

use std::collections::BTreeSet;
use std::path::PathBuf;

use jiff::Timestamp;
use metakube_shared::{
    CollectionMeta, ContainerLog, Gap, KubeObject, ObjectRef, Snapshot, SnapshotSource, TargetRef,
};
use serde_json::Value;

/// Everything read before selection.
#[derive(Debug, Default)]
pub struct Collected {
    /// Objects, with kind and apiVersion set.
    pub objects: Vec<KubeObject>,
    /// Log tails.
    pub logs: Vec<ContainerLog>,
    /// What could not be read.
    pub gaps: Vec<Gap>,
}

/// Collection failures that stop a diagnosis.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A file or folder cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The folder is not a dump.
    #[error("{path} is not a cluster-info dump: {why}")]
    NotADump {
        /// The folder.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The target is not among the collected objects.
    #[error("{target} not found{where_}{hint}")]
    TargetNotFound {
        /// The target.
        target: String,
        /// Where it was looked for.
        where_: String,
        /// What may explain it.
        hint: String,
    },
    /// The API server refused or failed.
    #[error("{0}")]
    Api(String),
    /// A file would be written outside the output folder (a name that is not a Kubernetes
    /// name, a symlink out of it).
    #[error("refusing to write {path}: {why}")]
    UnsafePath {
        /// What would have been written.
        path: PathBuf,
        /// Why not.
        why: String,
    },
}

/// Most pods whose logs are kept (the target's first, then failing ones).
pub const MAX_LOG_PODS: usize = 60;

/// Namespaces a set of pods talks to through fully qualified Service names
/// (`svc.other-ns.svc`, `svc.other-ns.svc.cluster.local`) in env, args and commands.
pub fn referenced_namespaces(pods: &[&KubeObject]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in pods {
        let text =
            serde_json::to_string(p.pointer("/spec").unwrap_or(&Value::Null)).unwrap_or_default();
        for (i, _) in text.match_indices(".svc") {
            let before = &text[..i];
            let ns: String = before
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
                .chars()
                .rev()
                .collect();
            // `name.ns.svc`: the label before `.svc` is the namespace only if a name precedes it.
            let rest = &before[..before.len() - ns.len()];
            if !ns.is_empty() && rest.ends_with('.') {
                out.insert(ns);
            }
        }
    }
    out
}

/// Kinds that own pods or what owns them: the steps of an owner chain.
const CONTROLLERS: &[&str] = &[
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicationController",
];

/// The pods that belong to the target (through ownership, selection or mounting).
pub fn target_pods<'a>(all: &'a [KubeObject], target: &ObjectRef) -> Vec<&'a KubeObject> {
    let ns = target.namespace.as_deref();
    let pods: Vec<&KubeObject> = all
        .iter()
        .filter(|o| o.kind() == "Pod" && o.namespace() == ns)
        .collect();
    // The namespace's controllers by (kind, name), looked up for every pod's owner chain (only
    // kinds that own pods: a large namespace's events and endpoints are most of its objects).
    let controllers: std::collections::HashMap<(&str, &str), &KubeObject> = all
        .iter()
        .filter(|x| CONTROLLERS.contains(&x.kind()) && x.namespace() == ns)
        .map(|x| ((x.kind(), x.name()), x))
        .collect();
    let owned_by = |o: &KubeObject, depth: usize| -> bool {
        let mut cur = o.controller();
        for _ in 0..depth {
            match cur {
                Some((k, n)) if k == target.kind && n == target.name => return true,
                Some((k, n)) => {
                    cur = controllers.get(&(k, n)).and_then(|x| x.controller());
                }
                None => return false,
            }
        }
        false
    };
    match target.kind.as_str() {
        "Pod" => pods
            .into_iter()
            .filter(|p| p.name() == target.name)
            .collect(),
        "Service" => {
            let sel = all
                .iter()
                .find(|o| o.is(target))
                .and_then(KubeObject::selector)
                .and_then(Value::as_object)
                .filter(|s| !s.is_empty());
            let Some(sel) = sel else {
                return Vec::new();
            };
            pods.into_iter()
                .filter(|p| {
                    sel.iter()
                        .all(|(k, v)| p.labels().and_then(|l| l.get(k)) == Some(v))
                })
                .collect()
        }
        "PersistentVolumeClaim" => pods
            .into_iter()
            .filter(|p| {
                view::<PodView>(p)
                    .spec
                    .volumes
                    .as_ref()
                    .and_then(Value::as_array)
                    .is_some_and(|vs| {
                        vs.iter().any(|v| {
                            v.pointer("/persistentVolumeClaim/claimName")
                                .and_then(Value::as_str)
                                == Some(&target.name)
                        })
                    })
            })
            .collect(),
        "Node" => all
            .iter()
            .filter(|o| {
                o.kind() == "Pod"
                    && view::<PodView>(o)
                        .spec
                        .node_name
                        .as_ref()
                        .and_then(Value::as_str)
                        == Some(&target.name)
            })
            .collect(),
        _ => pods.into_iter().filter(|p| owned_by(p, 4)).collect(),
    }
}

fn pod_failing(p: &KubeObject) -> bool {
    let status = view::<PodView>(p).status;
    let phase = status.phase.as_ref().and_then(Value::as_str).unwrap_or("");
    if matches!(phase, "Pending" | "Failed" | "Unknown") {
        return true;
    }
    let statuses = [&status.container_statuses, &status.init_container_statuses];
    statuses.iter().any(|s| {
        s.as_ref().and_then(Value::as_array).is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("ready") == Some(&Value::Bool(false)) && phase == "Running"
                    || c.get("restartCount").and_then(Value::as_i64).unwrap_or(0) > 0
            })
        })
    })
}

/// The pods whose logs matter, in order: the target's (`own`, from [`target_pods`]), then
/// failing pods of the namespaces, then the rest of them, at most [`MAX_LOG_PODS`].
pub fn log_pods<'a>(
    all: &'a [KubeObject],
    own: &[&'a KubeObject],
    namespaces: &BTreeSet<String>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    let mut push = |p: &'a KubeObject| {
        if out.len() < MAX_LOG_PODS && seen.insert((p.namespace().unwrap_or(""), p.name())) {
            out.push((
                p.namespace().unwrap_or("").to_string(),
                p.name().to_string(),
            ));
        }
    };
    for p in own {
        push(p);
    }
    let in_scope = |o: &&'a KubeObject| {
        o.kind() == "Pod" && o.namespace().is_some_and(|n| namespaces.contains(n))
    };
    for p in all.iter().filter(in_scope) {
        if pod_failing(p) {
            push(p);
        }
    }
    // Then the rest of the namespace (callees may look healthy but log the real error).
    for p in all.iter().filter(in_scope) {
        push(p);
    }
    out
}

/// The namespaces a diagnosis of `target` looks in, given its pods (from [`target_pods`]): its
/// own (for a cluster-scoped target, those of the pods it concerns) and those its pods call by
/// fully qualified Service name.
pub fn scope_namespaces(target: &ObjectRef, pods: &[&KubeObject]) -> BTreeSet<String> {
    let mut namespaces: BTreeSet<String> =
        BTreeSet::from([target.namespace.clone().unwrap_or_default()]);
    if target.namespace.is_none() {
        // Cluster-scoped target (Node, PV): the namespaces of the pods it concerns.
        namespaces.extend(
            pods.iter()
                .filter_map(|p| p.namespace())
                .map(str::to_string),
        );
    }
    namespaces.extend(referenced_namespaces(pods));
    namespaces
}

/// Selects, from everything read, what the daemon needs for one target: the target's
/// namespace (and namespaces its pods call by FQDN), node events from `default`, every Node,
/// PersistentVolume and StorageClass (scheduling and binding depend on them), and the logs of
/// the pods that matter.
pub fn select(
    mut c: Collected,
    target: &ObjectRef,
    source: SnapshotSource,
    now: Option<Timestamp>,
) -> Result<Snapshot, CollectError> {
    if !c.objects.iter().any(|o| o.is(target)) {
        let namespaces: BTreeSet<&str> = c.objects.iter().filter_map(|o| o.namespace()).collect();
        let same_name: Vec<String> = c
            .objects
            .iter()
            .filter(|o| o.name() == target.name && o.kind() == target.kind)
            .map(|o| o.namespace().unwrap_or("").to_string())
            .collect();
        let hint = if !same_name.is_empty() {
            format!("; it exists in namespace {} (use -n)", same_name.join(", "))
        } else if !c.gaps.is_empty() {
            format!(
                "; {} file(s) or list(s) could not be read: {}",
                c.gaps.len(),
                c.gaps
                    .iter()
                    .take(3)
                    .map(|g| format!("{} ({})", g.what, g.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        } else {
            format!(
                "; namespaces present: {}",
                namespaces.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        return Err(CollectError::TargetNotFound {
            target: format!("{}/{}", target.kind.to_ascii_lowercase(), target.name),
            where_: target
                .namespace
                .as_ref()
                .map(|n| format!(" in namespace {n}"))
                .unwrap_or_default(),
            hint,
        });
    }
    let ns = target.namespace.clone().unwrap_or_default();
    let pods = target_pods(&c.objects, target);
    let namespaces = scope_namespaces(target, &pods);
    let logs_for = log_pods(&c.objects, &pods, &namespaces);
    drop(pods);
    let keep_pv: BTreeSet<String> = c
        .objects
        .iter()
        .filter(|o| {
            o.kind() == "PersistentVolumeClaim"
                && o.namespace().is_some_and(|n| namespaces.contains(n))
        })
        .filter_map(|o| {
            o.pointer("/spec/volumeName")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let objects: Vec<KubeObject> = c
        .objects
        .drain(..)
        .filter(|o| match o.namespace() {
            Some(n) if namespaces.contains(n) => true,
            Some("default") => {
                o.kind() == "Event"
                    && view::<EventView>(o)
                        .involved_object
                        .kind
                        .as_ref()
                        .and_then(Value::as_str)
                        == Some("Node")
            }
            Some(_) => is_cluster_dns(o),
            None => match o.kind() {
                "PersistentVolume" => keep_pv.contains(o.name()) || keep_pv.is_empty(),
                _ => true,
            },
        })
        .collect();
    let dns_pods: BTreeSet<(String, String)> = objects
        .iter()
        .filter(|o| o.kind() == "Pod" && is_cluster_dns(o))
        .map(|o| {
            (
                o.namespace().unwrap_or("").to_string(),
                o.name().to_string(),
            )
        })
        .collect();
    let logs: Vec<ContainerLog> = c
        .logs
        .into_iter()
        .filter(|l| {
            let k = (l.namespace.clone(), l.pod.clone());
            logs_for.contains(&k) || dns_pods.contains(&k)
        })
        .collect();
    let t = std::time::Instant::now();
    let collected_at =
        now.unwrap_or_else(|| latest_timestamp(&objects).unwrap_or_else(Timestamp::now));
    tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "the dump's now");
    Ok(Snapshot {
        target: target.clone(),
        objects,
        logs,
        meta: CollectionMeta {
            source,
            namespace: ns,
            collected_at,
            // What could not be read where the diagnosis looks; gaps elsewhere do not matter.
            gaps: c
                .gaps
                .into_iter()
                .filter(|g| g.namespace.as_ref().is_none_or(|n| namespaces.contains(n)))
                .collect(),
            collector_version: env!("CARGO_PKG_VERSION").into(),
        },
    })
}

/// The cluster DNS (CoreDNS/kube-dns in kube-system): every pod depends on it, so its objects
/// are kept whatever the target's namespace.
pub fn is_cluster_dns(o: &KubeObject) -> bool {
    o.namespace() == Some("kube-system")
        && o.labels()
            .and_then(|l| l.get("k8s-app"))
            .and_then(Value::as_str)
            == Some("kube-dns")
}

/// The few fields selection reads of a pod or event, typed from the object's bytes so that a
/// namespace's thousands of pods are not built into value trees to read a phase. Each field
/// is read as whatever JSON it holds and judged as a [`KubeObject::pointer`] to it would be.
fn view<T: serde::de::DeserializeOwned + Default>(o: &KubeObject) -> T {
    // An object the API wrote always fits (every field optional, any JSON); one that does
    // not (`"status": 5`, `"spec": null`) is read as having none of the fields.
    o.typed().unwrap_or_default()
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct PodView {
    spec: PodSpecView,
    status: PodStatusView,
}

#[derive(Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PodSpecView {
    node_name: Option<Value>,
    volumes: Option<Value>,
}

#[derive(Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PodStatusView {
    phase: Option<Value>,
    container_statuses: Option<Value>,
    init_container_statuses: Option<Value>,
}

#[derive(Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct EventView {
    involved_object: InvolvedView,
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct InvolvedView {
    kind: Option<Value>,
}

/// Resolves the target reference in the namespace of the request.
pub fn target_in(t: &TargetRef, namespace: &str) -> ObjectRef {
    t.in_namespace(namespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> KubeObject {
        KubeObject::new(v)
    }

    #[test]
    fn fqdn_references_name_namespaces() {
        let p = obj(
            json!({"kind": "Pod", "metadata": {"name": "a", "namespace": "x"}, "spec": {"containers": [{"env": [{"name": "U", "value": "http://redis.cache.svc.cluster.local:6379"}]}]}}),
        );
        assert_eq!(
            referenced_namespaces(&[&p]),
            BTreeSet::from(["cache".to_string()])
        );
    }

    #[test]
    fn target_pods_follow_owner_chain() {
        let all = vec![
            obj(json!({"kind": "Deployment", "metadata": {"name": "d", "namespace": "n"}})),
            obj(
                json!({"kind": "ReplicaSet", "metadata": {"name": "d-1", "namespace": "n", "ownerReferences": [{"kind": "Deployment", "name": "d", "controller": true}]}}),
            ),
            obj(
                json!({"kind": "Pod", "metadata": {"name": "d-1-a", "namespace": "n", "ownerReferences": [{"kind": "ReplicaSet", "name": "d-1", "controller": true}]}}),
            ),
            obj(json!({"kind": "Pod", "metadata": {"name": "other", "namespace": "n"}})),
        ];
        let pods = target_pods(&all, &ObjectRef::new("Deployment", "n", "d"));
        assert_eq!(
            pods.iter().map(|p| p.name()).collect::<Vec<_>>(),
            vec!["d-1-a"]
        );
    }

    #[test]
    fn missing_target_names_where_it_is() {
        let c = Collected {
            objects: vec![obj(
                json!({"kind": "Deployment", "metadata": {"name": "d", "namespace": "shop"}}),
            )],
            ..Default::default()
        };
        let e = select(
            c,
            &ObjectRef::new("Deployment", "default", "d"),
            SnapshotSource::Dump { path: ".".into() },
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "deployment/d not found in namespace default; it exists in namespace shop (use -n)"
        );
    }
}
