//! What changed near a fault. Two sources:
//!
//! - a Deployment's rollout revisions, read from its ReplicaSets in any snapshot
//!   ([`revisions`]), dated by the revision's creation;
//! - the daemon's own history of each live cluster it diagnoses: the objects that make or break
//!   a workload ([`metakube_shared::TRACKED`]) are kept per cluster in RocksDB by
//!   resourceVersion, warm in memory after the first use; a new snapshot of the same cluster is
//!   compared object by object, and an object whose resourceVersion did not move is not looked
//!   at again. What differs is recorded as changes (ConfigMap data by key, through a digest of
//!   each value; Secrets by key name, their values never collected; an env var or argument
//!   that looks like a credential by digest too, see [`redact`]).
//!
//! The engine stays pure: this runs at the edge, after it, and the changes near the target and
//! the root cause are attached to the diagnosis as evidence ("image changed 4 min before the
//! first failure") and answered by `/v1/changes`.

pub mod near;
pub mod redact;
pub mod revisions;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use metakube_shared::{
    field_changes, Change, KubeObject, ObjectRef, Snapshot, SnapshotSource, TRACKED,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::store::{Cf, Op, Store, StoreError};

pub use near::{first_failure, neighbourhood, observed_at, Near, Objects};

/// How far before the first failure a change may explain it.
pub const LOOKBACK: SignedDuration = SignedDuration::from_secs(30 * 60);

/// The window when none is asked for: the last hour, and always from [`LOOKBACK`] before the
/// first failure.
pub const WINDOW: SignedDuration = SignedDuration::from_secs(3600);

/// How long recorded changes are kept.
const KEEP: SignedDuration = SignedDuration::from_secs(7 * 24 * 3600);

/// The history key of a snapshot's cluster: its API server (or context) for a live
/// collection; `None` for a dump, a moment with no before.
pub fn cluster_key(source: &SnapshotSource) -> Option<String> {
    match source {
        SnapshotSource::Live { cluster, context } => cluster
            .as_deref()
            .or(context.as_deref())
            .map(|c| format!("live:{c}")),
        SnapshotSource::Dump { .. } => None,
    }
}

/// An object as last seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Known {
    rv: String,
    seen: Timestamp,
    shape: Value,
}

/// One cluster's objects as last seen.
#[derive(Debug)]
struct Cluster {
    since: Timestamp,
    objects: HashMap<ObjectRef, Known>,
}

/// What one snapshot did to the history.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Observation {
    /// Tracked objects compared with what was kept.
    pub compared: usize,
    /// Of those, how many had the resourceVersion kept (not looked at again).
    pub unchanged: usize,
    /// Objects seen for the first time.
    pub new: usize,
    /// Changes recorded.
    pub changes: Vec<Change>,
}

/// The per-cluster history over the store.
pub struct History {
    store: Arc<dyn Store>,
    /// Clusters in use, with when each was last used; beyond [`WARM_CLUSTERS`] the least
    /// recently used one is dropped from memory (its history stays in the store).
    clusters: Mutex<HashMap<String, WarmCluster>>,
}

/// A cluster in memory and when it was last used.
type WarmCluster = (Arc<Mutex<Cluster>>, std::time::Instant);

/// Clusters whose objects are kept in memory at once.
const WARM_CLUSTERS: usize = 8;

/// What decides whether an object changed, and nothing more: its spec and labels, and for
/// ConfigMaps and Secrets a digest of each data value (Secrets arrive without values).
pub fn shape(o: &KubeObject) -> Value {
    let mut s = json!({
        "kind": o.kind(),
        "metadata": {"name": o.name(), "labels": o.pointer("/metadata/labels").cloned().unwrap_or(Value::Null)},
    });
    if let Some(spec) = o.pointer("/spec") {
        let mut spec = spec.clone();
        redact::redact(&mut spec);
        s["spec"] = spec;
    }
    for key in ["data", "binaryData", "stringData"] {
        if let Some(m) = o.value().get(key).and_then(Value::as_object) {
            let digests: serde_json::Map<String, Value> = m
                .iter()
                .map(|(k, v)| {
                    let d = Sha256::digest(v.to_string().as_bytes());
                    (k.clone(), Value::from(format!("{d:x}")))
                })
                .collect();
            s[key] = Value::Object(digests);
        }
    }
    s
}

fn object_key(cluster: &str, r: &ObjectRef) -> Vec<u8> {
    format!(
        "{cluster}\0{}\0{}\0{}",
        r.kind,
        r.namespace.as_deref().unwrap_or_default(),
        r.name
    )
    .into_bytes()
}

/// A change's key: by cluster and time, then object and field (two changes of one field at
/// the same instant are one change: the later value is kept).
fn change_key(cluster: &str, at: Timestamp, what: Option<(&ObjectRef, &str)>) -> Vec<u8> {
    let mut k = format!("{cluster}\0{:020}\0", at.as_nanosecond().max(0));
    if let Some((r, field)) = what {
        k.push_str(&format!(
            "{}\0{}\0{}\0{field}",
            r.kind,
            r.namespace.as_deref().unwrap_or_default(),
            r.name
        ));
    }
    k.into_bytes()
}

/// Whether a changed value may be shown: not a ConfigMap's or Secret's data, not a digest.
fn shown(kind: &str, v: &Value) -> bool {
    !matches!(kind, "ConfigMap" | "Secret") && !redact::is_digest(v)
}

/// When an object's spec last changed: the newest time a manager wrote it (managedFields,
/// status writes aside) if that is after the last look, else now.
fn changed_at(o: &KubeObject, last_seen: Timestamp, now: Timestamp) -> Timestamp {
    o.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| {
            m.get("subresource")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
        })
        .filter_map(|m| m.get("time")?.as_str()?.parse::<Timestamp>().ok())
        .max()
        .filter(|t| *t > last_seen && *t <= now)
        .unwrap_or(now)
}

impl History {
    /// The history kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> History {
        History {
            store,
            clusters: Mutex::new(HashMap::new()),
        }
    }

    /// A cluster's state, read from the store on first use.
    fn cluster(&self, key: &str, now: Timestamp) -> Result<Arc<Mutex<Cluster>>, StoreError> {
        let mut all = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((c, used)) = all.get_mut(key) {
            *used = std::time::Instant::now();
            return Ok(c.clone());
        }
        if all.len() >= WARM_CLUSTERS {
            if let Some(oldest) = all
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
        }
        let prefix = format!("{key}\0").into_bytes();
        let mut objects = HashMap::new();
        let mut bad = 0;
        self.store.scan(Cf::Objects, &prefix, &mut |k, v| {
            if !k.starts_with(&prefix) {
                return false;
            }
            let rest = String::from_utf8_lossy(&k[prefix.len()..]).to_string();
            let mut parts = rest.splitn(3, '\0');
            let (Some(kind), Some(ns), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                bad += 1;
                return true;
            };
            let r = if ns.is_empty() {
                ObjectRef::cluster(kind, name)
            } else {
                ObjectRef::new(kind, ns, name)
            };
            match serde_json::from_slice::<Known>(v) {
                Ok(known) => {
                    objects.insert(r, known);
                }
                Err(_) => bad += 1,
            }
            true
        })?;
        if bad > 0 {
            tracing::warn!(
                cluster = key,
                records = bad,
                "unreadable history records skipped"
            );
        }
        let since = match self.store.get(Cf::Clusters, key.as_bytes())? {
            Some(v) => serde_json::from_slice(&v).unwrap_or(now),
            None => {
                self.store.write(&[(
                    Cf::Clusters,
                    key.as_bytes().to_vec(),
                    Some(serde_json::to_vec(&now).unwrap_or_default()),
                )])?;
                now
            }
        };
        let c = Arc::new(Mutex::new(Cluster { since, objects }));
        all.insert(key.to_string(), (c.clone(), std::time::Instant::now()));
        Ok(c)
    }

    /// Compares a live snapshot with its cluster's history and records what changed (nothing
    /// for a dump).
    pub fn observe(&self, snap: &Snapshot, now: Timestamp) -> Result<Observation, StoreError> {
        let Some(key) = cluster_key(&snap.meta.source) else {
            return Ok(Observation::default());
        };
        let cluster = self.cluster(&key, now)?;
        let mut c = cluster.lock().unwrap_or_else(|p| p.into_inner());
        let mut obs = Observation::default();
        let mut ops: Vec<Op> = Vec::new();
        for o in snap.objects.iter().filter(|o| TRACKED.contains(&o.kind())) {
            let r = o.object_ref();
            let rv = o.resource_version().unwrap_or("").to_string();
            let new_shape = match c.objects.get(&r) {
                Some(k) if !rv.is_empty() && k.rv == rv => {
                    obs.compared += 1;
                    obs.unchanged += 1;
                    continue;
                }
                Some(k) => {
                    obs.compared += 1;
                    let s = shape(o);
                    let at = changed_at(o, k.seen, now);
                    let via = format!("history: resourceVersion {} → {rv}", k.rv);
                    for (field, from, to) in field_changes(
                        &KubeObject::new(k.shape.clone()),
                        &KubeObject::new(s.clone()),
                    ) {
                        let change = Change {
                            object: r.clone(),
                            field,
                            // Digests (ConfigMap values, secret-looking settings) are not
                            // values: never shown.
                            from: from.filter(|v| shown(o.kind(), v)),
                            to: to.filter(|v| shown(o.kind(), v)),
                            at,
                            before_first_symptom_s: 0.0,
                            via: Some(via.clone()),
                        };
                        ops.push((
                            Cf::Changes,
                            change_key(&key, at, Some((&change.object, &change.field))),
                            Some(serde_json::to_vec(&change).unwrap_or_default()),
                        ));
                        obs.changes.push(change);
                    }
                    s
                }
                None => {
                    obs.new += 1;
                    shape(o)
                }
            };
            let known = Known {
                rv,
                seen: now,
                shape: new_shape,
            };
            ops.push((
                Cf::Objects,
                object_key(&key, &r),
                Some(serde_json::to_vec(&known).unwrap_or_default()),
            ));
            c.objects.insert(r, known);
        }
        // Changes older than a week go.
        let prefix = format!("{key}\0").into_bytes();
        let cutoff = change_key(&key, now - KEEP, None);
        self.store.scan(Cf::Changes, &prefix, &mut |k, _| {
            if !k.starts_with(&prefix) || k >= cutoff.as_slice() {
                return false;
            }
            ops.push((Cf::Changes, k.to_vec(), None));
            true
        })?;
        if !ops.is_empty() {
            self.store.write(&ops)?;
        }
        Ok(obs)
    }

    /// When this cluster's history starts, if it has one.
    pub fn since(&self, cluster: &str) -> Option<Timestamp> {
        let all = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        let (c, _) = all.get(cluster)?;
        let since = c.lock().unwrap_or_else(|p| p.into_inner()).since;
        Some(since)
    }

    /// The changes recorded in a cluster since `from` to the objects in `near`, oldest first.
    pub fn recorded(
        &self,
        cluster: &str,
        near: &BTreeSet<ObjectRef>,
        from: Timestamp,
    ) -> Result<Vec<Change>, StoreError> {
        let prefix = format!("{cluster}\0").into_bytes();
        let mut out = Vec::new();
        self.store.scan(
            Cf::Changes,
            &change_key(cluster, from, None),
            &mut |k, v| {
                if !k.starts_with(&prefix) {
                    return false;
                }
                if let Ok(c) = serde_json::from_slice::<Change>(v) {
                    if near.contains(&c.object) {
                        out.push(c);
                    }
                }
                true
            },
        )?;
        Ok(out)
    }
}

/// "Now" for a snapshot: the moment of collection for a live one; for a dump, read any time
/// later, the newest time it shows.
fn snapshot_now(snap: &Snapshot, objects: &Objects, now: Timestamp) -> Timestamp {
    match snap.meta.source {
        SnapshotSource::Live { .. } => now,
        SnapshotSource::Dump { .. } => observed_at(objects).unwrap_or(now).min(now),
    }
}

/// The changes near a fault, and what they are measured from.
#[derive(Debug, Default, Clone)]
pub struct NearChanges {
    /// The objects looked at.
    pub near: Near,
    /// The earliest failure among them.
    pub first_failure: Option<Timestamp>,
    /// The start of the window.
    pub since: Timestamp,
    /// The changes in the window, oldest first.
    pub changes: Vec<Change>,
}

/// The changes near `centre` (the target, the root cause) in the `last` span before the
/// snapshot's "now" (a dump's "last hour" is the hour before it was taken) — by default the
/// last [`WINDOW`] and at least from [`LOOKBACK`] before the first failure: rollout revisions
/// from the snapshot, and the cluster's recorded history when there is one.
pub fn changes_near(
    history: Option<&History>,
    snap: &Snapshot,
    centre: &[ObjectRef],
    last: Option<SignedDuration>,
    now: Timestamp,
) -> Result<NearChanges, StoreError> {
    let objects = Objects::new(snap);
    let near = neighbourhood(&objects, centre);
    let first = first_failure(&objects, &near);
    let at = snapshot_now(snap, &objects, now);
    let reference = first.unwrap_or(at);
    let since = match last {
        Some(span) => at - span,
        None => (reference - LOOKBACK).min(at - WINDOW),
    };
    let mut changes: Vec<Change> = revisions::rollout_changes(&objects, &near.objects)
        .into_iter()
        .filter(|c| c.at >= since)
        .collect();
    // Where a rollout's revision already says it, it says it with the time it happened.
    let recorded = match (history, cluster_key(&snap.meta.source)) {
        (Some(h), Some(key)) => h.recorded(&key, &near.objects, since)?,
        _ => Vec::new(),
    };
    metakube_shared::change::merge(&mut changes, recorded);
    for c in &mut changes {
        c.before_first_symptom_s = reference.duration_since(c.at).as_secs_f64();
    }
    Ok(NearChanges {
        near,
        first_failure: first,
        since,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;
    use metakube_shared::CollectionMeta;

    fn snap(objects: Vec<Value>) -> Snapshot {
        Snapshot {
            target: ObjectRef::new("Deployment", "shop", "web"),
            objects: objects.into_iter().map(KubeObject::new).collect(),
            logs: vec![],
            meta: CollectionMeta {
                source: SnapshotSource::Live {
                    context: Some("kind-a".into()),
                    cluster: Some("https://10.0.0.1:6443".into()),
                },
                namespace: "shop".into(),
                collected_at: Timestamp::now(),
                gaps: vec![],
                collector_version: "test".into(),
            },
        }
    }

    fn objects(rv: &str, selector: &str, cm_value: &str) -> Vec<Value> {
        vec![
            json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "10"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "web:1", "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}}}}),
            json!({"kind": "Service", "metadata": {"name": "web", "namespace": "shop", "resourceVersion": rv},
                "spec": {"selector": {"app": selector}}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "shop", "resourceVersion": rv},
                "data": {"LOG_LEVEL": cm_value}}),
        ]
    }

    #[test]
    fn only_moved_resource_versions_are_compared_and_changes_survive_a_restart() {
        let store: Arc<dyn Store> = Arc::new(MemStore::default());
        let h = History::new(store.clone());
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let first = h.observe(&snap(objects("1", "web", "info")), t0).unwrap();
        assert_eq!((first.new, first.compared, first.changes.len()), (3, 0, 0));
        // Same resourceVersions: nothing looked at.
        let same = h
            .observe(
                &snap(objects("1", "web", "info")),
                t0 + SignedDuration::from_secs(60),
            )
            .unwrap();
        assert_eq!(
            (same.compared, same.unchanged, same.changes.len()),
            (3, 3, 0)
        );
        // The Service's selector and the ConfigMap's value change.
        let t2 = t0 + SignedDuration::from_secs(120);
        let s = snap(objects("2", "web-v2", "s3cr3t-debug"));
        let moved = h.observe(&s, t2).unwrap();
        assert_eq!((moved.compared, moved.unchanged), (3, 1));
        let fields: Vec<&str> = moved.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["/spec/selector/app", "/data/LOG_LEVEL"]);
        assert!(!format!("{:?}", moved.changes).contains("s3cr3t"));
        // A new daemon on the same store: the history is read back and answers.
        let h2 = History::new(store);
        let near = changes_near(
            Some(&h2),
            &s,
            &[ObjectRef::new("Deployment", "shop", "web")],
            Some(SignedDuration::from_secs(120)), // back to t0
            t2,
        )
        .unwrap();
        assert!(near
            .near
            .objects
            .contains(&ObjectRef::new("Service", "shop", "web")));
        assert!(near
            .near
            .objects
            .contains(&ObjectRef::new("ConfigMap", "shop", "cfg")));
        assert_eq!(near.changes.len(), 2, "{:#?}", near.changes);
        let selector = near
            .changes
            .iter()
            .find(|c| c.field == "/spec/selector/app")
            .expect("the selector change");
        assert_eq!(selector.to, Some(json!("web-v2")));
        let again = h2.observe(&s, t2 + SignedDuration::from_secs(60)).unwrap();
        assert_eq!((again.compared, again.unchanged), (3, 3));
        // A dump has no history.
        let mut d = s.clone();
        d.meta.source = SnapshotSource::Dump { path: "x".into() };
        assert_eq!(h2.observe(&d, t2).unwrap(), Observation::default());
    }

    #[test]
    fn clusters_beyond_the_warm_ones_reload_from_the_store_and_keep_every_change() {
        let store: Arc<dyn Store> = Arc::new(MemStore::default());
        let h = History::new(store.clone());
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let in_cluster = |n: usize, objects: Vec<Value>| {
            let mut s = snap(objects);
            s.meta.source = SnapshotSource::Live {
                context: None,
                cluster: Some(format!("https://c{n}:6443")),
            };
            s
        };
        for n in 0..=WARM_CLUSTERS {
            h.observe(&in_cluster(n, objects("1", "web", "info")), t0)
                .unwrap();
        }
        assert_eq!(h.clusters.lock().unwrap().len(), WARM_CLUSTERS);
        // Cluster 0 left memory first; read back, its objects are known by resourceVersion.
        let back = h
            .observe(&in_cluster(0, objects("1", "web", "info")), t0)
            .unwrap();
        assert_eq!((back.new, back.unchanged), (0, 3));
        // Two objects written in the same second (their managedFields say so), recorded by
        // two daemons (a restart in between): two changes, neither written over the other.
        let t1 = t0 + SignedDuration::from_secs(60);
        let written =
            json!([{"manager": "kubectl", "operation": "Update", "time": "2027-01-15T08:00:30Z"}]);
        let mut o = objects("1", "web", "info");
        o[1]["metadata"]["resourceVersion"] = json!("2");
        o[1]["spec"]["selector"]["app"] = json!("web-v2");
        o[1]["metadata"]["managedFields"] = written.clone();
        h.observe(&in_cluster(0, o.clone()), t1).unwrap();
        let h2 = History::new(store);
        o[2]["metadata"]["resourceVersion"] = json!("2");
        o[2]["data"]["LOG_LEVEL"] = json!("debug");
        o[2]["metadata"]["managedFields"] = written;
        h2.observe(&in_cluster(0, o), t1 + SignedDuration::from_secs(1))
            .unwrap();
        let near = BTreeSet::from([
            ObjectRef::new("Service", "shop", "web"),
            ObjectRef::new("ConfigMap", "shop", "cfg"),
        ]);
        let got = h2.recorded("live:https://c0:6443", &near, t0).unwrap();
        let fields: Vec<&str> = got.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            ["/data/LOG_LEVEL", "/spec/selector/app"],
            "{got:#?}"
        );
        let written_at: Timestamp = "2027-01-15T08:00:30Z".parse().unwrap();
        assert!(got.iter().all(|c| c.at == written_at), "{got:#?}");
    }
}
