//! The series anomaly scoring reads, per workload and window: restarts, warning events, pods
//! not Ready and pods Pending (each counted only past a short start-up grace, so a rolling
//! update is not trouble), and, with Prometheus, CPU and memory against the limits. A workload
//! is anomalous when its window is troubled, scores below a fraction of the recent median, and
//! stays so for consecutive windows.

use std::collections::{BTreeMap, HashMap, VecDeque};

use jiff::{SignedDuration, Timestamp};
use metakube_shared::{AnomalyReport, KubeObject, ObjectRef};
use serde_json::Value;

use super::anomaly::{HalfSpaceTrees, HstConfig, Window, DIMS};
use super::store::Store;

/// Settings of anomaly scoring.
#[derive(Debug, Clone, Copy)]
pub struct AnomalyConfig {
    /// Length of a window.
    pub window: SignedDuration,
    /// A window is anomalous below this fraction of the median recent score.
    pub ratio: f64,
    /// Consecutive anomalous windows before a workload is reported.
    pub persist: u32,
    /// A pod Pending or not Ready for less than this is starting, not in trouble.
    pub grace: SignedDuration,
    /// The ensemble.
    pub hst: HstConfig,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            window: SignedDuration::from_secs(60),
            ratio: 0.5,
            persist: 2,
            grace: SignedDuration::from_secs(30),
            hst: HstConfig::default(),
        }
    }
}

/// Resource use of a pod, from Prometheus, relative to its limits.
pub type PodUsage = HashMap<ObjectRef, (Option<f64>, Option<f64>)>;

/// Windows, scores and the anomalous workloads.
pub struct Series {
    cfg: AnomalyConfig,
    hst: HalfSpaceTrees,
    started: Option<Timestamp>,
    restarts_before: HashMap<ObjectRef, i64>,
    warnings: HashMap<ObjectRef, f64>,
    event_counts: HashMap<ObjectRef, u64>,
    recent_scores: VecDeque<f64>,
    streak: HashMap<ObjectRef, u32>,
    anomalous: BTreeMap<ObjectRef, AnomalyReport>,
    explained: std::collections::HashSet<ObjectRef>,
    /// Windows scored so far.
    pub windows: u64,
}

impl Series {
    /// Empty, with these settings.
    pub fn new(cfg: AnomalyConfig) -> Series {
        Series {
            hst: HalfSpaceTrees::new(DIMS, cfg.hst),
            cfg,
            started: None,
            restarts_before: HashMap::new(),
            warnings: HashMap::new(),
            event_counts: HashMap::new(),
            recent_scores: VecDeque::new(),
            streak: HashMap::new(),
            anomalous: BTreeMap::new(),
            explained: std::collections::HashSet::new(),
            windows: 0,
        }
    }

    /// Counts a Warning event (its new occurrences) towards its workload's window.
    pub fn observe(&mut self, store: &Store, o: &KubeObject) {
        if o.kind() != "Event" || o.pointer("/type").and_then(Value::as_str) != Some("Warning") {
            return;
        }
        let count = o
            .pointer("/count")
            .and_then(Value::as_u64)
            .or_else(|| o.pointer("/series/count").and_then(Value::as_u64))
            .unwrap_or(1);
        let before = self.event_counts.insert(o.object_ref(), count).unwrap_or(0);
        let new = count.saturating_sub(before);
        if new == 0 {
            return;
        }
        let (Some(kind), Some(name)) = (
            o.pointer("/involvedObject/kind").and_then(Value::as_str),
            o.pointer("/involvedObject/name").and_then(Value::as_str),
        ) else {
            return;
        };
        let ns = o
            .pointer("/involvedObject/namespace")
            .and_then(Value::as_str)
            .or(o.namespace())
            .unwrap_or("");
        let about = ObjectRef::new(kind, ns, name);
        let w = match kind {
            "Pod" | "ReplicaSet" => store.workload_of(&about),
            _ => about,
        };
        *self.warnings.entry(w).or_default() += new as f64;
    }

    /// Notes workloads that show a state symptom now: their trouble in this window is a fault
    /// incident's, not an anomaly.
    pub fn explained<'a>(&mut self, targets: impl IntoIterator<Item = &'a ObjectRef>) {
        self.explained.extend(targets.into_iter().cloned());
    }

    /// Forgets an event that was deleted (its count must not be re-counted if it returns).
    pub fn forget(&mut self, r: &ObjectRef) {
        if r.kind == "Event" {
            self.event_counts.remove(r);
        }
    }

    /// Closes the window when it is over: scores each workload's window, then learns from it.
    /// Returns whether a window closed.
    pub fn tick(&mut self, store: &Store, now: Timestamp, usage: Option<&PodUsage>) -> bool {
        let Some(start) = self.started else {
            self.started = Some(now);
            self.restarts_before = restarts(store);
            return false;
        };
        if now.duration_since(start) < self.cfg.window {
            return false;
        }
        let windows = self.windows_of(store, now, usage);
        let limit = self.median() * self.cfg.ratio;
        let warm = self.hst.warm();
        let mut anomalous = BTreeMap::new();
        let mut scores = Vec::with_capacity(windows.len());
        for (w, win) in &windows {
            let x = win.instance();
            let score = self.hst.score(&x);
            scores.push(score);
            let bad = warm && win.troubled() && score < limit && !self.explained.contains(w);
            let streak = self.streak.entry(w.clone()).or_default();
            *streak = if bad { *streak + 1 } else { 0 };
            if bad && *streak >= self.cfg.persist {
                anomalous.insert(
                    w.clone(),
                    AnomalyReport {
                        score,
                        threshold: limit,
                        series: win.series(),
                        window_s: now.duration_since(start).as_secs_f64(),
                    },
                );
            }
        }
        self.streak.retain(|_, s| *s > 0);
        for win in windows.values() {
            self.hst.update(&win.instance());
        }
        for s in scores {
            self.recent_scores.push_back(s);
        }
        let keep = 4 * self.cfg.hst.window;
        while self.recent_scores.len() > keep {
            self.recent_scores.pop_front();
        }
        self.anomalous = anomalous;
        self.explained.clear();
        self.started = Some(now);
        self.windows += 1;
        true
    }

    /// Workloads whose latest windows were anomalous.
    pub fn anomalous(&self) -> &BTreeMap<ObjectRef, AnomalyReport> {
        &self.anomalous
    }

    fn median(&self) -> f64 {
        if self.recent_scores.is_empty() {
            return 0.0;
        }
        let mut v: Vec<f64> = self.recent_scores.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    fn windows_of(
        &mut self,
        store: &Store,
        now: Timestamp,
        usage: Option<&PodUsage>,
    ) -> BTreeMap<ObjectRef, Window> {
        #[derive(Default)]
        struct Agg {
            pods: f64,
            restarts: i64,
            pending: f64,
            not_ready: f64,
            cpu: (f64, u32),
            memory: (f64, u32),
        }
        let grace = self.cfg.grace;
        let old = |t: Option<Timestamp>| t.is_none_or(|t| now.duration_since(t) >= grace);
        let mut by: HashMap<ObjectRef, Agg> = HashMap::new();
        // One pass over the pods: each one's workload looked up once.
        for p in store.pods() {
            let r = p.object_ref();
            let a = by.entry(store.workload_of(&r)).or_default();
            a.pods += 1.0;
            a.restarts += pod_restarts(p);
            let phase = p
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("");
            let created = p
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Timestamp>().ok());
            if phase == "Pending" && old(created) {
                a.pending += 1.0;
            }
            if phase == "Running" {
                let not_ready = p
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .and_then(|cs| {
                        cs.iter()
                            .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
                    })
                    .filter(|c| c.get("status").and_then(Value::as_str) == Some("False"));
                if let Some(c) = not_ready {
                    let since = c
                        .get("lastTransitionTime")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<Timestamp>().ok());
                    if old(since) {
                        a.not_ready += 1.0;
                    }
                }
            }
            if let Some((cpu, mem)) = usage.and_then(|u| u.get(&r)) {
                if let Some(c) = cpu {
                    a.cpu = (a.cpu.0 + c, a.cpu.1 + 1);
                }
                if let Some(m) = mem {
                    a.memory = (a.memory.0 + m, a.memory.1 + 1);
                }
            }
        }
        let mut out = BTreeMap::new();
        let mut totals = HashMap::with_capacity(by.len());
        for (w, a) in by {
            let before = self.restarts_before.get(&w).copied().unwrap_or(a.restarts);
            let n = a.pods.max(1.0);
            let win = Window {
                restarts: (a.restarts - before).max(0) as f64,
                warning_events: self.warnings.get(&w).copied().unwrap_or(0.0),
                not_ready_pods: a.not_ready / n,
                pending_pods: a.pending / n,
                // The mean over the pods is what one query per series gives.
                cpu: (a.cpu.1 > 0).then(|| a.cpu.0 / a.cpu.1 as f64),
                memory: (a.memory.1 > 0).then(|| a.memory.0 / a.memory.1 as f64),
            };
            totals.insert(w.clone(), a.restarts);
            out.insert(w, win);
        }
        self.restarts_before = totals;
        self.warnings.clear();
        out
    }
}

fn pod_restarts(p: &KubeObject) -> i64 {
    ["/status/containerStatuses", "/status/initContainerStatuses"]
        .iter()
        .filter_map(|ptr| p.pointer(ptr).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
        .sum()
}

/// Total container restarts per workload.
fn restarts(store: &Store) -> HashMap<ObjectRef, i64> {
    let mut out: HashMap<ObjectRef, i64> = HashMap::new();
    for p in store.pods() {
        *out.entry(store.workload_of(&p.object_ref())).or_default() += pod_restarts(p);
    }
    out
}
