//! `eval DIR --learn --corrections`: does one correction teach memory a fault family?
//!
//! Each scenario is diagnosed once (memory on) and answered from its truth as an SRE would —
//! `feedback ID --fixed` when the root-cause object and category are right, else
//! `feedback ID --not-fixed --cause KIND/NAME --note "<the truth's fault sentence>"` (no reason
//! code, no category: the daemon has to read them from the correction). Then the same fault
//! with the target and its namespace renamed is diagnosed on the same daemon; it counts when
//! it comes back right (object and category) on the intuitive pathway.

use std::io::Write;

use metakube_shared::{
    DiagnoseOptions, DiagnoseRequest, Diagnosis, FeedbackOutcome, FeedbackRequest,
    FeedbackResponse, ObjectRef, Pathway, Snapshot,
};
use serde::Serialize;
use serde_json::Value;

use super::eval::{read_truth, scenario_dirs, Truth};
use crate::cli::{EvalArgs, GlobalArgs};
use crate::render::Output;

/// One scenario of the stream.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// Scenario folder.
    pub name: String,
    /// First answer right (object and category).
    pub first_right: bool,
    /// First answer given on the intuitive pathway.
    pub first_intuitive: bool,
    /// The first answer's confidence (0 when it named no root cause).
    pub first_confidence: f64,
    /// The feedback given: `fixed` or `corrected`.
    pub feedback: String,
    /// What the daemon said it learnt from a correction.
    pub learned: Option<String>,
    /// Renamed repeat right (object and category).
    pub repeat_right: bool,
    /// Renamed repeat answered on the intuitive pathway.
    pub repeat_intuitive: bool,
    /// The repeat's answer (`Kind/name Reason category`).
    pub repeat_answer: Option<String>,
    /// The repeat's confidence.
    pub repeat_confidence: f64,
    /// Why memory answered the repeat as it did.
    pub repeat_memory: Option<String>,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct CorrectionsReport {
    /// Scenarios.
    pub n: usize,
    /// First answers right.
    pub first_right: usize,
    /// Corrections given.
    pub corrected: usize,
    /// First answers recalled from memory (intuitive) that were wrong: false recalls.
    pub false_recalls: usize,
    /// Renamed repeats right and intuitive, all scenarios.
    pub repeats_right_intuitive: usize,
    /// Renamed repeats right (either pathway).
    pub repeats_right: usize,
    /// Of the corrected scenarios, repeats right and intuitive.
    pub corrected_then_right_intuitive: usize,
    /// Reliability of the reported confidence, first answers and repeats together, per
    /// pathway.
    pub calibration: Vec<super::calibration::Calibration>,
    /// Every case.
    pub cases: Vec<Case>,
}

/// Renames an incident: the target's name and its namespace, wherever they appear (names of
/// the objects derived from it, labels, events, logs), as another deployment of the same
/// application would call them.
pub struct Renamer {
    name: (String, String),
    ns: Option<(String, String)>,
}

/// Replaces `old` by `new` where it stands as a whole name: not inside a longer run of letters
/// and digits (or of `extra` characters).
fn replace_word(s: &str, old: &str, new: &str, extra: &[char]) -> String {
    if old.is_empty() {
        return s.to_string();
    }
    let joins =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || extra.contains(&c));
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut prev: Option<char> = None;
    while let Some(i) = rest.find(old) {
        let before = rest[..i].chars().next_back().or(prev);
        let after = rest[i + old.len()..].chars().next();
        out.push_str(&rest[..i]);
        if joins(before) || joins(after) {
            out.push_str(old);
        } else {
            out.push_str(new);
        }
        prev = old.chars().next_back();
        rest = &rest[i + old.len()..];
    }
    out.push_str(rest);
    out
}

impl Renamer {
    /// Renames `target` to `<name>-b` and its namespace to `<ns>-b`.
    pub fn new(target: &ObjectRef) -> Renamer {
        Renamer {
            name: (target.name.clone(), format!("{}-b", target.name)),
            ns: target
                .namespace
                .as_ref()
                .map(|ns| (ns.clone(), format!("{ns}-b"))),
        }
    }

    /// One string renamed. A name ends where letters and digits end (`checkout` in
    /// `checkout-5d8f`, not in `checkoutservice`); a namespace also where a hyphen goes on
    /// (`shop` in `shop.svc`, not in `shop-db`).
    pub fn text(&self, s: &str) -> String {
        let out = replace_word(s, &self.name.0, &self.name.1, &[]);
        match &self.ns {
            Some((old, new)) => replace_word(&out, old, new, &['-', '_']),
            None => out,
        }
    }

    fn value(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.text(s),
            Value::Array(a) => a.iter_mut().for_each(|x| self.value(x)),
            Value::Object(m) => m
                .iter_mut()
                // Type names are not object names (`apps/v1` is not namespace `apps`).
                .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "api_version"))
                .for_each(|(_, x)| self.value(x)),
            _ => {}
        }
    }

    /// A snapshot renamed.
    pub fn snapshot(&self, s: &Snapshot) -> anyhow::Result<Snapshot> {
        let mut v = serde_json::to_value(s)?;
        self.value(&mut v);
        Ok(serde_json::from_value(v)?)
    }

    /// An object reference renamed.
    pub fn object(&self, r: &ObjectRef) -> ObjectRef {
        ObjectRef {
            kind: r.kind.clone(),
            namespace: r.namespace.as_deref().map(|n| self.text(n)),
            name: self.text(&r.name),
        }
    }
}

fn right(truth: &Truth, d: &Diagnosis, rename: Option<&Renamer>) -> bool {
    let Some(rc) = &d.root_cause else {
        return false;
    };
    let ok = match rename {
        None => truth.accepts(&rc.object),
        Some(r) => truth
            .root_cause_any_of
            .iter()
            .chain(truth.root_cause.iter())
            .any(|t| {
                let t = r.object(t);
                t.kind == rc.object.kind
                    && t.name == rc.object.name
                    && (t.namespace.is_none() || t.namespace == rc.object.namespace)
            }),
    };
    ok && truth.accepts_category(d.category)
}

/// Runs the stream.
pub async fn run(
    g: &GlobalArgs,
    a: &EvalArgs,
    out: &mut dyn Write,
) -> anyhow::Result<CorrectionsReport> {
    let client = super::daemon(g).await?;
    let mut cases = Vec::new();
    for dir in scenario_dirs(&a.dir)? {
        let truth = read_truth(&dir)?;
        if truth.healthy() {
            continue;
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let snap = match truth.snapshot(&dir) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{name}: skipped: {e}");
                continue;
            }
        };
        let ask = |snapshot: Snapshot| DiagnoseRequest {
            snapshot,
            options: DiagnoseOptions {
                no_llm: true,
                explain: None,
                no_memory: false,
            },
        };
        let first: Diagnosis = match client.post("/v1/diagnose", &ask(snap.clone())).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{name}: skipped: {e}");
                continue;
            }
        };
        let first_right = right(&truth, &first, None);
        let fb = FeedbackRequest {
            diagnosis_id: first.id.clone(),
            outcome: if first_right {
                FeedbackOutcome::Fixed
            } else {
                FeedbackOutcome::NotFixed
            },
            cause: (!first_right)
                .then(|| {
                    truth
                        .root_cause
                        .clone()
                        .or_else(|| truth.root_cause_any_of.first().cloned())
                })
                .flatten(),
            reason: None,
            note: (!first_right).then(|| truth.fault.clone()).flatten(),
            category: (!first_right && a.with_category)
                .then_some(truth.category)
                .flatten(),
            fix_command: None,
            replace: false,
        };
        let r: FeedbackResponse = client.post("/v1/feedback", &fb).await?;
        let renamer = Renamer::new(&truth.target);
        let repeat: Result<Diagnosis, String> = match renamer.snapshot(&snap) {
            Ok(s) => client
                .post("/v1/diagnose", &ask(s))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let case = match &repeat {
            Ok(repeat) => Case {
                name,
                first_right,
                first_intuitive: first.pathway == Pathway::Intuitive,
                first_confidence: first.root_cause.as_ref().map_or(0.0, |_| first.confidence),
                feedback: if first_right { "fixed" } else { "corrected" }.into(),
                learned: r.learned,
                repeat_right: right(&truth, repeat, Some(&renamer)),
                repeat_intuitive: repeat.pathway == Pathway::Intuitive,
                repeat_answer: repeat.root_cause.as_ref().map(|c| {
                    format!(
                        "{}/{} {} {}",
                        c.object.kind,
                        c.object.name,
                        c.reason,
                        repeat.category.map(|c| c.as_str()).unwrap_or("-")
                    )
                }),
                repeat_confidence: repeat
                    .root_cause
                    .as_ref()
                    .map_or(0.0, |_| repeat.confidence),
                repeat_memory: repeat.memory.as_ref().map(|m| m.why.clone()),
            },
            // Counted as a miss: the renamed snapshot is the harness' own work, but a repeat
            // that cannot be diagnosed was not answered.
            Err(e) => Case {
                name,
                first_right,
                first_intuitive: first.pathway == Pathway::Intuitive,
                first_confidence: first.root_cause.as_ref().map_or(0.0, |_| first.confidence),
                feedback: if first_right { "fixed" } else { "corrected" }.into(),
                learned: r.learned,
                repeat_right: false,
                repeat_intuitive: false,
                repeat_answer: None,
                repeat_confidence: 0.0,
                repeat_memory: Some(format!("renamed repeat failed: {e}")),
            },
        };
        let pathway = repeat.as_ref().map_or("failed".to_string(), |d| {
            format!("{:?}", d.pathway).to_lowercase()
        });
        if a.verbose && a.output == Output::Text {
            writeln!(
                out,
                "{:<44} first {} {:<9} repeat {} {:<10} {}",
                case.name,
                if case.first_right { "ok  " } else { "MISS" },
                case.feedback,
                if case.repeat_right { "ok  " } else { "MISS" },
                pathway,
                case.repeat_answer.clone().unwrap_or_default()
            )?;
        }
        cases.push(case);
    }
    let count = |f: &dyn Fn(&Case) -> bool| cases.iter().filter(|c| f(c)).count();
    // (confidence, right) of every answer that named a root cause, by pathway.
    let mut points: [Vec<(f64, bool)>; 2] = [Vec::new(), Vec::new()];
    for c in &cases {
        if c.first_confidence > 0.0 {
            points[usize::from(c.first_intuitive)].push((c.first_confidence, c.first_right));
        }
        if c.repeat_confidence > 0.0 {
            points[usize::from(c.repeat_intuitive)].push((c.repeat_confidence, c.repeat_right));
        }
    }
    let calibration = vec![
        super::calibration::calibration("analytical", &points[0]),
        super::calibration::calibration("intuitive", &points[1]),
    ];
    let report = CorrectionsReport {
        n: cases.len(),
        first_right: count(&|c| c.first_right),
        corrected: count(&|c| !c.first_right),
        false_recalls: count(&|c| c.first_intuitive && !c.first_right),
        calibration,
        repeats_right_intuitive: count(&|c| c.repeat_right && c.repeat_intuitive),
        repeats_right: count(&|c| c.repeat_right),
        corrected_then_right_intuitive: count(&|c| {
            !c.first_right && c.repeat_right && c.repeat_intuitive
        }),
        cases,
    };
    let pct = |k: usize, n: usize| {
        if n == 0 {
            0.0
        } else {
            100.0 * k as f64 / n as f64
        }
    };
    match a.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        _ => {
            writeln!(
                out,
                "{} incidents; first answer right (object and category): {} ({:.0}%); {} corrected",
                report.n,
                report.first_right,
                pct(report.first_right, report.n),
                report.corrected
            )?;
            writeln!(
                out,
                "renamed repeats right and intuitive: {} of {} ({:.0}%); right on either pathway: {} ({:.0}%)",
                report.repeats_right_intuitive,
                report.n,
                pct(report.repeats_right_intuitive, report.n),
                report.repeats_right,
                pct(report.repeats_right, report.n)
            )?;
            writeln!(
                out,
                "false recalls (a first answer from memory that was wrong): {}",
                report.false_recalls
            )?;
            writeln!(
                out,
                "after a correction: {} of {} repeats right and intuitive ({:.0}%)",
                report.corrected_then_right_intuitive,
                report.corrected,
                pct(report.corrected_then_right_intuitive, report.corrected)
            )?;
            super::calibration::print(out, &report.calibration)?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renaming_keeps_other_names_and_derived_names_follow() {
        let r = Renamer::new(&ObjectRef::new("Deployment", "shop", "checkout"));
        assert_eq!(r.text("checkout-5d8f-abc"), "checkout-b-5d8f-abc");
        assert_eq!(r.text("checkoutservice"), "checkoutservice");
        assert_eq!(
            r.text("dial tcp: lookup redis.shop.svc.cluster.local"),
            "dial tcp: lookup redis.shop-b.svc.cluster.local"
        );
        assert_eq!(r.text("shop-db"), "shop-db");
        assert_eq!(r.text("shop/checkout"), "shop-b/checkout-b");
        let o = r.object(&ObjectRef::new("Secret", "shop", "checkout-db"));
        assert_eq!(o, ObjectRef::new("Secret", "shop-b", "checkout-b-db"));
    }
}
