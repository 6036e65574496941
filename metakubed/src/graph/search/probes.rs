//! Verifier for a probe that speaks the wrong protocol to the port it targets: an HTTP GET on
//! a gRPC (HTTP/2) server fails with the Go client's "malformed HTTP response" although the
//! port is right (`pkg/probe/http/http.go` wraps net/http's error; the bytes it quotes are
//! an HTTP/2 SETTINGS frame).

use metakube_shared::EvidenceSource;
use serde_json::json;

use super::{ptr_to_field, Search, Verified};
use crate::signals::Signal;

/// Error texts of a probe whose protocol does not match the server's.
const WRONG_PROTOCOL: [&str; 5] = [
    "malformed http",
    "transport connection broken",
    "server gave http response to https client",
    "first record does not look like a tls handshake",
    "http2: frame too large",
];

impl Search<'_> {
    pub(super) fn probe_protocol(&self, sig: &Signal) -> Option<Verified> {
        let lower = sig.detail.to_ascii_lowercase();
        if !WRONG_PROTOCOL.iter().any(|m| lower.contains(m)) {
            return None;
        }
        let which = if lower.contains("readiness probe") {
            "readiness"
        } else if lower.contains("startup probe") {
            "startup"
        } else {
            "liveness"
        };
        // HTTP/2 frames in the reply ("\x00\x00\x06\x04…"): the server speaks gRPC.
        let http2 = sig.detail.contains("\\x00\\x00") || sig.detail.contains("\u{0}\u{0}");
        let w = self.workload(&sig.object);
        let (spec, prefix) = self.template(&w)?;
        let field = format!("{which}Probe");
        let (i, ctr) = spec.containers.iter().enumerate().find(|(_, c)| {
            let probe = match which {
                "readiness" => c.readiness_probe.as_ref(),
                "startup" => c.startup_probe.as_ref(),
                _ => c.liveness_probe.as_ref(),
            };
            probe.is_some_and(|p| p.http_get.is_some())
        })?;
        let (port_txt, port, _) = self.probe_target(ctr, which)?;
        let ptr = format!("{prefix}/containers/{i}/{field}");
        let new_kind = if http2 { "grpc" } else { "tcpSocket" };
        let mut v = Verified::new(
            w.clone(),
            1.0,
            format!(
                "the {which} probe of container {} sends HTTP GET to port {port_txt}, where the server speaks {}: the probe fails although the application is up, so the kubelet {}",
                ctr.name,
                if http2 { "gRPC (HTTP/2)" } else { "another protocol" },
                if which == "readiness" { "keeps the pod out of its Service" } else { "keeps restarting it" }
            ),
        )
        .ev(
            EvidenceSource::Spec,
            &w,
            format!("{field}.httpGet.port = {port_txt}"),
            &format!("{}.{field}.httpGet", ptr_to_field(prefix, &format!("containers/{i}"))),
        )
        .param("pointer", json!(ptr))
        .param("probe_kind", json!(new_kind));
        if let Some(p) = port {
            v = v.param("port", json!(p));
        }
        Some(v)
    }
}
