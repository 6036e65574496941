//! Which objects are near a fault, and when it started failing: the neighbourhood whose
//! changes may explain it (owners, the pods of its workloads and their nodes, the ConfigMaps,
//! Secrets and claims its pod templates reference, the Services selecting them) and the time of
//! the earliest warning event or not-Ready pod in it.

use std::collections::{BTreeSet, HashMap};

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

fn in_ns<'a>(
    snap: &'a Snapshot,
    kind: &'a str,
    ns: &'a str,
) -> impl Iterator<Item = &'a KubeObject> {
    snap.objects
        .iter()
        .filter(move |o| o.kind() == kind && o.namespace() == Some(ns))
}

/// The object's controller (kind, name), from its ownerReferences.
fn owner(o: &KubeObject) -> Option<(String, String)> {
    let refs = o.pointer("/metadata/ownerReferences")?.as_array()?;
    let r = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .or_else(|| refs.first())?;
    Some((
        r.get("kind")?.as_str()?.to_string(),
        r.get("name")?.as_str()?.to_string(),
    ))
}

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

/// The snapshot's objects by (kind, namespace, name): one pass, then lookups (a 20k-object
/// snapshot has thousands of pods whose owners are looked up).
struct Index<'a>(HashMap<(&'a str, Option<&'a str>, &'a str), &'a KubeObject>);

impl<'a> Index<'a> {
    fn new(snap: &'a Snapshot) -> Index<'a> {
        Index(
            snap.objects
                .iter()
                .map(|o| ((o.kind(), o.namespace(), o.name()), o))
                .collect(),
        )
    }

    fn get(&self, r: &ObjectRef) -> Option<&'a KubeObject> {
        self.0
            .get(&(r.kind.as_str(), r.namespace.as_deref(), r.name.as_str()))
            .copied()
    }
}

/// The neighbourhood of `centre` (the target and the root cause) in the snapshot.
pub fn neighbourhood(snap: &Snapshot, centre: &[ObjectRef]) -> Near {
    let index = Index::new(snap);
    let mut near = Near::default();
    let mut workloads: BTreeSet<ObjectRef> = BTreeSet::new();
    for c in centre {
        near.objects.insert(c.clone());
        let Some(o) = index.get(c) else { continue };
        let ns = o.namespace().unwrap_or_default().to_string();
        // Up the owner chain (pod → ReplicaSet → Deployment).
        let mut cur = o;
        for _ in 0..3 {
            let Some((kind, name)) = owner(cur) else {
                break;
            };
            let r = ObjectRef::new(&kind, &ns, &name);
            near.objects.insert(r.clone());
            if WORKLOADS.contains(&kind.as_str()) {
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
            for w in WORKLOADS.iter().flat_map(|k| in_ns(snap, k, &ns)) {
                if selects(
                    o.pointer("/spec/selector"),
                    w.pointer("/spec/template/metadata/labels"),
                ) {
                    near.objects.insert(w.object_ref());
                }
            }
        }
    }
    for w in &workloads {
        let Some(o) = index.get(w) else { continue };
        let ns = o.namespace().unwrap_or_default();
        if let Some(spec) = o.pointer("/spec/template/spec") {
            references(spec, ns, &mut near.objects);
        }
        // The Services selecting its pods, and those whose selector asks for one of the same
        // label keys with another value: a selector edited away from its pods is the change
        // that explains them.
        let labels = o.pointer("/spec/template/metadata/labels");
        for s in in_ns(snap, "Service", ns) {
            let sel = s.pointer("/spec/selector");
            if selects(sel, labels) || shares_key(sel, labels) {
                near.objects.insert(s.object_ref());
            }
        }
    }
    // The pods of those workloads (owned directly or through a ReplicaSet), their nodes and
    // what they reference.
    for p in snap.objects.iter().filter(|o| o.kind() == "Pod") {
        let ns = p.namespace().unwrap_or_default();
        let mut cur = p;
        let mut mine = false;
        for _ in 0..2 {
            let Some((kind, name)) = owner(cur) else {
                break;
            };
            let r = ObjectRef::new(&kind, ns, &name);
            if workloads.contains(&r) {
                mine = true;
                break;
            }
            match index.get(&r) {
                Some(next) => cur = next,
                None => break,
            }
        }
        if mine || near.pods.contains(&p.object_ref()) {
            near.pods.insert(p.object_ref());
            if let Some(n) = p.pointer("/spec/nodeName").and_then(Value::as_str) {
                near.objects.insert(ObjectRef::cluster("Node", n));
            }
            if let Some(spec) = p.pointer("/spec") {
                references(spec, ns, &mut near.objects);
            }
        }
    }
    near
}

fn time(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

/// The earliest failure near the fault: a warning event about one of its objects or pods, or a
/// pod whose Ready condition turned false.
pub fn first_failure(snap: &Snapshot, near: &Near) -> Option<Timestamp> {
    let mut first: Option<Timestamp> = None;
    let mut see = |t: Option<Timestamp>| {
        if let Some(t) = t {
            first = Some(first.map_or(t, |f| f.min(t)));
        }
    };
    for o in &snap.objects {
        match o.kind() {
            "Event" => {
                if o.pointer("/type").and_then(Value::as_str) != Some("Warning") {
                    continue;
                }
                let Some(io) = o
                    .pointer("/involvedObject")
                    .or_else(|| o.pointer("/regarding"))
                else {
                    continue;
                };
                let r = ObjectRef::new(
                    io.get("kind").and_then(Value::as_str).unwrap_or_default(),
                    io.get("namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                    io.get("name").and_then(Value::as_str).unwrap_or_default(),
                );
                let r = if r.kind == "Node" {
                    ObjectRef::cluster("Node", &r.name)
                } else {
                    r
                };
                if near.objects.contains(&r) || near.pods.contains(&r) {
                    see(time(o.pointer("/firstTimestamp"))
                        .or_else(|| time(o.pointer("/eventTime")))
                        .or_else(|| time(o.pointer("/lastTimestamp"))));
                }
            }
            "Pod" if near.pods.contains(&o.object_ref()) => {
                for c in o
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if c.get("type").and_then(Value::as_str) == Some("Ready")
                        && c.get("status").and_then(Value::as_str) == Some("False")
                    {
                        see(time(c.get("lastTransitionTime")));
                    }
                }
            }
            _ => {}
        }
    }
    first
}

/// The newest time the snapshot itself shows (events, pod conditions): what "now" was for a
/// dump read later.
pub fn observed_at(snap: &Snapshot) -> Option<Timestamp> {
    let mut newest: Option<Timestamp> = None;
    for o in &snap.objects {
        let times: Vec<Option<Timestamp>> = match o.kind() {
            "Event" => vec![
                time(o.pointer("/lastTimestamp")),
                time(o.pointer("/eventTime")),
                time(o.pointer("/firstTimestamp")),
            ],
            "Pod" | "Node" => o
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| time(c.get("lastTransitionTime")))
                .collect(),
            _ => continue,
        };
        for t in times.into_iter().flatten() {
            newest = Some(newest.map_or(t, |n| n.max(t)));
        }
    }
    newest
}
