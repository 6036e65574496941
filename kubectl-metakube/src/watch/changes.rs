//! What changed: field-level differences of the objects whose spec makes or breaks a workload
//! (workloads, Services, ConfigMaps, Nodes, PVCs), as the watch saw them, kept for an hour and
//! attached to the incidents they may explain ("image changed 4 min before the first failure").

use std::collections::{BTreeSet, VecDeque};

use jiff::{SignedDuration, Timestamp};
use metakube_shared::{field_changes, Change, Incident, KubeObject, ObjectRef, TRACKED};
use serde_json::Value;

use super::store::Store;

/// Most changes kept (the oldest go first).
const MAX_CHANGES: usize = 10_000;

/// How far back a change may explain an incident.
pub const LOOKBACK: SignedDuration = SignedDuration::from_secs(30 * 60);

/// The changes seen, oldest first.
#[derive(Debug, Default)]
pub struct Changes {
    seen: VecDeque<Change>,
}

impl Changes {
    /// Records the differences between an object's previous and new state.
    pub fn record(&mut self, before: &KubeObject, after: &KubeObject, at: Timestamp) {
        if !TRACKED.contains(&after.kind()) {
            return;
        }
        let object = after.object_ref();
        let fields = field_changes(before, after);
        for (field, from, to) in fields {
            self.seen.push_back(Change {
                object: object.clone(),
                field,
                from,
                to,
                at,
                before_first_symptom_s: 0.0,
                via: Some("watch".into()),
            });
        }
        while self.seen.len() > MAX_CHANGES {
            self.seen.pop_front();
        }
        while self
            .seen
            .front()
            .is_some_and(|c| at.duration_since(c.at) > 2 * LOOKBACK)
        {
            self.seen.pop_front();
        }
    }

    /// The changes near an incident: to its affected objects, its root cause, their workloads'
    /// pod templates' ConfigMaps, the Services selecting them and the nodes their pods run on,
    /// from [`LOOKBACK`] before its first symptom to its last sighting.
    pub fn near(&self, i: &Incident, store: &Store) -> Vec<Change> {
        let mut near: BTreeSet<ObjectRef> = i.affected.iter().cloned().collect();
        if let Some(rc) = &i.diagnosis.root_cause {
            near.insert(rc.object.clone());
        }
        for a in &i.affected {
            let Some(o) = store.get(a) else { continue };
            let ns = a.namespace.clone().unwrap_or_default();
            if let Some(tpl) = o.pointer("/spec/template") {
                let text = tpl.to_string();
                for cm in store.of_kind(&ns, "ConfigMap") {
                    if text.contains(&format!("\"{}\"", cm.name())) {
                        near.insert(cm.object_ref());
                    }
                }
                let labels = tpl.pointer("/metadata/labels").and_then(Value::as_object);
                for svc in store.of_kind(&ns, "Service") {
                    let sel = svc.pointer("/spec/selector").and_then(Value::as_object);
                    if let (Some(sel), Some(labels)) = (sel, labels) {
                        if !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                            near.insert(svc.object_ref());
                        }
                    }
                }
            }
            for p in store.of_kind(&ns, "Pod") {
                if store.workload_of(&p.object_ref()) == *a {
                    if let Some(n) = p.pointer("/spec/nodeName").and_then(Value::as_str) {
                        near.insert(ObjectRef::cluster("Node", n));
                    }
                }
            }
        }
        let from = i.first_seen - LOOKBACK;
        self.seen
            .iter()
            .filter(|c| c.at >= from && c.at <= i.last_seen && near.contains(&c.object))
            .map(|c| Change {
                before_first_symptom_s: i.first_seen.duration_since(c.at).as_secs_f64(),
                ..c.clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_changes_are_kept_and_configmap_values_never() {
        let mut c = Changes::default();
        let t = Timestamp::from_second(1_700_000_000).unwrap();
        let d = |img: &str| {
            KubeObject::new(
                json!({"kind":"Deployment","metadata":{"name":"web","namespace":"n","labels":{"app":"web"}},
                "spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"app","image":img}]}}},
                "status":{"readyReplicas":2}}),
            )
        };
        c.record(&d("a:1"), &d("a:2"), t);
        let cm = |v: &str| {
            KubeObject::new(
                json!({"kind":"ConfigMap","metadata":{"name":"cfg","namespace":"n"},"data":{"app.yaml":v,"same":"x"}}),
            )
        };
        c.record(&cm("password: hunter2"), &cm("password: letmein"), t);
        let pod = KubeObject::new(
            json!({"kind":"Pod","metadata":{"name":"p","namespace":"n"},"spec":{"nodeName":"a"}}),
        );
        c.record(&pod, &pod, t);
        let all: Vec<&Change> = c.seen.iter().collect();
        assert_eq!(all.len(), 2, "{all:#?}");
        assert_eq!(all[0].field, "/spec/template/spec/containers/0/image");
        assert_eq!(
            (all[0].from.clone(), all[0].to.clone()),
            (Some(json!("a:1")), Some(json!("a:2")))
        );
        assert_eq!(all[1].field, "/data/app.yaml");
        assert!(all[1].from.is_none() && all[1].to.is_none());
        assert!(!format!("{all:?}").contains("hunter2"));
    }
}
