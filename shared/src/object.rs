//! Object references, and the table of Kubernetes kinds metakube understands.
//!
//! `TargetRef::parse` accepts what kubectl accepts after `kubectl get`: `TYPE/NAME` or a type
//! and a name as two words, with kubectl's plural, singular and short names
//! (`deploy`, `sts`, `ds`, `rs`, `po`, `svc`, `cj`, …).

use std::fmt;

use serde::{Deserialize, Serialize};

/// One Kubernetes kind: how it is named, where it lives in the API and in a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// The kind as the API spells it (`Deployment`).
    pub kind: &'static str,
    /// The `apiVersion` of the kind (`apps/v1`).
    pub api_version: &'static str,
    /// The lower-case plural used in REST paths and dump file names (`deployments`).
    pub plural: &'static str,
    /// Other names kubectl accepts for it (`deploy`, `deployment`).
    pub aliases: &'static [&'static str],
    /// Whether objects of this kind live in a namespace.
    pub namespaced: bool,
}

macro_rules! kinds {
    ($( $kind:literal, $api:literal, $plural:literal, [$($alias:literal),*], $ns:literal; )*) => {
        /// Every kind metakube reads, in the order it lists them.
        pub const KINDS: &[KindInfo] = &[
            $( KindInfo { kind: $kind, api_version: $api, plural: $plural, aliases: &[$($alias),*], namespaced: $ns }, )*
        ];
    };
}

kinds! {
    "Pod", "v1", "pods", ["pod", "po"], true;
    "Service", "v1", "services", ["service", "svc"], true;
    "Endpoints", "v1", "endpoints", ["ep"], true;
    "EndpointSlice", "discovery.k8s.io/v1", "endpointslices", ["endpointslice"], true;
    "Deployment", "apps/v1", "deployments", ["deployment", "deploy"], true;
    "ReplicaSet", "apps/v1", "replicasets", ["replicaset", "rs"], true;
    "StatefulSet", "apps/v1", "statefulsets", ["statefulset", "sts"], true;
    "DaemonSet", "apps/v1", "daemonsets", ["daemonset", "ds"], true;
    "ReplicationController", "v1", "replicationcontrollers", ["replicationcontroller", "rc", "replication-controllers"], true;
    "Job", "batch/v1", "jobs", ["job"], true;
    "CronJob", "batch/v1", "cronjobs", ["cronjob", "cj"], true;
    "ConfigMap", "v1", "configmaps", ["configmap", "cm"], true;
    "Secret", "v1", "secrets", ["secret"], true;
    "ServiceAccount", "v1", "serviceaccounts", ["serviceaccount", "sa"], true;
    "PersistentVolumeClaim", "v1", "persistentvolumeclaims", ["persistentvolumeclaim", "pvc"], true;
    "Event", "v1", "events", ["event", "ev"], true;
    "HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers", ["horizontalpodautoscaler", "hpa"], true;
    "NetworkPolicy", "networking.k8s.io/v1", "networkpolicies", ["networkpolicy", "netpol"], true;
    "Ingress", "networking.k8s.io/v1", "ingresses", ["ingress", "ing"], true;
    "ResourceQuota", "v1", "resourcequotas", ["resourcequota", "quota"], true;
    "LimitRange", "v1", "limitranges", ["limitrange", "limits"], true;
    "PodDisruptionBudget", "policy/v1", "poddisruptionbudgets", ["poddisruptionbudget", "pdb"], true;
    "Node", "v1", "nodes", ["node", "no"], false;
    "Namespace", "v1", "namespaces", ["namespace", "ns"], false;
    "PersistentVolume", "v1", "persistentvolumes", ["persistentvolume", "pv"], false;
    "StorageClass", "storage.k8s.io/v1", "storageclasses", ["storageclass", "sc"], false;
}

/// The kinds a user may ask `diagnose` about.
pub const DIAGNOSABLE: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Pod",
    "Service",
    "Job",
    "CronJob",
    "ReplicationController",
    "Ingress",
    "PersistentVolumeClaim",
    "Node",
];

impl KindInfo {
    /// Looks a kind up by any of its names, case-insensitively (`deploy`, `Deployment`,
    /// `deployments`, `deployments.apps`).
    pub fn lookup(name: &str) -> Option<&'static KindInfo> {
        let lower = name.to_ascii_lowercase();
        // `deployments.apps` / `deployment.v1.apps`: kubectl's fully-qualified forms.
        let head = lower.split('.').next().unwrap_or(&lower);
        KINDS.iter().find(|k| {
            k.kind.eq_ignore_ascii_case(head) || k.plural == head || k.aliases.contains(&head)
        })
    }

    /// Looks a kind up by the file name a dump stores its list in (`deployments.json`).
    pub fn from_list_file(stem: &str) -> Option<&'static KindInfo> {
        KINDS
            .iter()
            .find(|k| k.plural == stem || k.aliases.contains(&stem))
    }
}

/// Whether `name` is a name the API server accepts for an object: a DNS-1123 subdomain
/// (lower-case alphanumerics, `-` and `.`, starting and ending alphanumeric, at most 253
/// characters). Event names (`pod.17f3…`) and every kind metakube reads satisfy it.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `s` as one word for a POSIX shell: unchanged when it holds only characters no shell
/// interprets, else single-quoted (`'` written as `'\''`).
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A reference to one object: kind, namespace (none for cluster-scoped kinds) and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The kind as the API spells it (`Deployment`).
    pub kind: String,
    /// The namespace; absent for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
}

impl ObjectRef {
    /// A reference to a namespaced object.
    pub fn new(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        ObjectRef {
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    /// A reference to a cluster-scoped object.
    pub fn cluster(kind: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectRef {
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }

    /// The lower-case `kind/name` form kubectl prints (`deployment/checkout`).
    pub fn kubectl_name(&self) -> String {
        format!("{}/{}", self.kind.to_ascii_lowercase(), self.name)
    }

    /// `-n NS ` for kubectl command lines (empty for cluster-scoped objects).
    pub fn namespace_flag(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("-n {} ", shell_word(ns)),
            None => String::new(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{} (namespace {ns})", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// What went wrong turning a user's `TYPE/NAME` into a reference.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KindError {
    /// The type is not one kubectl knows, or not one metakube reads.
    #[error("unknown resource type {0:?}; try one of: deploy, sts, ds, rs, po, svc, job, cj, ing, pvc, node")]
    Unknown(String),
    /// The type is known but metakube does not diagnose it directly.
    #[error("metakube diagnoses workloads, Services, Ingresses, PVCs and Nodes, not {0}")]
    NotDiagnosable(String),
    /// No name was given.
    #[error("expected TYPE/NAME or TYPE NAME, got {0:?}")]
    MissingName(String),
}

/// The object the user asked about, as kind + name; the namespace comes from flags or context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRef {
    /// Canonical kind (`Deployment`).
    pub kind: String,
    /// Object name.
    pub name: String,
}

impl TargetRef {
    /// Parses `TYPE/NAME`, or `TYPE` and `NAME` given as two words, for a kind `diagnose`
    /// accepts.
    pub fn parse(first: &str, second: Option<&str>) -> Result<TargetRef, KindError> {
        let t = TargetRef::parse_any(first, second)?;
        if !DIAGNOSABLE.contains(&t.kind.as_str()) {
            return Err(KindError::NotDiagnosable(t.kind));
        }
        Ok(t)
    }

    /// Parses a reference to an object of any kind metakube reads: where a fault may live
    /// (a Secret, ConfigMap, ResourceQuota, LimitRange, NetworkPolicy, ServiceAccount,
    /// StorageClass, PersistentVolume, Node, Endpoints…), as `feedback --cause` names it.
    pub fn parse_any(first: &str, second: Option<&str>) -> Result<TargetRef, KindError> {
        let (ty, name) = match (first.split_once('/'), second) {
            (Some((ty, name)), None) => (ty, name),
            (None, Some(name)) => (first, name),
            (Some(_), Some(_)) | (None, None) => {
                return Err(KindError::MissingName(
                    [Some(first), second]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" "),
                ))
            }
        };
        if name.is_empty() {
            return Err(KindError::MissingName(first.to_string()));
        }
        let info = KindInfo::lookup(ty).ok_or_else(|| KindError::Unknown(ty.to_string()))?;
        Ok(TargetRef {
            kind: info.kind.to_string(),
            name: name.to_string(),
        })
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(&self) -> bool {
        KindInfo::lookup(&self.kind).is_none_or(|k| k.namespaced)
    }

    /// The full reference, given the namespace the request runs in.
    pub fn in_namespace(&self, namespace: &str) -> ObjectRef {
        if self.namespaced() {
            ObjectRef::new(&self.kind, namespace, &self.name)
        } else {
            ObjectRef::cluster(&self.kind, &self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_shell_words() {
        assert!(valid_name("checkout-7d4b9c.17f3a2"));
        for bad in ["", "$(id)", "../../x", "/tmp/x", "UPPER", "a b", "-x", "x-"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert_eq!(shell_word("checkout"), "checkout");
        assert_eq!(shell_word("$(id)"), "'$(id)'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(
            ObjectRef::new("Pod", "a;b", "p").namespace_flag(),
            "-n 'a;b' "
        );
    }

    #[test]
    fn a_cause_may_be_any_kind_a_target_may_not() {
        for c in [
            "secret/db-creds",
            "cm/app-config",
            "quota/q",
            "limits/lr",
            "netpol/deny",
            "sa/api",
            "sc/fast",
            "pv/pv-1",
            "node/worker-1",
            "ep/redis",
        ] {
            assert!(TargetRef::parse_any(c, None).is_ok(), "{c}");
        }
        assert!(matches!(
            TargetRef::parse("secret/db-creds", None),
            Err(KindError::NotDiagnosable(_))
        ));
        assert!(matches!(
            TargetRef::parse_any("widget/x", None),
            Err(KindError::Unknown(_))
        ));
    }

    #[test]
    fn kubectl_short_names_resolve() {
        for (ty, kind) in [
            ("deploy", "Deployment"),
            ("deployment", "Deployment"),
            ("deployments.apps", "Deployment"),
            ("sts", "StatefulSet"),
            ("ds", "DaemonSet"),
            ("rs", "ReplicaSet"),
            ("po", "Pod"),
            ("svc", "Service"),
            ("job", "Job"),
            ("cj", "CronJob"),
            ("Pod", "Pod"),
        ] {
            let t = TargetRef::parse(&format!("{ty}/x"), None).unwrap();
            assert_eq!(t.kind, kind, "{ty}");
        }
        let t = TargetRef::parse("deploy", Some("checkout")).unwrap();
        assert_eq!(
            t,
            TargetRef {
                kind: "Deployment".into(),
                name: "checkout".into()
            }
        );
    }

    #[test]
    fn bad_targets_are_named() {
        assert_eq!(
            TargetRef::parse("frob/x", None),
            Err(KindError::Unknown("frob".into()))
        );
        assert!(matches!(
            TargetRef::parse("deploy", None),
            Err(KindError::MissingName(_))
        ));
        assert!(matches!(
            TargetRef::parse("cm/x", None),
            Err(KindError::NotDiagnosable(_))
        ));
        assert!(matches!(
            TargetRef::parse("deploy/", None),
            Err(KindError::MissingName(_))
        ));
    }

    #[test]
    fn dump_file_names_map_to_kinds() {
        assert_eq!(
            KindInfo::from_list_file("replication-controllers")
                .unwrap()
                .kind,
            "ReplicationController"
        );
        assert_eq!(
            KindInfo::from_list_file("persistentvolumeclaims")
                .unwrap()
                .kind,
            "PersistentVolumeClaim"
        );
        assert_eq!(
            KindInfo::from_list_file("endpoints").unwrap().kind,
            "Endpoints"
        );
        assert!(KindInfo::from_list_file("widgets").is_none());
    }
}
