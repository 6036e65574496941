//! The KubeGraph kept per cluster between diagnoses, warm in memory and persisted in RocksDB,
//! and the typed snapshot beside it in memory.
//!
//! A live cluster's graph is kept under its history key and the namespace the request ran in
//! (a diagnosis reads that namespace and what it reaches, so two namespaces of one cluster keep
//! two graphs). The next snapshot of it re-links the kept graph instead of building one
//! ([`crate::graph::instance::update`]); after the diagnosis, only the node records the update
//! touched are written. A daemon that starts again loads the graph from its records on the
//! first diagnosis of that cluster; a graph no diagnosis stored for a week is deleted (the
//! store is swept at the first diagnosis, then once a day). The last typed snapshots (of [`TYPED_CLUSTERS`] keys) are
//! kept in memory too, so an object whose resourceVersion did not move is not typed again; they
//! are not stored (a restarted daemon types its first snapshot whole). A dump is a moment with
//! no before: it keeps nothing.
//!
//! Like the history, this runs at the edge: the engine takes a graph and leaves one, and the
//! daemon's handler moves it between here and there.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use metakube_shared::Snapshot;

use crate::engine::Kept;
use crate::graph::instance::record::{Loader, RecordError};
use crate::graph::instance::KubeGraph;
use crate::snapshot::Cluster;
use crate::store::{Cf, Op, Store, StoreError};

/// Graphs kept in memory at once; beyond it the least recently used is dropped from memory (it
/// stays in the store).
const WARM_GRAPHS: usize = 8;

/// Typed snapshots kept in memory at once (the most recently used keys'): a 20k-object
/// namespace's typed objects hold ~130 MB (the daemon's steady RSS 357 MB with one kept, 223 MB
/// with none, `tests/live_cluster.rs`), so only the cluster being watched or re-diagnosed.
pub const TYPED_CLUSTERS: usize = 1;

/// Why a kept graph could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeptError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored records do not make a graph.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A stored key is not `graph key\0u32`.
    #[error("a stored graph key of {0} is malformed")]
    Key(String),
}

/// The key a snapshot's graph is kept under, or `None` for a dump.
pub fn graph_key(snap: &Snapshot) -> Option<String> {
    crate::history::cluster_key(&snap.meta.source).map(|c| format!("{c}/{}", snap.meta.namespace))
}

/// What was kept of a cluster, taken out for a diagnosis, and whether the store holds exactly
/// its graph's records.
///
/// One diagnosis at a time holds a key: a second one of the same cluster meanwhile builds its
/// own graph and keeps nothing (two lineages of one graph would write records that do not fit
/// together). Dropping a `Taken` (the diagnosis ended, failed or panicked) frees the key.
pub struct Taken {
    /// The graph and typed snapshot (none: build and type afresh).
    pub kept: Kept,
    /// False when the store may hold records of another graph under the key (none was loaded).
    in_store: bool,
    /// The key this diagnosis holds, and the set to free it from; `None` when another
    /// diagnosis held it.
    held: Option<(String, Arc<Mutex<HashSet<String>>>)>,
}

impl Drop for Taken {
    fn drop(&mut self) {
        if let Some((key, held)) = self.held.take() {
            held.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        }
    }
}

/// One key's graph in memory, its typed snapshot if still kept, and when it was last used.
type Warm = (KubeGraph, Option<Cluster>, Instant);

/// The kept graphs over the store.
pub struct KeptGraphs {
    store: Arc<dyn Store>,
    warm: Mutex<HashMap<String, Warm>>,
    /// Keys a diagnosis holds now.
    held: Arc<Mutex<HashSet<String>>>,
    /// When the store was last swept of other formats' and week-old graphs (at the first
    /// diagnosis, then once a day).
    swept: Mutex<Option<Instant>>,
    /// When each key's use was last written (seconds).
    stamped: Mutex<HashMap<String, i64>>,
}

/// The format of stored graphs: this release's, and the revision of what objects say about
/// their relations (`graph/instance/derive.rs`; raise it when that changes). A graph stored by
/// another release or revision is not loaded (its unchanged objects would keep relations the
/// rules no longer say): it is deleted when the daemon first reads the store.
const FORMAT: &str = concat!("kubegraph/", env!("CARGO_PKG_VERSION"), "/derive-1");

/// How long a graph no diagnosis used is kept in the store.
const KEEP: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// `FORMAT\0\0used\0` + key → when that key's graph was last stored (seconds, big-endian):
/// the prune's index (a cluster key never starts with `\0`, so no graph's records are here).
fn used_prefix() -> Vec<u8> {
    format!("{FORMAT}\0\0used\0").into_bytes()
}

fn used_key(key: &str) -> Vec<u8> {
    let mut k = used_prefix();
    k.extend_from_slice(key.as_bytes());
    k
}

fn prefix(key: &str) -> Vec<u8> {
    let mut p = format!("{FORMAT}\0{key}").into_bytes();
    p.push(0);
    p
}

impl KeptGraphs {
    /// Kept graphs over a store.
    pub fn new(store: Arc<dyn Store>) -> KeptGraphs {
        KeptGraphs {
            store,
            warm: Mutex::new(HashMap::new()),
            held: Arc::new(Mutex::new(HashSet::new())),
            swept: Mutex::new(None),
            stamped: Mutex::new(HashMap::new()),
        }
    }

    /// Takes the graph kept under `key` out (from memory, else from the store). A graph that
    /// cannot be loaded is reported and built afresh (its records are then replaced).
    pub fn take(&self, key: &str) -> Taken {
        let due = {
            let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
            let due = swept.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(86_400));
            if due {
                *swept = Some(Instant::now());
            }
            due
        };
        if due {
            match self.sweep() {
                Ok(0) => {}
                Ok(n) => tracing::info!(records = n, "stale kept graphs deleted"),
                Err(e) => tracing::warn!(error = %e, "could not delete stale kept graphs"),
            }
        }
        if !self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string())
        {
            return Taken {
                kept: Kept::default(),
                in_store: false,
                held: None,
            };
        }
        let held = Some((key.to_string(), self.held.clone()));
        let warm = self
            .warm
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        if let Some((graph, cluster, _)) = warm {
            return Taken {
                kept: Kept {
                    graph: Some(graph),
                    cluster,
                },
                in_store: true,
                held,
            };
        }
        match self.load(key) {
            Ok(graph) => Taken {
                kept: Kept {
                    graph,
                    cluster: None,
                },
                in_store: true,
                held,
            },
            Err(e) => {
                tracing::warn!(key, error = %e, "the stored graph could not be loaded; building it afresh");
                Taken {
                    kept: Kept::default(),
                    in_store: false,
                    held,
                }
            }
        }
    }

    /// Deletes what is not to be kept: graphs stored in another format (another release; their
    /// records lie before this format's keys and after them, and this format's own are not read),
    /// and graphs no diagnosis stored for [`KEEP`] (a cluster gone or no longer looked at).
    /// Says how many records went.
    pub fn sweep(&self) -> Result<usize, KeptError> {
        Ok(self.sweep_formats()? + self.prune(jiff::Timestamp::now())?)
    }

    /// Deletes the graphs last stored more than [`KEEP`] before `now`.
    fn prune(&self, now: jiff::Timestamp) -> Result<usize, KeptError> {
        let up = used_prefix();
        let cutoff = now.as_second() - KEEP.as_secs() as i64;
        let mut old: Vec<String> = Vec::new();
        self.store.scan(Cf::Graphs, &up, &mut |k, v| {
            let Some(key) = k.strip_prefix(up.as_slice()) else {
                return false;
            };
            let at = <[u8; 8]>::try_from(v).map_or(i64::MIN, i64::from_be_bytes);
            if at < cutoff {
                old.push(String::from_utf8_lossy(key).into_owned());
            }
            true
        })?;
        let mut n = 0;
        for key in old {
            let p = prefix(&key);
            let mut ops: Vec<Op> = vec![(Cf::Graphs, used_key(&key), None)];
            self.delete_under(&p, &mut ops)?;
            n += ops.len();
            for chunk in ops.chunks(10_000) {
                self.store.write(chunk)?;
            }
            tracing::info!(key, "a graph no diagnosis used for 7 days deleted");
        }
        Ok(n)
    }

    fn sweep_formats(&self) -> Result<usize, KeptError> {
        let mine = format!("{FORMAT}\0").into_bytes();
        let mut after = FORMAT.as_bytes().to_vec();
        after.push(1);
        let mut stale: Vec<Vec<u8>> = Vec::new();
        self.store.scan(Cf::Graphs, b"", &mut |k, _| {
            if k >= mine.as_slice() {
                return false;
            }
            stale.push(k.to_vec());
            true
        })?;
        self.store.scan(Cf::Graphs, &after, &mut |k, _| {
            stale.push(k.to_vec());
            true
        })?;
        let n = stale.len();
        for chunk in stale.chunks(10_000) {
            let ops: Vec<Op> = chunk
                .iter()
                .map(|k| (Cf::Graphs, k.clone(), None))
                .collect();
            self.store.write(&ops)?;
        }
        Ok(n)
    }

    /// Adds a delete of every record whose key starts with `p` to `ops`.
    fn delete_under(&self, p: &[u8], ops: &mut Vec<Op>) -> Result<(), KeptError> {
        self.store.scan(Cf::Graphs, p, &mut |k, _| {
            if !k.starts_with(p) {
                return false;
            }
            ops.push((Cf::Graphs, k.to_vec(), None));
            true
        })?;
        Ok(())
    }

    /// Loads the graph stored under `key` (`None` when there is none).
    pub fn load(&self, key: &str) -> Result<Option<KubeGraph>, KeptError> {
        let p = prefix(key);
        let mut loader = Loader::default();
        let mut any = false;
        let mut failed: Option<KeptError> = None;
        self.store.scan(Cf::Graphs, &p, &mut |k, v| {
            let Some(rest) = k.strip_prefix(p.as_slice()) else {
                return false;
            };
            let Ok(index) = <[u8; 4]>::try_from(rest).map(u32::from_be_bytes) else {
                failed = Some(KeptError::Key(key.to_string()));
                return false;
            };
            any = true;
            match loader.push(index, v) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e.into());
                    false
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if !any {
            return Ok(None);
        }
        Ok(Some(loader.finish()?))
    }

    /// Keeps what a diagnosis left (`kept`, taken out as `taken`) under `key`, and writes the
    /// graph records it changed since it was taken (all of them, replacing whatever was stored,
    /// when it was not loaded from there).
    pub fn put(&self, key: &str, taken: Taken, kept: Kept) -> Result<usize, KeptError> {
        let (Some(mut graph), Some(_)) = (kept.graph, &taken.held) else {
            return Ok(0);
        };
        let p = prefix(key);
        let record_key = |i: u32| {
            let mut k = p.clone();
            k.extend_from_slice(&i.to_be_bytes());
            k
        };
        let (written, dropped) = graph.take_unsaved();
        let mut ops: Vec<Op> = Vec::new();
        if !taken.in_store {
            self.delete_under(&p, &mut ops)?;
        }
        for i in dropped {
            ops.push((Cf::Graphs, record_key(i), None));
        }
        for i in written {
            if let Some(r) = graph.record(i) {
                ops.push((Cf::Graphs, record_key(i), Some(r)));
            }
        }
        let n = ops.len();
        // When it was used, for the prune: with the records, or on its own once an hour.
        let now = jiff::Timestamp::now().as_second();
        let stale_stamp = {
            let mut stamped = self.stamped.lock().unwrap_or_else(|p| p.into_inner());
            let last = stamped.get(key).copied().unwrap_or(i64::MIN);
            let stale = now.saturating_sub(last) >= 3600;
            if stale || !ops.is_empty() {
                stamped.insert(key.to_string(), now);
            }
            stale
        };
        if stale_stamp || !ops.is_empty() {
            ops.push((Cf::Graphs, used_key(key), Some(now.to_be_bytes().to_vec())));
        }
        if !ops.is_empty() {
            // A batch is written whole or not at all: when it fails, the store keeps the graph
            // as it was, and the next diagnosis loads and re-links that one.
            self.store.write(&ops)?;
        }
        let mut warm = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        warm.insert(key.to_string(), (graph, kept.cluster, Instant::now()));
        if warm.len() > WARM_GRAPHS {
            if let Some(oldest) = warm
                .iter()
                .min_by_key(|(_, (_, _, at))| *at)
                .map(|(k, _)| k.clone())
            {
                warm.remove(&oldest);
            }
        }
        let mut typed: Vec<(Instant, String)> = warm
            .iter()
            .filter(|(_, (_, c, _))| c.is_some())
            .map(|(k, (_, _, at))| (*at, k.clone()))
            .collect();
        typed.sort_unstable_by_key(|t| std::cmp::Reverse(t.0));
        for (_, k) in typed.into_iter().skip(TYPED_CLUSTERS) {
            if let Some(w) = warm.get_mut(&k) {
                w.1 = None;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Cluster;
    use crate::store::MemStore;
    use jiff::Timestamp;
    use metakube_shared::{CollectionMeta, KubeObject, ObjectRef, SnapshotSource};
    use serde_json::{json, Value};

    fn pod(name: &str, app: &str, rv: &str) -> Value {
        json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "shop", "resourceVersion": rv, "labels": {"app": app}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i",
                "env": [{"name": "CFG", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]}]}})
    }

    fn snap(objects: Vec<Value>, live: bool) -> Snapshot {
        Snapshot {
            target: ObjectRef::new("Pod", "shop", "web-1"),
            objects: objects.into_iter().map(KubeObject::new).collect(),
            logs: vec![],
            meta: CollectionMeta {
                source: if live {
                    SnapshotSource::Live {
                        context: Some("kind-a".into()),
                        cluster: Some("https://10.0.0.1:6443".into()),
                    }
                } else {
                    SnapshotSource::Dump {
                        path: "/tmp/dump".into(),
                    }
                },
                namespace: "shop".into(),
                collected_at: Timestamp::now(),
                gaps: vec![],
                collector_version: "test".into(),
            },
        }
    }

    fn first() -> Snapshot {
        snap(
            vec![
                pod("web-1", "web", "10"),
                pod("web-2", "web", "11"),
                json!({"kind": "Service", "apiVersion": "v1",
                    "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "12"},
                    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
                json!({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1", "resourceVersion": "13"}}),
            ],
            true,
        )
    }

    fn graph_only(g: KubeGraph) -> Kept {
        Kept {
            graph: Some(g),
            cluster: None,
        }
    }

    /// A store holding the graph of [`first`], that snapshot and its key.
    fn stored_first() -> (Arc<dyn Store>, Snapshot, String) {
        let store: Arc<dyn Store> = Arc::new(MemStore::default());
        let s1 = first();
        let key = graph_key(&s1).unwrap();
        let kept = KeptGraphs::new(store.clone());
        let t = kept.take(&key);
        kept.put(&key, t, graph_only(built(&s1))).unwrap();
        (store, s1, key)
    }

    fn built(s: &Snapshot) -> KubeGraph {
        KubeGraph::build(&Cluster::from_snapshot(s), &[])
    }

    #[test]
    fn a_kept_graph_is_written_once_then_only_what_an_update_touched() {
        let store: Arc<dyn Store> = Arc::new(MemStore::default());
        let kept = KeptGraphs::new(store.clone());
        let s1 = first();
        let key = graph_key(&s1).expect("a live snapshot has a key");
        let t = kept.take(&key);
        assert!(t.kept.graph.is_none(), "nothing kept yet");
        let all = kept.put(&key, t, graph_only(built(&s1))).unwrap();
        assert_eq!(all, built(&s1).node_count(), "one record per node");

        // Another daemon over the same store loads it.
        let other = KeptGraphs::new(store.clone());
        let mut t = other.take(&key);
        let mut g = t.kept.graph.take().expect("loaded from the store");
        assert_eq!(g.triples(), built(&s1).triples());

        // web-2 leaves the Service (its labels and resourceVersion move); the ConfigMap it
        // reads appears.
        let mut objects: Vec<Value> = s1.objects.iter().map(|o| o.value().clone()).collect();
        objects[1] = pod("web-2", "batch", "20");
        objects.push(json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "cfg", "namespace": "shop", "resourceVersion": "21"}, "data": {"k": "v"}}));
        let s2 = snap(objects, true);
        let r = g.update(&Cluster::from_snapshot(&s2), &[], &[]);
        assert_eq!((r.changed, r.gone), (2, 0), "{r:?}");
        let some = other.put(&key, t, graph_only(g)).unwrap();
        assert!(some > 0 && some < all, "{some} records written of {all}");

        let third = KeptGraphs::new(store);
        let g3 = third.take(&key).kept.graph.take().expect("stored");
        assert_eq!(g3.triples(), built(&s2).triples());
    }

    #[test]
    fn only_the_last_used_clusters_typed_objects_are_kept() {
        let kept = KeptGraphs::new(Arc::new(MemStore::default()));
        let s1 = first();
        for key in ["live:a/shop", "live:b/shop"] {
            let t = kept.take(key);
            let k = Kept {
                graph: Some(built(&s1)),
                cluster: Some(Cluster::from_snapshot(&s1)),
            };
            kept.put(key, t, k).unwrap();
        }
        let older = std::mem::take(&mut kept.take("live:a/shop").kept);
        assert!(older.graph.is_some(), "its graph stays warm");
        assert!(older.cluster.is_none(), "its typed objects were let go");
        let newer = std::mem::take(&mut kept.take("live:b/shop").kept);
        assert!(newer.graph.is_some() && newer.cluster.is_some());
    }

    #[test]
    fn a_second_diagnosis_of_a_cluster_meanwhile_keeps_nothing_until_the_first_ends() {
        let kept = KeptGraphs::new(Arc::new(MemStore::default()));
        let s1 = first();
        let key = graph_key(&s1).unwrap();
        let t = kept.take(&key);
        kept.put(&key, t, graph_only(built(&s1))).unwrap();
        let first_holder = kept.take(&key);
        assert!(first_holder.kept.graph.is_some());
        let meanwhile = kept.take(&key);
        assert!(
            meanwhile.kept.graph.is_none(),
            "the graph is out with the first"
        );
        assert_eq!(
            kept.put(&key, meanwhile, graph_only(built(&s1))).unwrap(),
            0
        );
        // The first ends without putting anything back (it failed): the key is free again,
        // and the store still holds the graph.
        drop(first_holder);
        let after = kept.take(&key);
        assert!(after.kept.graph.is_some(), "loaded again from the store");
    }

    #[test]
    fn a_graph_stored_by_another_release_is_deleted_not_loaded() {
        let (store, _, key) = stored_first();
        // Records of the same cluster as an older and a newer release wrote them.
        let old = format!("kubegraph/0.0.1/derive-1\0{key}\0\0\0\0\0").into_bytes();
        let new = format!("kubegraph/99.0.0/derive-1\0{key}\0\0\0\0\0").into_bytes();
        store
            .write(&[
                (Cf::Graphs, old.clone(), Some(b"x".to_vec())),
                (Cf::Graphs, new.clone(), Some(b"x".to_vec())),
            ])
            .unwrap();
        let later = KeptGraphs::new(store.clone());
        let mut t = later.take(&key);
        assert!(t.kept.graph.take().is_some(), "this release's graph loads");
        assert_eq!(store.get(Cf::Graphs, &old).unwrap(), None);
        assert_eq!(store.get(Cf::Graphs, &new).unwrap(), None);
        assert_eq!(later.sweep().unwrap(), 0, "nothing else was stale");
    }

    #[test]
    fn a_graph_no_diagnosis_stored_for_a_week_is_pruned() {
        let (store, s1, key) = stored_first();
        let later = KeptGraphs::new(store.clone());
        let day = 24 * 3600;
        let in_six_days = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(6 * day);
        assert_eq!(later.prune(in_six_days).unwrap(), 0, "used within the week");
        assert!(later.load(&key).unwrap().is_some());
        let in_eight_days = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(8 * day);
        let n = later.prune(in_eight_days).unwrap();
        assert_eq!(
            n,
            built(&s1).node_count() + 1,
            "every record and the index entry"
        );
        assert!(later.load(&key).unwrap().is_none());
        assert_eq!(store.get(Cf::Graphs, &used_key(&key)).unwrap(), None);
    }

    #[test]
    fn a_dump_keeps_no_graph() {
        assert_eq!(graph_key(&snap(vec![], false)), None);
    }

    #[test]
    fn unreadable_records_are_not_loaded_and_are_replaced_whole() {
        let store: Arc<dyn Store> = Arc::new(MemStore::default());
        let s1 = first();
        let key = graph_key(&s1).unwrap();
        let mut k = prefix(&key);
        k.extend_from_slice(&99u32.to_be_bytes());
        store
            .write(&[(Cf::Graphs, k, Some(b"\xff\xff garbage".to_vec()))])
            .unwrap();
        let kept = KeptGraphs::new(store.clone());
        let err = kept.load(&key).unwrap_err().to_string();
        assert!(err.contains("node 99"), "{err}");
        let t = kept.take(&key);
        assert!(
            t.kept.graph.is_none(),
            "a graph that does not load is built afresh"
        );
        kept.put(&key, t, graph_only(built(&s1))).unwrap();
        let again = KeptGraphs::new(store).load(&key).unwrap().expect("stored");
        assert_eq!(
            again.triples(),
            built(&s1).triples(),
            "the garbage record is gone"
        );
    }
}
