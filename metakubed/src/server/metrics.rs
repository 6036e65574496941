//! Counters and latency for `/v1/stats` (recent percentiles) and `/metrics` (the OpenMetrics
//! text format, written by the prometheus-client crate: counters, a latency histogram with
//! `_bucket`/`_sum`/`_count`, an uptime gauge).

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Keeps the last this many latencies for the percentiles of `/v1/stats`.
const WINDOW: usize = 4096;

/// Daemon metrics.
pub struct Metrics {
    /// Diagnoses answered.
    pub diagnoses: Counter,
    /// Diagnoses answered on the intuitive pathway.
    pub intuitive: Counter,
    /// Requests refused.
    pub rejected: Counter,
    /// Feedback records accepted.
    pub feedback: Counter,
    /// Handler panics caught.
    pub panics: Counter,
    /// Diagnoses stopped because their client went away.
    pub abandoned: Counter,
    /// Diagnoses that re-linked their cluster's kept KubeGraph instead of building one.
    pub graphs_relinked: Counter,
    /// Objects whose relations those re-links derived again.
    pub graph_objects_derived: Counter,
    latency: Histogram,
    uptime: Gauge<f64, AtomicU64>,
    registry: Registry,
    latencies: Mutex<Vec<f64>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let m = Metrics {
            diagnoses: Counter::default(),
            intuitive: Counter::default(),
            rejected: Counter::default(),
            feedback: Counter::default(),
            panics: Counter::default(),
            abandoned: Counter::default(),
            graphs_relinked: Counter::default(),
            graph_objects_derived: Counter::default(),
            // 1 ms to ~33 s.
            latency: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            uptime: Gauge::default(),
            registry: Registry::default(),
            latencies: Mutex::new(Vec::new()),
        };
        let mut r = Registry::default();
        let counters = [
            ("metakube_diagnoses", "Diagnoses answered", &m.diagnoses),
            (
                "metakube_diagnoses_intuitive",
                "Diagnoses answered from episodic memory",
                &m.intuitive,
            ),
            (
                "metakube_requests_rejected",
                "Requests refused (bad input, protocol, size)",
                &m.rejected,
            ),
            (
                "metakube_diagnoses_abandoned",
                "Diagnoses stopped because their client went away",
                &m.abandoned,
            ),
            (
                "metakube_feedback",
                "Feedback records accepted",
                &m.feedback,
            ),
            (
                "metakube_handler_panics",
                "Request handlers that panicked (answered 500)",
                &m.panics,
            ),
            (
                "metakube_graphs_relinked",
                "Diagnoses that re-linked their cluster's kept KubeGraph instead of building one",
                &m.graphs_relinked,
            ),
            (
                "metakube_graph_objects_rederived",
                "Objects whose relations those re-links derived again (the rest were kept)",
                &m.graph_objects_derived,
            ),
        ];
        for (name, help, c) in counters {
            r.register(name, help, c.clone());
        }
        r.register(
            "metakube_diagnose_duration_seconds",
            "Time to answer a diagnosis, from request to answer",
            m.latency.clone(),
        );
        r.register(
            "metakube_uptime_seconds",
            "Seconds since the daemon started",
            m.uptime.clone(),
        );
        Metrics { registry: r, ..m }
    }
}

impl Metrics {
    /// Records one diagnose latency in ms.
    pub fn observe(&self, ms: f64) {
        self.latency.observe(ms / 1000.0);
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

    /// The OpenMetrics text exposition.
    pub fn render(&self, uptime_s: f64) -> String {
        self.uptime.set(uptime_s);
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut s, &self.registry);
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
        m.diagnoses.inc_by(3);
        let text = m.render(1.0);
        assert!(text.contains("metakube_diagnoses_total 3"), "{text}");
        assert!(
            text.contains("metakube_diagnose_duration_seconds_count 100"),
            "{text}"
        );
        assert!(
            text.contains("metakube_diagnose_duration_seconds_sum 5.05"),
            "{text}"
        );
        assert!(
            text.contains("metakube_diagnose_duration_seconds_bucket{le=\"0.064\"} 64"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE metakube_uptime_seconds gauge"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
        assert!(!text.contains(".."), "one full stop per help line: {text}");
    }
}
