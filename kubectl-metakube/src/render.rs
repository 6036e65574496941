//! Output: text a person reads in ten seconds (root cause, evidence, fix), or the JSON/YAML
//! contract of docs/output.md. Colours only on a terminal and never with NO_COLOR (anstream).

use std::io::Write;

use anstyle::{AnsiColor, Style};
use metakube_shared::{Change, ChangesResponse, Diagnosis, EvidenceSource, Risk, Verdict};

/// Output format (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// The JSON contract.
    Json,
    /// The same as YAML.
    Yaml,
}

const BOLD: Style = Style::new().bold();
const RED: Style = AnsiColor::Red.on_default().bold();
const GREEN: Style = AnsiColor::Green.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const DIM: Style = Style::new().dimmed();
const CYAN: Style = AnsiColor::Cyan.on_default();

/// Writes a diagnosis in the chosen format.
pub fn diagnosis(w: &mut dyn Write, d: &Diagnosis, out: Output) -> std::io::Result<()> {
    match out {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *w, d)?;
            writeln!(w)
        }
        Output::Yaml => {
            let y = serde_norway::to_string(d).map_err(std::io::Error::other)?;
            w.write_all(y.as_bytes())
        }
        Output::Text => text(w, d),
    }
}

/// One change: when relative to `reference`, what, and how it was seen.
pub fn change_line(c: &Change, reference: &str) -> String {
    format!(
        "{YELLOW}{}{YELLOW:#}  {}{}",
        c.when(reference),
        c.describe(),
        c.via
            .as_ref()
            .map(|v| format!("  {DIM}({v}){DIM:#}"))
            .unwrap_or_default()
    )
}

/// Writes the answer of `changes` in the chosen format.
pub fn changes(w: &mut dyn Write, r: &ChangesResponse, out: Output) -> std::io::Result<()> {
    match out {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *w, r)?;
            return writeln!(w);
        }
        Output::Yaml => {
            let y = serde_norway::to_string(r).map_err(std::io::Error::other)?;
            return w.write_all(y.as_bytes());
        }
        Output::Text => {}
    }
    let reference = if r.first_failure.is_some() {
        "the first failure"
    } else {
        "now"
    };
    writeln!(
        w,
        "{BOLD}CHANGES{BOLD:#} near {} since {}{}",
        r.target,
        r.since.strftime("%Y-%m-%d %H:%M:%SZ"),
        r.first_failure
            .map(|t| format!(" · first failure {}", t.strftime("%Y-%m-%d %H:%M:%SZ")))
            .unwrap_or_default()
    )?;
    for c in &r.changes {
        writeln!(w, "  {}", change_line(c, reference))?;
    }
    if r.changes.is_empty() {
        writeln!(w, "  none seen")?;
    }
    let seen: Vec<String> = r.near.iter().take(8).map(|o| o.to_string()).collect();
    writeln!(
        w,
        "{DIM}looked at {} object(s): {}{}{DIM:#}",
        r.near.len(),
        seen.join(", "),
        if r.near.len() > 8 { ", …" } else { "" }
    )?;
    match (&r.cluster, r.tracked_since) {
        (Some(c), Some(t)) => writeln!(
            w,
            "{DIM}history of {c} kept since {} ({} tracked objects compared, {} unchanged by resourceVersion); rollout revisions from the cluster's ReplicaSets{DIM:#}",
            t.strftime("%Y-%m-%d %H:%M:%SZ"),
            r.compared,
            r.unchanged
        ),
        _ => writeln!(
            w,
            "{DIM}a dump has no before: only rollout revisions (its ReplicaSets) are compared; on a live cluster the daemon keeps a history from the first look{DIM:#}"
        ),
    }
}

/// The model's explanation after the check: the sentences that passed, how many did not (their
/// text is not shown: `-o json` lists them with why), or why there is none.
pub fn explanation(w: &mut dyn Write, e: &metakube_shared::Explanation) -> std::io::Result<()> {
    write!(w, "\n{BOLD}EXPLANATION{BOLD:#}  ")?;
    if let Some(why) = &e.unavailable {
        return writeln!(w, "{DIM}no model explanation: {why}{DIM:#}");
    }
    if e.text.is_empty() {
        writeln!(w, "{DIM}(no sentence of the model passed the check){DIM:#}")?;
    } else {
        writeln!(w, "{}", e.text)?;
    }
    if !e.removed.is_empty() {
        writeln!(
            w,
            "  {DIM}the check removed {} of {} sentence(s) naming what the snapshot does not hold or saying what the facts do not (-o json lists them with why){DIM:#}",
            e.removed.len(),
            e.sentences.len().max(e.removed.len())
        )?;
    }
    writeln!(
        w,
        "  {DIM}{} · first token {:.0} ms · {:.1} tok/s{DIM:#}",
        e.backend, e.first_token_ms, e.tokens_per_s
    )
}

fn source_tag(s: EvidenceSource) -> &'static str {
    match s {
        EvidenceSource::Status => "status",
        EvidenceSource::Spec => "spec",
        EvidenceSource::Event => "event",
        EvidenceSource::Log => "log",
        EvidenceSource::Graph => "graph",
        EvidenceSource::Memory => "memory",
    }
}

fn text(w: &mut dyn Write, d: &Diagnosis) -> std::io::Result<()> {
    match (&d.root_cause, d.category) {
        (Some(rc), Some(cat)) => {
            writeln!(
                w,
                "{RED}ROOT CAUSE{RED:#}  {BOLD}{}{BOLD:#}  {cat} · {} · confidence {:.2}",
                rc.object, rc.reason, d.confidence
            )?;
            writeln!(w, "  {}", rc.summary)?;
        }
        _ if d.symptoms.is_empty() && d.verdict == Verdict::Healthy => {
            writeln!(w, "{GREEN}NO PROBLEM FOUND{GREEN:#}  {}", d.target)?;
            writeln!(w, "  {}", d.explanation)?;
        }
        _ if d.symptoms.is_empty() => {
            writeln!(w, "{YELLOW}INCONCLUSIVE{YELLOW:#}  {}", d.target)?;
            writeln!(w, "  {}", d.explanation)?;
        }
        _ => {
            writeln!(
                w,
                "{RED}SYMPTOMS, NO SINGLE ROOT CAUSE{RED:#}  {}",
                d.target
            )?;
            writeln!(w, "  {}", d.explanation)?;
        }
    }
    if !d.evidence.is_empty() {
        writeln!(w, "\n{BOLD}EVIDENCE{BOLD:#}")?;
        for e in d.evidence.iter().take(8) {
            writeln!(
                w,
                "  {CYAN}[{}]{CYAN:#} {}/{}: {}",
                source_tag(e.source),
                e.object.kind,
                e.object.name,
                e.detail
            )?;
        }
    } else if !d.symptoms.is_empty() {
        writeln!(w, "\n{BOLD}SYMPTOMS{BOLD:#}")?;
        for s in d.symptoms.iter().take(10) {
            writeln!(
                w,
                "  {CYAN}[{}]{CYAN:#} {}/{}: {}",
                s.reason, s.object.kind, s.object.name, s.detail
            )?;
        }
    }
    if !d.changes.is_empty() {
        writeln!(w, "\n{BOLD}CHANGES NEAR IT{BOLD:#}")?;
        for c in d.changes.iter().rev().take(5) {
            writeln!(w, "  {}", change_line(c, "the first failure"))?;
        }
    }
    if let Some(fix) = d.remediation.first() {
        let risk = match fix.risk {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        };
        let checked = match &fix.patch {
            Some(p) if p.validated => "validated on the snapshot",
            Some(_) => "not validated: review before applying",
            None => "manual",
        };
        writeln!(
            w,
            "\n{BOLD}FIX{BOLD:#}  {}  {DIM}(risk {risk}, {checked}){DIM:#}",
            fix.summary
        )?;
        if let Some(c) = &fix.command {
            writeln!(w, "  {GREEN}{c}{GREEN:#}")?;
        }
        for more in d.remediation.iter().skip(1).take(2) {
            writeln!(
                w,
                "  {DIM}or: {}{}{DIM:#}",
                more.summary,
                more.command
                    .as_ref()
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default()
            )?;
        }
    }
    if d.hypotheses.len() > 1 {
        writeln!(w, "\n{BOLD}OTHER HYPOTHESES{BOLD:#}")?;
        for h in d.hypotheses.iter().skip(1).take(3) {
            writeln!(
                w,
                "  {:.2}  {}/{} {} ({}){}",
                h.score,
                h.object.kind,
                h.object.name,
                h.reason,
                h.category,
                if h.note.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", h.note)
                }
            )?;
        }
    }
    if !d.gaps.is_empty() {
        writeln!(
            w,
            "\n{DIM}not seen: {}{DIM:#}",
            d.gaps
                .iter()
                .take(4)
                .map(|g| format!("{} ({})", g.what, g.reason))
                .collect::<Vec<_>>()
                .join("; ")
        )?;
    }
    if let Some(m) = &d.memory {
        if d.pathway == metakube_shared::Pathway::Intuitive {
            writeln!(
                w,
                "\n{BOLD}MEMORY{BOLD:#}  seen {} time(s), the fix worked {} of {}",
                m.seen, m.worked, m.seen
            )?;
        }
        writeln!(w, "  {DIM}{} (θ {:.2}){DIM:#}", m.why, m.theta)?;
    }
    writeln!(
        w,
        "\n{DIM}{} pathway · {:.1} ms · id {} (kubectl metakube feedback {} --fixed){DIM:#}",
        match d.pathway {
            metakube_shared::Pathway::Analytical => "analytical",
            metakube_shared::Pathway::Intuitive => "intuitive",
        },
        d.timings_ms.total,
        d.id,
        d.id
    )
}
