//! A RocksDB store that outlives a failed write.
//!
//! When a write fails (a full disk, a quota, a file system remounted read-only), RocksDB keeps
//! the error as its "background error" and refuses every later write until the database is
//! opened again; its C API has no `Resume`. Left alone, the daemon would answer every feedback
//! with that error until restarted while health still said "ready". This wrapper records the
//! failure (health reports it, writes answer 503 naming it), remembers which diagnoses were
//! answered but not saved (feedback on one says so instead of "no diagnosis with id …"), and,
//! once a probe write shows there is room again, closes and reopens the database: what was
//! written before the failure is replayed from its write-ahead log and writing resumes.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use jiff::Timestamp;

use super::{Cf, EdgeWeight, FeedbackRecord, Op, RocksStore, Store, StoreError, StoredDiagnosis};

/// Diagnoses answered while writes failed, remembered so feedback on them is answered with
/// the reason; the oldest are forgotten beyond this.
const UNSAVED_KEPT: usize = 4096;

/// Room a reopened database needs (a new MANIFEST, OPTIONS, write-ahead log and LOG): the
/// probe writes this much before a reopen is tried.
const PROBE_BYTES: usize = 1 << 20;

/// Why writes are failing, since when.
#[derive(Debug, Clone)]
struct Failure {
    since: Timestamp,
    error: String,
    failed_writes: u64,
    last_probe: Option<String>,
}

/// [`RocksStore`] that reopens itself after a failed write once there is room again.
pub struct RecoveringStore {
    dir: PathBuf,
    max_diagnoses: usize,
    /// `None` only while a reopen failed; every call then answers "not open".
    db: RwLock<Option<RocksStore>>,
    failure: Mutex<Option<Failure>>,
    /// Ids of diagnoses answered but not saved, with why, oldest first.
    unsaved: Mutex<VecDeque<(String, String)>>,
}

impl RecoveringStore {
    /// Opens the store under `dir` (see [`RocksStore::open_keeping`]).
    pub fn open(dir: &Path, max_diagnoses: usize) -> Result<RecoveringStore, StoreError> {
        let db = RocksStore::open_keeping(dir, max_diagnoses)?;
        Ok(RecoveringStore {
            dir: dir.to_path_buf(),
            max_diagnoses,
            db: RwLock::new(Some(db)),
            failure: Mutex::new(None),
            unsaved: Mutex::new(VecDeque::new()),
        })
    }

    /// Why writes fail now (`None` when they do not): for health.
    pub fn failing(&self) -> Option<String> {
        let f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        f.as_ref().map(|f| {
            let mut s = format!(
                "writes failing since {} ({} failed): {}; diagnoses are still answered, feedback and memory writes answer 503; the store reopens itself once a {} MiB probe write in {} succeeds",
                f.since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                f.failed_writes,
                f.error,
                PROBE_BYTES >> 20,
                self.dir.display()
            );
            if let Some(p) = &f.last_probe {
                s.push_str(&format!(" (last probe: {p})"));
            }
            s
        })
    }

    /// Tries to recover from a failed write: a probe write shows whether there is room, then
    /// the database is closed and reopened. True when writes work again (or never failed).
    pub fn recover(&self) -> bool {
        if self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
        {
            return true;
        }
        if let Err(e) = self.probe() {
            self.note_probe(format!("{e}"));
            return false;
        }
        // No call is inside the database while it is swapped.
        let mut db = self.db.write().unwrap_or_else(|p| p.into_inner());
        drop(db.take());
        match RocksStore::open_keeping(&self.dir, self.max_diagnoses) {
            Ok(s) => {
                *db = Some(s);
                drop(db);
                *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::info!(path = %self.dir.display(), "store reopened: writes work again");
                true
            }
            Err(e) => {
                drop(db);
                tracing::warn!(error = %e, "reopening the store failed; retrying later");
                self.note_probe(format!("reopen failed: {e}"));
                false
            }
        }
    }

    /// Writes (and syncs) a probe file beside the database's own files, then removes it.
    fn probe(&self) -> std::io::Result<()> {
        let path = self.dir.join("space-probe.tmp");
        let result = (|| {
            let mut f = std::fs::File::create(&path)?;
            let chunk = vec![0u8; 1 << 20];
            for _ in 0..PROBE_BYTES / chunk.len() {
                f.write_all(&chunk)?;
            }
            f.sync_all()
        })();
        let _ = std::fs::remove_file(&path);
        result
    }

    fn note_probe(&self, what: String) {
        if let Some(f) = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            f.last_probe = Some(what);
        }
    }

    /// Runs `f` on the open database.
    fn with<T>(
        &self,
        f: impl FnOnce(&RocksStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = self.db.read().unwrap_or_else(|p| p.into_inner());
        match db.as_ref() {
            Some(s) => f(s),
            None => Err(StoreError::Unavailable(
                self.failing()
                    .unwrap_or_else(|| "the store is being reopened".into()),
            )),
        }
    }

    /// Runs a write; a failure is recorded and answered as the store being unable to write.
    fn write_with(
        &self,
        f: impl FnOnce(&RocksStore) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self.with(f) {
            Ok(()) => Ok(()),
            Err(e @ StoreError::Unavailable(_)) => Err(e),
            Err(e) => {
                let error = e.to_string();
                {
                    let mut g = self.failure.lock().unwrap_or_else(|p| p.into_inner());
                    match g.as_mut() {
                        Some(f) => f.failed_writes += 1,
                        None => {
                            tracing::error!(error = %error, "a store write failed: feedback and memory writes answer 503 until the store reopens");
                            *g = Some(Failure {
                                since: Timestamp::now(),
                                error: error.clone(),
                                failed_writes: 1,
                                last_probe: None,
                            });
                        }
                    }
                }
                Err(StoreError::WriteFailed {
                    path: self.dir.display().to_string(),
                    source: Box::new(e),
                })
            }
        }
    }
}

impl Store for RecoveringStore {
    fn put_diagnosis(&self, d: &StoredDiagnosis) -> Result<(), StoreError> {
        let r = self.write_with(|s| s.put_diagnosis(d));
        if let Err(e) = &r {
            let mut u = self.unsaved.lock().unwrap_or_else(|p| p.into_inner());
            if u.len() == UNSAVED_KEPT {
                u.pop_front();
            }
            u.push_back((d.diagnosis.id.clone(), e.to_string()));
        }
        r
    }

    fn get_diagnosis(&self, id: &str) -> Result<Option<StoredDiagnosis>, StoreError> {
        let found = self.with(|s| s.get_diagnosis(id))?;
        if found.is_none() {
            let u = self.unsaved.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, why)) = u.iter().rev().find(|(i, _)| i == id) {
                return Err(StoreError::NotSaved {
                    id: id.to_string(),
                    why: why.clone(),
                });
            }
        }
        Ok(found)
    }

    fn put_feedback(
        &self,
        f: &FeedbackRecord,
        weights: &[EdgeWeight],
        ops: &[Op],
    ) -> Result<(), StoreError> {
        self.write_with(|s| s.put_feedback(f, weights, ops))
    }

    fn write(&self, ops: &[Op]) -> Result<(), StoreError> {
        self.write_with(|s| s.write(ops))
    }

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|s| s.get(cf, key))
    }

    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        self.with(|s| s.scan(cf, from, f))
    }

    fn feedback(&self) -> Result<Vec<FeedbackRecord>, StoreError> {
        self.with(|s| s.feedback())
    }

    fn feedback_for(&self, diagnosis_id: &str) -> Result<Vec<FeedbackRecord>, StoreError> {
        self.with(|s| s.feedback_for(diagnosis_id))
    }

    fn weights(&self) -> Result<Vec<EdgeWeight>, StoreError> {
        self.with(|s| s.weights())
    }

    fn counts(&self) -> Result<(u64, u64), StoreError> {
        self.with(|s| s.counts())
    }

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|s| s.get_meta(key))
    }

    fn put_meta(&self, entries: &[(&str, Vec<u8>)]) -> Result<(), StoreError> {
        self.write_with(|s| s.put_meta(entries))
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.write_with(|s| s.flush())
    }

    fn failing(&self) -> Option<String> {
        RecoveringStore::failing(self)
    }

    fn recover(&self) -> bool {
        RecoveringStore::recover(self)
    }
}
