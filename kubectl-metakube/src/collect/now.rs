//! A dump's "now": the latest time written anywhere in its objects (an event's
//! `lastTimestamp`, a condition's `lastTransitionTime`, a container's `finishedAt`, …), so a
//! dump replayed a year later is judged as of when it was taken.
//!
//! One walk serves an object kept as the JSON text it was read from (a dump's list item: no
//! tree is built for it) and one built from a value (live collection, a watch event).

use std::fmt;

use jiff::Timestamp;
use metakube_shared::KubeObject;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The keys whose string values are times.
const TIME_KEYS: [&str; 9] = [
    "lastTimestamp",
    "eventTime",
    "lastObservedTime",
    "finishedAt",
    "startedAt",
    "lastTransitionTime",
    "creationTimestamp",
    "lastHeartbeatTime",
    "lastProbeTime",
];

/// The latest time and the text it was read from.
type Best = Option<(Timestamp, String)>;

/// The latest timestamp in a set of objects: for a dump, "now" as of when it was taken.
pub fn latest_timestamp(objects: &[KubeObject]) -> Option<Timestamp> {
    let mut best = None;
    for o in objects {
        let walk = Walk {
            best: &mut best,
            time_key: false,
        };
        // The text was read as JSON once already; were it not readable now, the times it
        // was walked for before the error still count.
        let _ = match o.json() {
            Some(text) => walk.deserialize(&mut serde_json::Deserializer::from_str(text)),
            None => walk
                .deserialize(o.value())
                .map_err(serde::de::Error::custom),
        };
    }
    best.map(|(t, _)| t)
}

/// The latest timestamp in one object's JSON.
pub fn latest_in(v: &Value) -> Option<Timestamp> {
    let mut best = None;
    let _ = Walk {
        best: &mut best,
        time_key: false,
    }
    .deserialize(v);
    best.map(|(t, _)| t)
}

/// Whether `s` may be later than the best so far, judged on the text: the API server writes
/// times in UTC (`2026-01-02T15:04:05Z`, or with a fraction before the `Z`), so one whose
/// seconds-precision prefix sorts before the best's is earlier and need not be parsed (a 20k-
/// object dump holds ~100k times). Anything else is parsed.
fn later_text(s: &str, best: Option<&str>) -> bool {
    const PREFIX: usize = "2026-01-02T15:04:05".len();
    match best {
        Some(b) if s.ends_with('Z') && b.ends_with('Z') && s.len() > PREFIX && b.len() > PREFIX => {
            s.as_bytes()[..PREFIX] >= b.as_bytes()[..PREFIX]
        }
        _ => true,
    }
}

fn consider(best: &mut Best, s: &str) {
    if !later_text(s, best.as_ref().map(|(_, b)| b.as_str())) {
        return;
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        if best.as_ref().is_none_or(|(b, _)| t > *b) {
            *best = Some((t, s.to_string()));
        }
    }
}

/// Walks one JSON value without keeping it: a string is a time when the key it stands under
/// is one of [`TIME_KEYS`]; objects and arrays are walked into (those under a time key too).
struct Walk<'b> {
    best: &'b mut Best,
    /// Whether the value walked stands under a time key.
    time_key: bool,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        if self.time_key {
            consider(self.best, s);
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Walk {
                best: &mut *self.best,
                time_key: false,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(time_key) = map.next_key_seed(TimeKey)? {
            map.next_value_seed(Walk {
                best: &mut *self.best,
                time_key,
            })?;
        }
        Ok(())
    }
}

/// Reads a key as "is it a time key", without keeping it.
struct TimeKey;

impl<'de> DeserializeSeed<'de> for TimeKey {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TimeKey {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, s: &str) -> Result<bool, E> {
        Ok(TIME_KEYS.contains(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> KubeObject {
        KubeObject::new(v)
    }

    #[test]
    fn the_latest_time_is_found_whatever_its_form() {
        let at = |t: &str| obj(json!({"kind": "Event", "lastTimestamp": t}));
        let objects = [
            at("2026-01-01T10:00:00Z"),
            at("2026-01-01T10:00:00.500000Z"),
            at("2026-01-01T09:59:59Z"),
            at("not a time"),
        ];
        assert_eq!(
            latest_timestamp(&objects),
            Some("2026-01-01T10:00:00.5Z".parse().unwrap())
        );
        // An offset is read as the instant it is, not as text.
        let mut more = objects.to_vec();
        more.push(at("2026-01-01T12:30:00+02:00"));
        more.push(at("2026-01-01T09:00:00Z"));
        assert_eq!(
            latest_timestamp(&more),
            Some("2026-01-01T10:30:00Z".parse().unwrap())
        );
    }

    #[test]
    fn text_and_value_give_the_same_time_from_every_depth() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"name": "p", "creationTimestamp": "2026-01-01T08:00:00Z",
                         "annotations": {"note": "2027-01-01T00:00:00Z"}},
            "status": {
                "conditions": [{"type": "Ready", "lastTransitionTime": "2026-01-01T09:00:00Z"}],
                "containerStatuses": [{"name": "c",
                    "lastState": {"terminated": {"finishedAt": "2026-01-01T09:30:00Z",
                                                 "exitCode": 1, "startedAt": null}},
                    "state": {"running": {"startedAt": "2026-01-01T09:31:00Z"}},
                    "ready": false, "restartCount": 3}],
                // A time key over an object: walked into, its own keys decide.
                "startedAt": {"lastProbeTime": "2026-01-01T09:45:00Z", "x": "2028-01-01T00:00:00Z"},
                "lastProbeTime": ["2029-01-01T00:00:00Z"]
            }
        });
        let want: Timestamp = "2026-01-01T09:45:00Z".parse().unwrap();
        assert_eq!(latest_in(&pod), Some(want));
        let text = serde_json::to_string_pretty(&pod).unwrap();
        let info = metakube_shared::KindInfo::lookup("Pod").unwrap();
        let text = serde_json::value::RawValue::from_string(text).unwrap();
        let read = KubeObject::from_list_item_json(&text, info).unwrap();
        assert!(read.json().is_some());
        assert_eq!(latest_timestamp(&[read]), Some(want));
        assert_eq!(latest_timestamp(&[obj(pod)]), Some(want));
        assert_eq!(latest_timestamp(&[obj(json!({"kind": "Pod"}))]), None);
    }
}
