//! What changed in an object: field-level differences of the spec (and labels) that make or
//! break a workload, as the watch, the daemon's per-cluster history or a Deployment's rollout
//! revisions saw them. A ConfigMap's or Secret's data is compared by key and never carries a
//! value.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::object::ObjectRef;
use crate::snapshot::KubeObject;

/// A change to an object near a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The object that changed.
    pub object: ObjectRef,
    /// The field, as a JSON pointer (`/spec/template/spec/containers/0/image`); for a
    /// ConfigMap's or Secret's data only the key (`/data/app.yaml`), never a value.
    pub field: String,
    /// The value before (absent when the field was added, or for ConfigMap/Secret data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    /// The value after (absent when the field was removed, or for ConfigMap/Secret data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
    /// When it happened (a rollout revision's creation), or when it was first seen.
    pub at: Timestamp,
    /// Seconds before the first symptom (negative: after it).
    pub before_first_symptom_s: f64,
    /// How it was seen: `watch`, `history (resourceVersion 1201 → 1355)`, `rollout revision
    /// 3 → 4 (ReplicaSet web-7d9f6)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// Kinds whose changes are kept: what makes or breaks a workload.
pub const TRACKED: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Service",
    "ConfigMap",
    "Secret",
    "Node",
    "PersistentVolumeClaim",
];

/// A field that changed: pointer, value before, value after (values absent for data keys).
pub type FieldChange = (String, Option<Value>, Option<Value>);

/// The differences between two states of one object: leaves under `spec` and
/// `metadata/labels`, and for ConfigMaps and Secrets the data keys added, removed or changed
/// (by name only).
pub fn field_changes(before: &KubeObject, after: &KubeObject) -> Vec<FieldChange> {
    let mut fields = Vec::new();
    for top in ["spec", "metadata/labels"] {
        let ptr = format!("/{top}");
        diff(before.pointer(&ptr), after.pointer(&ptr), &ptr, &mut fields);
    }
    if matches!(after.kind(), "ConfigMap" | "Secret") {
        for key in ["data", "binaryData", "stringData"] {
            let keys = |o: &KubeObject| -> BTreeSet<(String, String)> {
                o.value()
                    .get(key)
                    .and_then(Value::as_object)
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
                    .unwrap_or_default()
            };
            let (b, a) = (keys(before), keys(after));
            let touched: BTreeSet<&String> = b.symmetric_difference(&a).map(|(k, _)| k).collect();
            for k in touched {
                fields.push((format!("/{key}/{}", escape(k)), None, None));
            }
        }
    }
    fields
}

/// Differences between two values under `at` (a JSON pointer): objects by key, arrays by
/// index when their lengths match (else the array as one value).
pub fn diff(a: Option<&Value>, b: Option<&Value>, at: &str, out: &mut Vec<FieldChange>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                diff(x.get(k), y.get(k), &format!("{at}/{}", escape(k)), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (n, (p, q)) in x.iter().zip(y).enumerate() {
                diff(Some(p), Some(q), &format!("{at}/{n}"), out);
            }
        }
        (x, y) if x != y => out.push((at.to_string(), x.cloned(), y.cloned())),
        _ => {}
    }
}

/// A key as a JSON-pointer segment (RFC 6901).
pub fn escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Adds the changes of `more` not already in `into` (the same object, field and new value,
/// however it was seen: the first sighting is kept), then orders them by time.
pub fn merge(into: &mut Vec<Change>, more: impl IntoIterator<Item = Change>) {
    for c in more {
        if !into
            .iter()
            .any(|k| k.object == c.object && k.field == c.field && k.to == c.to)
        {
            into.push(c);
        }
    }
    into.sort_by_key(|c| c.at);
}

/// The change closest before the first symptom among `changes`: the likeliest trigger.
pub fn trigger<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Option<&'a Change> {
    changes
        .into_iter()
        .filter(|c| c.before_first_symptom_s >= 0.0)
        .min_by(|a, b| {
            a.before_first_symptom_s
                .total_cmp(&b.before_first_symptom_s)
        })
}

/// A duration in seconds as people say it: `18 s`, `4 min`, `2 h`, `3 d`.
pub fn span(secs: f64) -> String {
    let s = secs.abs();
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 90.0 * 60.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 48.0 * 3600.0 {
        format!("{:.0} h", s / 3600.0)
    } else {
        format!("{:.0} d", s / 86400.0)
    }
}

impl Change {
    /// When it happened relative to the first symptom, called `reference`: `4 min before the
    /// first failure`, `30 s after the first failure`.
    pub fn when(&self, reference: &str) -> String {
        let side = if self.before_first_symptom_s >= 0.0 {
            "before"
        } else {
            "after"
        };
        format!("{} {side} {reference}", span(self.before_first_symptom_s))
    }

    /// One line: `Deployment/web /spec/…/image "a:1" → "a:2"`.
    pub fn describe(&self) -> String {
        let v = |x: &Option<Value>| match x {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "∅".into(),
        };
        if self.from.is_none() && self.to.is_none() {
            format!("{} {} changed", self.object, self.field)
        } else {
            format!(
                "{} {} {} → {}",
                self.object,
                self.field,
                v(&self.from),
                v(&self.to)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_and_label_leaves_change_and_data_values_never_show() {
        let d = |img: &str| {
            KubeObject::new(
                json!({"kind":"Deployment","metadata":{"name":"web","namespace":"n","labels":{"app":"web"}},
                "spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"app","image":img}]}}},
                "status":{"readyReplicas":2}}),
            )
        };
        let f = field_changes(&d("a:1"), &d("a:2"));
        assert_eq!(
            f,
            vec![(
                "/spec/template/spec/containers/0/image".to_string(),
                Some(json!("a:1")),
                Some(json!("a:2"))
            )]
        );
        let cm = |v: &str| {
            KubeObject::new(
                json!({"kind":"ConfigMap","metadata":{"name":"cfg","namespace":"n"},"data":{"app.yaml":v,"same":"x"}}),
            )
        };
        let f = field_changes(&cm("password: hunter2"), &cm("password: letmein"));
        assert_eq!(f, vec![("/data/app.yaml".to_string(), None, None)]);
        assert!(!format!("{f:?}").contains("hunter2"));
    }
}
