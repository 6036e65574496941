//! Watch events in the API server's `?watch=true` format: one JSON object a line,
//! `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{…}}` — what `watch --replay`
//! reads and `watch --record` writes.

use metakube_shared::{KindInfo, KubeObject};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `type` of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// The object was created (or listed).
    Added,
    /// The object changed.
    Modified,
    /// The object was deleted; `object` is its last state.
    Deleted,
    /// A resourceVersion checkpoint; `object` carries only metadata.
    Bookmark,
    /// The API server ended the watch with a `Status` (410 Gone: relist).
    Error,
}

/// One watch event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The object (with `kind` and `apiVersion`).
    pub object: Value,
}

/// A line that is not a usable watch event.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {why}")]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub why: String,
}

impl WatchEvent {
    /// Parses one line of a watch stream. Objects of `ADDED`/`MODIFIED`/`DELETED` must say
    /// their kind (the watch stream of a single resource carries it) and have a name; a kind
    /// metakube does not read is refused by name.
    pub fn parse(line: &str, number: usize) -> Result<WatchEvent, BadLine> {
        let bad = |why: String| BadLine { line: number, why };
        let ev: WatchEvent = serde_json::from_str(line).map_err(|e| {
            bad(format!(
                "not a watch event ({e}); expected {{\"type\":\"ADDED|MODIFIED|DELETED|BOOKMARK\",\"object\":{{…}}}}"
            ))
        })?;
        if matches!(ev.kind, EventType::Bookmark | EventType::Error) {
            return Ok(ev);
        }
        let kind = ev.object.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind.is_empty() {
            return Err(bad("the object has no kind".into()));
        }
        if KindInfo::lookup(kind).is_none_or(|k| k.kind != kind) {
            return Err(bad(format!("kind {kind:?} is not one metakube watches")));
        }
        if ev
            .object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(bad(format!("the {kind} has no metadata.name")));
        }
        Ok(ev)
    }

    /// The object, for the store (with noise such as managedFields dropped).
    pub fn into_object(self) -> KubeObject {
        let mut o = self.object;
        crate::collect::list::strip_noise(&mut o);
        if o.get("kind").and_then(Value::as_str) == Some("Secret") {
            // A recording of someone else's cluster may carry values: never keep them.
            metakube_shared::strip_secret_values(&mut o);
        }
        KubeObject::new(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_parsed_or_refused_by_number() {
        let ok = r#"{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","namespace":"n"}}}"#;
        assert_eq!(WatchEvent::parse(ok, 1).unwrap().kind, EventType::Added);
        let bm = r#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}"#;
        assert_eq!(WatchEvent::parse(bm, 2).unwrap().kind, EventType::Bookmark);
        let e = WatchEvent::parse(r#"{"type":"ADDED","object":{"kind":"Pod""#, 3).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.to_string().starts_with("line 3: not a watch event"),
            "{e}"
        );
        let e = WatchEvent::parse(r#"{"type":"ADDED","object":{"metadata":{"name":"a"}}}"#, 4)
            .unwrap_err();
        assert_eq!(e.to_string(), "line 4: the object has no kind");
        let e = WatchEvent::parse(
            r#"{"type":"ADDED","object":{"kind":"Widget","metadata":{"name":"a"}}}"#,
            5,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 5: kind \"Widget\" is not one metakube watches"
        );
        let e = WatchEvent::parse(r#"{"type":"UPSERT","object":{}}"#, 6).unwrap_err();
        assert!(e.to_string().contains("UPSERT"), "{e}");
    }
}
