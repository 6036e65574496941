//! The snapshot: what the plugin collected about one target, as the API server returned it.
//!
//! Objects stay Kubernetes API JSON ([`KubeObject`], with `kind` and `apiVersion` filled in,
//! since list items carry neither): read from JSON, an object keeps its bytes and the fields
//! that name and relate it, and the daemon types it through k8s-openapi straight from the
//! bytes; a value tree is built only for an object whose other fields are read.
//! Secrets carry metadata and key names only, never values. Logs are bounded tails.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod kube_object;

pub use kube_object::{pointer, KubeObject};

use crate::object::{ObjectRef, TargetRef};

/// Largest log tail kept per container and run, in bytes.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

/// The log tail of one container run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerLog {
    /// Namespace of the pod.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// True for the previous (terminated) run of the container.
    #[serde(default)]
    pub previous: bool,
    /// The tail of the log, at most [`MAX_LOG_BYTES`].
    pub text: String,
    /// Bytes dropped from the front to keep the tail within bounds.
    #[serde(default)]
    pub truncated_bytes: u64,
}

impl ContainerLog {
    /// Builds a log entry keeping only the last [`MAX_LOG_BYTES`] of `text`, cut at a line start.
    pub fn bounded(
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        text: &str,
    ) -> ContainerLog {
        let (text, dropped) = tail(text, MAX_LOG_BYTES);
        ContainerLog {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            container: container.to_string(),
            previous,
            text: text.to_string(),
            truncated_bytes: dropped as u64,
        }
    }
}

/// The last `max` bytes of `text`, starting at a line boundary (or a char boundary when the
/// last line alone is longer), and how many bytes were dropped.
pub fn tail(text: &str, max: usize) -> (&str, usize) {
    if text.len() <= max {
        return (text, 0);
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    if let Some(nl) = text[start..].find('\n') {
        if nl + 1 < text.len() - start {
            start += nl + 1;
        }
    }
    (&text[start..], start)
}

/// Where a snapshot came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SnapshotSource {
    /// Collected from a live cluster through the API server.
    Live {
        /// kubeconfig context name.
        context: Option<String>,
        /// API server URL.
        cluster: Option<String>,
    },
    /// Read from a `kubectl cluster-info dump --output-directory` folder.
    Dump {
        /// The folder, as given.
        path: String,
    },
}

/// Something that could not be collected, and why (RBAC forbidden, kind not served, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// What was being collected (`secrets`, `logs of pod/x`).
    pub what: String,
    /// Namespace, when the gap is namespaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The reason, as the API server or reader said it.
    pub reason: String,
}

/// Collection metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionMeta {
    /// Where the objects came from.
    pub source: SnapshotSource,
    /// The namespace the request ran in.
    pub namespace: String,
    /// When the state was observed: the collection time for live snapshots, the latest
    /// timestamp found in the objects for dumps (so ages are computed as of the dump).
    pub collected_at: Timestamp,
    /// What could not be collected.
    #[serde(default)]
    pub gaps: Vec<Gap>,
    /// Version of the plugin that collected it.
    pub collector_version: String,
}

/// Everything the daemon needs to diagnose one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The object asked about.
    pub target: ObjectRef,
    /// Collected objects (target, owners, owned, related), as API JSON.
    pub objects: Vec<KubeObject>,
    /// Container log tails.
    #[serde(default)]
    pub logs: Vec<ContainerLog>,
    /// How, when and where it was collected.
    pub meta: CollectionMeta,
}

/// A snapshot that cannot be diagnosed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// An object has no kind or no name.
    #[error("object #{index} has no {field}")]
    MissingField {
        /// Position in `objects`.
        index: usize,
        /// The missing field.
        field: &'static str,
    },
    /// A Secret carries values; the collector must strip them.
    #[error("Secret {0} carries values; metakube never accepts secret values")]
    SecretValues(String),
}

impl Snapshot {
    /// Roughly how many bytes it takes as JSON, from what is known without writing it: the
    /// objects kept as the text they were read in, and the logs' text. A writer sized by it
    /// grows at most for the objects built from values.
    pub fn json_len_hint(&self) -> usize {
        let objects: usize = self
            .objects
            .iter()
            .filter_map(|o| o.json())
            .map(str::len)
            .sum();
        let logs: usize = self.logs.iter().map(|l| l.text.len() + 128).sum();
        objects + self.objects.len() + logs + 4096
    }

    /// The object a reference names, if collected.
    pub fn get(&self, r: &ObjectRef) -> Option<&KubeObject> {
        self.objects.iter().find(|o| {
            o.kind() == r.kind && o.name() == r.name && o.namespace() == r.namespace.as_deref()
        })
    }

    /// All objects of one kind.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a KubeObject> + 'a {
        self.objects.iter().filter(move |o| o.kind() == kind)
    }

    /// The target as a [`TargetRef`].
    pub fn target_ref(&self) -> TargetRef {
        TargetRef {
            kind: self.target.kind.clone(),
            name: self.target.name.clone(),
        }
    }

    /// Checks what the daemon relies on: every object has a kind and a name, and no Secret
    /// carries a value.
    pub fn validate(&self) -> Result<(), SnapshotError> {
        for (index, o) in self.objects.iter().enumerate() {
            if o.kind().is_empty() {
                return Err(SnapshotError::MissingField {
                    index,
                    field: "kind",
                });
            }
            if o.name().is_empty() {
                return Err(SnapshotError::MissingField {
                    index,
                    field: "metadata.name",
                });
            }
            if o.kind() == "Secret" && secret_has_values(o.value()) {
                return Err(SnapshotError::SecretValues(o.name().to_string()));
            }
        }
        Ok(())
    }
}

fn secret_has_values(secret: &Value) -> bool {
    ["data", "stringData"].iter().any(|f| {
        secret.get(f).and_then(Value::as_object).is_some_and(|m| {
            m.values()
                .any(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        })
    })
}

/// Replaces every Secret value with an empty string, keeping key names.
pub fn strip_secret_values(secret: &mut Value) {
    for f in ["data", "stringData"] {
        if let Some(map) = secret.get_mut(f).and_then(Value::as_object_mut) {
            for v in map.values_mut() {
                *v = Value::String(String::new());
            }
        }
    }
    if let Some(ann) = secret
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        // The last-applied annotation repeats the values in clear.
        ann.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_is_the_one_its_kind_namespace_and_name_name() {
        let o = KubeObject::new(
            json!({"kind": "Service", "metadata": {"name": "redis", "namespace": "shop"}}),
        );
        assert!(o.is(&ObjectRef::new("Service", "shop", "redis")));
        assert!(o.is(&o.object_ref()));
        assert!(!o.is(&ObjectRef::new("Service", "other", "redis")));
        assert!(!o.is(&ObjectRef::new("Deployment", "shop", "redis")));
        assert!(!o.is(&ObjectRef::cluster("Service", "redis")));
        let node = KubeObject::new(json!({"kind": "Node", "metadata": {"name": "n1"}}));
        assert!(node.is(&ObjectRef::cluster("Node", "n1")));
        assert!(!node.is(&ObjectRef::new("Node", "default", "n1")));
    }

    #[test]
    fn pointer_reads_what_serde_json_reads() {
        let v = serde_json::json!({
            "metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x", "t~k": "y"}},
            "spec": {"containers": [{"name": "c0"}, {"name": "c1"}]},
            "": {"empty": 1}
        });
        for p in [
            "",
            "/metadata/name",
            "/metadata/labels/app.kubernetes.io~1name",
            "/metadata/labels/t~0k",
            "/spec/containers/1/name",
            "/spec/containers/01/name",
            "/spec/containers/+1/name",
            "/spec/containers/2",
            "/spec/containers/-",
            "/metadata/name/x",
            "metadata",
            "/",
            "//empty",
            "/missing/x",
            "/~2",
        ] {
            assert_eq!(super::pointer(&v, p), v.pointer(p), "{p:?}");
        }
    }

    #[test]
    fn tail_keeps_whole_lines() {
        let text = "aaaa\nbbbb\ncccc\n";
        let (t, dropped) = tail(text, 7);
        assert_eq!(t, "cccc\n");
        assert_eq!(dropped, 10);
        assert_eq!(tail("short", 10), ("short", 0));
        // One long line: cut at a char boundary, never inside a UTF-8 sequence.
        let (t, _) = tail("ééééé", 3);
        assert!(t.chars().all(|c| c == 'é'));
    }

    #[test]
    fn secrets_with_values_are_refused_and_stripped() {
        let mut s = json!({"kind":"Secret","metadata":{"name":"db","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},"data":{"password":"aHVudGVyMg=="}});
        let snap = |o: &Value| Snapshot {
            target: ObjectRef::new("Pod", "ns", "p"),
            objects: vec![KubeObject::new(o.clone())],
            logs: vec![],
            meta: CollectionMeta {
                source: SnapshotSource::Dump { path: ".".into() },
                namespace: "ns".into(),
                collected_at: Timestamp::UNIX_EPOCH,
                gaps: vec![],
                collector_version: "test".into(),
            },
        };
        assert_eq!(
            snap(&s).validate(),
            Err(SnapshotError::SecretValues("db".into()))
        );
        strip_secret_values(&mut s);
        assert_eq!(s["data"]["password"], "");
        assert!(s
            .pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
            .is_none());
        assert_eq!(snap(&s).validate(), Ok(()));
    }
}
