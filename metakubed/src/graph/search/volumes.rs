//! Verifier for a container that cannot read or write the volume it mounts: a hostPath
//! directory or a claim owned by another user, so the process gets EACCES ("Permission
//! denied") on its data files and exits.

use metakube_shared::EvidenceSource;
use serde_json::json;

use super::{trim, KindName, Search, Verified};
use crate::signals::Signal;

impl Search<'_> {
    pub(super) fn volume_permission(&self, sig: &Signal) -> Option<Verified> {
        if sig.code != "log_permission_denied" {
            return None;
        }
        let pod = self.pod(&sig.object)?;
        let spec = pod.o.spec.as_ref()?;
        let cname = sig.container.as_deref()?;
        let ctr = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == cname)?;
        // The data volumes it mounts (not the token, ConfigMaps or Secrets).
        let data: Vec<(String, String, &'static str)> = ctr
            .volume_mounts
            .iter()
            .flatten()
            .filter(|m| !m.read_only.unwrap_or(false))
            .filter_map(|m| {
                let v = spec.volumes.iter().flatten().find(|v| v.name == m.name)?;
                let kind = if v.host_path.is_some() {
                    "hostPath"
                } else if v.persistent_volume_claim.is_some() {
                    "persistentVolumeClaim"
                } else {
                    return None;
                };
                Some((m.name.clone(), m.mount_path.clone(), kind))
            })
            .collect();
        let (vol, path, kind) = data.first()?.clone();
        // The container exits on it (a crash, not a warning it survives).
        let failing = self
            .on(&sig.object)
            .any(|s| matches!(s.code.as_str(), "crash_loop" | "exit_error"));
        if !failing {
            return None;
        }
        let w = self.workload(&sig.object);
        let fs_group = spec
            .security_context
            .as_ref()
            .and_then(|s| s.fs_group)
            .is_some();
        let node = spec.node_name.clone().unwrap_or_default();
        Some(
            Verified::new(
                w.clone(),
                if kind == "hostPath" || !fs_group { 1.0 } else { 0.7 },
                format!(
                    "container {cname} of {} cannot access its {kind} volume {vol} at {path}{} and exits: {}",
                    w.kind_name(),
                    if kind == "hostPath" { format!(" on node {node}") } else { String::new() },
                    trim(&sig.detail)
                ),
            )
            .ev(
                EvidenceSource::Spec,
                &w,
                format!("volume {vol} ({kind}) mounted at {path}, pod securityContext.fsGroup {}", if fs_group { "set" } else { "unset" }),
                "spec.template.spec.volumes",
            )
            .param("volume", json!(vol))
            .param("kind", json!(kind))
            .param("path", json!(path))
            .param("node", json!(node)),
        )
    }
}
