//! Verifier for a NetworkPolicy that limits a caller's egress: once any policy selects a pod
//! for Egress, only traffic some policy allows leaves it — DNS (port 53 to the cluster DNS)
//! included, so a default-deny egress policy breaks every name lookup.

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use metakube_shared::EvidenceSource;
use serde_json::json;

use super::{ns_of, trim, Search, Verified};
use crate::signals::Signal;
use crate::snapshot::{label_selector_matches, Obj};

const DNS_PORT: i32 = 53;

fn port_allowed(ports: Option<&Vec<NetworkPolicyPort>>, port: i32) -> bool {
    ports.is_none_or(|ps| {
        ps.is_empty()
            || ps.iter().any(|p| match &p.port {
                None => true,
                Some(IntOrString::Int(n)) => {
                    *n == port || p.end_port.is_some_and(|end| (*n..=end).contains(&port))
                }
                Some(IntOrString::String(name)) => {
                    port == DNS_PORT && matches!(name.as_str(), "dns" | "dns-tcp" | "domain")
                }
            })
    })
}

impl Search<'_> {
    pub(super) fn egress_blocks(&self, sig: &Signal) -> Option<Verified> {
        let dns = sig.code == "log_dns_failure";
        if !dns && sig.code != "log_timeout" {
            return None;
        }
        let pod = self.pod(&sig.object)?;
        let labels = pod.o.metadata.labels.as_ref();
        let ns = ns_of(&sig.object);
        let egress: Vec<&Obj<NetworkPolicy>> = self
            .c
            .netpols
            .iter()
            .filter(|np| np.r.namespace.as_deref() == Some(ns))
            .filter(|np| {
                np.o.spec.as_ref().is_some_and(|sp| {
                    sp.policy_types
                        .as_ref()
                        .is_some_and(|t| t.iter().any(|t| t == "Egress"))
                        && sp
                            .pod_selector
                            .as_ref()
                            .is_none_or(|sel| label_selector_matches(sel, labels))
                })
            })
            .collect();
        let first = *egress.first()?;
        // The port the failing call needs: 53 for a lookup, else the Service port it dialled.
        let port = if dns { DNS_PORT } else { sig.port? };
        let allowed = egress.iter().any(|np| {
            np.o.spec
                .as_ref()
                .and_then(|sp| sp.egress.as_ref())
                .is_some_and(|rules| rules.iter().any(|r| port_allowed(r.ports.as_ref(), port)))
        });
        if allowed {
            return None;
        }
        Some(
            Verified::new(
                first.r.clone(),
                1.0,
                format!(
                    "NetworkPolicy {} limits the egress of {} and allows no traffic to port {port}{}, so {} ({})",
                    first.r.name,
                    sig.object.name,
                    if dns { " (DNS)" } else { "" },
                    if dns { "its name lookups fail" } else { "its connections time out" },
                    trim(&sig.detail)
                ),
            )
            .ev(
                EvidenceSource::Spec,
                &first.r,
                format!("policyTypes includes Egress; no egress rule allows port {port}"),
                "spec.egress",
            )
            .param("port", json!(port))
            .param("dns", json!(dns))
            .param(
                "has_egress",
                json!(first.o.spec.as_ref().is_some_and(|sp| sp.egress.is_some())),
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_ports() {
        assert!(port_allowed(None, 53));
        let udp53 = NetworkPolicyPort {
            port: Some(IntOrString::Int(53)),
            protocol: Some("UDP".into()),
            end_port: None,
        };
        assert!(port_allowed(Some(&vec![udp53.clone()]), 53));
        let https = NetworkPolicyPort {
            port: Some(IntOrString::Int(443)),
            ..udp53
        };
        assert!(!port_allowed(Some(&vec![https]), 53));
    }
}
