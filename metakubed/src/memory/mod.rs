//! EPMN episodic memory: every confirmed incident becomes an episode {symptoms, context,
//! actions, outcome, time, value}, embedded by MiniLM and searched in FAISS; episodes are
//! grouped online into patterns with success statistics; retrieval ranks by
//! λ·similarity + (1−λ)·recency, and the controller turns that into a pathway.
//!
//! RocksDB is the truth (column families `episodes`, `embeddings`, `patterns`, `controller`);
//! the FAISS index and the in-memory tables are derived from it at start.

pub mod controller;
pub mod correction;
pub mod embed;
pub mod index;
pub mod learned;
pub mod scrub;
pub mod signature;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use metakube_shared::{Category, FeedbackOutcome, FeedbackRequest};
use serde::{Deserialize, Serialize};

use self::controller::Theta;
use self::embed::{cosine, EmbedError, MiniLm, DIM};
use self::index::{EpisodeIndex, IndexError};
use self::signature::Signature;
use crate::store::{Cf, Op, Store, StoreError, StoredDiagnosis};

/// Confidence weights: confidence = similarity·s + recency·r + success·h + context·c.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// Cosine similarity of the signatures.
    pub similarity: f64,
    /// exp(−age / recency half-life · ln 2).
    pub recency: f64,
    /// The pattern's historical success, Laplace-smoothed.
    pub success: f64,
    /// Context compatibility (same kind asked about, same causal path shape, shared codes).
    pub context: f64,
}

impl Default for Weights {
    fn default() -> Weights {
        Weights {
            similarity: 0.5,
            recency: 0.1,
            success: 0.2,
            context: 0.2,
        }
    }
}

impl Weights {
    /// The weighted confidence, in 0–1.
    pub fn confidence(&self, similarity: f64, recency: f64, success: f64, context: f64) -> f64 {
        let total = self.similarity + self.recency + self.success + self.context;
        ((self.similarity * similarity.max(0.0)
            + self.recency * recency
            + self.success * success
            + self.context * context)
            / total.max(1e-9))
        .clamp(0.0, 1.0)
    }
}

/// Memory settings (`[memory]` in config.toml); every key optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Episodes recalled per diagnosis.
    pub k: usize,
    /// λ in λ·similarity + (1−λ)·recency.
    pub lambda: f64,
    /// Age at which recency halves, in days.
    pub recency_half_life_days: f64,
    /// Cosine similarity to a pattern's centroid for an episode to join it.
    pub pattern_threshold: f64,
    /// Most episodes kept; the least valuable are evicted beyond it.
    pub max_episodes: usize,
    /// Episode count above which the index switches from exact search to HNSW.
    pub hnsw_above: usize,
    /// Confidence weights.
    pub weights: Weights,
    /// θ at first start, its bounds and steps.
    pub theta: Theta,
}

impl Default for MemoryConfig {
    fn default() -> MemoryConfig {
        MemoryConfig {
            k: 10,
            lambda: 0.8,
            recency_half_life_days: 30.0,
            pattern_threshold: 0.9,
            max_episodes: 5000,
            hnsw_above: 10_000,
            weights: Weights::default(),
            theta: Theta::default(),
        }
    }
}

/// Where an episode was seen (kinds only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpisodeContext {
    /// Kind of the object asked about.
    pub target_kind: String,
    /// Kind of the object the cause lived in.
    pub cause_kind: String,
    /// Kinds along the causal path, target first.
    pub path_kinds: Vec<String>,
    /// Symptom codes in scope.
    pub codes: BTreeSet<String>,
}

/// One remediation that was offered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// What it does.
    pub summary: String,
    /// The command offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Whether its patch validated.
    pub validated: bool,
}

/// How the incident ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The confirmed cause.
    pub reason: String,
    /// Its category.
    pub category: Option<Category>,
    /// The fix offered worked.
    pub fixed: bool,
    /// The user named another cause than the diagnosis.
    pub corrected: bool,
    /// The user's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An episode, as the MetaKube paper defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// Monotonic id.
    pub id: u64,
    /// The masked symptom signature.
    pub symptoms: Vec<String>,
    /// Where it was seen.
    pub context: EpisodeContext,
    /// What was offered.
    pub actions: Vec<Action>,
    /// How it ended.
    pub outcome: Outcome,
    /// When it was confirmed.
    pub time: Timestamp,
    /// Usefulness, for eviction: confirmations raise it, refuted recalls lower it.
    pub value: f64,
    /// Its pattern.
    pub pattern: u64,
    /// Times recalled and confirmed / refuted.
    #[serde(default)]
    pub recalled_ok: u32,
    /// Times recalled and refuted.
    #[serde(default)]
    pub recalled_bad: u32,
    /// The diagnosis it came from.
    pub diagnosis_id: String,
    /// Evidence and reasoning as given (names unmasked; masked on export unless asked).
    #[serde(default)]
    pub reasoning: Vec<String>,
    /// Object names in `reasoning` and their placeholders, for masking.
    #[serde(default)]
    pub names: Vec<(String, String)>,
    /// The cause a correction taught, and how to find it again in another snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned: Option<correction::LearnedCause>,
}

/// A fault family: episodes whose signatures cluster around one centroid with one cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    /// Id.
    pub id: u64,
    /// Cause reason.
    pub reason: String,
    /// Cause kind.
    pub cause_kind: String,
    /// Mean of member embeddings, renormalised.
    pub centroid: Vec<f32>,
    /// Confirmed incidents.
    pub episodes: u32,
    /// Of those, where the fix worked.
    pub worked: u32,
    /// Recalls of this pattern the user refuted.
    pub failed: u32,
    /// Last confirmation.
    pub last: Timestamp,
}

/// One recalled episode with its scores.
#[derive(Debug, Clone)]
pub struct Recalled {
    /// The episode.
    pub episode: Episode,
    /// Its pattern.
    pub pattern: Option<Pattern>,
    /// Cosine similarity.
    pub similarity: f64,
    /// Recency, 1 for now, ½ after one half-life.
    pub recency: f64,
    /// λ·similarity + (1−λ)·recency.
    pub score: f64,
}

impl Recalled {
    /// Historical success: its pattern's (worked + 1) / (episodes + failed + 2), lowered to
    /// the episode's own (recalled ok + 1) / (recalled ok + refuted + 1) when that is worse (a
    /// family's good record does not cover an episode the user refuted).
    pub fn success_rate(&self) -> f64 {
        let pattern = match &self.pattern {
            Some(p) => f64::from(p.worked + 1) / f64::from(p.episodes + p.failed + 2),
            None => 0.5,
        };
        let e = &self.episode;
        let own = f64::from(e.recalled_ok + 1) / f64::from(e.recalled_ok + e.recalled_bad + 1);
        pattern.min(own)
    }
}

/// What a diagnosis carries for memory to learn from its feedback.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Its masked signature.
    pub signature: Signature,
    /// Kinds along the root cause's path.
    pub path_kinds: Vec<String>,
    /// Whether the intuitive pathway answered.
    pub intuitive: bool,
    /// The episode the answer was recalled from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<u64>,
    /// Its pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<u64>,
    /// Objects around the target with their relation paths, for a correction to name one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub near: Vec<correction::NearObject>,
    /// The verified findings, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<correction::Brief>,
}

/// One episode found by [`Memory::search`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// Episode id (`memory show ID`).
    pub episode: u64,
    /// Cosine similarity of the query to its symptoms.
    pub similarity: f64,
    /// The confirmed cause.
    pub reason: String,
    /// Kind of the object it lived in.
    pub cause_kind: String,
    /// Its category.
    pub category: Option<Category>,
    /// Taught by a correction.
    pub learned: bool,
    /// The operator's note.
    pub note: Option<String>,
    /// Its masked symptom signature.
    pub symptoms: Vec<String>,
    /// Incidents of its fault family.
    pub seen: u32,
}

/// What one feedback taught.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Learnt {
    /// The episode made of it.
    pub episode: Option<u64>,
    /// What a correction taught, in one line.
    pub learned: Option<String>,
}

/// Memory failures.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The embedder failed.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record does not decode.
    #[error("corrupt {what} record: {source}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// Decoder error.
        #[source]
        source: serde_json::Error,
    },
}

/// In-memory facts about one episode (the rest stays in RocksDB).
#[derive(Debug, Clone, Copy)]
struct Slim {
    time: i64,
    value: f32,
}

struct Inner {
    index: EpisodeIndex,
    slim: HashMap<u64, Slim>,
    patterns: BTreeMap<u64, Pattern>,
    next_id: u64,
    theta: Theta,
    generation: u64,
    unsaved: usize,
    /// The index missed a change and must be rebuilt from the store.
    stale: bool,
}

/// What turns text into vectors; MiniLM in the daemon.
pub trait Embedder: Send + Sync {
    /// Unit vectors of [`DIM`] floats, one per text.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

impl Embedder for MiniLm {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        MiniLm::embed(self, texts)
    }
}

/// Episodic memory, warm in the daemon.
pub struct Memory {
    cfg: MemoryConfig,
    store: Arc<dyn Store>,
    embedder: Box<dyn Embedder>,
    index_path: Option<PathBuf>,
    inner: Mutex<Inner>,
    /// Recent signature embeddings: one fault family shows the same masked signature in every
    /// deployment, so repeats skip the model.
    cache: Mutex<HashMap<String, Vec<f32>>>,
}

/// Signature embeddings kept in the cache.
const EMBED_CACHE: usize = 1024;

/// Counts for `memory stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Episodes kept.
    pub episodes: usize,
    /// Patterns.
    pub patterns: usize,
    /// Current θ.
    pub theta: f64,
    /// `flat` or `hnsw`.
    pub index: String,
    /// Episodes kept at most.
    pub max_episodes: usize,
    /// Patterns with their statistics, most seen first.
    pub families: Vec<PatternSummary>,
}

/// One pattern in `memory stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternSummary {
    /// Id.
    pub id: u64,
    /// Cause.
    pub reason: String,
    /// Cause kind.
    pub cause_kind: String,
    /// Confirmed incidents.
    pub episodes: u32,
    /// Fix worked.
    pub worked: u32,
    /// Refuted recalls.
    pub failed: u32,
}

const KEY_THETA: &[u8] = b"theta";
const KEY_NEXT_ID: &[u8] = b"next_id";
const KEY_GENERATION: &[u8] = b"generation";

fn key(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

fn id_of(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.try_into().ok()?))
}

/// Embedding record: time (i64), value (f32), then the vector (f32s), little-endian.
fn encode_vec(s: Slim, v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + 4 * v.len());
    out.extend_from_slice(&s.time.to_le_bytes());
    out.extend_from_slice(&s.value.to_le_bytes());
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

fn decode_vec(b: &[u8]) -> Option<(Slim, Vec<f32>)> {
    if b.len() != 12 + 4 * DIM {
        return None;
    }
    let time = i64::from_le_bytes(b[0..8].try_into().ok()?);
    let value = f32::from_le_bytes(b[8..12].try_into().ok()?);
    let v = b[12..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some((Slim { time, value }, v))
}

/// A write of one of the controller's counters (next id, generation).
fn counter(name: &[u8], value: u64) -> Op {
    (
        Cf::Controller,
        name.to_vec(),
        Some(value.to_le_bytes().to_vec()),
    )
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

impl Memory {
    /// Opens memory over a store: reads θ, patterns and embeddings, and loads the persisted
    /// FAISS index (`index_path`) when it matches the store, rebuilding it otherwise.
    pub fn open(
        cfg: MemoryConfig,
        store: Arc<dyn Store>,
        embedder: Box<dyn Embedder>,
        index_path: Option<PathBuf>,
    ) -> Result<Memory, MemoryError> {
        let theta = match store.get(Cf::Controller, KEY_THETA)? {
            Some(b) => {
                serde_json::from_slice::<Theta>(&b).map_err(|source| MemoryError::Corrupt {
                    what: "controller θ",
                    source,
                })?
            }
            None => cfg.theta,
        };
        let read_u64 = |k: &[u8]| -> Result<u64, StoreError> {
            Ok(store
                .get(Cf::Controller, k)?
                .and_then(|b| b.as_slice().try_into().ok().map(u64::from_le_bytes))
                .unwrap_or(0))
        };
        let next_id = read_u64(KEY_NEXT_ID)?.max(1);
        let generation = read_u64(KEY_GENERATION)?;
        let mut patterns = BTreeMap::new();
        let mut bad = None;
        store.scan(Cf::Patterns, &[], &mut |_, v| {
            match serde_json::from_slice::<Pattern>(v) {
                Ok(p) => {
                    patterns.insert(p.id, p);
                }
                Err(e) => bad = Some(e),
            }
            true
        })?;
        if let Some(source) = bad {
            return Err(MemoryError::Corrupt {
                what: "pattern",
                source,
            });
        }
        let mut slim = HashMap::new();
        let mut vectors = Vec::new();
        store.scan(Cf::Embeddings, &[], &mut |k, v| {
            if let (Some(id), Some((s, vec))) = (id_of(k), decode_vec(v)) {
                slim.insert(id, s);
                vectors.push((id, vec));
            }
            true
        })?;
        let index = index_path
            .as_ref()
            .filter(|p| sidecar_generation(p) == Some(generation))
            .and_then(|p| EpisodeIndex::load(p))
            .filter(|ix| ix.len() == vectors.len());
        let rebuilt = index.is_none();
        let index = match index {
            Some(ix) => ix,
            None => EpisodeIndex::build(&vectors, cfg.hnsw_above)?,
        };
        let m = Memory {
            cfg,
            store,
            embedder,
            index_path,
            inner: Mutex::new(Inner {
                index,
                slim,
                patterns,
                next_id,
                theta,
                generation,
                unsaved: 0,
                stale: false,
            }),
            cache: Mutex::new(HashMap::new()),
        };
        if rebuilt && !vectors.is_empty() {
            tracing::info!(
                episodes = vectors.len(),
                "episode index rebuilt from the store"
            );
            m.persist_index()?;
        }
        Ok(m)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration in force.
    pub fn config(&self) -> &MemoryConfig {
        &self.cfg
    }

    /// Current θ.
    pub fn theta(&self) -> f64 {
        self.lock().theta.value
    }

    /// Embeds a signature.
    pub fn embed(&self, sig: &Signature) -> Result<Vec<f32>, MemoryError> {
        let text = sig.text();
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&text)
            .cloned();
        if let Some(v) = cached {
            return Ok(v);
        }
        let v = self
            .embedder
            .embed(&[&text])?
            .pop()
            .unwrap_or_else(|| vec![0.0; DIM]);
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.len() >= EMBED_CACHE {
            c.clear();
        }
        c.insert(text, v.clone());
        Ok(v)
    }

    /// The top-k episodes for a signature, by λ·similarity + (1−λ)·recency.
    pub fn recall(&self, sig: &Signature, now: Timestamp) -> Result<Vec<Recalled>, MemoryError> {
        let v = self.embed(sig)?;
        self.recall_vector(&v, now)
    }

    /// The top-k episodes for an embedding.
    pub fn recall_vector(&self, v: &[f32], now: Timestamp) -> Result<Vec<Recalled>, MemoryError> {
        let (hits, patterns) = {
            let mut g = self.lock();
            let hits = g.index.search(v, self.cfg.k * 2)?;
            let mut scored: Vec<(u64, f64, f64, f64)> = hits
                .into_iter()
                .map(|(id, sim)| {
                    let t = g.slim.get(&id).map_or(0, |s| s.time);
                    let rec = self.recency(now.as_second() - t);
                    let sim = f64::from(sim);
                    let score = self.cfg.lambda * sim + (1.0 - self.cfg.lambda) * rec;
                    (id, sim, rec, score)
                })
                .collect();
            // Equal scores: the newer episode first (a later correction of the same signature
            // supersedes an earlier one).
            scored.sort_by(|a, b| b.3.total_cmp(&a.3).then(b.0.cmp(&a.0)));
            scored.truncate(self.cfg.k);
            (scored, g.patterns.clone())
        };
        let mut out = Vec::with_capacity(hits.len());
        for (id, similarity, recency, score) in hits {
            let Some(b) = self.store.get(Cf::Episodes, &key(id))? else {
                continue;
            };
            let episode: Episode =
                serde_json::from_slice(&b).map_err(|source| MemoryError::Corrupt {
                    what: "episode",
                    source,
                })?;
            let pattern = patterns.get(&episode.pattern).cloned();
            out.push(Recalled {
                episode,
                pattern,
                similarity,
                recency,
                score,
            });
        }
        Ok(out)
    }

    /// Episodes whose symptoms read closest to a free-text query (`memory_search`).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, MemoryError> {
        let v = self
            .embedder
            .embed(&[query])?
            .pop()
            .unwrap_or_else(|| vec![0.0; DIM]);
        let mut hits: Vec<SearchHit> = self
            .recall_vector(&v, Timestamp::now())?
            .into_iter()
            .map(|r| SearchHit {
                episode: r.episode.id,
                similarity: (r.similarity * 1000.0).round() / 1000.0,
                reason: r.episode.outcome.reason.clone(),
                cause_kind: r.episode.context.cause_kind.clone(),
                category: r.episode.outcome.category,
                learned: r.episode.learned.is_some(),
                note: r.episode.outcome.note.clone(),
                symptoms: r.episode.symptoms.clone(),
                seen: r.pattern.as_ref().map_or(1, |p| p.episodes),
            })
            .collect();
        hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        hits.truncate(limit.max(1));
        Ok(hits)
    }

    fn recency(&self, age_s: i64) -> f64 {
        let days = age_s.max(0) as f64 / 86_400.0;
        0.5f64.powf(days / self.cfg.recency_half_life_days.max(1e-9))
    }

    /// Learns from feedback on a stored diagnosis. The memory writes are handed to `commit`
    /// with the new episode's id (it writes them with the feedback record in one durable batch); the in-memory
    /// state changes only once it succeeds. Returns the new episode and what a correction taught.
    pub fn learn(
        &self,
        stored: &StoredDiagnosis,
        req: &FeedbackRequest,
        known: &dyn Fn(&str) -> Option<Category>,
        now: Timestamp,
        commit: impl FnOnce(&[Op], Option<u64>) -> Result<(), StoreError>,
    ) -> Result<Learnt, MemoryError> {
        let Some(trace) = &stored.trace else {
            return commit(&[], None)
                .map(|_| Learnt::default())
                .map_err(Into::into);
        };
        let d = &stored.diagnosis;
        let fixed = req.outcome == FeedbackOutcome::Fixed;
        let correction = correction::interpret(stored, req, known);
        let corrected = correction.is_some();
        // What is confirmed: the correction's cause, or the answer as given when it worked. A
        // refuted answer with no correction confirms nothing: no episode.
        let confirmed: Option<(String, String, Option<Category>)> = match &correction {
            Some(c) => Some((c.reason.clone(), c.cause.kind.clone(), Some(c.category))),
            None if fixed => d
                .root_cause
                .as_ref()
                .map(|r| (r.reason.clone(), r.object.kind.clone(), d.category)),
            None => None,
        };
        let vector = match &confirmed {
            Some(_) if !trace.signature.is_empty() => Some(self.embed(&trace.signature)?),
            _ => None,
        };
        let mut g = self.lock();
        let mut ops: Vec<Op> = Vec::new();
        let mut theta = g.theta;
        let mut touched: BTreeMap<u64, Pattern> = BTreeMap::new();
        let mut slim_updates: Vec<(u64, Slim, Vec<f32>)> = Vec::new();
        // The recalled episode and its pattern learn how the recall went.
        if trace.intuitive {
            let success = fixed && !corrected;
            theta.learn(success);
            if let Some(eid) = trace.episode {
                if let Some(b) = self.store.get(Cf::Episodes, &key(eid))? {
                    if let Ok(mut e) = serde_json::from_slice::<Episode>(&b) {
                        if success {
                            e.recalled_ok += 1;
                            e.value += 0.2;
                        } else {
                            e.recalled_bad += 1;
                            e.value -= 0.5;
                        }
                        ops.push((Cf::Episodes, key(eid), Some(json(&e))));
                        if let Some(Some((mut s, v))) = self
                            .store
                            .get(Cf::Embeddings, &key(eid))?
                            .map(|b| decode_vec(&b))
                        {
                            s.value = e.value as f32;
                            slim_updates.push((eid, s, v));
                        }
                    }
                }
            }
            if let (false, Some(pid)) = (success, trace.pattern) {
                if let Some(p) = g.patterns.get(&pid) {
                    let mut p = p.clone();
                    p.failed += 1;
                    touched.insert(pid, p);
                }
            }
        }
        let mut new_id = None;
        let mut evicted = Vec::new();
        let mut new_vec = None;
        if let (Some((reason, cause_kind, category)), Some(v)) = (confirmed, vector) {
            let id = g.next_id;
            let pattern = self.join_pattern(
                &g,
                &touched,
                &reason,
                &cause_kind,
                &v,
                fixed || corrected,
                now,
            );
            let mut names = names_of(d);
            if let Some(c) = &correction {
                add_name(&mut names, &c.cause);
            }
            let e = Episode {
                id,
                symptoms: trace.signature.lines.clone(),
                context: EpisodeContext {
                    target_kind: trace.signature.context.target_kind.clone(),
                    cause_kind,
                    path_kinds: match &correction {
                        Some(c) => vec![d.target.kind.clone(), c.cause.kind.clone()],
                        None => trace.path_kinds.clone(),
                    },
                    codes: trace.signature.context.codes.clone(),
                },
                actions: d
                    .remediation
                    .iter()
                    .map(|r| Action {
                        summary: r.summary.clone(),
                        command: r.command.clone(),
                        validated: r.patch.as_ref().is_some_and(|p| p.validated),
                    })
                    .collect(),
                outcome: Outcome {
                    reason,
                    category,
                    fixed,
                    corrected,
                    note: req.note.clone(),
                },
                time: now,
                value: if fixed && !corrected { 1.0 } else { 0.7 },
                pattern: pattern.id,
                recalled_ok: 0,
                recalled_bad: 0,
                diagnosis_id: d.id.clone(),
                reasoning: d
                    .evidence
                    .iter()
                    .map(|e| format!("{}: {}", e.object, e.detail))
                    .collect(),
                names,
                learned: correction.as_ref().map(|c| c.learned.clone()),
            };
            let slim = Slim {
                time: now.as_second(),
                value: e.value as f32,
            };
            ops.push((Cf::Episodes, key(id), Some(json(&e))));
            ops.push((Cf::Embeddings, key(id), Some(encode_vec(slim, &v))));
            touched.insert(pattern.id, pattern);
            // Evict the least valuable beyond the bound (never the one just learnt).
            let over = (g.slim.len() + 1).saturating_sub(self.cfg.max_episodes);
            if over > 0 {
                evicted = self.least_valuable(&g, over, now.as_second());
                for eid in &evicted {
                    ops.push((Cf::Episodes, key(*eid), None));
                    ops.push((Cf::Embeddings, key(*eid), None));
                }
            }
            new_vec = Some((id, slim, v));
            new_id = Some(id);
            ops.push(counter(KEY_NEXT_ID, id + 1));
        }
        for (id, s, v) in &slim_updates {
            ops.push((Cf::Embeddings, key(*id), Some(encode_vec(*s, v))));
        }
        for p in touched.values() {
            ops.push((Cf::Patterns, key(p.id), Some(json(p))));
        }
        ops.push((Cf::Controller, KEY_THETA.to_vec(), Some(json(&theta))));
        let generation = g.generation + 1;
        ops.push(counter(KEY_GENERATION, generation));
        commit(&ops, new_id)?;
        // Durable: now the in-memory state follows. From here nothing may fail the feedback
        // (it is stored); an index that falls out of step is rebuilt by the next upkeep.
        g.generation = generation;
        g.theta = theta;
        for (id, s, _) in slim_updates {
            g.slim.insert(id, s);
        }
        for (id, p) in touched {
            g.patterns.insert(id, p);
        }
        for e in &evicted {
            g.slim.remove(e);
        }
        let mut step = g.index.remove(&evicted);
        if let Some((id, s, v)) = new_vec {
            step = step.and_then(|_| g.index.add(id, &v));
            g.slim.insert(id, s);
            g.next_id = id + 1;
        }
        if let Err(e) = step {
            tracing::warn!(error = %e, "episode index out of step with the store; rebuilding at the next upkeep");
            g.stale = true;
        }
        g.unsaved += 1;
        // A rebuild (HNSW threshold crossed, tombstones piling up) can take minutes at a
        // million episodes: `maintain` does it off the request path.
        let save = g.unsaved >= 64 && !g.stale && !g.index.wants_rebuild(self.cfg.hnsw_above);
        drop(g);
        if save {
            if let Err(e) = self.persist_index() {
                tracing::warn!(error = %e, "saving the episode index failed; it is rebuilt at start if needed");
            }
        }
        Ok(Learnt {
            episode: new_id,
            learned: correction.map(|c| c.message),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn join_pattern(
        &self,
        g: &Inner,
        touched: &BTreeMap<u64, Pattern>,
        reason: &str,
        cause_kind: &str,
        v: &[f32],
        fixed: bool,
        now: Timestamp,
    ) -> Pattern {
        let best = g
            .patterns
            .values()
            .map(|p| touched.get(&p.id).unwrap_or(p))
            .filter(|p| p.reason == reason && p.cause_kind == cause_kind)
            .map(|p| (f64::from(cosine(&p.centroid, v)), p))
            .filter(|(s, _)| *s >= self.cfg.pattern_threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let mut p = match best {
            Some((_, p)) => p.clone(),
            None => Pattern {
                id: g.patterns.keys().next_back().map_or(1, |k| k + 1),
                reason: reason.into(),
                cause_kind: cause_kind.into(),
                centroid: vec![0.0; v.len()],
                episodes: 0,
                worked: 0,
                failed: 0,
                last: now,
            },
        };
        // Running mean of the members, kept unit length.
        let n = p.episodes as f32;
        let mut c: Vec<f32> = p
            .centroid
            .iter()
            .zip(v)
            .map(|(c, x)| (c * n + x) / (n + 1.0))
            .collect();
        let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        c.iter_mut().for_each(|x| *x /= norm);
        p.centroid = c;
        p.episodes += 1;
        if fixed {
            p.worked += 1;
        }
        p.last = now;
        p
    }

    /// The `n` episodes of least value, value decaying with age (half-life 6 months).
    fn least_valuable(&self, g: &Inner, n: usize, now: i64) -> Vec<u64> {
        let mut all: Vec<(f64, u64)> = g
            .slim
            .iter()
            .map(|(id, s)| {
                let age_days = (now - s.time).max(0) as f64 / 86_400.0;
                (f64::from(s.value) * 0.5f64.powf(age_days / 180.0), *id)
            })
            .collect();
        let n = n.min(all.len());
        if n == 0 {
            return Vec::new();
        }
        all.select_nth_unstable_by(n - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all.truncate(n);
        all.into_iter().map(|(_, id)| id).collect()
    }

    /// Background upkeep, called periodically by the daemon: rebuilds the index when it
    /// wants it and saves it when changes are unsaved. Requests are served meanwhile (the old
    /// index answers until the new one is swapped in). Returns whether it rebuilt.
    pub fn maintain(&self) -> Result<bool, MemoryError> {
        let (rebuild, unsaved) = {
            let g = self.lock();
            (
                g.stale || g.index.wants_rebuild(self.cfg.hnsw_above),
                g.unsaved,
            )
        };
        if rebuild {
            self.rebuild_index()?;
        }
        if rebuild || unsaved > 0 {
            self.persist_index()?;
        }
        Ok(rebuild)
    }

    /// Rebuilds the index from the store without holding the lock while it builds, then
    /// catches up with what was learnt or forgotten meanwhile and swaps it in.
    pub fn rebuild_index(&self) -> Result<(), MemoryError> {
        let mut vectors = Vec::new();
        self.store.scan(Cf::Embeddings, &[], &mut |k, v| {
            if let (Some(id), Some((_, vec))) = (id_of(k), decode_vec(v)) {
                vectors.push((id, vec));
            }
            true
        })?;
        let built: std::collections::HashSet<u64> = vectors.iter().map(|(id, _)| *id).collect();
        let mut ix = EpisodeIndex::build(&vectors, self.cfg.hnsw_above)?;
        drop(vectors);
        let mut g = self.lock();
        let gone: Vec<u64> = built
            .iter()
            .copied()
            .filter(|id| !g.slim.contains_key(id))
            .collect();
        ix.remove(&gone)?;
        let new: Vec<u64> = g
            .slim
            .keys()
            .copied()
            .filter(|id| !built.contains(id))
            .collect();
        for id in new {
            if let Some(Some((_, v))) = self
                .store
                .get(Cf::Embeddings, &key(id))?
                .map(|b| decode_vec(&b))
            {
                ix.add(id, &v)?;
            }
        }
        g.index = ix;
        g.stale = false;
        Ok(())
    }

    /// Writes the index file (write-then-rename) with the store generation it matches.
    pub fn persist_index(&self) -> Result<(), MemoryError> {
        let Some(path) = &self.index_path else {
            return Ok(());
        };
        let mut g = self.lock();
        if g.stale {
            // Never save an index that missed a change: without a file, start rebuilds it.
            let _ = std::fs::remove_file(path);
            return Ok(());
        }
        g.index.save(path)?;
        std::fs::write(path.with_extension("gen"), g.generation.to_string()).map_err(|source| {
            IndexError::Io {
                path: path.clone(),
                source,
            }
        })?;
        g.unsaved = 0;
        Ok(())
    }

    /// Counts and patterns.
    pub fn stats(&self) -> MemoryStats {
        let g = self.lock();
        let mut families: Vec<PatternSummary> = g
            .patterns
            .values()
            .map(|p| PatternSummary {
                id: p.id,
                reason: p.reason.clone(),
                cause_kind: p.cause_kind.clone(),
                episodes: p.episodes,
                worked: p.worked,
                failed: p.failed,
            })
            .collect();
        families.sort_by(|a, b| b.episodes.cmp(&a.episodes).then(a.id.cmp(&b.id)));
        MemoryStats {
            episodes: g.slim.len(),
            patterns: g.patterns.len(),
            theta: g.theta.value,
            index: match g.index.structure() {
                index::Structure::Flat => "flat".into(),
                index::Structure::Hnsw => "hnsw".into(),
            },
            max_episodes: self.cfg.max_episodes,
            families,
        }
    }

    /// Episodes, newest first, at most `limit`.
    pub fn list(&self, limit: usize) -> Result<Vec<Episode>, MemoryError> {
        let mut ids: Vec<u64> = self.lock().slim.keys().copied().collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.truncate(limit);
        ids.into_iter()
            .filter_map(|id| self.get(id).transpose())
            .collect()
    }

    /// One episode.
    pub fn get(&self, id: u64) -> Result<Option<Episode>, MemoryError> {
        match self.store.get(Cf::Episodes, &key(id))? {
            Some(b) => {
                serde_json::from_slice(&b)
                    .map(Some)
                    .map_err(|source| MemoryError::Corrupt {
                        what: "episode",
                        source,
                    })
            }
            None => Ok(None),
        }
    }

    /// Deletes episodes from the store (one durable batch, generation bumped), then from the
    /// index and the in-memory table; the caller holds the lock.
    fn remove_locked(&self, g: &mut Inner, ids: &[u64]) -> Result<(), MemoryError> {
        let mut ops: Vec<Op> = Vec::new();
        for id in ids {
            ops.push((Cf::Episodes, key(*id), None));
            ops.push((Cf::Embeddings, key(*id), None));
        }
        let generation = g.generation + 1;
        ops.push(counter(KEY_GENERATION, generation));
        self.store.write(&ops)?;
        g.generation = generation;
        g.index.remove(ids)?;
        for id in ids {
            g.slim.remove(id);
        }
        Ok(())
    }

    /// Forgets episodes (durably), returning how many existed.
    pub fn forget(&self, ids: &[u64]) -> Result<usize, MemoryError> {
        let mut g = self.lock();
        let known: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|i| g.slim.contains_key(i))
            .collect();
        self.remove_locked(&mut g, &known)?;
        drop(g);
        self.persist_index()?;
        Ok(known.len())
    }

    /// Adds episodes (import), giving them fresh ids and re-embedding their signatures.
    pub fn import(&self, episodes: Vec<Episode>) -> Result<usize, MemoryError> {
        let mut n = 0;
        for chunk in episodes.chunks(64) {
            let texts: Vec<String> = chunk
                .iter()
                .map(|e| {
                    Signature {
                        lines: e.symptoms.clone(),
                        context: signature::Context {
                            target_kind: e.context.target_kind.clone(),
                            codes: e.context.codes.clone(),
                        },
                    }
                    .text()
                })
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let vectors = self.embedder.embed(&refs)?;
            let mut g = self.lock();
            let mut ops: Vec<Op> = Vec::new();
            let mut adds = Vec::new();
            let mut touched = BTreeMap::new();
            for (e, v) in chunk.iter().zip(vectors) {
                let mut e = e.clone();
                e.id = g.next_id + adds.len() as u64;
                let p = self.join_pattern(
                    &g,
                    &touched,
                    &e.outcome.reason,
                    &e.context.cause_kind,
                    &v,
                    e.outcome.fixed,
                    e.time,
                );
                e.pattern = p.id;
                touched.insert(p.id, p.clone());
                g.patterns.insert(p.id, p);
                let s = Slim {
                    time: e.time.as_second(),
                    value: e.value as f32,
                };
                ops.push((Cf::Episodes, key(e.id), Some(json(&e))));
                ops.push((Cf::Embeddings, key(e.id), Some(encode_vec(s, &v))));
                adds.push((e.id, s, v));
            }
            for p in touched.values() {
                ops.push((Cf::Patterns, key(p.id), Some(json(p))));
            }
            let next = g.next_id + adds.len() as u64;
            let generation = g.generation + 1;
            ops.push(counter(KEY_NEXT_ID, next));
            ops.push(counter(KEY_GENERATION, generation));
            self.store.write(&ops)?;
            g.next_id = next;
            g.generation = generation;
            for (id, s, v) in adds {
                g.index.add(id, &v)?;
                g.slim.insert(id, s);
                n += 1;
            }
            // The pool stays bounded: beyond max_episodes the least valuable go, imported or not.
            let over = g.slim.len().saturating_sub(self.cfg.max_episodes);
            if over > 0 {
                let evicted = self.least_valuable(&g, over, Timestamp::now().as_second());
                self.remove_locked(&mut g, &evicted)?;
            }
        }
        if self.lock().index.wants_rebuild(self.cfg.hnsw_above) {
            self.rebuild_index()?;
        }
        self.persist_index()?;
        Ok(n)
    }
}

impl crate::engine::Recall for Memory {
    fn recall(&self, sig: &Signature) -> Result<crate::engine::Recollection, String> {
        let recalled = Memory::recall(self, sig, Timestamp::now()).map_err(|e| e.to_string())?;
        Ok(crate::engine::Recollection {
            recalled,
            theta: self.theta(),
            weights: self.cfg.weights,
        })
    }
}

fn sidecar_generation(path: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(path.with_extension("gen"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Names in a diagnosis (objects and namespaces) with placeholders, longest first so masking
/// replaces `redis-cache` before `redis`.
fn names_of(d: &metakube_shared::Diagnosis) -> Vec<(String, String)> {
    let mut refs = vec![&d.target];
    refs.extend(d.root_cause.as_ref().map(|r| &r.object));
    refs.extend(d.evidence.iter().map(|e| &e.object));
    refs.extend(d.hypotheses.iter().map(|h| &h.object));
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in refs {
        if !names.contains_key(&r.name) {
            let kind = r.kind.to_lowercase();
            let n = counts.entry(kind.clone()).or_insert(0);
            *n += 1;
            names.insert(r.name.clone(), format!("<{kind}-{n}>"));
        }
        if let Some(ns) = &r.namespace {
            if !names.contains_key(ns) {
                let n = counts.entry("namespace".into()).or_insert(0);
                *n += 1;
                names.insert(ns.clone(), format!("<namespace-{n}>"));
            }
        }
    }
    let mut v: Vec<(String, String)> = names.into_iter().collect();
    v.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    v
}

/// Adds an object's name (and namespace) to a masking table, longest names first.
fn add_name(names: &mut Vec<(String, String)>, r: &metakube_shared::ObjectRef) {
    let count = |names: &[(String, String)], kind: &str| {
        names
            .iter()
            .filter(|(_, ph)| ph.starts_with(&format!("<{kind}-")))
            .count()
    };
    if !names.iter().any(|(n, _)| *n == r.name) {
        let kind = r.kind.to_lowercase();
        let n = count(names, &kind) + 1;
        names.push((r.name.clone(), format!("<{kind}-{n}>")));
    }
    if let Some(ns) = &r.namespace {
        if !names.iter().any(|(n, _)| n == ns) {
            let n = count(names, "namespace") + 1;
            names.push((ns.clone(), format!("<namespace-{n}>")));
        }
    }
    names.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
}

/// Replaces every known name in `text` with its placeholder.
pub fn mask(text: &str, names: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (name, ph) in names {
        if name.len() >= 2 {
            out = out.replace(name.as_str(), ph);
        }
    }
    out
}

/// One KFRD record {problem, attempts, solution, reasoning} for fine-tuning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kfrd {
    /// The symptoms, as a question.
    pub problem: String,
    /// What was offered and whether it worked.
    pub attempts: Vec<String>,
    /// The confirmed cause and fix.
    pub solution: String,
    /// The evidence that supports it.
    pub reasoning: String,
}

impl Episode {
    /// The episode as a KFRD record; names masked unless `unmasked`.
    pub fn kfrd(&self, unmasked: bool) -> Kfrd {
        let m = |s: &str| {
            if unmasked {
                s.to_string()
            } else {
                scrub::scrub(s, &self.names)
            }
        };
        // A learned cause's fix is what the operator did, not what was offered.
        let fix = match (&self.learned, &self.outcome.note) {
            (Some(l), note) => {
                let mut f = note.clone().unwrap_or_default();
                if let Some(c) = &l.fix_command {
                    f = format!("{f} Fixed with: {c}").trim().to_string();
                }
                if f.is_empty() {
                    "no fix recorded".into()
                } else {
                    f
                }
            }
            (None, _) => self
                .actions
                .first()
                .map(|a| a.summary.clone())
                .unwrap_or_else(|| "no fix recorded".into()),
        };
        let found = self
            .learned
            .as_ref()
            .and_then(|l| l.path.as_ref())
            .map(|p| format!(" It is found as {p}."));
        Kfrd {
            problem: format!(
                "A {} shows: {}. What is the root cause?",
                self.context.target_kind,
                self.symptoms.join("; ")
            ),
            attempts: self
                .actions
                .iter()
                .map(|a| {
                    format!(
                        "{}{}",
                        m(&a.summary),
                        a.command
                            .as_deref()
                            .map(|c| format!(" ({})", m(c)))
                            .unwrap_or_default()
                    )
                })
                .collect(),
            solution: format!(
                "{} on the {} ({}).{} {}",
                self.outcome.reason,
                self.context.cause_kind,
                if self.outcome.fixed {
                    "fix confirmed"
                } else {
                    "cause confirmed by the operator"
                },
                found.unwrap_or_default(),
                m(&fix)
            ),
            reasoning: m(&self.reasoning.join("\n")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemStore, RocksStore};
    use metakube_shared::{Diagnosis, ObjectRef, Pathway, RootCause, Timings};

    /// A deterministic embedder for unit tests: one direction per distinct symptom line.
    struct Hashing;
    impl Embedder for Hashing {
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = vec![0f32; DIM];
                    for w in t.split(". ") {
                        let h = w
                            .bytes()
                            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
                        v[(h % DIM as u64) as usize] += 1.0;
                    }
                    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                    v.iter_mut().for_each(|x| *x /= n);
                    v
                })
                .collect())
        }
    }

    fn stored(id: &str, code: &str, reason: &str) -> StoredDiagnosis {
        let mut sig = Signature {
            lines: vec![format!("Pod {code}")],
            ..Default::default()
        };
        sig.context.target_kind = "Deployment".into();
        sig.context.codes.insert(code.into());
        StoredDiagnosis {
            diagnosis: Diagnosis {
                id: id.into(),
                target: ObjectRef::new("Deployment", "ns", "web"),
                verdict: metakube_shared::Verdict::RootCause,
                category: Some(Category::Resource),
                root_cause: Some(RootCause {
                    object: ObjectRef::new("Deployment", "ns", "web"),
                    reason: reason.into(),
                    summary: String::new(),
                }),
                hypotheses: vec![],
                confidence: 0.9,
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
            edges: vec![],
            at: Timestamp::UNIX_EPOCH,
            trace: Some(Trace {
                signature: sig,
                ..Default::default()
            }),
        }
    }

    /// No reason code is known to these tests' engine.
    fn no_causes(_: &str) -> Option<Category> {
        None
    }

    fn fixed(id: &str) -> FeedbackRequest {
        FeedbackRequest {
            diagnosis_id: id.into(),
            outcome: FeedbackOutcome::Fixed,
            cause: None,
            reason: None,
            note: None,
            category: None,
            fix_command: None,
            replace: false,
        }
    }

    #[test]
    fn pool_is_bounded_and_evicts_the_least_valuable() {
        let store: Arc<dyn Store> = Arc::new(MemStore::default());
        let cfg = MemoryConfig {
            max_episodes: 3,
            ..Default::default()
        };
        let m = Memory::open(cfg, store.clone(), Box::new(Hashing), None).unwrap();
        let now = Timestamp::now();
        // An old episode is worth less than new ones.
        let old = now - jiff::SignedDuration::from_hours(24 * 365);
        m.learn(
            &stored("a", "code_a", "A"),
            &fixed("a"),
            &no_causes,
            old,
            |ops, _| store.write(ops),
        )
        .unwrap();
        for (i, c) in ["b", "c", "d"].iter().enumerate() {
            let id = m
                .learn(
                    &stored(c, &format!("code_{c}"), "B"),
                    &fixed(c),
                    &no_causes,
                    now,
                    |ops, _| store.write(ops),
                )
                .unwrap();
            assert_eq!(id.episode, Some(i as u64 + 2));
        }
        let s = m.stats();
        assert_eq!(s.episodes, 3);
        assert!(
            m.get(1).unwrap().is_none(),
            "the oldest, least valuable episode is evicted"
        );
        assert!(m.get(4).unwrap().is_some());
        // The evicted episode is gone from the index too.
        let r = m
            .recall(&stored("x", "code_a", "A").trace.unwrap().signature, now)
            .unwrap();
        assert!(r.iter().all(|e| e.episode.id != 1));
    }

    #[test]
    fn import_keeps_the_pool_bounded() {
        let store: Arc<dyn Store> = Arc::new(MemStore::default());
        let cfg = MemoryConfig {
            max_episodes: 3,
            ..Default::default()
        };
        let m = Memory::open(cfg, store.clone(), Box::new(Hashing), None).unwrap();
        let now = Timestamp::now();
        m.learn(
            &stored("a", "code_a", "A"),
            &fixed("a"),
            &no_causes,
            now,
            |ops, _| store.write(ops),
        )
        .unwrap();
        let one = m.get(1).unwrap().unwrap();
        let many: Vec<Episode> = (0..100).map(|_| one.clone()).collect();
        assert_eq!(m.import(many).unwrap(), 100);
        assert_eq!(m.stats().episodes, 3, "max_episodes holds after an import");
        let mut kept = 0;
        store
            .scan(Cf::Episodes, &[], &mut |_, _| {
                kept += 1;
                true
            })
            .unwrap();
        assert_eq!(kept, 3, "the evicted are gone from the store too");
    }

    #[test]
    fn index_switches_to_hnsw_and_survives_reopen_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(RocksStore::open(&dir.path().join("db")).unwrap());
        let path = dir.path().join("index/episodes.faiss");
        let cfg = MemoryConfig {
            hnsw_above: 3,
            ..Default::default()
        };
        let now = Timestamp::now();
        {
            let m = Memory::open(
                cfg.clone(),
                store.clone(),
                Box::new(Hashing),
                Some(path.clone()),
            )
            .unwrap();
            for c in ["a", "b", "c", "d", "e"] {
                m.learn(
                    &stored(c, &format!("code_{c}"), "R"),
                    &fixed(c),
                    &no_causes,
                    now,
                    |ops, _| store.write(ops),
                )
                .unwrap();
            }
            assert_eq!(m.stats().index, "flat", "the rebuild waits for maintenance");
            assert!(m.maintain().unwrap());
            assert_eq!(m.stats().index, "hnsw");
            assert!(!m.maintain().unwrap());
        }
        let sig = stored("x", "code_c", "R").trace.unwrap().signature;
        let m = Memory::open(
            cfg.clone(),
            store.clone(),
            Box::new(Hashing),
            Some(path.clone()),
        )
        .unwrap();
        assert_eq!(m.stats().episodes, 5);
        assert_eq!(m.recall(&sig, now).unwrap()[0].episode.id, 3);
        drop(m);
        std::fs::write(&path, b"not a faiss index").unwrap();
        let m = Memory::open(cfg, store.clone(), Box::new(Hashing), Some(path.clone())).unwrap();
        assert_eq!(
            m.recall(&sig, now).unwrap()[0].episode.id,
            3,
            "rebuilt from the store"
        );
        assert!(EpisodeIndex::load(&path).is_some(), "and written back");
    }

    #[test]
    fn a_refuted_intuitive_answer_raises_theta_and_counts_against_the_pattern() {
        let store: Arc<dyn Store> = Arc::new(MemStore::default());
        let m = Memory::open(
            MemoryConfig::default(),
            store.clone(),
            Box::new(Hashing),
            None,
        )
        .unwrap();
        let now = Timestamp::now();
        m.learn(
            &stored("a", "code_a", "A"),
            &fixed("a"),
            &no_causes,
            now,
            |ops, _| store.write(ops),
        )
        .unwrap();
        let theta0 = m.theta();
        let mut s = stored("b", "code_a", "A");
        if let Some(t) = s.trace.as_mut() {
            t.intuitive = true;
            t.episode = Some(1);
            t.pattern = Some(1);
        }
        let mut no = fixed("b");
        no.outcome = FeedbackOutcome::NotFixed;
        assert_eq!(
            m.learn(&s, &no, &no_causes, now, |ops, _| store.write(ops))
                .unwrap()
                .episode,
            None
        );
        assert!(m.theta() > theta0);
        let p = &m.stats().families[0];
        assert_eq!((p.episodes, p.worked, p.failed), (1, 1, 1));
        assert_eq!(m.get(1).unwrap().unwrap().recalled_bad, 1);
        // θ survives a reopen.
        let m2 = Memory::open(MemoryConfig::default(), store, Box::new(Hashing), None).unwrap();
        assert_eq!(m2.theta(), m.theta());
    }
}
