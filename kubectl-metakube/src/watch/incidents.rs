//! Incidents: diagnoses of symptomatic targets grouped by what they name as the root cause, so
//! the cascade of one broken Service is one incident with each failing caller in `affected`,
//! not one per caller. An incident resolves when none of its targets shows a symptom any more,
//! and reopens (same id) when its fault comes back soon after.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};
use metakube_shared::{
    ActionRecord, AnomalyReport, Detection, Diagnosis, Incident, IncidentChange, IncidentKind,
    IncidentStatus, IncidentUpdate, ObjectRef, Trigger, Verdict,
};

/// Why a target is looked at: its state symptoms, an anomalous window, or both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Suspect {
    /// State symptoms of the target's objects.
    pub triggers: Vec<Trigger>,
    /// The anomaly of its latest window, if any.
    pub anomaly: Option<AnomalyReport>,
}

impl Suspect {
    fn reasons(&self) -> BTreeSet<String> {
        let mut r: BTreeSet<String> = self.triggers.iter().map(|t| t.reason.clone()).collect();
        if self.anomaly.is_some() {
            r.insert("anomaly".into());
        }
        r
    }
}

#[derive(Debug)]
struct Looked {
    at: Timestamp,
    reasons: BTreeSet<String>,
}

struct Entry {
    incident: Incident,
    key: String,
    /// Targets that show its fault now, each with the symptoms it joined with.
    current: BTreeMap<ObjectRef, BTreeSet<String>>,
}

/// A suspect's diagnosis as it is recorded: what, why, and when (the event index and stream
/// time of its first symptom, and of now).
struct Observed<'a> {
    target: &'a ObjectRef,
    suspect: &'a Suspect,
    d: Diagnosis,
    onset: (u64, Timestamp),
    index: u64,
    now: Timestamp,
}

/// Settings of the grouping.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// A symptomatic target is diagnosed again after this long, even with the same symptoms.
    pub rediagnose_every: SignedDuration,
    /// A fault that comes back within this long after resolving reopens its incident.
    pub reopen_within: SignedDuration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            rediagnose_every: SignedDuration::from_secs(120),
            reopen_within: SignedDuration::from_secs(900),
        }
    }
}

/// Every incident of a watch.
#[derive(Default)]
pub struct Incidents {
    policy: Policy,
    entries: Vec<Entry>,
    by_key: HashMap<String, usize>,
    of_target: HashMap<ObjectRef, BTreeSet<usize>>,
    looked: HashMap<ObjectRef, Looked>,
}

/// The grouping key of a diagnosis: its root cause; without one, the target and its first
/// symptom (so two unexplained failures stay two incidents). `None` for a healthy verdict.
fn key_of(d: &Diagnosis, target: &ObjectRef, s: &Suspect) -> Option<String> {
    if let Some(rc) = &d.root_cause {
        return Some(format!("{}|{}", rc.object, rc.reason));
    }
    match d.verdict {
        Verdict::Healthy if s.anomaly.is_some() => Some(format!("{target}|anomaly")),
        Verdict::Healthy => None,
        _ => {
            let first = d
                .symptoms
                .first()
                .map(|s| s.reason.clone())
                .or_else(|| s.triggers.first().map(|t| t.reason.clone()))
                .unwrap_or_else(|| d.verdict.to_string());
            Some(format!("{target}|{first}"))
        }
    }
}

impl Incidents {
    /// Empty, with this policy.
    pub fn new(policy: Policy) -> Incidents {
        Incidents {
            policy,
            ..Default::default()
        }
    }

    /// The suspects that need a (new) diagnosis: never diagnosed, symptoms changed, or the
    /// last diagnosis is older than the policy allows.
    pub fn due(&self, suspects: &BTreeMap<ObjectRef, Suspect>, now: Timestamp) -> Vec<ObjectRef> {
        suspects
            .iter()
            .filter(|(t, s)| match self.looked.get(*t) {
                None => true,
                Some(l) => {
                    l.reasons != s.reasons()
                        || now.duration_since(l.at) >= self.policy.rediagnose_every
                }
            })
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Notes that a suspect was diagnosed now, with these symptoms; returns them.
    fn look(&mut self, target: &ObjectRef, suspect: &Suspect, now: Timestamp) -> BTreeSet<String> {
        let reasons = suspect.reasons();
        let looked = Looked {
            at: now,
            reasons: reasons.clone(),
        };
        self.looked.insert(target.clone(), looked);
        reasons
    }

    /// Records the diagnosis of a suspect; returns the lines to print.
    ///
    /// A target belongs to every incident whose symptoms it still shows: a symptom it did not
    /// have before (a pod NotReady on a failed node, on top of an image that cannot be pulled)
    /// joins the incident of the new diagnosis and leaves the old one open; the same symptoms
    /// explained anew move the target (and, when it was the incident's only target, the
    /// incident keeps its id with the new explanation: one fault, one incident).
    pub fn record(
        &mut self,
        target: &ObjectRef,
        suspect: &Suspect,
        d: Diagnosis,
        onset: (u64, Timestamp),
        index: u64,
        now: Timestamp,
    ) -> Vec<IncidentUpdate> {
        let reasons = self.look(target, suspect, now);
        let mut out = Vec::new();
        let member_of: Vec<usize> = self
            .of_target
            .get(target)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let Some(key) = key_of(&d, target, suspect) else {
            // Diagnosed healthy: it leaves every incident it was in.
            for i in member_of {
                self.leave(i, target, now, &mut out);
            }
            return out;
        };
        let existing = self.by_key.get(&key).copied();
        if let Some(j) = existing.filter(|j| member_of.contains(j)) {
            let e = &mut self.entries[j];
            let changed = diagnosis_changed(&e.incident.diagnosis, &d)
                || anomaly_changed(&e.incident.anomaly, &suspect.anomaly);
            e.current.insert(target.clone(), reasons);
            refresh(e, target, suspect, d, now);
            if changed {
                out.push(update(e, IncidentChange::Updated));
            }
            return out;
        }
        let known: BTreeSet<String> = member_of
            .iter()
            .filter_map(|i| self.entries[*i].current.get(target))
            .flatten()
            .cloned()
            .collect();
        let fresh: BTreeSet<String> = reasons.difference(&known).cloned().collect();
        if !member_of.is_empty() && fresh.is_empty() && d.root_cause.is_none() {
            // Fewer of the same symptoms and no cause named this time (a fault clearing, a
            // snapshot between two states): the verified explanation stands.
            for i in &member_of {
                if let Some(r) = self.entries[*i].current.get_mut(target) {
                    *r = r.intersection(&reasons).cloned().collect();
                }
            }
            return out;
        }
        let with = if member_of.is_empty() {
            // A first diagnosis: join or open the incident it points to.
            reasons
        } else if fresh.is_empty() {
            // The same symptoms, explained anew.
            if let ([i], None) = (member_of.as_slice(), existing) {
                if self.entries[*i].current.len() == 1 {
                    let e = &mut self.entries[*i];
                    self.by_key.remove(&e.key);
                    e.key = key.clone();
                    self.by_key.insert(key, *i);
                    e.current.insert(target.clone(), reasons);
                    refresh(e, target, suspect, d, now);
                    out.push(update(e, IncidentChange::Updated));
                    return out;
                }
            }
            for i in member_of {
                self.leave(i, target, now, &mut out);
            }
            reasons
        } else {
            // New symptoms: they join or open the incident they point to; the old stays.
            fresh
        };
        let seen = Observed {
            target,
            suspect,
            d,
            onset,
            index,
            now,
        };
        self.join(key, existing, with, seen, &mut out);
        out
    }

    fn join(
        &mut self,
        key: String,
        existing: Option<usize>,
        reasons: BTreeSet<String>,
        seen: Observed<'_>,
        out: &mut Vec<IncidentUpdate>,
    ) {
        let Observed {
            target,
            suspect,
            now,
            ..
        } = seen;
        let Some(j) = existing else {
            out.push(self.open(key, reasons, seen));
            return;
        };
        let e = &mut self.entries[j];
        let reopened = e.incident.status == IncidentStatus::Resolved;
        if reopened && now.duration_since(e.incident.last_seen) > self.policy.reopen_within {
            // Long gone: a new incident of the same fault.
            self.by_key.remove(&key);
            out.push(self.open(key, reasons, seen));
            return;
        }
        e.current.insert(target.clone(), reasons);
        if !e.incident.affected.contains(target) {
            e.incident.affected.push(target.clone());
        }
        e.incident.status = IncidentStatus::Open;
        refresh(e, target, suspect, seen.d, now);
        self.of_target.entry(target.clone()).or_default().insert(j);
        let change = if reopened {
            IncidentChange::Reopened
        } else {
            IncidentChange::Updated
        };
        out.push(update(&self.entries[j], change));
    }

    fn open(
        &mut self,
        key: String,
        reasons: BTreeSet<String>,
        seen: Observed<'_>,
    ) -> IncidentUpdate {
        let Observed {
            target,
            suspect,
            d,
            onset,
            index,
            now,
        } = seen;
        let first_seen = suspect
            .triggers
            .iter()
            .filter_map(|t| t.since)
            .filter(|s| *s <= onset.1)
            .min()
            .unwrap_or(onset.1);
        let kind = if d.verdict == Verdict::Healthy
            || (d.root_cause.is_none() && suspect.triggers.is_empty())
        {
            IncidentKind::Anomaly
        } else {
            IncidentKind::Fault
        };
        let incident = Incident {
            incident: format!("inc-{}", self.entries.len() + 1),
            kind,
            status: IncidentStatus::Open,
            first_seen,
            last_seen: now,
            affected: vec![target.clone()],
            triggers: suspect.triggers.clone(),
            detection: Detection {
                events: index.saturating_sub(onset.0),
                seconds: now.duration_since(onset.1).as_secs_f64().max(0.0),
                at_event: index,
            },
            anomaly: suspect.anomaly.clone(),
            actions: Vec::new(),
            diagnosis: d,
        };
        let i = self.entries.len();
        self.entries.push(Entry {
            incident,
            key: key.clone(),
            current: BTreeMap::from([(target.clone(), reasons)]),
        });
        self.by_key.insert(key, i);
        self.of_target.entry(target.clone()).or_default().insert(i);
        update(&self.entries[i], IncidentChange::Opened)
    }

    fn leave(
        &mut self,
        i: usize,
        target: &ObjectRef,
        now: Timestamp,
        out: &mut Vec<IncidentUpdate>,
    ) {
        if let Some(s) = self.of_target.get_mut(target) {
            s.remove(&i);
            if s.is_empty() {
                self.of_target.remove(target);
            }
        }
        let e = &mut self.entries[i];
        e.current.remove(target);
        if e.current.is_empty() && e.incident.status == IncidentStatus::Open {
            e.incident.status = IncidentStatus::Resolved;
            e.incident.last_seen = now;
            out.push(update(e, IncidentChange::Resolved));
        }
    }

    /// Targets leave the incidents whose symptoms they no longer show (an incident left with
    /// none resolves); open incidents are marked seen now.
    pub fn sweep(
        &mut self,
        suspects: &BTreeMap<ObjectRef, Suspect>,
        now: Timestamp,
    ) -> Vec<IncidentUpdate> {
        let mut out = Vec::new();
        let mut gone: Vec<(usize, ObjectRef)> = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            for (t, joined_with) in &e.current {
                let still = suspects
                    .get(t)
                    .is_some_and(|s| !s.reasons().is_disjoint(joined_with));
                if !still {
                    gone.push((i, t.clone()));
                }
            }
        }
        for (i, t) in gone {
            self.leave(i, &t, now, &mut out);
        }
        self.looked.retain(|t, _| suspects.contains_key(t));
        for e in &mut self.entries {
            if e.incident.status == IncidentStatus::Open {
                e.incident.last_seen = now;
            }
        }
        out
    }

    /// Adds a suspect to the open incident (with a verified root cause) of one of `behind`, the
    /// workloads it depends on — a Service whose endpoints emptied because its pods fail is
    /// that failure's incident, not one of its own. `None` when none of them has one.
    pub fn attach(
        &mut self,
        target: &ObjectRef,
        suspect: &Suspect,
        behind: &[ObjectRef],
        now: Timestamp,
    ) -> Option<Vec<IncidentUpdate>> {
        let j = behind.iter().find_map(|b| {
            self.of_target.get(b)?.iter().copied().find(|i| {
                let e = &self.entries[*i];
                e.incident.status == IncidentStatus::Open
                    && e.incident.diagnosis.root_cause.is_some()
            })
        })?;
        let reasons = self.look(target, suspect, now);
        self.of_target.entry(target.clone()).or_default().insert(j);
        let e = &mut self.entries[j];
        let new = e.current.insert(target.clone(), reasons).is_none();
        if !e.incident.affected.contains(target) {
            e.incident.affected.push(target.clone());
        }
        Some(if new {
            vec![update(e, IncidentChange::Updated)]
        } else {
            Vec::new()
        })
    }

    /// Sets the changes seen near an incident.
    pub fn set_changes(&mut self, id: &str, changes: Vec<metakube_shared::Change>) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.incident.incident == id) {
            e.incident.diagnosis.changes = changes;
        }
    }

    /// Records what remediation did; returns the line to print.
    pub fn act(
        &mut self,
        id: &str,
        record: ActionRecord,
        escalate: bool,
    ) -> Option<IncidentUpdate> {
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.incident.incident == id)?;
        e.incident.actions.push(record);
        let change = if escalate {
            IncidentChange::Escalated
        } else {
            IncidentChange::Updated
        };
        Some(update(e, change))
    }

    /// An incident by id.
    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.entries
            .iter()
            .map(|e| &e.incident)
            .find(|i| i.incident == id)
    }

    /// Every incident, in the order they opened.
    pub fn all(&self) -> impl Iterator<Item = &Incident> {
        self.entries.iter().map(|e| &e.incident)
    }
}

fn refresh(e: &mut Entry, target: &ObjectRef, s: &Suspect, d: Diagnosis, now: Timestamp) {
    e.incident.last_seen = now;
    for t in &s.triggers {
        if !e
            .incident
            .triggers
            .iter()
            .any(|x| x.object == t.object && x.reason == t.reason)
        {
            e.incident.triggers.push(t.clone());
        }
    }
    if s.anomaly.is_some() {
        e.incident.anomaly = s.anomaly.clone();
    }
    // The incident carries the diagnosis of its first target; a later one replaces it only
    // when it comes from that same target (the fault explained anew).
    // The changes the watch saw stay with the incident (the new diagnosis has the daemon's).
    if e.incident.diagnosis.target == *target || e.incident.diagnosis.root_cause.is_none() {
        let seen: Vec<_> = std::mem::take(&mut e.incident.diagnosis.changes)
            .into_iter()
            .filter(|c| c.via.as_deref() == Some("watch"))
            .collect();
        e.incident.diagnosis = d;
        metakube_shared::change::merge(&mut e.incident.diagnosis.changes, seen);
    }
    if e.incident.kind == IncidentKind::Anomaly && !s.triggers.is_empty() {
        e.incident.kind = IncidentKind::Fault;
    }
}

fn diagnosis_changed(a: &Diagnosis, b: &Diagnosis) -> bool {
    a.verdict != b.verdict || a.category != b.category || a.root_cause != b.root_cause
}

fn anomaly_changed(a: &Option<AnomalyReport>, b: &Option<AnomalyReport>) -> bool {
    a.is_some() != b.is_some()
}

fn update(e: &Entry, change: IncidentChange) -> IncidentUpdate {
    IncidentUpdate {
        change,
        incident: e.incident.clone(),
    }
}
