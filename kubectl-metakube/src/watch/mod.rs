//! Watch mode's engine, synchronous and I/O-free: watch events in, suspects out, diagnoses in,
//! incident lines out. `commands::watch` feeds it from a live watch or a replay file and asks
//! the daemon for the diagnoses.
//!
//! detect (state symptoms) + series (anomalies) → suspects → the daemon's diagnosis →
//! incidents (grouped by root cause) → guarded remediation.

pub mod anomaly;
pub mod changes;
pub mod detect;
pub mod event;
pub mod guard;
pub mod incidents;
pub mod series;
pub mod store;

use std::collections::BTreeMap;

use jiff::Timestamp;
use metakube_shared::{Diagnosis, IncidentUpdate, ObjectRef};

use self::detect::{Thresholds, Tracker};
use self::event::{EventType, WatchEvent};
use self::incidents::{Incidents, Policy, Suspect};
use self::series::{AnomalyConfig, PodUsage, Series};
use self::store::{Applied, Store};

/// Settings of a watch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// Detection thresholds.
    pub thresholds: Thresholds,
    /// Grouping policy.
    pub policy: Policy,
    /// Anomaly scoring.
    pub anomaly: AnomalyConfig,
    /// Time changes by the wall clock (a live watch) rather than the stream's (a replay).
    pub wall_clock: bool,
}

/// The state of one watch.
pub struct Watch {
    /// The watched objects.
    pub store: Store,
    /// The incidents.
    pub incidents: Incidents,
    tracker: Tracker,
    series: Series,
    changed: Vec<(ObjectRef, u64, Option<Timestamp>)>,
    changes: changes::Changes,
    wall_clock: bool,
    events: u64,
    clock: Option<Timestamp>,
}

impl Watch {
    /// A new watch.
    pub fn new(s: Settings) -> Watch {
        Watch {
            store: Store::default(),
            incidents: Incidents::new(s.policy),
            tracker: Tracker::new(s.thresholds),
            series: Series::new(s.anomaly),
            changed: Vec::new(),
            changes: changes::Changes::default(),
            wall_clock: s.wall_clock,
            events: 0,
            clock: None,
        }
    }

    /// Watch events received so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Windows of series scored so far.
    pub fn windows(&self) -> u64 {
        self.series.windows
    }

    /// The latest time the stream has shown (the replay's clock).
    pub fn stream_time(&self) -> Option<Timestamp> {
        self.clock
    }

    /// Takes one watch event into the state.
    pub fn observe(&mut self, ev: WatchEvent) {
        let t = crate::collect::latest_in(&ev.object);
        self.observe_at(ev, t);
    }

    /// [`Watch::observe`], given the latest timestamp the event's object carries (a caller that
    /// read it already, to decide on a round first, need not walk the object again).
    pub fn observe_at(&mut self, ev: WatchEvent, latest: Option<Timestamp>) {
        self.events += 1;
        if matches!(ev.kind, EventType::Bookmark | EventType::Error) {
            return;
        }
        if let Some(t) = latest {
            if self.clock.is_none_or(|c| t > c) {
                self.clock = Some(t);
            }
        }
        match self.store.apply(ev) {
            Applied::Upserted(r, previous) => {
                if let (Some(b), Some(a)) = (&previous, self.store.get(&r)) {
                    let at = if self.wall_clock {
                        Timestamp::now()
                    } else {
                        self.clock.unwrap_or(Timestamp::UNIX_EPOCH)
                    };
                    self.changes.record(b, a, at);
                }
                if let Some(o) = self.store.get(&r) {
                    self.series.observe(&self.store, o);
                }
                self.changed.push((r, self.events, self.clock));
            }
            Applied::Deleted(r) => {
                self.series.forget(&r);
                self.changed.push((r, self.events, self.clock));
            }
            Applied::Nothing => {}
        }
    }

    /// Removes an object a relist no longer lists (as if it was deleted).
    pub fn forget(&mut self, r: &ObjectRef) {
        if self.store.remove(r) {
            self.series.forget(r);
            self.changed.push((r.clone(), self.events, self.clock));
        }
    }

    /// Brings detection and the series up to `now`; returns the suspects: every target with
    /// a state symptom or an anomalous window.
    pub fn settle(
        &mut self,
        now: Timestamp,
        usage: Option<&PodUsage>,
    ) -> BTreeMap<ObjectRef, Suspect> {
        let changed = std::mem::take(&mut self.changed);
        self.tracker.update(&self.store, &changed, now, self.events);
        let symptomatic = self.tracker.symptomatic();
        self.series.explained(symptomatic.keys());
        self.series.tick(&self.store, now, usage);
        let mut out: BTreeMap<ObjectRef, Suspect> = symptomatic
            .into_iter()
            .map(|(t, triggers)| {
                (
                    t,
                    Suspect {
                        triggers,
                        anomaly: None,
                    },
                )
            })
            .collect();
        for (w, a) in self.series.anomalous() {
            // What state alone does not show: a target with state symptoms is diagnosed for
            // them; only a workload the watch still holds.
            if !out.contains_key(w) && (self.store.get(w).is_some() || w.kind == "Pod") {
                out.entry(w.clone()).or_default().anomaly = Some(a.clone());
            }
        }
        out
    }

    /// Records a suspect's diagnosis; returns the incident lines it causes.
    pub fn record(
        &mut self,
        target: &ObjectRef,
        suspect: &Suspect,
        d: Diagnosis,
        now: Timestamp,
    ) -> Vec<IncidentUpdate> {
        if d.root_cause.is_none() && target.kind == "Service" {
            let behind = self.store.workloads_selected_by(target);
            if let Some(mut out) = self.incidents.attach(target, suspect, &behind, now) {
                self.attach_changes(&mut out);
                return out;
            }
        }
        let onset = self.tracker.onset(target).unwrap_or((self.events, now));
        let mut out = self
            .incidents
            .record(target, suspect, d, onset, self.events, now);
        self.attach_changes(&mut out);
        out
    }

    /// Puts the recent changes the watch saw near each incident a line is about beside those
    /// its diagnosis came with (on the incident and on the line).
    fn attach_changes(&mut self, out: &mut [IncidentUpdate]) {
        for u in out.iter_mut() {
            let mut all = u.incident.diagnosis.changes.clone();
            metakube_shared::change::merge(&mut all, self.changes.near(&u.incident, &self.store));
            if all != u.incident.diagnosis.changes {
                self.incidents
                    .set_changes(&u.incident.incident, all.clone());
                u.incident.diagnosis.changes = all;
            }
        }
    }
}
