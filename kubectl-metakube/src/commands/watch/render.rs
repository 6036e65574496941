//! Watch output: JSON Lines (one incident change a line, the `docs/output.md` contract), or one
//! text line per incident — printed as changes happen, or redrawn in place on a terminal.

use std::io::Write;

use anstyle::{AnsiColor, Style};
use metakube_shared::{Incident, IncidentChange, IncidentKind, IncidentStatus, IncidentUpdate};

use crate::cli::WatchOutput;
use crate::watch::Watch;

const RED: Style = AnsiColor::Red.on_default().bold();
const GREEN: Style = AnsiColor::Green.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const DIM: Style = Style::new().dimmed();

/// The output of one watch.
pub struct View {
    output: WatchOutput,
    in_place: bool,
    drawn: usize,
}

impl View {
    /// JSON, text as a log, or text redrawn in place (a terminal).
    pub fn new(output: WatchOutput, terminal: bool) -> View {
        View {
            output,
            in_place: terminal && output == WatchOutput::Text,
            drawn: 0,
        }
    }

    /// Prints one change (a line, unless the view is redrawn in place).
    pub fn update(&mut self, out: &mut dyn Write, u: &IncidentUpdate) -> std::io::Result<()> {
        match self.output {
            WatchOutput::Json => {
                serde_json::to_writer(&mut *out, u)?;
                writeln!(out)?;
            }
            WatchOutput::Text if !self.in_place => {
                writeln!(out, "{}", line(Some(u.change), &u.incident))?;
            }
            WatchOutput::Text => {}
        }
        out.flush()
    }

    /// Redraws the table on a terminal: open incidents, then the five latest resolved.
    pub fn refresh(&mut self, out: &mut dyn Write, w: &Watch) -> std::io::Result<()> {
        if !self.in_place {
            return Ok(());
        }
        if self.drawn > 0 {
            write!(out, "\x1b[{}A\x1b[J", self.drawn)?;
        }
        let mut rows: Vec<&Incident> = w
            .incidents
            .all()
            .filter(|i| i.status == IncidentStatus::Open)
            .collect();
        let mut resolved: Vec<&Incident> = w
            .incidents
            .all()
            .filter(|i| i.status == IncidentStatus::Resolved)
            .collect();
        resolved.reverse();
        rows.extend(resolved.into_iter().take(5));
        let header = format!(
            "{DIM}{} events · {} objects · {} open{DIM:#}",
            w.events(),
            w.store.len(),
            rows.iter()
                .filter(|i| i.status == IncidentStatus::Open)
                .count()
        );
        writeln!(out, "{header}")?;
        for i in &rows {
            writeln!(out, "{}", line(None, i))?;
        }
        self.drawn = rows.len() + 1;
        out.flush()
    }

    /// The last word: the final table on a terminal.
    pub fn finish(&mut self, out: &mut dyn Write, w: &Watch) -> std::io::Result<()> {
        self.refresh(out, w)
    }
}

/// One incident as one line: change, id, status, root cause (or symptoms), category,
/// affected objects, and the fix.
pub fn line(change_of: Option<IncidentChange>, i: &Incident) -> String {
    let d = &i.diagnosis;
    let status = match (i.status, i.kind) {
        (IncidentStatus::Resolved, _) => format!("{GREEN}resolved{GREEN:#}"),
        (IncidentStatus::Open, IncidentKind::Anomaly) => format!("{YELLOW}anomaly{YELLOW:#}"),
        (IncidentStatus::Open, IncidentKind::Fault) => format!("{RED}open{RED:#}"),
    };
    let cause = match (&d.root_cause, &i.anomaly) {
        (Some(rc), _) => format!("{} {}", rc.object, rc.reason),
        (None, Some(a)) => format!(
            "{} unusual: {} (score {:.0} < {:.0})",
            d.target,
            a.series
                .iter()
                .filter(|(_, v)| **v > 0.0)
                .map(|(k, v)| format!("{k} {v:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            a.score,
            a.threshold
        ),
        (None, None) => format!(
            "{} ({}: {})",
            d.target,
            d.verdict,
            i.triggers
                .iter()
                .map(|t| t.reason.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let category = d.category.map(|c| c.as_str()).unwrap_or("-");
    let affected = i
        .affected
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let fix = d
        .remediation
        .first()
        .map(|r| r.command.clone().unwrap_or_else(|| r.summary.clone()))
        .unwrap_or_default();
    // The change closest before the first symptom: the likeliest trigger.
    let change = metakube_shared::change::trigger(&d.changes)
        .map(|c| {
            format!(
                " · {} {} changed {}",
                c.object,
                c.field,
                c.when("the first symptom")
            )
        })
        .unwrap_or_default();
    let action = i
        .actions
        .last()
        .map(|a| format!(" · action {} {}", a.action, a.result))
        .unwrap_or_default();
    let changed = change;
    let change = change_of
        .map(|c| {
            format!(
                "{:<9}",
                match c {
                    IncidentChange::Opened => "opened",
                    IncidentChange::Updated => "updated",
                    IncidentChange::Resolved => "resolved",
                    IncidentChange::Reopened => "reopened",
                    IncidentChange::Escalated => "escalated",
                }
            )
        })
        .unwrap_or_default();
    format!(
        "{change}{} {status} {cause} [{category}] · affected {} · since {}{changed}{action}{}",
        i.incident,
        if affected.is_empty() {
            "-".into()
        } else {
            affected
        },
        i.first_seen.strftime("%H:%M:%S"),
        if fix.is_empty() {
            String::new()
        } else {
            format!(" · fix: {fix}")
        }
    )
}
