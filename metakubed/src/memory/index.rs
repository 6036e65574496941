//! The FAISS index over episode embeddings: exact inner product (`IDMap,Flat`) while memory is
//! small, HNSW (`IDMap,HNSW32,Flat`) above a configurable size. Vectors are unit length, so
//! inner product is cosine similarity. RocksDB holds the truth; this index is derived from it,
//! persisted with write-then-rename and rebuilt whenever the file is missing, unreadable or
//! does not match the store.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use faiss::index::autotune::ParameterSpace;
use faiss::index::IndexImpl;
use faiss::selector::IdSelector;
use faiss::{index_factory, read_index, write_index, Idx, Index, MetricType};

use super::embed::DIM;

/// HNSW search breadth: recall against cost.
pub const EF_SEARCH: u32 = 64;

/// Index failures.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// FAISS failed.
    #[error("FAISS: {0}")]
    Faiss(#[from] faiss::error::Error),
    /// The persisted file cannot be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Which structure the index uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structure {
    /// Exact search.
    Flat,
    /// Approximate search, logarithmic in the number of episodes.
    Hnsw,
}

/// The episode index.
pub struct EpisodeIndex {
    index: IndexImpl,
    structure: Structure,
    /// Ids removed from an HNSW index (which cannot delete); filtered from results and
    /// dropped at the next rebuild.
    tombstones: HashSet<u64>,
}

fn factory(s: Structure) -> Result<IndexImpl, IndexError> {
    let desc = match s {
        Structure::Flat => "IDMap,Flat",
        Structure::Hnsw => "IDMap,HNSW32,Flat",
    };
    let index = index_factory(DIM as u32, desc, MetricType::InnerProduct)?;
    if s == Structure::Hnsw {
        ParameterSpace::new()?.set_index_parameter(&index, "efSearch", EF_SEARCH)?;
    }
    Ok(index)
}

impl EpisodeIndex {
    /// An empty index of the structure suited to `expected` episodes.
    pub fn new(expected: usize, hnsw_above: usize) -> Result<EpisodeIndex, IndexError> {
        let structure = if expected > hnsw_above {
            Structure::Hnsw
        } else {
            Structure::Flat
        };
        Ok(EpisodeIndex {
            index: factory(structure)?,
            structure,
            tombstones: HashSet::new(),
        })
    }

    /// Builds an index from (id, vector) pairs.
    pub fn build(items: &[(u64, Vec<f32>)], hnsw_above: usize) -> Result<EpisodeIndex, IndexError> {
        let mut ix = EpisodeIndex::new(items.len(), hnsw_above)?;
        for chunk in items.chunks(10_000) {
            let ids: Vec<Idx> = chunk.iter().map(|(id, _)| Idx::new(*id)).collect();
            let flat: Vec<f32> = chunk.iter().flat_map(|(_, v)| v.iter().copied()).collect();
            ix.index.add_with_ids(&flat, &ids)?;
        }
        Ok(ix)
    }

    /// Reads a persisted index; `None` when the file is missing or unreadable.
    pub fn load(path: &Path) -> Option<EpisodeIndex> {
        if !path.exists() {
            return None;
        }
        let index = read_index(path.to_str()?).ok()?;
        if index.d() != DIM as u32 {
            return None;
        }
        let structure = if index_is_hnsw(path) {
            Structure::Hnsw
        } else {
            Structure::Flat
        };
        if structure == Structure::Hnsw {
            ParameterSpace::new()
                .ok()?
                .set_index_parameter(&index, "efSearch", EF_SEARCH)
                .ok()?;
        }
        Some(EpisodeIndex {
            index,
            structure,
            tombstones: HashSet::new(),
        })
    }

    /// Writes the index next to `path` and renames it into place, so a crash leaves either the
    /// old file or the new one.
    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        let tmp = path.with_extension("faiss.tmp");
        let io = |source| IndexError::Io {
            path: path.into(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        write_index(
            &self.index,
            tmp.to_str()
                .ok_or_else(|| io(std::io::Error::other("index path is not valid UTF-8")))?,
        )?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        // The structure travels in a sidecar so a reader knows what it holds.
        let marker = path.with_extension("hnsw");
        if self.structure == Structure::Hnsw {
            std::fs::write(&marker, b"hnsw").map_err(io)?;
        } else if marker.exists() {
            std::fs::remove_file(&marker).map_err(io)?;
        }
        Ok(())
    }

    /// Adds one vector.
    pub fn add(&mut self, id: u64, v: &[f32]) -> Result<(), IndexError> {
        self.tombstones.remove(&id);
        Ok(self.index.add_with_ids(v, &[Idx::new(id)])?)
    }

    /// Removes ids (evicted or forgotten episodes).
    pub fn remove(&mut self, ids: &[u64]) -> Result<(), IndexError> {
        match self.structure {
            Structure::Flat => {
                let idx: Vec<Idx> = ids.iter().map(|i| Idx::new(*i)).collect();
                self.index.remove_ids(&IdSelector::batch(&idx)?)?;
            }
            Structure::Hnsw => self.tombstones.extend(ids.iter().copied()),
        }
        Ok(())
    }

    /// The `k` nearest live episodes: (id, cosine similarity), best first.
    pub fn search(&mut self, q: &[f32], k: usize) -> Result<Vec<(u64, f32)>, IndexError> {
        if self.index.ntotal() == 0 || k == 0 {
            return Ok(Vec::new());
        }
        let ask = (k + self.tombstones.len()).min(self.index.ntotal() as usize);
        let r = self.index.search(q, ask)?;
        Ok(r.labels
            .iter()
            .zip(r.distances.iter())
            .filter_map(|(l, d)| l.get().map(|id| (id, *d)))
            .filter(|(id, _)| !self.tombstones.contains(id))
            .take(k)
            .collect())
    }

    /// Live vectors in the index.
    pub fn len(&self) -> usize {
        self.index.ntotal() as usize - self.tombstones.len()
    }

    /// Whether the index holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The structure in use.
    pub fn structure(&self) -> Structure {
        self.structure
    }

    /// Whether a rebuild would pay: the size crossed the HNSW threshold, or removed vectors
    /// make up a fifth of an HNSW index.
    pub fn wants_rebuild(&self, hnsw_above: usize) -> bool {
        (self.structure == Structure::Flat && self.len() > hnsw_above)
            || (self.structure == Structure::Hnsw
                && self.tombstones.len() * 5 > self.index.ntotal() as usize)
    }
}

fn index_is_hnsw(path: &Path) -> bool {
    path.with_extension("hnsw").exists()
}
