//! `eval DIR --learn`: the learning curve. Scenarios are replayed as a stream (variant 0 of
//! every family, then variant 1, …) through the daemon with memory on; after each answer the
//! truth is sent back as feedback, as an SRE would (`--fixed` when right, `--not-fixed` with the
//! real cause when wrong). Each case is also diagnosed with memory off, for the comparison.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use metakube_shared::{
    DiagnoseOptions, DiagnoseRequest, Diagnosis, FeedbackOutcome, FeedbackRequest,
    FeedbackResponse, Pathway,
};
use serde::Serialize;

use super::eval::{read_truth, scenario_dirs, Truth};
use crate::cli::{EvalArgs, GlobalArgs};
use crate::render::Output;

/// One step of the stream.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Scenario folder.
    pub name: String,
    /// Fault family (the expected reason, or the category when none is named).
    pub family: String,
    /// Whether a case of this family was confirmed earlier in the stream.
    pub repeat: bool,
    /// Pathway memory took.
    pub pathway: Pathway,
    /// Top-1 right with memory on.
    pub memory_top1: bool,
    /// Top-1 right with memory off.
    pub analytical_top1: bool,
    /// The controller's θ after this step's feedback... as reported with the answer.
    pub theta: f64,
    /// The answer with memory on (`Kind/name Reason`), to see what a wrong recall chose.
    pub answer: Option<String>,
}

/// The learning-curve report.
#[derive(Debug, Clone, Serialize)]
pub struct LearnReport {
    /// Cases in the stream.
    pub n: usize,
    /// Cases whose family was seen (confirmed) before.
    pub repeats: usize,
    /// Of the repeats, answered on the intuitive pathway.
    pub repeats_intuitive: usize,
    /// Top-1 accuracy with memory on, all cases.
    pub memory_top1: f64,
    /// Top-1 accuracy with memory off, all cases.
    pub analytical_top1: f64,
    /// Top-1 accuracy of the intuitive answers.
    pub intuitive_top1: f64,
    /// θ at the end.
    pub final_theta: f64,
    /// Every step.
    pub steps: Vec<Step>,
}

fn variant(dir: &std::path::Path) -> u32 {
    dir.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit('-').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn family(t: &Truth) -> String {
    t.reason.clone().unwrap_or_else(|| {
        t.category
            .map_or_else(|| "healthy".to_string(), |c| c.to_string())
    })
}

/// Runs the stream.
pub async fn run(g: &GlobalArgs, a: &EvalArgs, out: &mut dyn Write) -> anyhow::Result<LearnReport> {
    let client = super::daemon(g).await?;
    let mut dirs: Vec<PathBuf> = scenario_dirs(&a.dir)?;
    dirs.sort_by_key(|d| (variant(d), d.clone()));
    let mut confirmed: BTreeSet<String> = BTreeSet::new();
    let mut steps = Vec::new();
    for dir in dirs {
        let truth = read_truth(&dir)?;
        if truth.healthy() {
            continue; // nothing to learn from a healthy target
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let snap = match truth.snapshot(&dir) {
            Ok(s) => s,
            Err(e) => {
                writeln!(out, "{name}: skipped: {e}")?;
                continue;
            }
        };
        let ask = |no_memory: bool| DiagnoseRequest {
            snapshot: snap.clone(),
            options: DiagnoseOptions {
                no_llm: true,
                explain: None,
                no_memory,
            },
        };
        let off: Diagnosis = client.post("/v1/diagnose", &ask(true)).await?;
        let on: Diagnosis = client.post("/v1/diagnose", &ask(false)).await?;
        let right = |d: &Diagnosis| {
            d.root_cause
                .as_ref()
                .is_some_and(|c| truth.accepts(&c.object))
        };
        let fam = family(&truth);
        let step = Step {
            name: name.clone(),
            family: fam.clone(),
            repeat: confirmed.contains(&fam),
            pathway: on.pathway,
            memory_top1: right(&on),
            analytical_top1: right(&off),
            theta: on.memory.as_ref().map_or(0.0, |m| m.theta),
            answer: on
                .root_cause
                .as_ref()
                .map(|r| format!("{}/{} {}", r.object.kind, r.object.name, r.reason)),
        };
        // The SRE's feedback: confirm, or name the real cause.
        let fb = if step.memory_top1 {
            FeedbackRequest {
                diagnosis_id: on.id.clone(),
                outcome: FeedbackOutcome::Fixed,
                cause: None,
                reason: None,
                note: None,
                category: None,
                fix_command: None,
                replace: false,
            }
        } else {
            FeedbackRequest {
                diagnosis_id: on.id.clone(),
                outcome: FeedbackOutcome::NotFixed,
                cause: truth
                    .root_cause
                    .clone()
                    .or_else(|| truth.root_cause_any_of.first().cloned()),
                reason: truth.reason.clone(),
                note: Some("eval --learn: the truth of the scenario".into()),
                category: None,
                fix_command: None,
                replace: false,
            }
        };
        let r: FeedbackResponse = client.post("/v1/feedback", &fb).await?;
        if r.episode.is_some() && step.memory_top1 {
            confirmed.insert(fam);
        }
        if a.verbose && a.output == Output::Text {
            writeln!(
                out,
                "{:<48} {:<10} {:<6} memory {} analytical {} θ {:.2}",
                step.name,
                format!("{:?}", step.pathway).to_lowercase(),
                if step.repeat { "repeat" } else { "new" },
                if step.memory_top1 { "ok  " } else { "MISS" },
                if step.analytical_top1 { "ok  " } else { "MISS" },
                step.theta
            )?;
        }
        steps.push(step);
    }
    let n = steps.len();
    let share = |k: usize, n: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let repeats: Vec<&Step> = steps.iter().filter(|s| s.repeat).collect();
    let intuitive: Vec<&Step> = steps
        .iter()
        .filter(|s| s.pathway == Pathway::Intuitive)
        .collect();
    let final_theta = client
        .get::<serde_json::Value>("/v1/memory/stats")
        .await
        .ok()
        .and_then(|v| v["theta"].as_f64())
        .unwrap_or(0.0);
    let report = LearnReport {
        n,
        repeats: repeats.len(),
        repeats_intuitive: repeats
            .iter()
            .filter(|s| s.pathway == Pathway::Intuitive)
            .count(),
        memory_top1: share(steps.iter().filter(|s| s.memory_top1).count(), n),
        analytical_top1: share(steps.iter().filter(|s| s.analytical_top1).count(), n),
        intuitive_top1: share(
            intuitive.iter().filter(|s| s.memory_top1).count(),
            intuitive.len(),
        ),
        final_theta,
        steps,
    };
    match a.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        _ => {
            writeln!(
                out,
                "stream of {} cases, {} repeats of a family seen before",
                report.n, report.repeats
            )?;
            writeln!(
                out,
                "repeats answered intuitively: {} of {} ({:.0}%)",
                report.repeats_intuitive,
                report.repeats,
                share(report.repeats_intuitive, report.repeats) * 100.0
            )?;
            writeln!(
                out,
                "top-1 accuracy: memory on {:.1}%, memory off {:.1}%; intuitive answers {:.1}% right",
                report.memory_top1 * 100.0,
                report.analytical_top1 * 100.0,
                report.intuitive_top1 * 100.0
            )?;
            writeln!(out, "θ at the end: {:.3}", report.final_theta)?;
        }
    }
    Ok(report)
}
