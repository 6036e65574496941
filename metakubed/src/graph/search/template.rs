//! Verifier for causes that come from symptom templates (`knowledge/symptom_rules.yaml`): no
//! hand-written check knows them, so the finding is placed where the template says the fault
//! lives (`at`), found from the symptom's object along the KubeGraph's relations — the pod's
//! node, its workload, the claim, Secret, ConfigMap or ServiceAccount the message names or the
//! pod references, the namespace's quota. It scores below a hand-written check, which also
//! verifies the faulty configuration itself.

use k8s_openapi::api::core::v1::PodSpec;
use metakube_shared::{EvidenceSource, ObjectRef};
use serde_json::json;

use super::{ns_of, KindName, Search, Verified};
use crate::graph::domain::{At, Cause};
use crate::signals::Signal;

/// Strength of a template finding: the text matched a known message, nothing more was checked.
const TEMPLATE_STRENGTH: f64 = 0.75;

impl Search<'_> {
    pub(super) fn template_cause(&self, cause: &Cause, at: At, sig: &Signal) -> Option<Verified> {
        let object = self.locate(at, sig)?;
        let mut v = Verified::new(
            object.clone(),
            TEMPLATE_STRENGTH,
            format!(
                "{}: {}",
                object.kind_name(),
                cause.behaviour.trim_end_matches('.')
            ),
        )
        .param("fix_text", json!(cause.fix_text))
        .param("source", json!(cause.source));
        if object != sig.object {
            v = v.ev(
                EvidenceSource::Graph,
                &object,
                format!("{} → {}", sig.object.kind_name(), object.kind_name()),
                "relation",
            );
        }
        Some(v)
    }

    /// Where `at` is, seen from the symptom's object.
    fn locate(&self, at: At, sig: &Signal) -> Option<ObjectRef> {
        let ns = ns_of(&sig.object);
        let named = |kind: &str| {
            sig.peer
                .as_deref()
                .filter(|p| !p.contains(' '))
                .map(|p| ObjectRef::new(kind, ns, p))
        };
        let spec: Option<&PodSpec> = self
            .pod(&sig.object)
            .and_then(|p| p.o.spec.as_ref())
            .or_else(|| self.template(&self.workload(&sig.object)).map(|(s, _)| s));
        Some(match at {
            At::Itself
            | At::Pod
            | At::Upstream
            | At::Ingress
            | At::Hpa
            | At::Networkpolicy
            | At::Dns => sig.object.clone(),
            At::Workload => self.workload(&sig.object),
            At::Node => {
                if sig.object.kind == "Node" {
                    sig.object.clone()
                } else {
                    let n = spec
                        .and_then(|s| s.node_name.clone())
                        .or_else(|| sig.peer.clone().filter(|p| self.c.node(p).is_some()))?;
                    ObjectRef::cluster("Node", &n)
                }
            }
            At::Pvc => {
                if sig.object.kind == "PersistentVolumeClaim" {
                    sig.object.clone()
                } else {
                    named("PersistentVolumeClaim").or_else(|| {
                        spec?
                            .volumes
                            .iter()
                            .flatten()
                            .find_map(|v| v.persistent_volume_claim.as_ref())
                            .map(|c| ObjectRef::new("PersistentVolumeClaim", ns, &c.claim_name))
                    })?
                }
            }
            At::Pv => match sig.peer.as_deref() {
                Some(p) if !p.contains(' ') => ObjectRef::cluster("PersistentVolume", p),
                _ => {
                    let claim = self
                        .c
                        .pvc(ns, &sig.object.name)
                        .filter(|_| sig.object.kind == "PersistentVolumeClaim")?;
                    ObjectRef::cluster(
                        "PersistentVolume",
                        claim.o.spec.as_ref()?.volume_name.as_deref()?,
                    )
                }
            },
            At::Storageclass => match sig.peer.as_deref() {
                Some(p) if !p.contains(' ') => ObjectRef::cluster("StorageClass", p),
                _ => {
                    let claim = self
                        .c
                        .pvc(ns, &sig.object.name)
                        .filter(|_| sig.object.kind == "PersistentVolumeClaim")?;
                    ObjectRef::cluster(
                        "StorageClass",
                        claim.o.spec.as_ref()?.storage_class_name.as_deref()?,
                    )
                }
            },
            At::Configmap => named("ConfigMap").or_else(|| {
                spec?
                    .volumes
                    .iter()
                    .flatten()
                    .find_map(|v| v.config_map.as_ref())
                    .map(|c| ObjectRef::new("ConfigMap", ns, &c.name))
            })?,
            At::Secret => named("Secret").or_else(|| {
                spec?
                    .volumes
                    .iter()
                    .flatten()
                    .find_map(|v| v.secret.as_ref()?.secret_name.clone())
                    .map(|n| ObjectRef::new("Secret", ns, &n))
            })?,
            At::Serviceaccount => named("ServiceAccount").or_else(|| {
                Some(ObjectRef::new(
                    "ServiceAccount",
                    ns,
                    spec?.service_account_name.as_deref().unwrap_or("default"),
                ))
            })?,
            At::Service => named("Service")?,
            At::Quota => named("ResourceQuota").or_else(|| {
                self.c
                    .quotas
                    .iter()
                    .find(|q| q.r.namespace.as_deref() == Some(ns))
                    .map(|q| q.r.clone())
            })?,
            At::Limitrange => self
                .c
                .limitranges
                .iter()
                .find(|q| q.r.namespace.as_deref() == Some(ns))
                .map(|q| q.r.clone())?,
            At::Namespace => ObjectRef::cluster("Namespace", ns),
        })
    }
}
