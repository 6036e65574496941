//! Counters and latency percentiles for `/v1/stats` and `/metrics` (Prometheus text format).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Keeps the last this many latencies for percentiles.
const WINDOW: usize = 4096;

/// Daemon metrics.
#[derive(Default)]
pub struct Metrics {
    /// Diagnoses answered.
    pub diagnoses: AtomicU64,
    /// Diagnoses answered on the intuitive pathway.
    pub intuitive: AtomicU64,
    /// Requests refused.
    pub rejected: AtomicU64,
    /// Feedback records accepted.
    pub feedback: AtomicU64,
    /// Handler panics caught.
    pub panics: AtomicU64,
    /// Diagnoses stopped because their client went away.
    pub abandoned: AtomicU64,
    latencies: Mutex<Vec<f64>>,
}

impl Metrics {
    /// Records one diagnose latency in ms.
    pub fn observe(&self, ms: f64) {
        let mut l = self.latencies.lock().unwrap_or_else(|p| p.into_inner());
        if l.len() == WINDOW {
            l.remove(0);
        }
        l.push(ms);
    }

    /// The q-quantile (0–1) of recent latencies, ms.
    pub fn quantile(&self, q: f64) -> f64 {
        let mut l = self
            .latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if l.is_empty() {
            return 0.0;
        }
        l.sort_by(f64::total_cmp);
        let i = ((l.len() as f64 - 1.0) * q).round() as usize;
        l[i.min(l.len() - 1)]
    }

    /// Prometheus text exposition.
    pub fn render(&self, uptime_s: f64) -> String {
        let mut s = String::new();
        let counter = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            &mut s,
            "metakube_diagnoses_total",
            "Diagnoses answered.",
            self.diagnoses.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "metakube_diagnoses_intuitive_total",
            "Diagnoses answered from episodic memory.",
            self.intuitive.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "metakube_requests_rejected_total",
            "Requests refused (bad input, protocol, size).",
            self.rejected.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "metakube_diagnoses_abandoned_total",
            "Diagnoses stopped because their client went away.",
            self.abandoned.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "metakube_feedback_total",
            "Feedback records accepted.",
            self.feedback.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "metakube_handler_panics_total",
            "Request handlers that panicked (answered 500).",
            self.panics.load(Ordering::Relaxed),
        );
        let _ = writeln!(s, "# HELP metakube_diagnose_latency_ms Diagnose latency over the last {WINDOW} requests.\n# TYPE metakube_diagnose_latency_ms summary");
        for q in [0.5, 0.9, 0.99] {
            let _ = writeln!(
                s,
                "metakube_diagnose_latency_ms{{quantile=\"{q}\"}} {:.3}",
                self.quantile(q)
            );
        }
        let _ = writeln!(s, "# HELP metakube_uptime_seconds Seconds since the daemon started.\n# TYPE metakube_uptime_seconds gauge\nmetakube_uptime_seconds {uptime_s:.3}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_exposition() {
        let m = Metrics::default();
        for i in 1..=100 {
            m.observe(i as f64);
        }
        assert_eq!(m.quantile(0.5), 51.0);
        assert_eq!(m.quantile(0.99), 99.0);
        m.diagnoses.fetch_add(3, Ordering::Relaxed);
        let text = m.render(1.0);
        assert!(text.contains("metakube_diagnoses_total 3"));
        assert!(text.contains("metakube_diagnose_latency_ms{quantile=\"0.5\"} 51.000"));
    }
}
