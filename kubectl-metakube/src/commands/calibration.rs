//! Calibration of the `confidence` the daemon reports: a reliability table (answers binned by
//! confidence, each bin's accuracy beside its mean confidence) and the expected calibration
//! error, ECE = Σ_bins (n_bin / n) · |accuracy_bin − confidence_bin| (Guo et al., "On
//! Calibration of Modern Neural Networks", ICML 2017).

use std::io::Write;

use serde::Serialize;

/// Bins of width 0.1.
const BINS: usize = 10;

/// One bin of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Bin {
    /// Lower edge.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Answers in it.
    pub n: usize,
    /// Their mean confidence.
    pub confidence: f64,
    /// Share of them that were right.
    pub accuracy: f64,
}

/// A reliability table for one pathway.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// Which answers (`analytical`, `intuitive`, `all`).
    pub pathway: String,
    /// Answers counted.
    pub n: usize,
    /// Expected calibration error.
    pub ece: f64,
    /// The non-empty bins.
    pub bins: Vec<Bin>,
}

/// The table for (confidence, right) pairs.
pub fn calibration(pathway: &str, points: &[(f64, bool)]) -> Calibration {
    let mut sums = vec![(0usize, 0.0f64, 0usize); BINS];
    for &(c, ok) in points {
        let c = c.clamp(0.0, 1.0);
        let i = ((c * BINS as f64) as usize).min(BINS - 1);
        sums[i].0 += 1;
        sums[i].1 += c;
        sums[i].2 += usize::from(ok);
    }
    let n = points.len();
    let mut ece = 0.0;
    let mut bins = Vec::new();
    for (i, (k, csum, right)) in sums.into_iter().enumerate() {
        if k == 0 {
            continue;
        }
        let confidence = csum / k as f64;
        let accuracy = right as f64 / k as f64;
        ece += k as f64 / n as f64 * (accuracy - confidence).abs();
        bins.push(Bin {
            lo: i as f64 / BINS as f64,
            hi: (i + 1) as f64 / BINS as f64,
            n: k,
            confidence,
            accuracy,
        });
    }
    Calibration {
        pathway: pathway.to_string(),
        n,
        ece,
        bins,
    }
}

/// Prints tables as text.
pub fn print(out: &mut dyn Write, tables: &[Calibration]) -> std::io::Result<()> {
    for t in tables.iter().filter(|t| t.n > 0) {
        writeln!(
            out,
            "calibration ({} answers, n={}): expected calibration error {:.3}",
            t.pathway, t.n, t.ece
        )?;
        for b in &t.bins {
            writeln!(
                out,
                "  confidence {:.1}–{:.1}: n={:<4} mean confidence {:.2}, right {:.0}%",
                b.lo,
                b.hi,
                b.n,
                b.confidence,
                b.accuracy * 100.0
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calibrated_set_has_no_error_and_an_overconfident_one_does() {
        // 0.75 confidence, 3 of 4 right: calibrated.
        let good = [(0.75, true), (0.75, true), (0.75, true), (0.75, false)];
        assert!(calibration("all", &good).ece < 1e-9);
        // 0.95 confidence, half right: ECE 0.45.
        let bad = [(0.95, true), (0.95, false)];
        let c = calibration("all", &bad);
        assert!((c.ece - 0.45).abs() < 1e-9, "{c:?}");
        assert_eq!(c.bins.len(), 1);
        assert_eq!(c.bins[0].n, 2);
    }
}
