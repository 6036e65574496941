//! Which objects are near a fault, and when it started failing: the neighbourhood whose
//! changes may explain it (owners, the pods of its workloads and their nodes, the ConfigMaps,
//! Secrets and claims its pod templates reference, the Services selecting them) and the time of
//! the earliest warning event or not-Ready pod in it.

use std::collections::{BTreeSet, HashMap, HashSet};

use jiff::Timestamp;
use metakube_shared::{KubeObject, ObjectRef, Snapshot};
use serde_json::Value;

/// The objects near a fault and the pods of its workloads.
#[derive(Debug, Default, Clone)]
pub struct Near {
    /// Objects whose changes may explain the fault.
    pub objects: BTreeSet<ObjectRef>,
    /// Pods of the workloads among them (where failures show first).
    pub pods: BTreeSet<ObjectRef>,
}

const WORKLOADS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
];

/// Labels ⊇ selector (a selector with no terms selects nothing here).
fn selects(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let (Some(sel), Some(labels)) = (
        selector.and_then(Value::as_object),
        labels.and_then(Value::as_object),
    ) else {
        return false;
    };
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Every label (key, value) a pod or a pod template in the namespace carries.
fn label_pairs<'a>(index: &Objects<'a>, ns: &str) -> HashSet<(&'a str, &'a str)> {
    let mut out = HashSet::new();
    let pods = index.in_ns("Pod", ns).iter().map(|o| o.labels());
    let templates = WORKLOADS
        .iter()
        .flat_map(|k| index.in_ns(k, ns))
        .map(|o| o.template_labels());
    for labels in pods.chain(templates) {
        for (k, v) in labels.and_then(Value::as_object).into_iter().flatten() {
            if let Some(v) = v.as_str() {
                out.insert((k.as_str(), v));
            }
        }
    }
    out
}

/// A selector and labels with a key in common.
fn shares_key(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let (Some(sel), Some(labels)) = (
        selector.and_then(Value::as_object),
        labels.and_then(Value::as_object),
    ) else {
        return false;
    };
    sel.keys().any(|k| labels.contains_key(k))
}

/// ConfigMaps, Secrets and claims a pod spec references.
fn references(spec: &Value, ns: &str, out: &mut BTreeSet<ObjectRef>) {
    let name = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let mut add = |kind: &str, n: Option<String>| {
        if let Some(n) = n {
            out.insert(ObjectRef::new(kind, ns, &n));
        }
    };
    for v in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add("ConfigMap", name(v.pointer("/configMap/name")));
        add("Secret", name(v.pointer("/secret/secretName")));
        add(
            "PersistentVolumeClaim",
            name(v.pointer("/persistentVolumeClaim/claimName")),
        );
        for s in v
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add("ConfigMap", name(s.pointer("/configMap/name")));
            add("Secret", name(s.pointer("/secret/name")));
        }
    }
    for c in ["initContainers", "containers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
    {
        for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
            add(
                "ConfigMap",
                name(e.pointer("/valueFrom/configMapKeyRef/name")),
            );
            add("Secret", name(e.pointer("/valueFrom/secretKeyRef/name")));
        }
        for e in c
            .get("envFrom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add("ConfigMap", name(e.pointer("/configMapRef/name")));
            add("Secret", name(e.pointer("/secretRef/name")));
        }
    }
}

/// The snapshot's objects by (kind, namespace, name) and by (kind, namespace): one pass over a
/// snapshot's JSON, then lookups (a 20k-object snapshot has thousands of pods whose owners are
/// looked up, and each scan by kind would read every object's `kind` again). Built once per
/// question and shared by the neighbourhood, the first failure, the dump's "now" and the
/// rollout revisions.
pub struct Objects<'a> {
    by_ref: foldhash::HashMap<(&'a str, Option<&'a str>, &'a str), &'a KubeObject>,
    /// Position in `lists` of each (kind, namespace) (a position, not the list: a lookup by
    /// a shorter-lived name would otherwise shorten the objects' lifetime with it).
    by_kind: foldhash::HashMap<(&'a str, Option<&'a str>), usize>,
    lists: Vec<Vec<&'a KubeObject>>,
}

impl<'a> Objects<'a> {
    /// Indexes a snapshot's objects.
    pub fn new(snap: &'a Snapshot) -> Objects<'a> {
        let mut by_ref = foldhash::HashMap::with_capacity_and_hasher(
            snap.objects.len(),
            foldhash::fast::RandomState::default(),
        );
        let mut by_kind = foldhash::HashMap::default();
        let mut lists: Vec<Vec<&KubeObject>> = Vec::new();
        for o in &snap.objects {
            let (kind, ns) = (o.kind(), o.namespace());
            by_ref.insert((kind, ns, o.name()), o);
            let i = *by_kind.entry((kind, ns)).or_insert_with(|| {
                lists.push(Vec::new());
                lists.len() - 1
            });
            lists[i].push(o);
        }
        Objects {
            by_ref,
            by_kind,
            lists,
        }
    }

    /// The object a reference names.
    pub fn get(&self, r: &ObjectRef) -> Option<&'a KubeObject> {
        self.by_ref
            .get(&(r.kind.as_str(), r.namespace.as_deref(), r.name.as_str()))
            .copied()
    }

    /// The objects of one kind in one namespace, in snapshot order.
    pub fn in_ns(&self, kind: &str, ns: &str) -> &[&'a KubeObject] {
        self.by_kind
            .get(&(kind, Some(ns)))
            .map_or(&[], |&i| &self.lists[i])
    }

    /// The objects of one kind in any namespace (namespaces in the order first seen).
    pub fn of_kind(&self, kind: &'static str) -> impl Iterator<Item = &'a KubeObject> + '_ {
        let mut at: Vec<usize> = self
            .by_kind
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, &i)| i)
            .collect();
        at.sort_unstable();
        at.into_iter().flat_map(|i| self.lists[i].iter().copied())
    }
}

/// The neighbourhood of `centre` (the target and the root cause) in the snapshot.
pub fn neighbourhood(index: &Objects, centre: &[ObjectRef]) -> Near {
    let mut near = Near::default();
    let mut workloads: BTreeSet<ObjectRef> = BTreeSet::new();
    for c in centre {
        near.objects.insert(c.clone());
        let Some(o) = index.get(c) else { continue };
        let ns = o.namespace().unwrap_or_default().to_string();
        // Up the owner chain (pod → ReplicaSet → Deployment).
        let mut cur = o;
        for _ in 0..3 {
            let Some((kind, name)) = cur.controller() else {
                break;
            };
            let r = ObjectRef::new(kind, &ns, name);
            near.objects.insert(r.clone());
            if WORKLOADS.contains(&kind) {
                workloads.insert(r.clone());
            }
            match index.get(&r) {
                Some(next) => cur = next,
                None => break,
            }
        }
        if WORKLOADS.contains(&o.kind()) {
            workloads.insert(c.clone());
        }
        if o.kind() == "Pod" {
            near.pods.insert(c.clone());
        }
        if o.kind() == "Service" {
            for w in WORKLOADS.iter().flat_map(|k| index.in_ns(k, &ns)) {
                if selects(o.selector(), w.template_labels()) {
                    near.objects.insert(w.object_ref());
                }
            }
        }
    }
    // Label pairs per namespace, gathered once.
    let mut pairs: HashMap<String, HashSet<(&str, &str)>> = HashMap::new();
    for w in &workloads {
        let Some(o) = index.get(w) else { continue };
        let ns = o.namespace().unwrap_or_default();
        if let Some(spec) = o.pointer("/spec/template/spec") {
            references(spec, ns, &mut near.objects);
        }
        // The Services selecting its pods, and those that select nothing at all while asking
        // for one of its label keys: a selector edited away from its pods is the change that
        // explains them (in a namespace of a thousand `app=…` Services, the others are not near).
        let labels = o.template_labels();
        let present = pairs
            .entry(ns.to_string())
            .or_insert_with(|| label_pairs(index, ns));
        for s in index.in_ns("Service", ns) {
            let sel = s.selector();
            let orphan = sel.and_then(Value::as_object).is_some_and(|m| {
                m.iter().any(|(k, v)| {
                    !v.as_str()
                        .is_some_and(|v| present.contains(&(k.as_str(), v)))
                })
            });
            if selects(sel, labels) || (orphan && shares_key(sel, labels)) {
                near.objects.insert(s.object_ref());
            }
        }
    }
    // The pods of those workloads (owned directly or through a ReplicaSet), their nodes and
    // what they reference. Owners are compared as borrowed names: no reference is built for
    // each of a large namespace's pods.
    let mine: HashSet<(&str, &str, &str)> = workloads
        .iter()
        .map(|w| {
            (
                w.kind.as_str(),
                w.namespace.as_deref().unwrap_or_default(),
                w.name.as_str(),
            )
        })
        .collect();
    let asked: HashSet<(&str, &str)> = near
        .pods
        .iter()
        .map(|p| (p.namespace.as_deref().unwrap_or_default(), p.name.as_str()))
        .collect();
    let mut pods: Vec<(ObjectRef, &KubeObject)> = Vec::new();
    for p in index.of_kind("Pod") {
        let ns = p.namespace().unwrap_or_default();
        let mut cur = p;
        let mut owned = false;
        for _ in 0..2 {
            let Some((kind, name)) = cur.controller() else {
                break;
            };
            if mine.contains(&(kind, ns, name)) {
                owned = true;
                break;
            }
            match index.by_ref.get(&(kind, Some(ns), name)) {
                Some(next) => cur = next,
                None => break,
            }
        }
        if owned || asked.contains(&(ns, p.name())) {
            pods.push((p.object_ref(), p));
        }
    }
    for (r, p) in pods {
        let ns = p.namespace().unwrap_or_default();
        if let Some(n) = p.pointer("/spec/nodeName").and_then(Value::as_str) {
            near.objects.insert(ObjectRef::cluster("Node", n));
        }
        if let Some(spec) = p.pointer("/spec") {
            references(spec, ns, &mut near.objects);
        }
        near.pods.insert(r);
    }
    near
}

/// What the timing of a failure is read from, typed straight from an object's JSON (a large
/// snapshot's events and pods are never built into value trees for it): an event's type,
/// subject and times (core/v1 `involvedObject`, events.k8s.io `regarding`), a pod's or node's
/// conditions.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Timing {
    #[serde(rename = "type")]
    type_: Option<String>,
    involved_object: Option<Subject>,
    regarding: Option<Subject>,
    first_timestamp: Option<String>,
    event_time: Option<String>,
    last_timestamp: Option<String>,
    status: Option<Status>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Subject {
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Status {
    conditions: Option<Vec<Condition>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Condition {
    #[serde(rename = "type")]
    type_: Option<String>,
    status: Option<String>,
    last_transition_time: Option<String>,
}

impl Timing {
    /// The object's timing fields; an object whose fields are not of these shapes has none.
    fn of(o: &KubeObject) -> Timing {
        o.typed().unwrap_or_default()
    }

    fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
    }
}

fn time(v: Option<&String>) -> Option<Timestamp> {
    v.and_then(|s| s.parse().ok())
}

/// The earliest failure near the fault: a warning event about one of its objects or pods, or a
/// pod whose Ready condition turned false.
pub fn first_failure(objects: &Objects, near: &Near) -> Option<Timestamp> {
    let mut first: Option<Timestamp> = None;
    let mut see = |t: Option<Timestamp>| {
        if let Some(t) = t {
            first = Some(first.map_or(t, |f| f.min(t)));
        }
    };
    for o in objects.of_kind("Event") {
        let e = Timing::of(o);
        if e.type_.as_deref() != Some("Warning") {
            continue;
        }
        let Some(io) = e.involved_object.as_ref().or(e.regarding.as_ref()) else {
            continue;
        };
        let (kind, name) = (
            io.kind.as_deref().unwrap_or_default(),
            io.name.as_deref().unwrap_or_default(),
        );
        let r = if kind == "Node" {
            ObjectRef::cluster("Node", name)
        } else {
            ObjectRef::new(kind, io.namespace.as_deref().unwrap_or_default(), name)
        };
        if near.objects.contains(&r) || near.pods.contains(&r) {
            see(time(e.first_timestamp.as_ref())
                .or_else(|| time(e.event_time.as_ref()))
                .or_else(|| time(e.last_timestamp.as_ref())));
        }
    }
    for o in near.pods.iter().filter_map(|p| objects.get(p)) {
        for c in Timing::of(o).conditions() {
            if c.type_.as_deref() == Some("Ready") && c.status.as_deref() == Some("False") {
                see(time(c.last_transition_time.as_ref()));
            }
        }
    }
    first
}

/// The newest time the snapshot itself shows (events, pod and node conditions): what "now" was
/// for a dump read later.
pub fn observed_at(objects: &Objects) -> Option<Timestamp> {
    let events = objects.of_kind("Event").flat_map(|o| {
        let e = Timing::of(o);
        [e.last_timestamp, e.event_time, e.first_timestamp].map(|t| time(t.as_ref()))
    });
    let conditions = objects
        .of_kind("Pod")
        .chain(objects.of_kind("Node"))
        .flat_map(|o| {
            Timing::of(o)
                .conditions()
                .map(|c| time(c.last_transition_time.as_ref()))
                .collect::<Vec<_>>()
        });
    events.chain(conditions).flatten().max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use metakube_shared::{CollectionMeta, SnapshotSource};
    use serde_json::json;

    #[test]
    fn the_neighbourhood_is_what_the_workload_uses_and_nothing_else() {
        let objects = vec![
            json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "n"},
                "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                    "volumes": [{"name": "c", "configMap": {"name": "web-cfg"}}],
                    "containers": [{"name": "a", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "web-db", "key": "p"}}}]}]}}}}),
            json!({"kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "n",
                "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": true}]},
                "spec": {"template": {"metadata": {"labels": {"app": "web"}}}}}),
            json!({"kind": "Pod", "metadata": {"name": "web-1-a", "namespace": "n", "labels": {"app": "web"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "controller": true}]},
                "spec": {"nodeName": "node-1"},
                "status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T10:00:00Z"}]}}),
            // Selects web; selects nothing but asks for `app` (edited away); selects another app.
            json!({"kind": "Service", "metadata": {"name": "web", "namespace": "n"}, "spec": {"selector": {"app": "web"}}}),
            json!({"kind": "Service", "metadata": {"name": "web-old", "namespace": "n"}, "spec": {"selector": {"app": "web-v0"}}}),
            json!({"kind": "Service", "metadata": {"name": "other", "namespace": "n"}, "spec": {"selector": {"app": "other"}}}),
            json!({"kind": "Deployment", "metadata": {"name": "other", "namespace": "n"},
                "spec": {"template": {"metadata": {"labels": {"app": "other"}}}}}),
            json!({"kind": "Event", "type": "Warning", "firstTimestamp": "2026-01-01T09:58:00Z",
                "involvedObject": {"kind": "Pod", "namespace": "n", "name": "web-1-a"}}),
            json!({"kind": "Event", "type": "Warning", "firstTimestamp": "2026-01-01T08:00:00Z",
                "involvedObject": {"kind": "Pod", "namespace": "n", "name": "other-1-a"}}),
        ];
        let snap = Snapshot {
            target: ObjectRef::new("Deployment", "n", "web"),
            objects: objects.into_iter().map(KubeObject::new).collect(),
            logs: vec![],
            meta: CollectionMeta {
                source: SnapshotSource::Dump { path: "d".into() },
                namespace: "n".into(),
                collected_at: Timestamp::now(),
                gaps: vec![],
                collector_version: "test".into(),
            },
        };
        let objects = Objects::new(&snap);
        let near = neighbourhood(&objects, &[ObjectRef::new("Deployment", "n", "web")]);
        let names: BTreeSet<String> = near
            .objects
            .iter()
            .map(|r| format!("{}/{}", r.kind, r.name))
            .collect();
        for want in [
            "Deployment/web",
            "ConfigMap/web-cfg",
            "Secret/web-db",
            "Service/web",
            "Service/web-old",
            "Node/node-1",
        ] {
            assert!(names.contains(want), "{want} missing from {names:?}");
        }
        assert!(
            !names.contains("Service/other") && !names.contains("Deployment/other"),
            "{names:?}"
        );
        assert_eq!(near.pods.len(), 1);
        // The earliest failure near web, not the bystander's older one.
        assert_eq!(
            first_failure(&objects, &near),
            Some("2026-01-01T09:58:00Z".parse().unwrap())
        );
    }
}
