//! The pipeline: snapshot → signals → graph → (memory → controller) → remediation → result.
//!
//! Pure and synchronous: it takes a snapshot and the knowledge, returns a diagnosis. No
//! sockets, files or clocks other than the stage timer; the server calls it through
//! `spawn_blocking`.

use std::collections::BTreeMap;
use std::time::Instant;

use metakube_shared::snapshot::SnapshotError;
use metakube_shared::{
    Diagnosis, Evidence, EvidenceSource, Hypothesis, KubeObject, Pathway, RootCause, Snapshot,
    Symptom, Timings, Verdict,
};

use crate::graph::domain::DomainGraph;
use crate::graph::instance::KubeGraph;
use crate::graph::relations::{codes_by_object, neighbourhood};
use crate::graph::search::{scope_of, Finding, Search};
use crate::memory::controller::{self, Decision};
use crate::memory::correction::{Brief, NearObject};
use crate::memory::learned::{materialize, Here};
use crate::memory::signature::Signature;
use crate::memory::{Recalled, Trace, Weights};
use crate::remediation;
use crate::signals::rules::SymptomRules;
use crate::signals::{self, LogPatterns, Signal};
use crate::snapshot::Cluster;

/// What the engine knows: the domain graph and the log templates.
#[derive(Debug, Clone)]
pub struct Knowledge {
    /// Symptom → cause → fix knowledge, with memory-adjusted weights.
    pub domain: DomainGraph,
    /// Log line templates.
    pub patterns: LogPatterns,
    /// Event, status and condition templates of Kubernetes' own components.
    pub rules: SymptomRules,
    /// Causes the analytical pathway must not conclude (`*` for all): an ablation for
    /// measuring how memory learns them from corrections (`metakubed --withhold-causes`).
    pub withheld: std::collections::BTreeSet<String>,
}

impl Knowledge {
    /// The knowledge shipped with metakube.
    pub fn builtin() -> Knowledge {
        Knowledge {
            domain: DomainGraph::builtin(),
            patterns: LogPatterns::builtin(),
            rules: SymptomRules::builtin(),
            withheld: Default::default(),
        }
    }

    /// Whether the analytical pathway may conclude a cause.
    pub fn withholds(&self, reason: &str) -> bool {
        !self.withheld.is_empty() && (self.withheld.contains("*") || self.withheld.contains(reason))
    }
}

/// Why a snapshot could not be diagnosed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The snapshot breaks a rule of the protocol.
    #[error("invalid snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The target is not among the collected objects.
    #[error("{0} is not in the snapshot (was it collected from the right namespace?)")]
    TargetNotFound(String),
    /// The caller gave up (the client went away); the work was stopped.
    #[error("the diagnosis was abandoned: the client went away")]
    Abandoned,
}

/// The result of the analytical pathway on one snapshot, before it becomes a [`Diagnosis`].
#[derive(Debug)]
pub struct Analysis {
    /// Signals found anywhere in the snapshot.
    pub signals: Vec<Signal>,
    /// Ranked findings for the target.
    pub findings: Vec<Finding>,
    /// The target's scope (itself, owners, owned, selected).
    pub scope: Vec<metakube_shared::ObjectRef>,
    /// Nodes and edges of the instance graph.
    pub graph_size: (usize, usize),
    /// The instance graph.
    pub graph: KubeGraph,
    /// What re-linking a kept graph did (`None`: built afresh).
    pub relinked: Option<crate::graph::instance::update::Relinked>,
}

/// Minimum score for a finding to be named the root cause.
pub const MIN_ROOT_SCORE: f64 = 0.25;

/// Runs signals → graph → search on a snapshot.
pub fn analyze(
    k: &Knowledge,
    snap: &Snapshot,
    timings: &mut BTreeMap<String, f64>,
) -> Result<(Cluster, Analysis), EngineError> {
    analyze_kept(k, snap, Kept::default(), timings)
}

/// What the daemon keeps of a live cluster between two diagnoses of it: the graph (re-linked
/// rather than built) and the typed snapshot (objects whose resourceVersion did not move are
/// taken from it rather than typed again).
#[derive(Debug, Default)]
pub struct Kept {
    /// The last snapshot's graph.
    pub graph: Option<KubeGraph>,
    /// The last snapshot, typed.
    pub cluster: Option<Cluster>,
}

/// [`analyze`], starting from what was kept of an earlier snapshot of the same cluster.
pub fn analyze_kept(
    k: &Knowledge,
    snap: &Snapshot,
    kept: Kept,
    timings: &mut BTreeMap<String, f64>,
) -> Result<(Cluster, Analysis), EngineError> {
    let t = Instant::now();
    let (cluster, reused) = Cluster::from_snapshot_reusing(snap, kept.cluster);
    tracing::debug!(
        reused,
        objects = snap.objects.len(),
        ms = t.elapsed().as_secs_f64() * 1e3,
        "snapshot typed"
    );
    if !cluster_has(&cluster, &snap.target) {
        return Err(EngineError::TargetNotFound(snap.target.to_string()));
    }
    lap(timings, "snapshot", t);
    let a = analyze_relinked(k, &cluster, kept.graph, &[], timings);
    Ok((cluster, a))
}

/// Runs signals → graph → search on an already typed snapshot.
pub fn analyze_cluster(
    k: &Knowledge,
    cluster: &Cluster,
    timings: &mut BTreeMap<String, f64>,
) -> Analysis {
    analyze_relinked(k, cluster, None, &[], timings)
}

/// [`analyze_cluster`] over a kept graph re-linked to this snapshot (`changed`: objects to
/// treat as changed whatever their resourceVersion says), or a graph built afresh.
pub fn analyze_relinked(
    k: &Knowledge,
    cluster: &Cluster,
    kept: Option<KubeGraph>,
    changed: &[metakube_shared::ObjectRef],
    timings: &mut BTreeMap<String, f64>,
) -> Analysis {
    let t = Instant::now();
    let signals = signals::extract(cluster, &k.patterns, &k.rules);
    lap(timings, "signals", t);
    let t = Instant::now();
    let (graph, relinked) = match kept {
        Some(mut g) => {
            let r = g.update(cluster, &signals, changed);
            tracing::debug!(
                objects = r.objects,
                changed = r.changed,
                gone = r.gone,
                derived = r.derived,
                "kept graph re-linked"
            );
            (g, Some(r))
        }
        None => (KubeGraph::build(cluster, &signals), None),
    };
    lap(timings, "graph", t);
    let t = Instant::now();
    let scope = scope_of(cluster, &graph, &cluster.target);
    let mut findings =
        Search::new(cluster, &graph, &k.domain, &signals).run(&cluster.target, &scope);
    findings.retain(|f| !k.withholds(&f.reason));
    lap(timings, "search", t);
    Analysis {
        signals,
        findings,
        scope,
        graph_size: (graph.node_count(), graph.edge_count()),
        graph,
        relinked,
    }
}

fn cluster_has(c: &Cluster, r: &metakube_shared::ObjectRef) -> bool {
    c.meta_of(r).is_some() || c.exists(r)
}

fn lap(t: &mut BTreeMap<String, f64>, stage: &str, start: Instant) {
    *t.entry(stage.to_string()).or_insert(0.0) += start.elapsed().as_secs_f64() * 1000.0;
}

/// A diagnosis and the domain-graph edges behind its root cause (for feedback).
#[derive(Debug, Clone)]
pub struct Diagnosed {
    /// The answer.
    pub diagnosis: Diagnosis,
    /// (symptom, reason) edges the root cause was reached through.
    pub edges: Vec<(String, String)>,
    /// What memory needs to learn from feedback on it.
    pub trace: Trace,
    /// What re-linking the cluster's kept graph did (`None`: the graph was built afresh).
    pub relinked: Option<crate::graph::instance::update::Relinked>,
}

/// Episodic memory as the engine sees it: the episodes similar to a masked signature, and
/// the controller's settings. (The daemon's `Memory` implements it; the engine itself does no
/// I/O.)
pub trait Recall {
    /// The recalled episodes, or an error message when memory could not be read (the
    /// analytical pathway answers then).
    fn recall(&self, sig: &Signature) -> Result<Recollection, String>;
}

/// What memory gives back for one signature.
pub struct Recollection {
    /// The most similar episodes, best first.
    pub recalled: Vec<Recalled>,
    /// The controller's threshold now.
    pub theta: f64,
    /// Its confidence weights.
    pub weights: Weights,
}

/// Diagnoses a snapshot on the analytical pathway.
pub fn diagnose(k: &Knowledge, snap: &Snapshot, id: String) -> Result<Diagnosed, EngineError> {
    diagnose_with(k, snap, id, None)
}

/// Diagnoses a snapshot, consulting episodic memory when given: the controller may answer
/// from a recalled cause that verifies here (intuitive pathway), otherwise the best verified
/// finding answers (analytical pathway).
pub fn diagnose_with(
    k: &Knowledge,
    snap: &Snapshot,
    id: String,
    memory: Option<&dyn Recall>,
) -> Result<Diagnosed, EngineError> {
    diagnose_kept(k, snap, id, memory, &|| false, None, &mut Kept::default())
}

/// [`diagnose_with`], stopping between stages with [`EngineError::Abandoned`] once
/// `abandoned()` says the caller is gone (the daemon passes "the client hung up"), and
/// answering with what it has once `deadline` passes: the fix is then offered without its
/// validation (a second pass over the patched snapshot), and the explanation says so.
///
/// `kept` is what was kept of an earlier snapshot of the same cluster, if anything: its graph
/// is re-linked to this one rather than built afresh, its typed objects reused where their
/// resourceVersion did not move, and this snapshot's are left in their place.
pub fn diagnose_kept(
    k: &Knowledge,
    snap: &Snapshot,
    id: String,
    memory: Option<&dyn Recall>,
    abandoned: &dyn Fn() -> bool,
    deadline: Option<Instant>,
    kept: &mut Kept,
) -> Result<Diagnosed, EngineError> {
    let start = Instant::now();
    snap.validate()?;
    let mut stages = BTreeMap::new();
    let (mut cluster, mut analysis) = analyze_kept(k, snap, std::mem::take(kept), &mut stages)?;
    if abandoned() {
        return Err(EngineError::Abandoned);
    }
    let t = Instant::now();
    let signature = Signature::of(&analysis, &snap.target.kind);
    let codes = codes_by_object(&analysis.signals);
    let decision = match memory {
        Some(m) if !signature.is_empty() => match m.recall(&signature) {
            Ok(rec) => Some(decide_with_learned(
                &rec,
                &cluster,
                snap,
                &codes,
                &signature,
                &mut analysis,
            )),
            Err(e) => {
                tracing::warn!(error = %e, "episodic memory failed; analytical pathway");
                None
            }
        },
        Some(_) => Some(Decision {
            report: metakube_shared::MemoryReport {
                why: "no symptoms to recall by: analytical pathway".into(),
                ..Default::default()
            },
            ..Default::default()
        }),
        None => None,
    };
    let intuitive = decision.as_ref().and_then(|d| d.chosen);
    if let Some(i) = intuitive {
        let f = analysis.findings.remove(i);
        analysis.findings.insert(0, f);
    }
    if memory.is_some() {
        lap(&mut stages, "memory", t);
    }
    let t = Instant::now();
    let top = analysis
        .findings
        .first()
        .filter(|f| intuitive.is_some() || f.score >= MIN_ROOT_SCORE)
        .cloned();
    if abandoned() {
        return Err(EngineError::Abandoned);
    }
    let out_of_time = deadline.is_some_and(|d| Instant::now() >= d);
    let remediation = match &top {
        Some(f) if out_of_time => remediation::plan(f),
        Some(f) => validated_plan(k, snap, &mut cluster, &analysis.graph, f),
        None => Vec::new(),
    };
    lap(&mut stages, "remediation", t);
    let symptoms = scoped_symptoms(&analysis);
    let confidence = confidence(&analysis.findings);
    let hypotheses = analysis
        .findings
        .iter()
        .take(5)
        .map(|f| Hypothesis {
            object: f.object.clone(),
            reason: f.reason.clone(),
            category: f.category,
            score: round3(f.score),
            note: f.note.clone(),
            evidence: f.evidence.iter().take(4).cloned().collect(),
        })
        .collect();
    let mut evidence = top.as_ref().map(evidence_of).unwrap_or_default();
    let report = decision.as_ref().map(|d| d.report.clone());
    if let (Some(f), Some(r), Some(d)) = (&top, &report, &decision) {
        if let Some(e) = d.episode.filter(|_| intuitive.is_some()) {
            evidence.insert(
                0,
                Evidence {
                    source: EvidenceSource::Memory,
                    object: f.object.clone(),
                    detail: format!(
                        "seen {} time(s) before, the fix worked {} of {} (episode {e}; {})",
                        r.seen, r.worked, r.seen, r.why
                    ),
                    pointer: Some(format!("episode/{e}")),
                },
            );
        }
    }
    let explanation = match &top {
        Some(f) if intuitive.is_some() => format!(
            "{} Recognised from memory: seen {} time(s), the fix worked {} of {}.",
            explain(f, &remediation),
            report.as_ref().map_or(0, |r| r.seen),
            report.as_ref().map_or(0, |r| r.worked),
            report.as_ref().map_or(0, |r| r.seen)
        ),
        Some(f) => explain(f, &remediation),
        None if symptoms.is_empty() && missing_input(&snap.meta.gaps, &analysis.scope) => format!(
            "Inconclusive: nothing wrong was seen with {}, but {} input(s) could not be read ({}), so it is not called healthy.",
            snap.target,
            snap.meta.gaps.len(),
            snap.meta.gaps.iter().map(|g| g.what.as_str()).take(5).collect::<Vec<_>>().join(", ")
        ),
        None if symptoms.is_empty() => format!("No problem found: {} and the objects around it look healthy in this snapshot.", snap.target),
        None => format!(
            "{} shows {} symptom(s) ({}), but the evidence does not single out a root cause; see the symptoms and hypotheses.",
            snap.target,
            symptoms.len(),
            symptoms.iter().map(|s| s.reason.as_str()).take(5).collect::<Vec<_>>().join(", ")
        ),
    };
    let explanation = if out_of_time && remediation.iter().any(|r| r.patch.is_some()) {
        format!("{explanation} The fix was not validated: the request's time budget ran out after the analysis.")
    } else {
        explanation
    };
    let edges = top
        .as_ref()
        .map(|f| {
            f.symptoms
                .iter()
                .map(|s| (s.clone(), f.reason.clone()))
                .collect()
        })
        .unwrap_or_default();
    let total = start.elapsed().as_secs_f64() * 1000.0;
    let verdict = match &top {
        Some(_) => Verdict::RootCause,
        None if !symptoms.is_empty() => Verdict::SymptomsOnly,
        None if missing_input(&snap.meta.gaps, &analysis.scope) => Verdict::Inconclusive,
        None => Verdict::Healthy,
    };
    let diagnosis = Diagnosis {
        id,
        target: snap.target.clone(),
        verdict,
        category: top.as_ref().map(|f| f.category),
        root_cause: top.as_ref().map(|f| RootCause {
            object: f.object.clone(),
            reason: f.reason.clone(),
            summary: f.summary.clone(),
        }),
        hypotheses,
        confidence: match (&top, &report) {
            (Some(_), Some(r)) if intuitive.is_some() => r.confidence,
            (Some(_), _) => confidence,
            (None, _) => 0.0,
        },
        pathway: if intuitive.is_some() {
            Pathway::Intuitive
        } else {
            Pathway::Analytical
        },
        evidence,
        remediation,
        explanation,
        symptoms,
        gaps: snap.meta.gaps.clone(),
        timings_ms: Timings {
            total: round3(total),
            stages: stages.into_iter().map(|(k, v)| (k, round3(v))).collect(),
        },
        memory: report,
        llm: None,
        // Attached at the edge (the history lives in the store): `history::changes_near`.
        changes: Vec::new(),
    };
    let trace = Trace {
        signature,
        path_kinds: top
            .as_ref()
            .map(|f| f.path.iter().map(|r| r.kind.clone()).collect())
            .unwrap_or_default(),
        intuitive: intuitive.is_some(),
        episode: decision.as_ref().and_then(|d| d.episode),
        pattern: decision.as_ref().and_then(|d| d.pattern),
        near: neighbourhood(&analysis.graph, &cluster, &snap.target)
            .into_iter()
            .map(|n| NearObject {
                codes: codes.of(&n.object).into_iter().collect(),
                object: n.object,
                path: n.path,
            })
            // Kept with every stored diagnosis: leave out the bulk no correction names — other
            // workloads. healthy pods (reached through a node or a Service).
            .filter(|n| !(n.object.kind == "Pod" && !n.path.steps.is_empty() && n.codes.is_empty()))
            .collect(),
        findings: analysis
            .findings
            .iter()
            .take(20)
            .map(|f| Brief {
                object: f.object.clone(),
                reason: f.reason.clone(),
                category: f.category,
            })
            .collect(),
    };
    kept.graph = Some(std::mem::take(&mut analysis.graph));
    kept.cluster = Some(cluster);
    Ok(Diagnosed {
        diagnosis,
        edges,
        trace,
        relinked: analysis.relinked.take(),
    })
}

/// The controller's decision over the verified findings plus the learned causes of the
/// recalled episodes that map onto this snapshot; learned causes it does not choose are
/// dropped again (they were not verified by any rule of the engine).
fn decide_with_learned(
    rec: &Recollection,
    cluster: &Cluster,
    snap: &Snapshot,
    codes: &crate::graph::relations::CodesByObject,
    signature: &Signature,
    analysis: &mut Analysis,
) -> Decision {
    let learned = materialize(
        &rec.recalled,
        &Here {
            cluster,
            graph: &analysis.graph,
            codes,
            target: &snap.target,
            findings: &analysis.findings,
        },
    );
    analysis.findings.extend(learned);
    let d = controller::decide(
        &rec.recalled,
        &analysis.findings,
        signature,
        rec.theta,
        &rec.weights,
    );
    let chosen = d.chosen.map(|i| analysis.findings[i].clone());
    analysis
        .findings
        .retain(|f| f.learned_from.is_none() || chosen.as_ref() == Some(f));
    let at = chosen.and_then(|c| analysis.findings.iter().position(|f| *f == c));
    Decision { chosen: at, ..d }
}

/// Whether input the answer depends on is missing: any list that could not be read, or the
/// logs of the target's own pods (another pod's unreadable log says nothing about the target).
fn missing_input(gaps: &[metakube_shared::Gap], scope: &[metakube_shared::ObjectRef]) -> bool {
    gaps.iter()
        .any(|g| match g.what.strip_prefix("logs of pod/") {
            Some(rest) => {
                let pod = rest.split(' ').next().unwrap_or("");
                scope.iter().any(|r| r.kind == "Pod" && r.name == pod)
            }
            None => true,
        })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Confidence: the top score, discounted when the runner-up is close.
fn confidence(findings: &[Finding]) -> f64 {
    let Some(top) = findings.first() else {
        return 0.0;
    };
    let second = findings
        .iter()
        .skip(1)
        .find(|f| f.object != top.object)
        .map_or(0.0, |f| f.score);
    let margin = ((top.score - second) / top.score.max(1e-9)).clamp(0.0, 1.0);
    round3(top.score * (0.6 + 0.4 * margin))
}

fn evidence_of(f: &Finding) -> Vec<Evidence> {
    let mut ev = f.evidence.clone();
    if f.path.len() > 1 {
        ev.push(Evidence {
            source: EvidenceSource::Graph,
            object: f.object.clone(),
            detail: format!(
                "causal path: {}",
                f.path
                    .iter()
                    .map(|r| format!("{}/{}", r.kind, r.name))
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
            pointer: None,
        });
    }
    let mut seen = Vec::new();
    ev.retain(|e| {
        let key = (e.object.clone(), e.detail.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    ev
}

fn scoped_symptoms(a: &Analysis) -> Vec<Symptom> {
    let mut out: Vec<Symptom> = Vec::new();
    let mut listed: std::collections::HashSet<(metakube_shared::ObjectRef, String)> =
        Default::default();
    let mut error_line = None;
    let scope: std::collections::HashSet<&metakube_shared::ObjectRef> = a.scope.iter().collect();
    for s in &a.signals {
        if out.len() >= 30 {
            break;
        }
        let related = scope.contains(&s.object)
            || a.findings
                .iter()
                .take(3)
                .any(|f| f.path.contains(&s.object));
        if !related {
            continue;
        }
        // Error lines alone are too common to list, but they keep a target whose log keeps
        // failing from being called healthy.
        if s.code == "log_error_line" {
            error_line.get_or_insert(s);
            continue;
        }
        if listed.insert((s.object.clone(), s.code.clone())) {
            out.push(s.to_symptom());
        }
    }
    if out.is_empty() {
        out.extend(error_line.map(Signal::to_symptom));
    }
    out.truncate(30);
    out
}

fn explain(f: &Finding, fixes: &[metakube_shared::Remediation]) -> String {
    let mut s = format!("{} ({}, {}).", f.summary, f.reason, f.category);
    if f.path.len() > 2 {
        s.push_str(&format!(
            " The symptom travels {}.",
            f.path
                .iter()
                .map(|r| format!("{}/{}", r.kind, r.name))
                .collect::<Vec<_>>()
                .join(" → ")
        ));
    }
    if let Some(fix) = fixes.first() {
        s.push_str(&format!(" Fix: {}.", fix.summary));
    }
    s
}

/// Plans fixes for a finding and validates each patch: the patched object must fit its
/// k8s-openapi type and the patched snapshot must no longer show the cause. Each patch is tried
/// in place on the typed cluster and the original put back (a copy of a 20k-object cluster per
/// patch cost more than the analysis it served); the cluster is as it was on return.
pub fn validated_plan(
    k: &Knowledge,
    snap: &Snapshot,
    cluster: &mut Cluster,
    graph: &KubeGraph,
    f: &Finding,
) -> Vec<metakube_shared::Remediation> {
    let mut plan = remediation::plan(f);
    for r in plan.iter_mut() {
        let Some(p) = r.patch.as_mut() else { continue };
        p.validated = validate_patch(k, snap, cluster, graph, f, p).is_ok();
    }
    plan
}

/// Why a patch did not validate.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// The object to patch is not in the snapshot.
    #[error("{0} is not in the snapshot")]
    Missing(String),
    /// The patch does not apply or breaks the schema.
    #[error(transparent)]
    Patch(#[from] remediation::PatchError),
    /// The cause is still reported after the patch.
    #[error("the patched snapshot still shows {0}")]
    StillThere(String),
}

fn validate_patch(
    k: &Knowledge,
    snap: &Snapshot,
    cluster: &mut Cluster,
    graph: &KubeGraph,
    f: &Finding,
    p: &metakube_shared::Patch,
) -> Result<(), ValidationError> {
    // The last object of that name is the one the typed cluster holds (a repeated object in a
    // snapshot replaces the earlier one), so putting it back restores the cluster exactly.
    let original = snap
        .objects
        .iter()
        .rev()
        .find(|o| o.is(&p.object))
        .ok_or_else(|| ValidationError::Missing(p.object.to_string()))?;
    let patched = remediation::apply(original.value(), &p.patch_type, &p.body)?;
    remediation::check_schema(&patched)?;
    // Re-diagnose with only the patched object re-typed, then put the original back.
    cluster
        .replace(&KubeObject::new(patched))
        .map_err(|e| ValidationError::StillThere(e.to_string()))?;
    // The graph is re-linked from this snapshot's, with only the patched object derived again
    // (and what it reaches): the patch did not move its resourceVersion.
    let a = analyze_relinked(
        k,
        cluster,
        Some(graph.clone()),
        std::slice::from_ref(&p.object),
        &mut BTreeMap::new(),
    );
    cluster
        .replace(original)
        .map_err(|e| ValidationError::StillThere(e.to_string()))?;
    if a.findings
        .iter()
        .any(|g| g.reason == f.reason && g.object == f.object && g.score >= MIN_ROOT_SCORE)
    {
        return Err(ValidationError::StillThere(format!(
            "{} at {}",
            f.reason, f.object
        )));
    }
    Ok(())
}
