//! Online anomaly scoring for what state alone does not show (restarts between back-offs, a
//! burst of warnings, pods slow to become ready, resource series): Half-Space Trees.
//!
//! S. C. Tan, K. M. Ting, T. F. Liu, "Fast Anomaly Detection for Streaming Data", IJCAI 2011 —
//! the streaming detector KubeWise uses. An ensemble of random half-space trees over a
//! perturbed unit work space; each node counts the instances of the reference window (`r`) and
//! of the window being filled (`l`); after every `window` instances `r ← l, l ← 0`. An
//! instance's score is `Σ_trees r(node)·2^depth(node)` at the deepest node on its path whose
//! reference mass is still `≥ size_limit` (or a leaf): mass is low, so the score is low, where
//! few instances fell before. Every `window` instances the model is what the last window saw:
//! it follows the cluster's normal, and a fault that lasts becomes normal only after it has
//! been reported.

use std::collections::BTreeMap;

/// Settings of the ensemble (the paper's defaults, except a smaller window so a small cluster
/// warms up within minutes).
#[derive(Debug, Clone, Copy)]
pub struct HstConfig {
    /// Trees in the ensemble (`t`).
    pub trees: usize,
    /// Depth of each tree (`h`).
    pub depth: usize,
    /// Instances per window (`ψ`).
    pub window: usize,
    /// Seed of the work-space perturbation and split dimensions (fixed: the same stream gives
    /// the same scores).
    pub seed: u64,
}

impl Default for HstConfig {
    fn default() -> Self {
        HstConfig {
            trees: 25,
            depth: 10,
            window: 128,
            seed: 0x6d65_7461_6b75_6265,
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    dim: usize,
    split: f64,
    r: u32,
    l: u32,
    // Children as indexes into the tree's node vector; `usize::MAX` for a leaf.
    left: usize,
    right: usize,
}

/// A Half-Space Trees ensemble over `dims`-dimensional instances in `[0, 1]^dims`.
#[derive(Debug, Clone)]
pub struct HalfSpaceTrees {
    cfg: HstConfig,
    dims: usize,
    trees: Vec<Vec<Node>>,
    filled: usize,
    windows_done: usize,
}

/// splitmix64: a small, good, deterministic generator for the tree construction.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl HalfSpaceTrees {
    /// Builds the ensemble (the paper's `BuildSingleHS-Tree` over a perturbed work space).
    pub fn new(dims: usize, cfg: HstConfig) -> HalfSpaceTrees {
        let mut rng = Rng(cfg.seed);
        let trees = (0..cfg.trees)
            .map(|_| {
                let (mut lo, mut hi) = (vec![0.0; dims], vec![0.0; dims]);
                for q in 0..dims {
                    let s = rng.unit();
                    let w = 2.0 * s.max(1.0 - s);
                    lo[q] = s - w;
                    hi[q] = s + w;
                }
                let mut nodes = Vec::new();
                build(&mut nodes, &mut lo, &mut hi, 0, cfg.depth, dims, &mut rng);
                nodes
            })
            .collect();
        HalfSpaceTrees {
            cfg,
            dims,
            trees,
            filled: 0,
            windows_done: 0,
        }
    }

    /// Whether a reference window exists (scores before that mean nothing).
    pub fn warm(&self) -> bool {
        self.windows_done > 0
    }

    /// The largest score an instance can get: every tree's whole reference window at its
    /// deepest node.
    pub fn max_score(&self) -> f64 {
        (self.cfg.trees * self.cfg.window) as f64 * 2f64.powi(self.cfg.depth as i32)
    }

    /// Scores an instance against the reference window (lower is more unusual).
    pub fn score(&self, x: &[f64]) -> f64 {
        debug_assert_eq!(x.len(), self.dims);
        let limit = (0.1 * self.cfg.window as f64).max(1.0);
        let mut total = 0.0;
        for nodes in &self.trees {
            let mut i = 0;
            let mut depth = 0;
            loop {
                let n = &nodes[i];
                if n.left == usize::MAX || (n.r as f64) < limit {
                    total += n.r as f64 * 2f64.powi(depth);
                    break;
                }
                i = if x[n.dim] < n.split { n.left } else { n.right };
                depth += 1;
            }
        }
        total
    }

    /// Adds an instance to the window being filled; swaps windows when it is full.
    pub fn update(&mut self, x: &[f64]) {
        for nodes in &mut self.trees {
            let mut i = 0;
            loop {
                nodes[i].l += 1;
                let n = &nodes[i];
                if n.left == usize::MAX {
                    break;
                }
                i = if x[n.dim] < n.split { n.left } else { n.right };
            }
        }
        self.filled += 1;
        if self.filled >= self.cfg.window {
            for nodes in &mut self.trees {
                for n in nodes.iter_mut() {
                    n.r = n.l;
                    n.l = 0;
                }
            }
            self.filled = 0;
            self.windows_done += 1;
        }
    }
}

fn build(
    nodes: &mut Vec<Node>,
    lo: &mut [f64],
    hi: &mut [f64],
    depth: usize,
    max_depth: usize,
    dims: usize,
    rng: &mut Rng,
) -> usize {
    let i = nodes.len();
    nodes.push(Node {
        dim: 0,
        split: 0.0,
        r: 0,
        l: 0,
        left: usize::MAX,
        right: usize::MAX,
    });
    if depth == max_depth {
        return i;
    }
    let q = (rng.next() % dims as u64) as usize;
    let p = (lo[q] + hi[q]) / 2.0;
    let old_hi = hi[q];
    hi[q] = p;
    let left = build(nodes, lo, hi, depth + 1, max_depth, dims, rng);
    hi[q] = old_hi;
    let old_lo = lo[q];
    lo[q] = p;
    let right = build(nodes, lo, hi, depth + 1, max_depth, dims, rng);
    lo[q] = old_lo;
    nodes[i] = Node {
        dim: q,
        split: p,
        r: 0,
        l: 0,
        left,
        right,
    };
    i
}

/// The series of one workload over one window, as counted from the watch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    /// Container restarts during the window.
    pub restarts: f64,
    /// Warning events (counting repeats) about the workload's objects.
    pub warning_events: f64,
    /// Share of its pods not Ready at the window's end.
    pub not_ready_pods: f64,
    /// Share of its pods Pending at the window's end.
    pub pending_pods: f64,
    /// CPU use relative to the limit (or to 2 cores without one), from Prometheus.
    pub cpu: Option<f64>,
    /// Memory working set relative to the limit (or to 8 GiB), from Prometheus.
    pub memory: Option<f64>,
}

/// Dimensions of an instance.
pub const DIMS: usize = 6;

impl Window {
    /// The instance in `[0, 1]^DIMS` (counts on a log scale so one restart and twenty differ
    /// but twenty and forty barely do).
    pub fn instance(&self) -> [f64; DIMS] {
        let log = |x: f64, cap: f64| ((1.0 + x.max(0.0)).ln() / (1.0 + cap).ln()).min(1.0);
        [
            log(self.restarts, 20.0),
            log(self.warning_events, 50.0),
            self.not_ready_pods.clamp(0.0, 1.0),
            self.pending_pods.clamp(0.0, 1.0),
            self.cpu.unwrap_or(0.0).clamp(0.0, 1.0),
            self.memory.unwrap_or(0.0).clamp(0.0, 1.0),
        ]
    }

    /// Whether the window shows material trouble: an unusual *quiet* window is no fault, and
    /// neither is one probe blip or one restart (what a rolling update or a node drain makes).
    pub fn troubled(&self) -> bool {
        self.restarts >= 2.0
            || self.warning_events >= 3.0
            || self.not_ready_pods > 0.0
            || self.pending_pods > 0.0
            || self.cpu.is_some_and(|c| c > 0.9)
            || self.memory.is_some_and(|m| m > 0.9)
    }

    /// The series by name, for the report.
    pub fn series(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::from([
            ("restarts".to_string(), self.restarts),
            ("warning_events".to_string(), self.warning_events),
            ("not_ready_pods".to_string(), self.not_ready_pods),
            ("pending_pods".to_string(), self.pending_pods),
        ]);
        if let Some(c) = self.cpu {
            m.insert("cpu_of_limit".into(), c);
        }
        if let Some(x) = self.memory {
            m.insert("memory_of_limit".into(), x);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rare_instance_scores_far_below_the_usual_ones() {
        let mut h = HalfSpaceTrees::new(
            2,
            HstConfig {
                window: 64,
                ..Default::default()
            },
        );
        assert!(!h.warm());
        // Normal: near the origin, a little jitter.
        let mut rng = Rng(7);
        for _ in 0..128 {
            h.update(&[0.05 * rng.unit(), 0.05 * rng.unit()]);
        }
        assert!(h.warm());
        let usual = h.score(&[0.02, 0.03]);
        let rare = h.score(&[0.8, 0.7]);
        assert!(usual > 0.0 && usual <= h.max_score());
        assert!(rare * 100.0 < usual, "rare {rare} vs usual {usual}");
        // The same seed builds the same trees: the same stream gives the same scores.
        let mut h2 = HalfSpaceTrees::new(
            2,
            HstConfig {
                window: 64,
                ..Default::default()
            },
        );
        let mut rng = Rng(7);
        for _ in 0..128 {
            h2.update(&[0.05 * rng.unit(), 0.05 * rng.unit()]);
        }
        assert_eq!(h2.score(&[0.8, 0.7]), rare);
    }

    #[test]
    fn counts_go_on_a_capped_log_scale() {
        let w = Window {
            restarts: 20.0,
            warning_events: 1000.0,
            not_ready_pods: 0.5,
            ..Default::default()
        };
        let x = w.instance();
        assert!((x[0] - 1.0).abs() < 1e-9 && x[1] == 1.0 && x[2] == 0.5 && x[4] == 0.0);
        assert!(w.troubled());
        assert!(!Window::default().troubled());
        let blip = Window {
            restarts: 1.0,
            warning_events: 2.0,
            ..Default::default()
        };
        assert!(!blip.troubled());
    }
}
