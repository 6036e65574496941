//! `diagnose TYPE/NAME`: collect (live or from a dump), ask the daemon, print; `--fix` applies
//! the top fix after a server-side dry run and confirmation, with an audit log.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context};
use metakube_shared::{
    DiagnoseOptions, DiagnoseRequest, Diagnosis, Snapshot, SnapshotSource, TargetRef,
};
use serde_json::json;

use super::Progress;
use crate::cli::{DiagnoseArgs, GlobalArgs};
use crate::collect::{self, live};
use crate::render;

/// Builds the snapshot for a target from a dump folder.
pub fn snapshot_from_dump(
    dir: &Path,
    target: &TargetRef,
    namespace: &str,
) -> anyhow::Result<Snapshot> {
    let target = target.in_namespace(namespace);
    let t = std::time::Instant::now();
    let c = collect::dump::read_dump_for(dir, &target)?;
    tracing::debug!(
        objects = c.objects.len(),
        ms = t.elapsed().as_secs_f64() * 1e3,
        "dump read"
    );
    let t = std::time::Instant::now();
    for g in &c.gaps {
        eprintln!("metakube: warning: skipped {}: {}", g.what, g.reason);
    }
    let snap = collect::select(
        c,
        &target,
        SnapshotSource::Dump {
            path: dir.display().to_string(),
        },
        None,
    )?;
    tracing::debug!(
        objects = snap.objects.len(),
        ms = t.elapsed().as_secs_f64() * 1e3,
        "selected"
    );
    Ok(snap)
}

/// The kube-rs connection settings of the global flags.
pub(crate) fn live_options(g: &GlobalArgs) -> live::LiveOptions {
    live::LiveOptions {
        kubeconfig: g.kubeconfig.clone(),
        context: g.context.clone(),
        namespace: g.namespace.clone(),
        request_timeout: Some(g.request_timeout),
    }
}

/// Collects the snapshot a diagnosis needs.
pub async fn collect_snapshot(
    g: &GlobalArgs,
    target: &TargetRef,
    from_dump: Option<&Path>,
) -> anyhow::Result<(Snapshot, Option<live::Connection>)> {
    match from_dump {
        Some(dir) => Ok((
            snapshot_from_dump(dir, target, g.namespace.as_deref().unwrap_or("default"))?,
            None,
        )),
        None => {
            let opts = live_options(g);
            let progress = Progress::new();
            progress.step("connecting");
            let conn = live::connect(&opts).await?;
            let snap = live::collect(&conn, target, &|m| progress.step(m)).await;
            progress.done();
            Ok((snap?, Some(conn)))
        }
    }
}

/// Runs the command; returns the diagnosis for the caller's exit code.
pub async fn run(
    g: &GlobalArgs,
    a: &DiagnoseArgs,
    out: &mut dyn Write,
) -> anyhow::Result<Diagnosis> {
    let target = TargetRef::parse(&a.target, a.name.as_deref())?;
    let (snapshot, conn) = collect_snapshot(g, &target, a.from_dump.as_deref()).await?;
    let client = super::daemon(g).await?;
    let req = DiagnoseRequest {
        snapshot,
        options: DiagnoseOptions {
            no_llm: a.no_llm,
            // Unasked, the daemon's `[llm] default` decides (off unless turned on).
            explain: a.explain.then_some(true),
            no_memory: a.no_memory,
        },
    };
    let d = if a.no_llm {
        let d = client.diagnose(req).await?;
        render::diagnosis(out, &d, a.output)?;
        d
    } else {
        diagnose_streaming(&client, req, a.output, out).await?
    };
    out.flush()?;
    if a.fix {
        let conn = conn.context("--fix needs a live cluster")?;
        fix(&conn, &d, a.yes).await?;
    }
    Ok(d)
}

/// Asks for the streamed answer: text output prints the diagnosis at once and, when the model
/// has written and the judge has checked it, the explanation's sentences that passed (the
/// unchecked tokens are never printed); JSON and YAML wait for the checked explanation and
/// include it.
async fn diagnose_streaming(
    client: &crate::client::DaemonClient,
    req: DiagnoseRequest,
    output: crate::render::Output,
    out: &mut dyn Write,
) -> anyhow::Result<Diagnosis> {
    use metakube_shared::StreamEvent;
    let text = output == crate::render::Output::Text;
    let mut diagnosis: Option<Diagnosis> = None;
    let mut io_err: Option<std::io::Error> = None;
    client
        .diagnose_stream(req, std::time::Duration::from_secs(120), &mut |ev| {
            let r: std::io::Result<()> = (|| {
                match ev {
                    StreamEvent::Diagnosis { diagnosis: d } => {
                        if text {
                            render::diagnosis(out, &d, output)?;
                            out.flush()?;
                        }
                        diagnosis = Some(*d);
                    }
                    StreamEvent::Token { .. } => {}
                    StreamEvent::Explanation { explanation } => {
                        if text {
                            render::explanation(out, &explanation)?;
                        }
                        if let Some(d) = diagnosis.as_mut() {
                            d.llm = Some(explanation);
                        }
                    }
                }
                Ok(())
            })();
            if let (Err(e), None) = (r, &io_err) {
                io_err = Some(e);
            }
        })
        .await?;
    if let Some(e) = io_err {
        return Err(e.into());
    }
    let d = diagnosis.context("the daemon sent no diagnosis")?;
    if !text {
        render::diagnosis(out, &d, output)?;
    }
    Ok(d)
}

async fn fix(conn: &live::Connection, d: &Diagnosis, yes: bool) -> anyhow::Result<()> {
    let Some(index) = d
        .remediation
        .iter()
        .position(|r| r.patch.as_ref().is_some_and(|p| p.validated))
    else {
        bail!("no validated patch to apply for this diagnosis; apply the manual fix shown above");
    };
    let (rem, patch) = validated_patch(d, index)?;
    eprintln!(
        "metakube: server-side dry run of: {}",
        rem.command.clone().unwrap_or_default()
    );
    live::apply_patch(&conn.client, &patch, true).await?;
    eprintln!("metakube: dry run accepted by the API server");
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("refusing to apply without confirmation: stdin is not a terminal (use --yes)");
        }
        eprint!("apply this patch to {} now? [y/N] ", patch.object);
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("metakube: not applied");
            return Ok(());
        }
    }
    apply_and_audit(conn, d, &patch).await?;
    eprintln!("metakube: applied; tell metakube whether it worked: kubectl metakube feedback {} --fixed | --not-fixed", d.id);
    Ok(())
}

/// Fix `index` of a diagnosis and its patch, which must have validated on the snapshot.
pub(crate) fn validated_patch(
    d: &Diagnosis,
    index: usize,
) -> anyhow::Result<(&metakube_shared::Remediation, metakube_shared::Patch)> {
    let rem = d.remediation.get(index).with_context(|| {
        format!(
            "diagnosis {} has {} fix(es); there is no fix {index}",
            d.id,
            d.remediation.len()
        )
    })?;
    match &rem.patch {
        Some(p) if p.validated => Ok((rem, p.clone())),
        Some(_) => bail!(
            "fix {index} of diagnosis {} ({}) did not validate on the snapshot; review and apply it by hand",
            d.id,
            rem.summary
        ),
        None => bail!(
            "fix {index} of diagnosis {} ({}) is a manual step, not a patch",
            d.id,
            rem.summary
        ),
    }
}

/// Applies a patch the API server's dry run accepted, and records the outcome in the audit log
/// whatever it is.
pub(crate) async fn apply_and_audit(
    conn: &live::Connection,
    d: &Diagnosis,
    patch: &metakube_shared::Patch,
) -> anyhow::Result<()> {
    let result = live::apply_patch(&conn.client, patch, false).await;
    let outcome = match &result {
        Ok(_) => Audited::Applied,
        Err(e) => Audited::Failed(e.to_string()),
    };
    audit(d, patch, conn, outcome)?;
    result?;
    Ok(())
}

/// What an audit line records.
pub(crate) enum Audited {
    /// The patch was applied.
    Applied,
    /// The API server refused or failed it.
    Failed(String),
    /// Only the dry run ran (and was accepted); nothing changed.
    DryRun,
}

/// Appends one JSON line per applied (or failed) fix to `$XDG_DATA_HOME/metakube/audit.log`.
pub(crate) fn audit(
    d: &Diagnosis,
    p: &metakube_shared::Patch,
    conn: &live::Connection,
    outcome: Audited,
) -> anyhow::Result<()> {
    let (result, error) = match outcome {
        Audited::Applied => ("applied", None),
        Audited::Failed(e) => ("failed", Some(e)),
        Audited::DryRun => ("dry_run_accepted", None),
    };
    append_audit(audit_line(
        d,
        conn,
        &p.object,
        json!({"patch_type": p.patch_type, "patch": p.body, "result": result, "error": error}),
    ))
}

/// Appends a deleted (or failed to delete) pod to the audit log.
pub(crate) fn audit_delete(
    d: &Diagnosis,
    pod: &metakube_shared::ObjectRef,
    conn: &live::Connection,
    error: Option<String>,
) -> anyhow::Result<()> {
    let result = if error.is_some() { "failed" } else { "applied" };
    append_audit(audit_line(
        d,
        conn,
        pod,
        json!({"action": "delete_pod", "result": result, "error": error}),
    ))
}

/// Who acted where, for which diagnosis, on what — then what was done (`change`'s fields).
fn audit_line(
    d: &Diagnosis,
    conn: &live::Connection,
    object: &metakube_shared::ObjectRef,
    change: serde_json::Value,
) -> serde_json::Value {
    let mut line = json!({
        "time": jiff::Timestamp::now().to_string(),
        "user_uid": rustix::process::getuid().as_raw(),
        "context": conn.context,
        "cluster": conn.cluster_url,
        "diagnosis_id": d.id,
        "root_cause": d.root_cause,
        "object": object,
    });
    if let (Some(l), serde_json::Value::Object(c)) = (line.as_object_mut(), change) {
        l.extend(c);
    }
    line
}

fn append_audit(line: serde_json::Value) -> anyhow::Result<()> {
    let path =
        metakube_shared::paths::data_dir(metakube_shared::paths::process_env).join("audit.log");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("audit log {}", path.display()))?;
    writeln!(f, "{line}")?;
    Ok(())
}
