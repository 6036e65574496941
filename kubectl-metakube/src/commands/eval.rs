//! `eval DIR`: runs scenario folders (`dump/` + `truth.json` or `expected.yaml`) through the
//! daemon and scores top-1/top-3 root cause, category, valid patches and latency.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use metakube_shared::{
    Category, DiagnoseOptions, DiagnoseRequest, Diagnosis, ObjectRef, TargetRef,
};
use serde::{Deserialize, Serialize};

use crate::cli::{EvalArgs, GlobalArgs};
use crate::render::Output;

/// What a scenario expects.
#[derive(Debug, Clone, Deserialize)]
pub struct Truth {
    /// The object asked about.
    pub target: ObjectRef,
    /// The category; absent for a healthy target.
    #[serde(default)]
    pub category: Option<Category>,
    /// The verdict expected (`healthy` for a target among broken neighbours that is fine).
    #[serde(default)]
    pub verdict: Option<String>,
    /// Other acceptable categories (a fault that honestly sits in two, e.g. a request no node
    /// can fit is both `resource` and `scheduling`).
    #[serde(default)]
    pub category_any_of: Vec<Category>,
    /// Acceptable root-cause objects.
    #[serde(default)]
    pub root_cause_any_of: Vec<ObjectRef>,
    /// The root-cause object (expected.yaml form).
    #[serde(default)]
    pub root_cause: Option<ObjectRef>,
    /// The expected reason code, when the scenario names one.
    #[serde(default)]
    pub reason: Option<String>,
    /// The fault in one sentence, as an SRE would write it in a correction's note.
    #[serde(default)]
    pub fault: Option<String>,
}

impl Truth {
    /// The snapshot of this scenario's target from its `dump/` folder.
    pub fn snapshot(&self, dir: &Path) -> anyhow::Result<metakube_shared::Snapshot> {
        let target = TargetRef {
            kind: self.target.kind.clone(),
            name: self.target.name.clone(),
        };
        let ns = self.target.namespace.as_deref().unwrap_or("default");
        super::diagnose::snapshot_from_dump(&dir.join("dump"), &target, ns)
    }

    /// Whether `c` is an acceptable category.
    pub fn accepts_category(&self, c: Option<Category>) -> bool {
        match self.category {
            None => c.is_none(),
            Some(want) => c.is_some_and(|c| c == want || self.category_any_of.contains(&c)),
        }
    }

    /// Whether the scenario's target is healthy (no root cause expected).
    pub fn healthy(&self) -> bool {
        self.verdict.as_deref() == Some("healthy")
            || (self.category.is_none()
                && self.root_cause_any_of.is_empty()
                && self.root_cause.is_none())
    }

    /// Whether `r` is an acceptable root cause.
    pub fn accepts(&self, r: &ObjectRef) -> bool {
        self.root_cause_any_of
            .iter()
            .chain(self.root_cause.iter())
            .any(|t| {
                t.kind == r.kind
                    && t.name == r.name
                    && (t.namespace.is_none() || t.namespace == r.namespace)
            })
    }
}

/// One scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Folder name.
    pub name: String,
    /// Expected category (absent for a healthy target).
    pub category: Option<Category>,
    /// Category answered.
    pub got_category: Option<Category>,
    /// Root cause answered.
    pub got_root: Option<ObjectRef>,
    /// Reason answered.
    pub got_reason: Option<String>,
    /// Top-1 root cause right.
    pub top1: bool,
    /// Right within the first three hypotheses.
    pub top3: bool,
    /// Category right.
    pub category_ok: bool,
    /// Root-cause object and category both right (the headline figure).
    pub both: bool,
    /// The reason code answered matches the scenario's, when it names one (None otherwise).
    pub reason_ok: Option<bool>,
    /// The answer's verdict (`root_cause`, `symptoms_only`, `healthy`, `inconclusive`).
    pub verdict: Option<String>,
    /// Whether the first patch validated (None when no patch was offered).
    pub patch_valid: Option<bool>,
    /// The confidence reported with the root cause (0 when none was named).
    pub confidence: f64,
    /// Round trip, ms.
    pub latency_ms: f64,
    /// Error, if the case failed to run.
    pub error: Option<String>,
    /// The model's explanation, with each sentence judged (`--explain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<metakube_shared::Explanation>,
}

/// Totals for one group of cases.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Score {
    /// Cases.
    pub n: usize,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-3 accuracy.
    pub top3: f64,
    /// Category accuracy.
    pub category: f64,
    /// Root-cause object and category both right.
    pub both: f64,
    /// Reason accuracy over the cases whose truth names a reason.
    pub reason: Option<f64>,
    /// Share of offered patches that validated.
    pub valid_patches: f64,
    /// Patches offered.
    pub patches: usize,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Overall.
    pub overall: Score,
    /// Per category.
    pub per_category: BTreeMap<String, Score>,
    /// Healthy targets for which a root cause was named.
    pub false_positives: usize,
    /// Latency p50, ms.
    pub latency_p50_ms: f64,
    /// Latency p99, ms.
    pub latency_p99_ms: f64,
    /// Reliability of the reported confidence over the answers that named a root cause
    /// (right = object and category).
    pub calibration: super::calibration::Calibration,
    /// The model's sentences (`--explain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<super::explain_score::ExplainScore>,
    /// Each case.
    pub cases: Vec<CaseResult>,
}

pub fn read_truth(dir: &Path) -> anyhow::Result<Truth> {
    let json = dir.join("truth.json");
    if json.exists() {
        let t = std::fs::read_to_string(&json)?;
        return serde_json::from_str(&t).with_context(|| format!("{}", json.display()));
    }
    let yaml = dir.join("expected.yaml");
    let t = std::fs::read_to_string(&yaml)
        .with_context(|| format!("{} has neither truth.json nor expected.yaml", dir.display()))?;
    serde_norway::from_str(&t).with_context(|| format!("{}", yaml.display()))
}

fn score(cases: &[&CaseResult]) -> Score {
    let n = cases.len();
    let frac = |f: &dyn Fn(&CaseResult) -> bool| {
        if n == 0 {
            0.0
        } else {
            cases.iter().filter(|c| f(c)).count() as f64 / n as f64
        }
    };
    let patches: Vec<bool> = cases.iter().filter_map(|c| c.patch_valid).collect();
    Score {
        n,
        top1: frac(&|c| c.top1),
        top3: frac(&|c| c.top3),
        category: frac(&|c| c.category_ok),
        both: frac(&|c| c.both),
        reason: {
            let r: Vec<bool> = cases.iter().filter_map(|c| c.reason_ok).collect();
            (!r.is_empty()).then(|| r.iter().filter(|b| **b).count() as f64 / r.len() as f64)
        },
        valid_patches: if patches.is_empty() {
            0.0
        } else {
            patches.iter().filter(|b| **b).count() as f64 / patches.len() as f64
        },
        patches: patches.len(),
    }
}

pub(crate) fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

/// Scenario folders under `dir`, sorted.
pub fn scenario_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("dump").is_dir())
        .collect();
    v.sort();
    Ok(v)
}

/// One diagnosis: the plain answer, or with `explain` the streamed one and the model's checked
/// explanation (`None` when it did not arrive in time).
async fn ask(
    client: &crate::client::DaemonClient,
    snapshot: metakube_shared::Snapshot,
    explain: bool,
) -> Result<(Diagnosis, Option<metakube_shared::Explanation>), crate::client::ClientError> {
    let req = DiagnoseRequest {
        snapshot,
        options: DiagnoseOptions {
            no_llm: !explain,
            explain: explain.then_some(true),
            no_memory: true,
        },
    };
    if !explain {
        return Ok((client.diagnose(req).await?, None));
    }
    let mut d = None;
    let mut e = None;
    client
        .diagnose_stream(
            req,
            std::time::Duration::from_secs(300),
            &mut |ev| match ev {
                metakube_shared::StreamEvent::Diagnosis { diagnosis } => d = Some(*diagnosis),
                metakube_shared::StreamEvent::Explanation { explanation } => e = Some(explanation),
                metakube_shared::StreamEvent::Token { .. } => {}
            },
        )
        .await?;
    match d {
        Some(d) => Ok((d, e)),
        None => Err(crate::client::ClientError::Transport {
            socket: client.socket().to_path_buf(),
            why: "the stream ended before the diagnosis".into(),
        }),
    }
}

/// Runs the evaluation.
pub async fn run(
    g: &GlobalArgs,
    a: &EvalArgs,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<Report> {
    let client = super::daemon(g).await?;
    let mut cases = Vec::new();
    for dir in scenario_dirs(&a.dir)? {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let truth = read_truth(&dir)?;
        let mut r = CaseResult {
            name: name.clone(),
            category: truth.category,
            got_category: None,
            got_root: None,
            got_reason: None,
            top1: false,
            top3: false,
            category_ok: false,
            both: false,
            reason_ok: None,
            verdict: None,
            patch_valid: None,
            confidence: 0.0,
            latency_ms: 0.0,
            error: None,
            explanation: None,
        };
        let snap = match truth.snapshot(&dir) {
            Ok(s) => s,
            Err(e) => {
                r.error = Some(e.to_string());
                cases.push(r);
                continue;
            }
        };
        let t = Instant::now();
        let res = ask(&client, snap, a.explain).await;
        r.latency_ms = t.elapsed().as_secs_f64() * 1000.0;
        let res = res.map(|(d, e)| {
            r.explanation = e;
            d
        });
        match res {
            Ok(d) => {
                r.got_category = d.category;
                r.got_root = d.root_cause.as_ref().map(|c| c.object.clone());
                r.got_reason = d.root_cause.as_ref().map(|c| c.reason.clone());
                r.top1 = if truth.healthy() {
                    d.root_cause.is_none() && d.verdict == metakube_shared::Verdict::Healthy
                } else {
                    r.got_root.as_ref().is_some_and(|o| truth.accepts(o))
                };
                r.top3 = r.top1
                    || d.hypotheses
                        .iter()
                        .take(3)
                        .any(|h| truth.accepts(&h.object));
                r.category_ok = truth.accepts_category(d.category);
                r.both = r.top1 && r.category_ok;
                r.reason_ok = truth
                    .reason
                    .as_ref()
                    .map(|want| r.got_reason.as_deref() == Some(want.as_str()));
                r.verdict = Some(d.verdict.as_str().to_string());
                r.confidence = d.confidence;
                r.patch_valid = d
                    .remediation
                    .iter()
                    .find_map(|m| m.patch.as_ref())
                    .map(|p| p.validated);
            }
            Err(e) => r.error = Some(e.to_string()),
        }
        if a.verbose && a.output == Output::Text {
            writeln!(
                out,
                "{:<48} {} {} {:<13} {}",
                r.name,
                if r.top1 {
                    "top1"
                } else if r.top3 {
                    "top3"
                } else {
                    "MISS"
                },
                if r.category_ok { "cat" } else { "CAT" },
                r.got_category
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                r.got_root
                    .as_ref()
                    .map(|o| format!(
                        "{}/{} {}",
                        o.kind,
                        o.name,
                        r.got_reason.clone().unwrap_or_default()
                    ))
                    .or(r.error.clone())
                    .unwrap_or_default()
            )?;
        }
        cases.push(r);
    }
    let mut per_category = BTreeMap::new();
    for c in Category::ALL {
        let v: Vec<&CaseResult> = cases.iter().filter(|x| x.category == Some(c)).collect();
        if !v.is_empty() {
            per_category.insert(c.to_string(), score(&v));
        }
    }
    let healthy: Vec<&CaseResult> = cases.iter().filter(|x| x.category.is_none()).collect();
    if !healthy.is_empty() {
        per_category.insert("healthy".to_string(), score(&healthy));
    }
    // A root cause named for a healthy target is a false positive.
    let false_positives = healthy.iter().filter(|c| c.got_root.is_some()).count();
    let mut lat: Vec<f64> = cases
        .iter()
        .filter(|c| c.error.is_none())
        .map(|c| c.latency_ms)
        .collect();
    let report = Report {
        overall: score(&cases.iter().collect::<Vec<_>>()),
        per_category,
        false_positives,
        latency_p50_ms: percentile(&mut lat, 0.5),
        latency_p99_ms: percentile(&mut lat, 0.99),
        explain: a.explain.then(|| {
            super::explain_score::ExplainScore::of(cases.iter().map(|c| c.explanation.as_ref()))
        }),
        calibration: super::calibration::calibration(
            "analytical",
            &cases
                .iter()
                .filter(|c| c.got_root.is_some())
                .map(|c| (c.confidence, c.both))
                .collect::<Vec<_>>(),
        ),
        cases,
    };
    match a.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        _ => {
            writeln!(
                out,
                "{:<14} {:>4} {:>6} {:>6} {:>6} {:>9} {:>7} {:>8}",
                "category", "n", "obj+cat", "top1", "top3", "category", "reason", "patches"
            )?;
            for (k, s) in report.per_category.iter().chain(
                [("overall".to_string(), report.overall.clone())]
                    .iter()
                    .map(|(k, s)| (k, s)),
            ) {
                writeln!(
                    out,
                    "{:<14} {:>4} {:>6.0}% {:>5.0}% {:>5.0}% {:>8.0}% {:>7} {:>4.0}% of {}",
                    k,
                    s.n,
                    s.both * 100.0,
                    s.top1 * 100.0,
                    s.top3 * 100.0,
                    s.category * 100.0,
                    s.reason
                        .map_or_else(|| "-".to_string(), |r| format!("{:.0}%", r * 100.0)),
                    s.valid_patches * 100.0,
                    s.patches
                )?;
            }
            if report.per_category.contains_key("healthy") {
                writeln!(
                    out,
                    "false positives (a root cause named for a healthy target): {}",
                    report.false_positives
                )?;
            }
            writeln!(
                out,
                "latency ({}): p50 {:.1} ms, p99 {:.1} ms",
                if a.explain {
                    "diagnosis and explanation, warm daemon"
                } else {
                    "round trip, warm daemon, --no-llm"
                },
                report.latency_p50_ms,
                report.latency_p99_ms
            )?;
            if let Some(e) = &report.explain {
                e.print(out)?;
            }
            if a.verbose {
                super::calibration::print(out, std::slice::from_ref(&report.calibration))?;
            } else {
                writeln!(
                    out,
                    "calibration: expected calibration error {:.3} over {} answers (-v for the table)",
                    report.calibration.ece, report.calibration.n
                )?;
            }
        }
    }
    Ok(report)
}
