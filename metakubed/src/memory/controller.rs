//! The meta-cognitive controller: decides between the intuitive pathway (a recalled cause,
//! re-verified in this snapshot) and the analytical one, and adapts its threshold θ from
//! feedback — confirmed successes lower it, errors raise it, within bounds.

use metakube_shared::{MemoryReport, SimilarEpisode};
use serde::{Deserialize, Serialize};

use super::signature::Signature;
use super::{Recalled, Weights};
use crate::graph::search::Finding;

/// Smallest finding score that counts as "the recalled cause verifies here".
pub const VERIFY_FLOOR: f64 = crate::engine::MIN_ROOT_SCORE;

/// θ and how it moves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Theta {
    /// Current threshold.
    pub value: f64,
    /// Lowest it may go.
    pub min: f64,
    /// Highest it may go.
    pub max: f64,
    /// Step down after a confirmed intuitive answer.
    pub down: f64,
    /// Step up after an intuitive answer the user refuted.
    pub up: f64,
}

impl Default for Theta {
    fn default() -> Theta {
        Theta {
            value: 0.70,
            min: 0.50,
            // Below the confidence an exact repeat of a once-confirmed cause reaches (≈ 0.93):
            // a θ above it would stop memory from ever answering again.
            max: 0.90,
            down: 0.01,
            up: 0.05,
        }
    }
}

impl Theta {
    /// After an intuitive answer's outcome is known.
    pub fn learn(&mut self, success: bool) {
        let v = if success {
            self.value - self.down
        } else {
            self.value + self.up
        };
        self.value = (v.clamp(self.min, self.max) * 1e6).round() / 1e6;
    }
}

/// What the controller decided for one diagnosis.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// Index into the analysis' findings of the recalled cause, when the intuitive pathway
    /// answers.
    pub chosen: Option<usize>,
    /// The episode behind it.
    pub episode: Option<u64>,
    /// Its pattern.
    pub pattern: Option<u64>,
    /// The account given to the user.
    pub report: MemoryReport,
}

/// Context compatibility of a recalled episode with a verified finding here: the same kind
/// asked about, the same shape of causal path, overlapping symptom codes.
pub fn compatibility(r: &Recalled, f: &Finding, sig: &Signature) -> f64 {
    let e = &r.episode;
    let target = f64::from(u8::from(e.context.target_kind == sig.context.target_kind));
    let kinds: Vec<&str> = f.path.iter().map(|p| p.kind.as_str()).collect();
    let path = f64::from(u8::from(
        e.context
            .path_kinds
            .iter()
            .map(String::as_str)
            .eq(kinds.iter().copied()),
    ));
    let inter = e.context.codes.intersection(&sig.context.codes).count() as f64;
    let union = e.context.codes.union(&sig.context.codes).count().max(1) as f64;
    0.5 * target + 0.3 * path + 0.2 * inter / union
}

/// Chooses the pathway. A recalled cause is only eligible when the verifier for it finds it
/// in this snapshot (on an object of the remembered kind) and the search did not find it
/// explained by a deeper cause; a recalled cause that the analytical ranking puts below
/// another loses confidence in proportion (memory may reorder close calls, not overrule clear
/// evidence). Among the eligible, the most confident wins, and it answers at or above θ.
pub fn decide(
    recalled: &[Recalled],
    findings: &[Finding],
    sig: &Signature,
    theta: f64,
    w: &Weights,
) -> Decision {
    let mut best: Option<(f64, usize, &Recalled)> = None;
    let mut similar = Vec::new();
    let top_score = findings.first().map_or(0.0, |f| f.score);
    for r in recalled {
        let e = &r.episode;
        // Its own learned cause first, else a verified finding of the same cause.
        let at = findings
            .iter()
            .position(|f| f.learned_from == Some(e.id))
            .or_else(|| {
                findings.iter().position(|f| {
                    f.learned_from.is_none()
                        && f.reason == e.outcome.reason
                        && f.object.kind == e.context.cause_kind
                        && e.outcome.category.is_none_or(|c| c == f.category)
                        && f.score >= VERIFY_FLOOR
                        && !f.note.starts_with("explained by")
                })
            });
        similar.push(SimilarEpisode {
            episode: e.id,
            reason: e.outcome.reason.clone(),
            cause_kind: e.context.cause_kind.clone(),
            similarity: round3(r.similarity),
            score: round3(r.score),
            verified: at.is_some(),
        });
        let Some(at) = at else { continue };
        let rank = (findings[at].score / top_score.max(1e-9)).min(1.0);
        let conf = rank
            * w.confidence(
                r.similarity,
                r.recency,
                r.success_rate(),
                compatibility(r, &findings[at], sig),
            );
        if best.as_ref().is_none_or(|(c, _, _)| conf > *c) {
            best = Some((conf, at, r));
        }
    }
    similar.truncate(5);
    let mut report = MemoryReport {
        theta: round3(theta),
        similar,
        ..Default::default()
    };
    let Some((conf, at, r)) = best else {
        report.why = if recalled.is_empty() {
            "no similar episode in memory: analytical pathway".into()
        } else {
            format!(
                "{} similar episode(s) recalled, but none of their causes verifies in this snapshot: analytical pathway",
                recalled.len()
            )
        };
        return Decision {
            report,
            ..Default::default()
        };
    };
    report.confidence = round3(conf);
    if let Some(p) = &r.pattern {
        report.seen = p.episodes;
        report.worked = p.worked;
    }
    let what = format!(
        "{} on a {} (episode {}, similarity {:.2})",
        r.episode.outcome.reason, r.episode.context.cause_kind, r.episode.id, r.similarity
    );
    if conf >= theta {
        report.why = format!(
            "recalled {what}, re-verified in this snapshot; confidence {conf:.2} ≥ θ {theta:.2}: intuitive pathway"
        );
        Decision {
            chosen: Some(at),
            episode: Some(r.episode.id),
            pattern: r.pattern.as_ref().map(|p| p.id),
            report,
        }
    } else {
        report.why =
            format!("recalled {what}; confidence {conf:.2} < θ {theta:.2}: analytical pathway");
        Decision {
            report,
            ..Default::default()
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theta_moves_within_bounds() {
        let mut t = Theta::default();
        t.learn(true);
        assert!((t.value - 0.69).abs() < 1e-9);
        for _ in 0..100 {
            t.learn(false);
        }
        assert_eq!(t.value, t.max);
        for _ in 0..1000 {
            t.learn(true);
        }
        assert_eq!(t.value, t.min);
    }
}
