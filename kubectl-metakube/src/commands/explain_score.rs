//! `eval DIR --explain`: what the daemon's model wrote over a set of scenarios, sentence by
//! sentence — how many were shown, how many the check removed and for which kind of claim —
//! and how fast it wrote them.

use std::collections::BTreeMap;

use metakube_shared::Explanation;
use serde::Serialize;

/// The kinds of claim a sentence can be removed for, as the daemon words them (the first
/// prefix that matches).
const KINDS: &[(&str, &str)] = &[
    ("not in the snapshot", "name or value not in the snapshot"),
    (
        "gives a cause without",
        "a cause sentence blaming the wrong thing",
    ),
    (
        "gives the fix as the cause",
        "a cause sentence blaming the wrong thing",
    ),
    ("blames ", "a cause sentence blaming the wrong thing"),
    ("gives ", "a value in another role"),
    ("adds what", "elaboration beyond the facts"),
];

/// The kind of claim one `why` line reports.
pub fn kind_of(why: &str) -> &'static str {
    if let Some((_, k)) = KINDS.iter().find(|(p, _)| why.starts_with(p)) {
        return k;
    }
    if why.starts_with("says ") && why.ends_with("where the facts describe a fault") {
        return "a fault called healthy";
    }
    if why.starts_with("says ") {
        return "a mechanism the facts do not name";
    }
    "other"
}

/// The model's sentences over a set of scenarios.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExplainScore {
    /// The model (the first backend seen).
    pub backend: String,
    /// Scenarios with an explanation.
    pub explained: usize,
    /// Scenarios whose explanation was unavailable, with why (the first few).
    pub unavailable: Vec<String>,
    /// Sentences written.
    pub sentences: usize,
    /// Sentences shown.
    pub shown: usize,
    /// Sentences removed, by the kind of claim that failed (a sentence counts once per kind).
    pub removed_by: BTreeMap<String, usize>,
    /// Scenarios where every sentence was removed.
    pub nothing_left: usize,
    /// First token, ms, p50 and p90.
    pub first_token_p50_ms: f64,
    /// First token p90, ms.
    pub first_token_p90_ms: f64,
    /// Decode speed p50, tokens/s.
    pub tokens_per_s_p50: f64,
}

impl ExplainScore {
    /// Totals over the explanations received (`None` where the stream brought none).
    pub fn of<'a>(explanations: impl IntoIterator<Item = Option<&'a Explanation>>) -> ExplainScore {
        let mut s = ExplainScore::default();
        let mut first = Vec::new();
        let mut tps = Vec::new();
        for e in explanations {
            let Some(e) = e else {
                if s.unavailable.len() < 5 {
                    s.unavailable
                        .push("no explanation arrived in time".to_string());
                }
                continue;
            };
            if s.backend.is_empty() {
                s.backend.clone_from(&e.backend);
            }
            if let Some(why) = &e.unavailable {
                if s.unavailable.len() < 5 {
                    s.unavailable.push(why.clone());
                }
                continue;
            }
            s.explained += 1;
            s.sentences += e.sentences.len();
            s.shown += e.sentences.iter().filter(|j| j.shown).count();
            if !e.sentences.is_empty() && e.sentences.iter().all(|j| !j.shown) {
                s.nothing_left += 1;
            }
            for j in e.sentences.iter().filter(|j| !j.shown) {
                let mut kinds: Vec<&str> = j.why.iter().map(|w| kind_of(w)).collect();
                kinds.sort_unstable();
                kinds.dedup();
                for k in kinds {
                    *s.removed_by.entry(k.to_string()).or_default() += 1;
                }
            }
            first.push(e.first_token_ms);
            tps.push(e.tokens_per_s);
        }
        s.first_token_p50_ms = super::eval::percentile(&mut first, 0.5);
        s.first_token_p90_ms = super::eval::percentile(&mut first, 0.9);
        s.tokens_per_s_p50 = super::eval::percentile(&mut tps, 0.5);
        s
    }

    /// The report's lines.
    pub fn print(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let pct = |n: usize| {
            if self.sentences == 0 {
                0.0
            } else {
                n as f64 * 100.0 / self.sentences as f64
            }
        };
        writeln!(
            out,
            "explanations by {}: {} scenario(s), {} sentence(s); shown {} ({:.0}%), removed {} ({:.0}%); nothing left in {}",
            if self.backend.is_empty() { "-" } else { &self.backend },
            self.explained,
            self.sentences,
            self.shown,
            pct(self.shown),
            self.sentences - self.shown,
            pct(self.sentences - self.shown),
            self.nothing_left
        )?;
        for (k, n) in &self.removed_by {
            writeln!(out, "  removed for {k}: {n} ({:.0}%)", pct(*n))?;
        }
        for why in &self.unavailable {
            writeln!(out, "  no explanation: {why}")?;
        }
        writeln!(
            out,
            "  first token p50 {:.0} ms, p90 {:.0} ms; decode p50 {:.1} tok/s",
            self.first_token_p50_ms, self.first_token_p90_ms, self.tokens_per_s_p50
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metakube_shared::JudgedSentence;

    #[test]
    fn sentences_are_counted_by_the_kind_of_claim_that_failed() {
        let e = Explanation {
            backend: "candle:m".into(),
            sentences: vec![
                JudgedSentence {
                    text: "a".into(),
                    shown: true,
                    why: vec![],
                },
                JudgedSentence {
                    text: "b".into(),
                    shown: false,
                    why: vec![
                        "says \"exception\" (code_error), which the facts do not".into(),
                        "not in the snapshot: payments-db".into(),
                        "blames worker-1, which the facts do not give as the cause".into(),
                    ],
                },
                JudgedSentence {
                    text: "c".into(),
                    shown: false,
                    why: vec!["says \"is healthy\" where the facts describe a fault".into()],
                },
            ],
            first_token_ms: 900.0,
            tokens_per_s: 40.0,
            ..Default::default()
        };
        let none = Explanation {
            unavailable: Some("model missing".into()),
            ..Default::default()
        };
        let s = ExplainScore::of([Some(&e), Some(&none), None]);
        assert_eq!((s.explained, s.sentences, s.shown), (1, 3, 1));
        assert_eq!(s.removed_by["a mechanism the facts do not name"], 1);
        assert_eq!(s.removed_by["name or value not in the snapshot"], 1);
        assert_eq!(s.removed_by["a fault called healthy"], 1);
        assert_eq!(s.removed_by["a cause sentence blaming the wrong thing"], 1);
        assert_eq!(s.unavailable.len(), 2);
        assert_eq!(s.first_token_p50_ms, 900.0);
    }
}
