//! `watch`: feed watch events (live kube-runtime watchers, or a replay file) into the watch
//! engine, ask the daemon to diagnose each suspect, print incident changes, and under
//! `--remediate` act through the guarded registry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use metakube_shared::{
    ActionRecord, ContainerLog, DiagnoseOptions, DiagnoseRequest, Diagnosis, IncidentChange,
    IncidentStatus, IncidentUpdate, ObjectRef, SnapshotSource,
};

use crate::cli::{GlobalArgs, WatchArgs};
use crate::client::DaemonClient;
use crate::collect::{self, live, Collected};
use crate::watch::event::EventType;
use crate::watch::guard::{self, Guards, Limits, Planned};
use crate::watch::series::PodUsage;
use crate::watch::{Settings, Watch};

pub mod render;
pub mod sources;

use sources::Incoming;

/// Most diagnoses per detection round (the rest wait for the next round).
const DIAGNOSES_PER_ROUND: usize = 16;

/// What a watch did, for the closing summary.
#[derive(Debug, Default)]
struct Totals {
    diagnoses: u64,
    opened: u64,
    resolved: u64,
    actions: u64,
    bad_lines: u64,
}

/// What one watch works with between rounds.
struct Ctx<'a> {
    client: DaemonClient,
    conn: Option<live::Connection>,
    remediate: bool,
    guards: Guards,
    view: render::View,
    totals: Totals,
    logs: ReplayLogs,
    out: &'a mut dyn Write,
}

/// Runs the command.
pub async fn run(g: &GlobalArgs, a: &WatchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let client = super::daemon(g).await?;
    let started = Instant::now();
    let mut watch = Watch::new(Settings {
        wall_clock: a.replay.is_none(),
        ..Settings::default()
    });
    let mut recorder = match &a.record {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("--record {}", p.display()))?,
        )),
        None => None,
    };
    let (conn, mut rx) = match &a.replay {
        Some(file) => (None, sources::replay(file, 256)?),
        None => {
            let opts = super::diagnose::live_options(g);
            let conn = live::connect(&opts).await?;
            let ns = (!a.all_namespaces).then(|| conn.namespace.clone());
            let rx = sources::live(&conn, ns.as_deref());
            (Some(conn), rx)
        }
    };
    let replay = conn.is_none();
    let mut initial = true;
    let watchers = if replay {
        0
    } else {
        sources::watchers(!a.all_namespaces)
    };
    let mut synced = 0usize;
    let mut cx = Ctx {
        client,
        conn,
        remediate: a.remediate,
        guards: Guards::new(Limits {
            cooldown: signed(a.cooldown),
            max_actions: a.max_actions,
            per: SignedDuration::from_secs(600),
            breaker_after: a.breaker_after,
            verify_within: signed(a.verify_within),
        }),
        view: render::View::new(a.output, std::io::stdout().is_terminal()),
        totals: Totals::default(),
        logs: ReplayLogs::new(a.logs.clone()),
        out,
    };
    let deadline = a.duration.map(|d| Instant::now() + d);
    let mut usage: Option<PodUsage> = None;
    let mut last_usage = Instant::now() - Duration::from_secs(3600);
    loop {
        let timeout = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(3600))
            .min(Duration::from_millis(500));
        let incoming = tokio::time::timeout(timeout, rx.recv()).await;
        let mut ended = false;
        match incoming {
            Ok(Some(Incoming::Events(batch))) => {
                for ev in batch {
                    if let Some(w) = recorder.as_mut() {
                        serde_json::to_writer(&mut *w, &ev)?;
                        w.write_all(b"\n")?;
                    }
                    // A replay starts like a watch: the initial list (ADDED events, up to the
                    // API server's `initial-events-end` bookmark or the first other event) is
                    // the state, diagnosed once whole. Then it is detected as it would have
                    // been live: everything up to a moment is looked at before the stream
                    // moves past it.
                    let latest = collect::latest_in(&ev.object);
                    if replay {
                        let clock = watch.stream_time();
                        let due = if initial {
                            initial = ev.kind == EventType::Added;
                            !initial
                        } else {
                            latest.zip(clock).is_some_and(|(t, c)| t > c)
                        };
                        if let (true, Some(clock)) = (due, clock) {
                            cx.round(&mut watch, clock, None).await?;
                        }
                    }
                    watch.observe_at(ev, latest);
                }
            }
            Ok(Some(Incoming::Synced)) => {
                synced += 1;
                if synced == watchers {
                    if let Some(w) = recorder.as_mut() {
                        serde_json::to_writer(&mut *w, &sources::initial_events_end())?;
                        w.write_all(b"\n")?;
                    }
                }
            }
            Ok(Some(Incoming::Relisted { gone })) => {
                for r in gone {
                    watch.forget(&r);
                }
            }
            Ok(Some(Incoming::BadLine(e))) => {
                cx.totals.bad_lines += 1;
                eprintln!("metakube: warning: --replay: skipped {e}");
            }
            Ok(Some(Incoming::Failed(e))) => eprintln!("metakube: warning: {e}"),
            Ok(None) => ended = true,
            Err(_) => {} // a quiet moment: time still moves for detection
        }
        if let Some(w) = recorder.as_mut() {
            w.flush()?;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            ended = true;
        }
        if let (Some(url), false) = (&a.prometheus, replay) {
            if last_usage.elapsed() >= Duration::from_secs(30) {
                last_usage = Instant::now();
                usage = match sources::prometheus_usage(url).await {
                    Ok(u) => Some(u),
                    Err(e) => {
                        eprintln!("metakube: warning: --prometheus {url}: {e:#}");
                        None
                    }
                };
            }
        }
        let now = match (replay, watch.stream_time()) {
            (true, Some(t)) => t,
            (true, None) => Timestamp::UNIX_EPOCH,
            (false, _) => Timestamp::now(),
        };
        // Live, the first round waits for every watcher's initial list (or 30 s, for a kind
        // that cannot be listed), so nothing is diagnosed from half a cluster.
        let listed = synced >= watchers || started.elapsed() >= Duration::from_secs(30);
        if (!replay && listed) || ended {
            cx.round(&mut watch, now, usage.as_ref()).await?;
        }
        if ended {
            break;
        }
    }
    cx.view.finish(cx.out, &watch)?;
    let secs = started.elapsed().as_secs_f64();
    let open = watch
        .incidents
        .all()
        .filter(|i| i.status == IncidentStatus::Open)
        .count();
    let t = &cx.totals;
    eprintln!(
        "metakube: watched {} events ({:.0}/s), {} objects held; {} diagnoses; {} incident(s) opened, {} resolved, {} open; {} anomaly window(s) scored{}{}",
        watch.events(),
        watch.events() as f64 / secs.max(1e-3),
        watch.store.len(),
        t.diagnoses,
        t.opened,
        t.resolved,
        open,
        watch.windows(),
        if t.actions > 0 { format!("; {} action(s)", t.actions) } else { String::new() },
        if t.bad_lines > 0 { format!("; {} malformed line(s) skipped", t.bad_lines) } else { String::new() },
    );
    Ok(())
}

impl Ctx<'_> {
    /// One detection round at `now`: settle, diagnose what is due, group, sweep, act, verify.
    async fn round(
        &mut self,
        watch: &mut Watch,
        now: Timestamp,
        usage: Option<&PodUsage>,
    ) -> anyhow::Result<()> {
        let suspects = watch.settle(now, usage);
        let due = watch.incidents.due(&suspects, now);
        for target in due.into_iter().take(DIAGNOSES_PER_ROUND) {
            let suspect = &suspects[&target];
            let d = match diagnose(
                &self.client,
                self.conn.as_ref(),
                watch,
                &mut self.logs,
                &target,
                now,
            )
            .await
            {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("metakube: warning: diagnosis of {target} failed: {e:#}");
                    continue;
                }
            };
            self.totals.diagnoses += 1;
            for u in watch.record(&target, suspect, d, now) {
                self.emit(&u)?;
                if self.remediate {
                    self.remediate(watch, &u, now).await?;
                }
            }
        }
        for u in watch.incidents.sweep(&suspects, now) {
            self.emit(&u)?;
        }
        self.verify(watch, now).await?;
        self.view.refresh(self.out, watch)?;
        Ok(())
    }

    /// Under `--remediate`: for an opened (or reopened) fault, plan a registry action, pass the
    /// guards, have the API server dry-run it, apply it and audit it; the incident records what
    /// happened either way.
    async fn remediate(
        &mut self,
        watch: &mut Watch,
        u: &IncidentUpdate,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let Some(conn) = self.conn.clone() else {
            return Ok(()); // a replay has no cluster to act on
        };
        if !matches!(u.change, IncidentChange::Opened | IncidentChange::Reopened)
            || u.incident.kind != metakube_shared::IncidentKind::Fault
        {
            return Ok(());
        }
        let id = u.incident.incident.clone();
        let d = &u.incident.diagnosis;
        let record =
            |action: &str, object: Option<ObjectRef>, result: &str, detail: String| ActionRecord {
                action: action.to_string(),
                object,
                result: result.to_string(),
                detail,
                at: now,
            };
        let planned = match guard::plan(d, &watch.store, now) {
            Ok(p) => p,
            Err(why) => {
                let r = record("none", None, "suggested", why);
                if let Some(u) = watch.incidents.act(&id, r, false) {
                    self.emit(&u)?;
                }
                return Ok(());
            }
        };
        let name = planned.kind.as_str();
        if let Err(why) = self.guards.admit(&planned, &id, now) {
            let r = record(name, Some(planned.object.clone()), "refused", why);
            if let Some(u) = watch.incidents.act(&id, r, false) {
                self.emit(&u)?;
            }
            return Ok(());
        }
        let result = act(&conn, d, &planned).await;
        let (result, detail, ok) = match result {
            Ok(()) => ("applied", String::new(), true),
            Err(Acted::DryRun(e)) => ("dry_run_failed", e, false),
            Err(Acted::Apply(e)) => ("failed", e, false),
        };
        if ok {
            self.totals.actions += 1;
            self.guards.applied(planned.clone(), &id, now);
        }
        let r = record(name, Some(planned.object.clone()), result, detail);
        if let Some(u) = watch.incidents.act(&id, r, false) {
            self.emit(&u)?;
        }
        Ok(())
    }

    /// Verifies pending actions: an incident that resolved verifies its action; one still open at
    /// the deadline does not: the action is rolled back where it can be and the incident escalated.
    async fn verify(&mut self, watch: &mut Watch, now: Timestamp) -> anyhow::Result<()> {
        let Some(conn) = self.conn.clone() else {
            return Ok(());
        };
        let resolved: BTreeMap<String, bool> = watch
            .incidents
            .all()
            .map(|i| (i.incident.clone(), i.status == IncidentStatus::Resolved))
            .collect();
        let verified = self
            .guards
            .verify(&|id| resolved.get(id).copied().unwrap_or(false), now);
        for v in verified {
            let p = &v.pending.planned;
            let name = p.kind.as_str();
            let id = v.pending.incident.clone();
            if v.ok {
                let r = ActionRecord {
                    action: name.into(),
                    object: Some(p.object.clone()),
                    result: "verified".into(),
                    detail: format!(
                        "the incident resolved {}s after the action",
                        now.duration_since(v.pending.at).as_secs()
                    ),
                    at: now,
                };
                if let Some(u) = watch.incidents.act(&id, r, false) {
                    self.emit(&u)?;
                }
                continue;
            }
            let d = watch.incidents.get(&id).map(|i| i.diagnosis.clone());
            let mut detail = format!(
                "the incident did not resolve within {}s",
                self.guards.limits.verify_within.as_secs()
            );
            let mut result = "not_verified";
            if let (Some(rb), Some(d)) = (&p.rollback, &d) {
                match live::apply_patch(&conn.client, rb, true).await {
                    Ok(_) => match super::diagnose::apply_and_audit(&conn, d, rb).await {
                        Ok(()) => {
                            result = "rolled_back";
                            detail.push_str("; rolled back to the state before the action");
                        }
                        Err(e) => detail.push_str(&format!("; rollback failed: {e:#}")),
                    },
                    Err(e) => detail.push_str(&format!("; rollback refused by the dry run: {e}")),
                }
            } else {
                detail.push_str("; this action has no rollback");
            }
            if self.guards.tripped() {
                detail.push_str("; circuit breaker open: no more automatic actions");
            }
            let r = ActionRecord {
                action: name.into(),
                object: Some(p.object.clone()),
                result: result.into(),
                detail,
                at: now,
            };
            if let Some(u) = watch.incidents.act(&id, r, true) {
                self.emit(&u)?;
            }
        }
        Ok(())
    }

    fn emit(&mut self, u: &IncidentUpdate) -> anyhow::Result<()> {
        match u.change {
            IncidentChange::Opened => self.totals.opened += 1,
            IncidentChange::Resolved => self.totals.resolved += 1,
            _ => {}
        }
        self.view.update(self.out, u)?;
        Ok(())
    }
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// Asks the daemon to diagnose a target: from the watched state during a replay, from a fresh
/// collection (the same as `diagnose`) on a live cluster.
async fn diagnose(
    client: &DaemonClient,
    conn: Option<&live::Connection>,
    watch: &Watch,
    logs: &mut ReplayLogs,
    target: &ObjectRef,
    now: Timestamp,
) -> anyhow::Result<Diagnosis> {
    let snapshot = match conn {
        Some(c) => {
            let ns = live::Connection {
                client: c.client.clone(),
                namespace: target
                    .namespace
                    .clone()
                    .unwrap_or_else(|| c.namespace.clone()),
                context: c.context.clone(),
                cluster_url: c.cluster_url.clone(),
            };
            let t = metakube_shared::TargetRef {
                kind: target.kind.clone(),
                name: target.name.clone(),
            };
            live::collect(&ns, &t, &|_| {}).await?
        }
        None => {
            let ns = target.namespace.clone().unwrap_or_default();
            let mut namespaces = BTreeSet::from([ns]);
            let objects = watch.store.objects_for(&namespaces);
            let pods = collect::target_pods(&objects, target);
            let more = collect::referenced_namespaces(&pods);
            let objects = if more.is_subset(&namespaces) {
                objects
            } else {
                namespaces.extend(more);
                watch.store.objects_for(&namespaces)
            };
            let c = Collected {
                logs: logs.for_namespaces(&namespaces),
                objects,
                gaps: Vec::new(),
            };
            collect::select(
                c,
                target,
                SnapshotSource::Dump {
                    path: "watch --replay".into(),
                },
                Some(now),
            )?
        }
    };
    let req = DiagnoseRequest {
        snapshot,
        options: DiagnoseOptions {
            no_llm: true,
            explain: Some(false),
            no_memory: false,
        },
    };
    Ok(client.post("/v1/diagnose", &req).await?)
}

/// Logs for a replay, read once per namespace from `--logs DIR/<ns>/<pod>/logs.txt`.
struct ReplayLogs {
    dir: Option<PathBuf>,
    by_ns: HashMap<String, Vec<ContainerLog>>,
}

impl ReplayLogs {
    fn new(dir: Option<PathBuf>) -> ReplayLogs {
        ReplayLogs {
            dir,
            by_ns: HashMap::new(),
        }
    }

    fn for_namespaces(&mut self, namespaces: &BTreeSet<String>) -> Vec<ContainerLog> {
        let Some(dir) = self.dir.clone() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for ns in namespaces.iter().map(String::as_str).chain(["kube-system"]) {
            let logs = self
                .by_ns
                .entry(ns.to_string())
                .or_insert_with(|| read_ns_logs(&dir.join(ns)));
            out.extend(logs.iter().cloned());
        }
        out
    }
}

fn read_ns_logs(dir: &Path) -> Vec<ContainerLog> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path().join("logs.txt"))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| match collect::dump::read_logs(p) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!(
                    "metakube: warning: --logs: cannot read {}: {e}",
                    p.display()
                );
                None
            }
        })
        .flatten()
        .collect()
}

enum Acted {
    DryRun(String),
    Apply(String),
}

/// Dry run, apply, audit (the same audit log as `diagnose --fix`).
async fn act(conn: &live::Connection, d: &Diagnosis, p: &Planned) -> Result<(), Acted> {
    match &p.patch {
        Some(patch) => {
            live::apply_patch(&conn.client, patch, true)
                .await
                .map_err(|e| Acted::DryRun(e.to_string()))?;
            let _ = super::diagnose::audit(d, patch, conn, super::diagnose::Audited::DryRun);
            super::diagnose::apply_and_audit(conn, d, patch)
                .await
                .map_err(|e| Acted::Apply(format!("{e:#}")))
        }
        None => {
            live::delete_pod(&conn.client, &p.object, true)
                .await
                .map_err(|e| Acted::DryRun(e.to_string()))?;
            let r = live::delete_pod(&conn.client, &p.object, false).await;
            let _ = super::diagnose::audit_delete(
                d,
                &p.object,
                conn,
                r.as_ref().err().map(|e| e.to_string()),
            );
            r.map(|_| ()).map_err(|e| Acted::Apply(e.to_string()))
        }
    }
}
