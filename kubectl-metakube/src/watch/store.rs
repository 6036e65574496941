//! The watched state: the latest version of every object, by namespace, as the watch events
//! left it — what a diagnosis is assembled from during a replay.

use std::collections::{BTreeMap, BTreeSet};

use metakube_shared::{KubeObject, ObjectRef};
use serde_json::Value;

use super::event::{EventType, WatchEvent};

/// Objects of one namespace: by kind, then by name (looked up by `&str`, in a stable order).
type Namespace = BTreeMap<String, BTreeMap<String, KubeObject>>;

/// Objects by namespace (`""` for cluster-scoped kinds), each by kind and name.
#[derive(Debug, Default)]
pub struct Store {
    by_ns: BTreeMap<String, Namespace>,
    len: usize,
}

/// What an event did to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The object is new or changed; its state before, when it was held.
    Upserted(ObjectRef, Option<KubeObject>),
    /// The object is gone.
    Deleted(ObjectRef),
    /// Nothing to store (a bookmark, an error).
    Nothing,
}

impl Store {
    /// Applies one event.
    pub fn apply(&mut self, ev: WatchEvent) -> Applied {
        let kind = ev.kind;
        if matches!(kind, EventType::Bookmark | EventType::Error) {
            return Applied::Nothing;
        }
        let o = ev.into_object();
        let r = o.object_ref();
        let kinds = self
            .by_ns
            .entry(r.namespace.clone().unwrap_or_default())
            .or_default();
        if kind == EventType::Deleted {
            if kinds
                .get_mut(&r.kind)
                .and_then(|m| m.remove(&r.name))
                .is_some()
            {
                self.len -= 1;
            }
            return Applied::Deleted(r);
        }
        let previous = kinds
            .entry(r.kind.clone())
            .or_default()
            .insert(r.name.clone(), o);
        if previous.is_none() {
            self.len += 1;
        }
        Applied::Upserted(r, previous)
    }

    /// Removes an object (a relist that no longer lists it).
    pub fn remove(&mut self, r: &ObjectRef) -> bool {
        let gone = self
            .by_ns
            .get_mut(r.namespace.as_deref().unwrap_or(""))
            .and_then(|k| k.get_mut(&r.kind))
            .and_then(|m| m.remove(&r.name))
            .is_some();
        if gone {
            self.len -= 1;
        }
        gone
    }

    /// The object a reference names.
    pub fn get(&self, r: &ObjectRef) -> Option<&KubeObject> {
        self.by_ns
            .get(r.namespace.as_deref().unwrap_or(""))?
            .get(&r.kind)?
            .get(&r.name)
    }

    /// Every object of one kind in one namespace (`""`: cluster-scoped).
    pub fn of_kind<'a>(&'a self, ns: &str, kind: &str) -> impl Iterator<Item = &'a KubeObject> {
        self.by_ns
            .get(ns)
            .and_then(|k| k.get(kind))
            .into_iter()
            .flat_map(|m| m.values())
    }

    /// Every pod.
    pub fn pods(&self) -> impl Iterator<Item = &KubeObject> {
        self.by_ns
            .values()
            .filter_map(|k| k.get("Pod"))
            .flat_map(|m| m.values())
    }

    /// Objects stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every object of one namespace (`""`: cluster-scoped).
    pub fn namespace(&self, ns: &str) -> impl Iterator<Item = &KubeObject> {
        self.by_ns
            .get(ns)
            .into_iter()
            .flat_map(|k| k.values())
            .flat_map(|m| m.values())
    }

    /// Every object.
    pub fn iter(&self) -> impl Iterator<Item = &KubeObject> {
        self.by_ns
            .values()
            .flat_map(|k| k.values())
            .flat_map(|m| m.values())
    }

    /// Copies of what a diagnosis of something in `namespaces` reads: cluster-scoped objects,
    /// those namespaces, node events (kept in `default`) and the cluster DNS (`kube-system`) —
    /// the same lists a dump read for one target opens, for the same selection to run on.
    pub fn objects_for(&self, namespaces: &BTreeSet<String>) -> Vec<KubeObject> {
        let mut wanted: BTreeSet<&str> = namespaces.iter().map(String::as_str).collect();
        wanted.extend(["", "default", "kube-system"]);
        wanted
            .into_iter()
            .flat_map(|ns| self.namespace(ns).cloned())
            .collect()
    }

    /// The workload a Pod or ReplicaSet belongs to, following controller owner references up
    /// to two levels (Pod → ReplicaSet → Deployment, Pod → Job); itself when it has none.
    pub fn workload_of(&self, r: &ObjectRef) -> ObjectRef {
        let mut cur = r.clone();
        for _ in 0..2 {
            let Some(o) = self.get(&cur) else { break };
            let Some((kind, name)) = controller(o) else {
                break;
            };
            let next = ObjectRef {
                kind,
                namespace: cur.namespace.clone(),
                name,
            };
            // A ReplicaSet's owner may be missing from the store; stop at what exists, but
            // still name an unseen Deployment owner rather than the ReplicaSet.
            if self.get(&next).is_none() && next.kind != "Deployment" {
                cur = next;
                break;
            }
            cur = next;
        }
        cur
    }
}

impl Store {
    /// The workloads whose pods a Service's selector selects.
    pub fn workloads_selected_by(&self, svc: &ObjectRef) -> Vec<ObjectRef> {
        let Some(sel) = self
            .get(svc)
            .and_then(|s| s.pointer("/spec/selector"))
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
        else {
            return Vec::new();
        };
        let ns = svc.namespace.as_deref().unwrap_or("");
        let mut out: Vec<ObjectRef> = self
            .of_kind(ns, "Pod")
            .filter(|p| {
                sel.iter().all(|(k, v)| {
                    p.pointer("/metadata/labels")
                        .and_then(|l| l.get(k))
                        .is_some_and(|x| x == v)
                })
            })
            .map(|p| self.workload_of(&p.object_ref()))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

fn controller(o: &KubeObject) -> Option<(String, String)> {
    let owners = o.pointer("/metadata/ownerReferences")?.as_array()?;
    let c = owners
        .iter()
        .find(|x| x.get("controller").and_then(Value::as_bool) == Some(true))?;
    Some((
        c.get("kind")?.as_str()?.to_string(),
        c.get("name")?.as_str()?.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(kind: EventType, object: Value) -> WatchEvent {
        WatchEvent { kind, object }
    }

    #[test]
    fn events_upsert_and_delete_and_pods_resolve_to_their_workload() {
        let mut s = Store::default();
        let dep = json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"n"}});
        let rs = json!({"kind":"ReplicaSet","apiVersion":"apps/v1","metadata":{"name":"web-1","namespace":"n","ownerReferences":[{"kind":"Deployment","name":"web","controller":true}]}});
        let pod = json!({"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-1-a","namespace":"n","ownerReferences":[{"kind":"ReplicaSet","name":"web-1","controller":true}]}});
        for o in [dep, rs, pod.clone()] {
            s.apply(ev(EventType::Added, o));
        }
        s.apply(ev(EventType::Modified, pod.clone()));
        assert_eq!(s.len(), 3);
        let p = ObjectRef::new("Pod", "n", "web-1-a");
        assert_eq!(s.workload_of(&p), ObjectRef::new("Deployment", "n", "web"));
        assert_eq!(
            s.apply(ev(EventType::Deleted, pod)),
            Applied::Deleted(p.clone())
        );
        assert_eq!(s.len(), 2);
        assert!(s.get(&p).is_none());
        let bm = json!({"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"9"}});
        assert_eq!(s.apply(ev(EventType::Bookmark, bm)), Applied::Nothing);
    }

    #[test]
    fn a_recorded_secret_loses_its_values() {
        let mut s = Store::default();
        s.apply(ev(
            EventType::Added,
            json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":"db","namespace":"n"},"data":{"password":"aHVudGVyMg=="}}),
        ));
        let o = s.get(&ObjectRef::new("Secret", "n", "db")).unwrap();
        assert_eq!(o.value()["data"]["password"], "");
    }
}
