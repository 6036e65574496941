//! The change history Kubernetes keeps itself: a Deployment's ReplicaSets are its rollout
//! revisions (`deployment.kubernetes.io/revision`), each with the pod template of that
//! revision and the time it was created. Consecutive revisions' templates, compared, say what a
//! rollout changed and when — in any snapshot, a dump included, without a history of our own.

use std::collections::BTreeSet;

use jiff::Timestamp;
use metakube_shared::change::diff;
use metakube_shared::{Change, KubeObject, ObjectRef};
use serde_json::Value;

use super::Objects;

/// Revision pairs looked at per Deployment (the newest).
const MAX_PAIRS: usize = 10;

/// The Deployment controller's annotation naming a ReplicaSet's revision
/// (`pkg/controller/deployment/util/deployment_util.go`, `RevisionAnnotation`).
const REVISION: &str = "deployment.kubernetes.io/revision";

fn revision(rs: &KubeObject) -> Option<u64> {
    rs.pointer("/metadata/annotations")?
        .get(REVISION)?
        .as_str()?
        .parse()
        .ok()
}

fn created(o: &KubeObject) -> Option<Timestamp> {
    o.pointer("/metadata/creationTimestamp")?
        .as_str()?
        .parse()
        .ok()
}

/// A ReplicaSet's pod template without the label the controller adds to tell revisions apart.
fn template(rs: &KubeObject) -> Option<Value> {
    let mut t = rs.pointer("/spec/template")?.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove("pod-template-hash");
    }
    super::redact::redact(&mut t);
    Some(t)
}

/// What each rollout of the Deployments in `near` changed in the pod template.
pub fn rollout_changes(objects: &Objects, near: &BTreeSet<ObjectRef>) -> Vec<Change> {
    let mut out = Vec::new();
    for d in near.iter().filter(|r| r.kind == "Deployment") {
        let ns = d.namespace.as_deref().unwrap_or_default();
        let mut sets: Vec<(u64, &KubeObject)> = objects
            .in_ns("ReplicaSet", ns)
            .iter()
            .copied()
            // Its owners, read without building the ReplicaSet's value tree (a namespace may
            // hold thousands of them; only this Deployment's are read further).
            .filter(|o| o.owned_by("Deployment", &d.name))
            .filter_map(|o| Some((revision(o)?, o)))
            .collect();
        sets.sort_by_key(|(r, _)| *r);
        let start = sets.len().saturating_sub(MAX_PAIRS + 1);
        for pair in sets[start..].windows(2) {
            let ((ra, a), (rb, b)) = (pair[0], pair[1]);
            let (Some(ta), Some(tb)) = (template(a), template(b)) else {
                continue;
            };
            // A rollback re-uses an old ReplicaSet: the change is no older than the revision
            // it replaced.
            let Some(at) = created(b).max(created(a)) else {
                continue;
            };
            let mut fields = Vec::new();
            diff(Some(&ta), Some(&tb), "/spec/template", &mut fields);
            for (field, from, to) in fields {
                // A secret-looking setting changed: said, its values not.
                let shown = |v: Option<Value>| v.filter(|v| !super::redact::is_digest(v));
                out.push(Change {
                    object: d.clone(),
                    field,
                    from: shown(from),
                    to: shown(to),
                    at,
                    before_first_symptom_s: 0.0,
                    via: Some(format!(
                        "rollout revision {ra} → {rb} (ReplicaSet {})",
                        b.name()
                    )),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use metakube_shared::{CollectionMeta, Snapshot, SnapshotSource};
    use serde_json::json;

    fn rs(name: &str, rev: u32, image: &str, created: &str) -> KubeObject {
        KubeObject::new(json!({
            "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created,
                "annotations": {REVISION: rev.to_string()},
                "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": true}]},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}}}
        }))
    }

    #[test]
    fn consecutive_revisions_say_what_a_rollout_changed_and_when() {
        let snap = Snapshot {
            target: ObjectRef::new("Deployment", "shop", "web"),
            objects: vec![
                // Out of order, and a ReplicaSet of another Deployment with the same template.
                rs("web-b", 2, "web:1.1", "2026-01-01T10:00:00Z"),
                rs("web-a", 1, "web:1.0", "2026-01-01T09:00:00Z"),
                rs("web-c", 3, "web:9.9-typo", "2026-01-01T11:00:00Z"),
            ],
            logs: vec![],
            meta: CollectionMeta {
                source: SnapshotSource::Dump { path: "d".into() },
                namespace: "shop".into(),
                collected_at: Timestamp::now(),
                gaps: vec![],
                collector_version: "test".into(),
            },
        };
        let near = BTreeSet::from([ObjectRef::new("Deployment", "shop", "web")]);
        let c = rollout_changes(&Objects::new(&snap), &near);
        assert_eq!(c.len(), 2, "{c:#?}");
        assert_eq!(c[1].field, "/spec/template/spec/containers/0/image");
        assert_eq!(
            (c[1].from.clone(), c[1].to.clone()),
            (Some(json!("web:1.1")), Some(json!("web:9.9-typo")))
        );
        assert_eq!(
            c[1].at,
            "2026-01-01T11:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            c[1].via.as_deref(),
            Some("rollout revision 2 → 3 (ReplicaSet web-c)")
        );
        // The pod-template-hash label differs in every revision and is not a change.
        assert!(c.iter().all(|c| !c.field.contains("pod-template-hash")));
        // Not near: nothing.
        assert!(rollout_changes(&Objects::new(&snap), &BTreeSet::new()).is_empty());
    }
}
