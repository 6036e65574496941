//! Persistence behind a small seam: RocksDB in the daemon, memory in tests.
//!
//! Column families: `diagnoses` (id → stored diagnosis), `feedback` (id → feedback record),
//! `graph_weights` (symptom\0reason → domain-graph edge weight), `meta` (the persisted domain
//! graph), and episodic memory's `episodes`, `embeddings`, `patterns` and `controller`.
//! Feedback — with the episode, pattern and controller state it changes — is written with one
//! synchronous (fsynced) write batch before it is acknowledged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use jiff::Timestamp;
use metakube_shared::{Diagnosis, FeedbackRequest};
use serde::{Deserialize, Serialize};

mod recovering;
pub use recovering::RecoveringStore;

/// A diagnosis as stored, with the domain edges it used (for feedback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDiagnosis {
    /// The answer given.
    pub diagnosis: Diagnosis,
    /// (symptom, reason) edges of the domain graph behind the root cause.
    pub edges: Vec<(String, String)>,
    /// When it was answered.
    pub at: Timestamp,
    /// What episodic memory learns from feedback on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::memory::Trace>,
}

/// Feedback as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    /// What the user said.
    pub request: FeedbackRequest,
    /// When.
    pub at: Timestamp,
    /// The episode memory made of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<u64>,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB failed.
    #[error("RocksDB at {path}: {source}")]
    Rocks {
        /// Database directory.
        path: String,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },
    /// A stored record does not decode.
    #[error("corrupt record in {cf}: {source}")]
    Corrupt {
        /// Column family.
        cf: &'static str,
        /// Decoder error.
        #[source]
        source: serde_json::Error,
    },
    /// The store is not open; nothing can be read from or written to it.
    #[error("the store is not open ({0}); nothing is saved until it is — see `metakubed store repair --help`")]
    Unavailable(String),
    /// The store folder holds data RocksDB cannot open as it is; opening it would start an
    /// empty store over it.
    #[error("{path} {detail}; refusing to open it (a new store would be created over the existing files). Stop the daemon, back the folder up with `metakubed --data-dir {data_dir} store backup --to DIR`, then run `metakubed --data-dir {data_dir} store repair`")]
    Damaged {
        /// Database directory.
        path: String,
        /// The data folder it is in (what `--data-dir` takes).
        data_dir: String,
        /// What is wrong.
        detail: String,
    },
    /// A write failed; until the store reopens, writes are refused (answered 503).
    #[error("the store at {path} could not write: {source}")]
    WriteFailed {
        /// Database directory.
        path: String,
        /// The failed write's error.
        #[source]
        source: Box<StoreError>,
    },
    /// A diagnosis was answered but could not be saved.
    #[error("diagnosis {id} was answered but could not be saved ({why}); once the store writes again, diagnose again and give feedback on the new id")]
    NotSaved {
        /// Diagnosis id.
        id: String,
        /// Why it was not saved.
        why: String,
    },
    /// The data directory cannot be created.
    #[error("cannot create data directory {path}: {source}")]
    Io {
        /// Directory.
        path: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the error means the store cannot read or write now (answered 503, not 500).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::WriteFailed { .. }
                | StoreError::NotSaved { .. }
        )
    }
}

/// A domain-graph edge (symptom, reason) and its weight.
pub type EdgeWeight = ((String, String), f64);

/// Column families written through [`Store::write`]: episodic memory's, the per-cluster
/// change history's and the kept KubeGraphs'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    /// Episode id (big-endian u64) → episode JSON.
    Episodes,
    /// Episode id → embedding as little-endian f32s.
    Embeddings,
    /// Pattern id → pattern JSON (centroid and success statistics).
    Patterns,
    /// Controller state (θ) and memory counters.
    Controller,
    /// `cluster\0kind\0namespace\0name` → the object's last seen resourceVersion and shape.
    Objects,
    /// `cluster\0{nanoseconds:020}\0kind\0namespace\0name\0field` → a change seen in that
    /// cluster.
    Changes,
    /// Cluster key → when its history starts.
    Clusters,
    /// `graph key\0{node index: u32 big-endian}` → the kept KubeGraph's node record.
    Graphs,
}

impl Cf {
    /// Every column family written through [`Store::write`].
    pub const ALL: [Cf; 8] = [
        Cf::Episodes,
        Cf::Embeddings,
        Cf::Patterns,
        Cf::Controller,
        Cf::Objects,
        Cf::Changes,
        Cf::Clusters,
        Cf::Graphs,
    ];

    /// The RocksDB column family name.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Episodes => "episodes",
            Cf::Embeddings => "embeddings",
            Cf::Patterns => "patterns",
            Cf::Controller => "controller",
            Cf::Objects => "objects",
            Cf::Changes => "changes",
            Cf::Clusters => "clusters",
            Cf::Graphs => "kept_graphs",
        }
    }
}

/// One write of a batch: a value put, or a key deleted (`None`).
pub type Op = (Cf, Vec<u8>, Option<Vec<u8>>);

/// What the daemon persists.
pub trait Store: Send + Sync {
    /// Stores a diagnosis (asynchronous write: a lost diagnosis can be asked again).
    fn put_diagnosis(&self, d: &StoredDiagnosis) -> Result<(), StoreError>;
    /// Looks a diagnosis up.
    fn get_diagnosis(&self, id: &str) -> Result<Option<StoredDiagnosis>, StoreError>;
    /// Stores feedback, the edge weights it changed and the memory writes it caused (`ops`),
    /// atomically and durably.
    fn put_feedback(
        &self,
        f: &FeedbackRecord,
        weights: &[EdgeWeight],
        ops: &[Op],
    ) -> Result<(), StoreError>;
    /// Writes memory records atomically and durably.
    fn write(&self, ops: &[Op]) -> Result<(), StoreError>;
    /// Reads one memory record.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Visits the records of a column family in key order, from the first key ≥ `from`, until
    /// `f` returns false.
    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError>;
    /// All feedback records.
    fn feedback(&self) -> Result<Vec<FeedbackRecord>, StoreError>;
    /// The feedback records of one diagnosis, oldest first.
    fn feedback_for(&self, diagnosis_id: &str) -> Result<Vec<FeedbackRecord>, StoreError>;
    /// Persisted edge weights.
    fn weights(&self) -> Result<Vec<EdgeWeight>, StoreError>;
    /// Counts: (diagnoses, feedback).
    fn counts(&self) -> Result<(u64, u64), StoreError>;
    /// Reads a value of the `meta` column family (the persisted domain graph, its seed).
    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes values of the `meta` column family atomically and durably.
    fn put_meta(&self, entries: &[(&str, Vec<u8>)]) -> Result<(), StoreError>;
    /// Flushes memtables to disk (at shutdown).
    fn flush(&self) -> Result<(), StoreError>;
    /// Why writes are failing now, if they are (for health).
    fn failing(&self) -> Option<String> {
        None
    }
    /// Tries to make writes work again after a failure; true when they do.
    fn recover(&self) -> bool {
        true
    }
}

const CF_DIAG: &str = "diagnoses";
/// Diagnoses by when they were made (`{nanoseconds:020}\0{id}` → id): the oldest are pruned
/// first, and the count is kept without scanning.
const CF_DIAG_TIME: &str = "diagnoses_by_time";

/// Diagnoses kept by default; beyond it the oldest are pruned (feedback on one is then
/// answered "no diagnosis with id …", as for any unknown id). What memory learned from a
/// confirmed or corrected diagnosis lives in its episode, not here.
pub const DEFAULT_MAX_DIAGNOSES: usize = 20_000;
const CF_FEEDBACK: &str = "feedback";
const CF_WEIGHTS: &str = "graph_weights";
const CF_META: &str = "meta";

/// The store of a daemon whose RocksDB could not be opened: every read and write fails with
/// [`StoreError::Unavailable`], so nothing is acknowledged that is not saved.
pub struct UnavailableStore {
    why: String,
}

impl UnavailableStore {
    /// A store that is not open, and why.
    pub fn new(why: impl Into<String>) -> UnavailableStore {
        UnavailableStore { why: why.into() }
    }

    fn no<T>(&self) -> Result<T, StoreError> {
        Err(StoreError::Unavailable(self.why.clone()))
    }
}

impl Store for UnavailableStore {
    fn put_diagnosis(&self, _: &StoredDiagnosis) -> Result<(), StoreError> {
        self.no()
    }
    fn get_diagnosis(&self, _: &str) -> Result<Option<StoredDiagnosis>, StoreError> {
        self.no()
    }
    fn put_feedback(
        &self,
        _: &FeedbackRecord,
        _: &[EdgeWeight],
        _: &[Op],
    ) -> Result<(), StoreError> {
        self.no()
    }
    fn write(&self, _: &[Op]) -> Result<(), StoreError> {
        self.no()
    }
    fn get(&self, _: Cf, _: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.no()
    }
    fn scan(
        &self,
        _: Cf,
        _: &[u8],
        _: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        self.no()
    }
    fn feedback(&self) -> Result<Vec<FeedbackRecord>, StoreError> {
        self.no()
    }
    fn feedback_for(&self, _: &str) -> Result<Vec<FeedbackRecord>, StoreError> {
        self.no()
    }
    fn weights(&self) -> Result<Vec<EdgeWeight>, StoreError> {
        self.no()
    }
    fn counts(&self) -> Result<(u64, u64), StoreError> {
        self.no()
    }
    fn get_meta(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.no()
    }
    fn put_meta(&self, _: &[(&str, Vec<u8>)]) -> Result<(), StoreError> {
        self.no()
    }
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// RocksDB-backed store.
pub struct RocksStore {
    db: rocksdb::DBWithThreadMode<rocksdb::MultiThreaded>,
    path: String,
    /// Diagnoses stored (counted once at open, then kept up to date).
    diagnoses: std::sync::atomic::AtomicU64,
    /// Most diagnoses kept.
    max_diagnoses: u64,
    /// One pruning at a time.
    pruning: std::sync::Mutex<()>,
}

/// The time-index key of a diagnosis.
fn time_key(d: &StoredDiagnosis) -> Vec<u8> {
    let mut k = format!("{:020}", d.at.as_nanosecond().max(0)).into_bytes();
    k.push(0);
    k.extend_from_slice(d.diagnosis.id.as_bytes());
    k
}

fn weight_key(k: &(String, String)) -> Vec<u8> {
    let mut v = k.0.as_bytes().to_vec();
    v.push(0);
    v.extend_from_slice(k.1.as_bytes());
    v
}

impl RocksStore {
    /// Opens (creating if needed) the database under `dir`, keeping the default number of
    /// diagnoses.
    pub fn open(dir: &Path) -> Result<RocksStore, StoreError> {
        RocksStore::open_keeping(dir, DEFAULT_MAX_DIAGNOSES)
    }

    /// Opens (creating if needed) the database under `dir`, keeping at most `max_diagnoses`
    /// diagnoses (the oldest beyond it are pruned, now and as new ones come).
    pub fn open_keeping(dir: &Path, max_diagnoses: usize) -> Result<RocksStore, StoreError> {
        let path = dir.display().to_string();
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        // A store made by an older version (or under another umask) is closed to others too.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |source| StoreError::Io {
                    path: path.clone(),
                    source,
                },
            )?;
        }
        // RocksDB's create_if_missing writes a fresh CURRENT over a folder whose CURRENT is
        // gone and then deletes the "obsolete" tables: memory would be wiped. Only an empty
        // folder may become a new store.
        let files = std::fs::read_dir(dir)
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?
            .filter_map(Result::ok)
            .filter(|e| e.file_name() != "LOCK")
            .count();
        if files > 0 && !dir.join("CURRENT").exists() {
            return Err(StoreError::Damaged {
                path: path.clone(),
                data_dir: dir.parent().unwrap_or(dir).display().to_string(),
                detail: format!("holds {files} file(s) but no CURRENT"),
            });
        }
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(files == 0);
        opts.create_missing_column_families(true);
        // RocksDB's own LOG rotates at every open; keep a few, not every one ever written.
        opts.set_keep_log_file_num(3);
        opts.set_max_log_file_size(4 << 20);
        let cfs = [CF_DIAG, CF_DIAG_TIME, CF_FEEDBACK, CF_WEIGHTS, CF_META]
            .into_iter()
            .chain(Cf::ALL.map(Cf::name))
            .map(|n| rocksdb::ColumnFamilyDescriptor::new(n, rocksdb::Options::default()));
        let db = rocksdb::DBWithThreadMode::<rocksdb::MultiThreaded>::open_cf_descriptors(
            &opts, dir, cfs,
        )
        .map_err(|source| StoreError::Rocks {
            path: path.clone(),
            source,
        })?;
        let store = RocksStore {
            db,
            path,
            diagnoses: std::sync::atomic::AtomicU64::new(0),
            max_diagnoses: max_diagnoses.max(1) as u64,
            pruning: std::sync::Mutex::new(()),
        };
        store.index_by_time()?;
        store.prune()?;
        Ok(store)
    }

    /// Counts the time index once; a store written before it existed gets it built from its
    /// diagnoses' own times.
    fn index_by_time(&self) -> Result<(), StoreError> {
        let mut n = self.count(CF_DIAG_TIME);
        if n == 0 && self.count(CF_DIAG) > 0 {
            let mut batch = rocksdb::WriteBatchWithTransaction::<false>::default();
            for item in self
                .db
                .iterator_cf(&self.cf(CF_DIAG), rocksdb::IteratorMode::Start)
            {
                let (k, v) = item.map_err(|e| self.err(e))?;
                let d: StoredDiagnosis =
                    serde_json::from_slice(&v).map_err(|source| StoreError::Corrupt {
                        cf: CF_DIAG,
                        source,
                    })?;
                batch.put_cf(&self.cf(CF_DIAG_TIME), time_key(&d), k);
                n += 1;
            }
            self.commit(batch)?;
        }
        self.diagnoses.store(n, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Deletes the oldest diagnoses beyond the bound (with their time-index entries), in steps
    /// of 1% of it, so the deletions of one step are compacted away before the next.
    fn prune(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let _one = self.pruning.lock().unwrap_or_else(|p| p.into_inner());
        let over = self
            .diagnoses
            .load(Ordering::SeqCst)
            .saturating_sub(self.max_diagnoses);
        if over == 0 || over < (self.max_diagnoses / 100).max(1) {
            return Ok(());
        }
        let mut batch = rocksdb::WriteBatchWithTransaction::<false>::default();
        let mut n = 0;
        for item in self
            .db
            .iterator_cf(&self.cf(CF_DIAG_TIME), rocksdb::IteratorMode::Start)
            .take(over as usize)
        {
            let (k, id) = item.map_err(|e| self.err(e))?;
            batch.delete_cf(&self.cf(CF_DIAG_TIME), k);
            batch.delete_cf(&self.cf(CF_DIAG), id);
            n += 1;
        }
        self.db.write(batch).map_err(|e| self.err(e))?;
        self.diagnoses.fetch_sub(n, Ordering::SeqCst);
        Ok(())
    }

    /// Rebuilds a damaged store's manifest from its table files (RocksDB's `RepairDB`): what
    /// the tables hold is kept; what only the lost manifest knew is not.
    pub fn repair(dir: &Path) -> Result<(), StoreError> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(false);
        rocksdb::DB::repair(&opts, dir).map_err(|source| StoreError::Rocks {
            path: dir.display().to_string(),
            source,
        })
    }

    /// Copies every file of the store folder into `to` (which must be new or empty), byte for
    /// byte, whether or not RocksDB can open it: the copy to keep before a repair.
    pub fn backup(dir: &Path, to: &Path) -> Result<usize, StoreError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| StoreError::Io { path, source }
        };
        if to.exists() && std::fs::read_dir(to).map_err(io(to))?.next().is_some() {
            return Err(StoreError::Io {
                path: to.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the backup folder is not empty",
                ),
            });
        }
        std::fs::create_dir_all(to).map_err(io(to))?;
        let mut n = 0;
        for e in std::fs::read_dir(dir).map_err(io(dir))? {
            let e = e.map_err(io(dir))?;
            let ft = e.file_type().map_err(io(&e.path()))?;
            if ft.is_file() && e.file_name() != "LOCK" {
                std::fs::copy(e.path(), to.join(e.file_name())).map_err(io(&e.path()))?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn err(&self, source: rocksdb::Error) -> StoreError {
        StoreError::Rocks {
            path: self.path.clone(),
            source,
        }
    }

    fn cf(&self, name: &str) -> std::sync::Arc<rocksdb::BoundColumnFamily<'_>> {
        // Every column family is created at open.
        self.db
            .cf_handle(name)
            .expect("column family created at open")
    }

    fn add_ops(&self, batch: &mut rocksdb::WriteBatchWithTransaction<false>, ops: &[Op]) {
        for (cf, k, v) in ops {
            match v {
                Some(v) => batch.put_cf(&self.cf(cf.name()), k, v),
                None => batch.delete_cf(&self.cf(cf.name()), k),
            }
        }
    }

    fn commit(&self, batch: rocksdb::WriteBatchWithTransaction<false>) -> Result<(), StoreError> {
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo).map_err(|e| self.err(e))
    }

    fn count(&self, cf: &str) -> u64 {
        self.db
            .iterator_cf(&self.cf(cf), rocksdb::IteratorMode::Start)
            .count() as u64
    }
}

impl Store for RocksStore {
    fn put_diagnosis(&self, d: &StoredDiagnosis) -> Result<(), StoreError> {
        let v = serde_json::to_vec(d).map_err(|source| StoreError::Corrupt {
            cf: CF_DIAG,
            source,
        })?;
        let fresh = self
            .db
            .get_pinned_cf(&self.cf(CF_DIAG), d.diagnosis.id.as_bytes())
            .map_err(|e| self.err(e))?
            .is_none();
        let mut batch = rocksdb::WriteBatchWithTransaction::<false>::default();
        batch.put_cf(&self.cf(CF_DIAG), d.diagnosis.id.as_bytes(), v);
        if fresh {
            batch.put_cf(
                &self.cf(CF_DIAG_TIME),
                time_key(d),
                d.diagnosis.id.as_bytes(),
            );
        }
        self.db.write(batch).map_err(|e| self.err(e))?;
        if fresh {
            self.diagnoses
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.prune()?;
        }
        Ok(())
    }

    fn get_diagnosis(&self, id: &str) -> Result<Option<StoredDiagnosis>, StoreError> {
        match self
            .db
            .get_cf(&self.cf(CF_DIAG), id.as_bytes())
            .map_err(|e| self.err(e))?
        {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|source| StoreError::Corrupt {
                    cf: CF_DIAG,
                    source,
                }),
            None => Ok(None),
        }
    }

    fn put_feedback(
        &self,
        f: &FeedbackRecord,
        weights: &[EdgeWeight],
        ops: &[Op],
    ) -> Result<(), StoreError> {
        let v = serde_json::to_vec(f).map_err(|source| StoreError::Corrupt {
            cf: CF_FEEDBACK,
            source,
        })?;
        let mut batch = rocksdb::WriteBatchWithTransaction::<false>::default();
        let key = format!("{}\0{}", f.request.diagnosis_id, f.at.as_nanosecond());
        batch.put_cf(&self.cf(CF_FEEDBACK), key.as_bytes(), v);
        for (k, w) in weights {
            batch.put_cf(&self.cf(CF_WEIGHTS), weight_key(k), w.to_le_bytes());
        }
        self.add_ops(&mut batch, ops);
        self.commit(batch)
    }

    fn write(&self, ops: &[Op]) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatchWithTransaction::<false>::default();
        self.add_ops(&mut batch, ops);
        self.commit(batch)
    }

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get_cf(&self.cf(cf.name()), key)
            .map_err(|e| self.err(e))
    }

    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        for kv in self.db.iterator_cf(
            &self.cf(cf.name()),
            rocksdb::IteratorMode::From(from, rocksdb::Direction::Forward),
        ) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            if !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn feedback_for(&self, diagnosis_id: &str) -> Result<Vec<FeedbackRecord>, StoreError> {
        let prefix = format!("{diagnosis_id}\0");
        let mut out = Vec::new();
        for kv in self.db.iterator_cf(
            &self.cf(CF_FEEDBACK),
            rocksdb::IteratorMode::From(prefix.as_bytes(), rocksdb::Direction::Forward),
        ) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            if !k.starts_with(prefix.as_bytes()) {
                break;
            }
            out.push(
                serde_json::from_slice(&v).map_err(|source| StoreError::Corrupt {
                    cf: CF_FEEDBACK,
                    source,
                })?,
            );
        }
        Ok(out)
    }

    fn feedback(&self) -> Result<Vec<FeedbackRecord>, StoreError> {
        self.db
            .iterator_cf(&self.cf(CF_FEEDBACK), rocksdb::IteratorMode::Start)
            .map(|kv| {
                let (_, v) = kv.map_err(|e| self.err(e))?;
                serde_json::from_slice(&v).map_err(|source| StoreError::Corrupt {
                    cf: CF_FEEDBACK,
                    source,
                })
            })
            .collect()
    }

    fn weights(&self) -> Result<Vec<EdgeWeight>, StoreError> {
        let mut out = Vec::new();
        for kv in self
            .db
            .iterator_cf(&self.cf(CF_WEIGHTS), rocksdb::IteratorMode::Start)
        {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let k = String::from_utf8_lossy(&k).to_string();
            let (s, r) = k.split_once('\0').unwrap_or((&k, ""));
            let bytes: [u8; 8] = match v.as_ref().try_into() {
                Ok(b) => b,
                Err(_) => continue,
            };
            out.push(((s.to_string(), r.to_string()), f64::from_le_bytes(bytes)));
        }
        Ok(out)
    }

    fn counts(&self) -> Result<(u64, u64), StoreError> {
        Ok((
            self.diagnoses.load(std::sync::atomic::Ordering::SeqCst),
            self.count(CF_FEEDBACK),
        ))
    }

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get_cf(&self.cf(CF_META), key.as_bytes())
            .map_err(|e| self.err(e))
    }

    fn put_meta(&self, entries: &[(&str, Vec<u8>)]) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatchWithTransaction::<false>::default();
        for (k, v) in entries {
            batch.put_cf(&self.cf(CF_META), k.as_bytes(), v);
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo).map_err(|e| self.err(e))
    }

    fn flush(&self) -> Result<(), StoreError> {
        for cf in [CF_DIAG, CF_FEEDBACK, CF_WEIGHTS, CF_META]
            .into_iter()
            .chain(Cf::ALL.map(Cf::name))
        {
            self.db.flush_cf(&self.cf(cf)).map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

/// In-memory store for tests and `--ephemeral` runs.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<MemInner>,
}

#[derive(Default)]
struct MemInner {
    diagnoses: BTreeMap<String, StoredDiagnosis>,
    feedback: Vec<FeedbackRecord>,
    weights: BTreeMap<(String, String), f64>,
    meta: BTreeMap<String, Vec<u8>>,
    memory: BTreeMap<(Cf, Vec<u8>), Vec<u8>>,
}

impl MemStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemStore {
    fn put_diagnosis(&self, d: &StoredDiagnosis) -> Result<(), StoreError> {
        self.lock()
            .diagnoses
            .insert(d.diagnosis.id.clone(), d.clone());
        Ok(())
    }
    fn get_diagnosis(&self, id: &str) -> Result<Option<StoredDiagnosis>, StoreError> {
        Ok(self.lock().diagnoses.get(id).cloned())
    }
    fn put_feedback(
        &self,
        f: &FeedbackRecord,
        weights: &[EdgeWeight],
        ops: &[Op],
    ) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.feedback.push(f.clone());
        for (k, w) in weights {
            g.weights.insert(k.clone(), *w);
        }
        mem_apply(&mut g, ops);
        Ok(())
    }
    fn write(&self, ops: &[Op]) -> Result<(), StoreError> {
        mem_apply(&mut self.lock(), ops);
        Ok(())
    }
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().memory.get(&(cf, key.to_vec())).cloned())
    }
    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let g = self.lock();
        for ((c, k), v) in g.memory.range((cf, from.to_vec())..) {
            if *c != cf || !f(k, v) {
                break;
            }
        }
        Ok(())
    }
    fn feedback(&self) -> Result<Vec<FeedbackRecord>, StoreError> {
        Ok(self.lock().feedback.clone())
    }
    fn feedback_for(&self, diagnosis_id: &str) -> Result<Vec<FeedbackRecord>, StoreError> {
        Ok(self
            .lock()
            .feedback
            .iter()
            .filter(|f| f.request.diagnosis_id == diagnosis_id)
            .cloned()
            .collect())
    }
    fn weights(&self) -> Result<Vec<EdgeWeight>, StoreError> {
        Ok(self
            .lock()
            .weights
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect())
    }
    fn counts(&self) -> Result<(u64, u64), StoreError> {
        let g = self.lock();
        Ok((g.diagnoses.len() as u64, g.feedback.len() as u64))
    }
    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().meta.get(key).cloned())
    }
    fn put_meta(&self, entries: &[(&str, Vec<u8>)]) -> Result<(), StoreError> {
        let mut g = self.lock();
        for (k, v) in entries {
            g.meta.insert(k.to_string(), v.clone());
        }
        Ok(())
    }
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

fn mem_apply(g: &mut MemInner, ops: &[Op]) {
    for (cf, k, v) in ops {
        match v {
            Some(v) => g.memory.insert((*cf, k.clone()), v.clone()),
            None => g.memory.remove(&(*cf, k.clone())),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metakube_shared::{FeedbackOutcome, ObjectRef, Pathway, Timings};

    fn diag(id: &str) -> StoredDiagnosis {
        StoredDiagnosis {
            diagnosis: Diagnosis {
                id: id.into(),
                target: ObjectRef::new("Deployment", "ns", "d"),
                verdict: metakube_shared::Verdict::RootCause,
                category: None,
                root_cause: None,
                hypotheses: vec![],
                confidence: 0.0,
                pathway: Pathway::Analytical,
                evidence: vec![],
                remediation: vec![],
                explanation: String::new(),
                symptoms: vec![],
                gaps: vec![],
                timings_ms: Timings::default(),
                memory: None,
                llm: None,
                changes: vec![],
            },
            edges: vec![("crash_loop".into(), "ApplicationCrash".into())],
            at: Timestamp::UNIX_EPOCH,
            trace: None,
        }
    }

    #[test]
    fn the_oldest_diagnoses_are_pruned_and_the_count_needs_no_scan() {
        let dir = tempfile::tempdir().unwrap();
        let at = |s: i64| Timestamp::from_second(s).unwrap();
        {
            let s = RocksStore::open_keeping(dir.path(), 3).unwrap();
            for (i, id) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
                let mut d = diag(id);
                d.at = at(1_000 + i as i64);
                s.put_diagnosis(&d).unwrap();
            }
            assert_eq!(s.counts().unwrap().0, 3);
            let kept = |s: &RocksStore, id: &str| s.get_diagnosis(id).unwrap().is_some();
            assert!(!kept(&s, "a") && !kept(&s, "b"));
            assert!(kept(&s, "c") && kept(&s, "d") && kept(&s, "e"));
            // A store written before the time index: one diagnosis more, no index at all.
            let mut old = diag("z");
            old.at = at(500);
            s.db.put_cf(&s.cf(CF_DIAG), b"z", serde_json::to_vec(&old).unwrap())
                .unwrap();
            let keys: Vec<Box<[u8]>> =
                s.db.iterator_cf(&s.cf(CF_DIAG_TIME), rocksdb::IteratorMode::Start)
                    .map(|kv| kv.unwrap().0)
                    .collect();
            for k in keys {
                s.db.delete_cf(&s.cf(CF_DIAG_TIME), k).unwrap();
            }
        }
        // Reopened: the index is built from the diagnoses' own times, and the oldest goes.
        let s = RocksStore::open_keeping(dir.path(), 3).unwrap();
        assert_eq!(s.counts().unwrap().0, 3);
        assert!(s.get_diagnosis("z").unwrap().is_none());
        assert!(s.get_diagnosis("e").unwrap().is_some());
        assert_eq!(s.count(CF_DIAG), 3, "the count kept matches the store");
    }

    #[test]
    fn rocks_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RocksStore::open(dir.path()).unwrap();
            s.put_diagnosis(&diag("a")).unwrap();
            let fb = FeedbackRecord {
                request: FeedbackRequest {
                    diagnosis_id: "a".into(),
                    outcome: FeedbackOutcome::Fixed,
                    cause: None,
                    reason: None,
                    note: None,
                    category: None,
                    fix_command: None,
                    replace: false,
                },
                at: Timestamp::UNIX_EPOCH,
                episode: None,
            };
            s.put_feedback(
                &fb,
                &[(("crash_loop".into(), "ApplicationCrash".into()), 0.55)],
                &[(Cf::Controller, b"theta".to_vec(), Some(b"0.7".to_vec()))],
            )
            .unwrap();
        }
        let s = RocksStore::open(dir.path()).unwrap();
        assert_eq!(s.get_diagnosis("a").unwrap().unwrap().diagnosis.id, "a");
        assert_eq!(s.counts().unwrap(), (1, 1));
        assert_eq!(
            s.weights().unwrap(),
            vec![(("crash_loop".into(), "ApplicationCrash".into()), 0.55)]
        );
        assert!(s.get_diagnosis("b").unwrap().is_none());
        assert_eq!(
            s.get(Cf::Controller, b"theta").unwrap().as_deref(),
            Some(&b"0.7"[..])
        );
    }

    #[test]
    fn domain_graph_is_seeded_once_and_read_back() {
        use crate::graph::domain::DomainGraph;
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RocksStore::open(dir.path()).unwrap();
            assert!(s.get_meta("domain_seed").unwrap().is_none());
            assert_eq!(crate::server::load_domain(&s), DomainGraph::builtin());
            assert!(s.get_meta("domain_causes").unwrap().is_some());
        }
        let s = RocksStore::open(dir.path()).unwrap();
        let seed = s.get_meta("domain_seed").unwrap().unwrap();
        assert_eq!(seed, DomainGraph::seed_fingerprint().into_bytes());
        // The stored graph is what the daemon loads: change it and see the change come back.
        let mut causes = DomainGraph::builtin().causes().to_vec();
        causes.truncate(3);
        s.put_meta(&[("domain_causes", serde_json::to_vec(&causes).unwrap())])
            .unwrap();
        assert_eq!(crate::server::load_domain(&s).causes().len(), 3);
    }
}
