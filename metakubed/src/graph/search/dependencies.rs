//! Verifiers for faults between a caller and what it calls: the backend scaled to zero, the
//! caller configured with a port its Service does not expose, the pod's own DNS settings, a
//! Service that could never be created because the namespace's quota is full, and a shared
//! database that refuses work.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;
use metakube_shared::{EvidenceSource, ObjectRef};
use serde_json::json;

use super::{ns_of, pod_ready, scope_of, trim, KindName, Search, Verified, MAX_HOPS};
use crate::signals::Signal;
use crate::snapshot::{parse_quantity, selector_matches};

/// Images of database servers, by the family whose error texts `log_db_rejects` matches.
const DB_IMAGES: [&str; 7] = [
    "mysql", "mariadb", "percona", "postgres", "mongo", "redis", "tidb",
];

/// The ConfigMaps or Secrets a container reads its environment from (envFrom, and
/// valueFrom key references).
fn env_sources(c: &Container, kind: &str) -> Vec<String> {
    let from = c.env_from.iter().flatten().filter_map(|f| match kind {
        "ConfigMap" => f.config_map_ref.as_ref().map(|r| r.name.clone()),
        _ => f.secret_ref.as_ref().map(|r| r.name.clone()),
    });
    let keys = c.env.iter().flatten().filter_map(|e| {
        let v = e.value_from.as_ref()?;
        match kind {
            "ConfigMap" => v.config_map_key_ref.as_ref().map(|r| r.name.clone()),
            _ => v.secret_key_ref.as_ref().map(|r| r.name.clone()),
        }
    });
    from.chain(keys).collect()
}

impl Search<'_> {
    /// Where a workload's configuration names `needle`: an env value of its pod template
    /// (the workload, with the field), or a key of a ConfigMap it reads (the ConfigMap).
    pub(super) fn configured_in(&self, w: &ObjectRef, needle: &str) -> Option<(ObjectRef, String)> {
        let (spec, _) = self.template(w)?;
        for (i, c) in spec.containers.iter().enumerate() {
            for e in c.env.iter().flatten() {
                if e.value.as_deref().is_some_and(|v| v.contains(needle)) {
                    return Some((
                        w.clone(),
                        format!("spec.template.spec.containers[{i}].env[{}]", e.name),
                    ));
                }
            }
        }
        let ns = ns_of(w);
        let maps = spec
            .containers
            .iter()
            .flat_map(|c| env_sources(c, "ConfigMap"))
            .chain(
                spec.volumes
                    .iter()
                    .flatten()
                    .filter_map(|v| v.config_map.as_ref().map(|c| c.name.clone())),
            );
        for name in maps {
            let Some(cm) = self.c.configmap(ns, &name) else {
                continue;
            };
            if let Some((k, _)) = cm.o.data.iter().flatten().find(|(_, v)| v.contains(needle)) {
                return Some((cm.r.clone(), format!("data.{k}")));
            }
        }
        None
    }

    /// The Service the signal is about: its own object, or the peer its log line names.
    fn service_of(&self, sig: &Signal, path: &[ObjectRef]) -> Option<ObjectRef> {
        match sig.code.as_str() {
            "scaled_to_zero" => {
                let ns = ns_of(&sig.object);
                Some(ObjectRef::new("Service", ns, sig.peer.as_deref()?))
            }
            _ => self.peer_service(sig, path),
        }
    }

    /// A Service with no ready endpoints whose pods would come from a workload scaled to 0.
    pub(super) fn scaled_to_zero(&self, sig: &Signal, path: &[ObjectRef]) -> Option<Verified> {
        let svc = self.service_of(sig, path)?;
        let s = self.c.service(ns_of(&svc), &svc.name)?;
        let sel =
            s.o.spec
                .as_ref()?
                .selector
                .clone()
                .filter(|m| !m.is_empty())?;
        if self.selected_pods(&svc).iter().any(|p| pod_ready(&p.o)) {
            return None;
        }
        let ns = ns_of(&svc);
        let (w, meta, ..) = self
            .c
            .templated_workloads(ns)
            .find(|(_, _, labels, replicas)| {
                *replicas == Some(0) && selector_matches(&sel, *labels)
            })?;
        // The replica count it had: the last applied configuration, when kubectl apply left one.
        let before = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubectl.kubernetes.io/last-applied-configuration"))
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .and_then(|v| v["spec"]["replicas"].as_i64())
            .filter(|n| *n > 0)
            .unwrap_or(1);
        let mut v = Verified::new(
            w.clone(),
            1.0,
            format!(
                "{} is scaled to 0 replicas, so Service {} has no endpoints and every caller of it fails",
                w.kind_name(),
                svc.name
            ),
        )
        .ev(EvidenceSource::Spec, w, "spec.replicas = 0".into(), "spec.replicas")
        .ev(
            EvidenceSource::Graph,
            &svc,
            format!("Service {} selects the pods of {}, and none exist", svc.name, w.name),
            "spec.selector",
        )
        .param("replicas", json!(before));
        if sig.object != *w {
            v.via = vec![svc];
        }
        Some(v)
    }

    /// The caller dials a port its Service does not expose (`redis-cart:6380` while the Service
    /// serves 6379): the address in the caller's configuration is wrong.
    pub(super) fn wrong_service_port(&self, sig: &Signal, path: &[ObjectRef]) -> Option<Verified> {
        let port = sig.port?;
        let host = sig.peer.as_deref()?;
        let svc = self.peer_service(sig, path)?;
        let s = self.c.service(ns_of(&svc), &svc.name)?;
        let ports: Vec<i32> =
            s.o.spec
                .as_ref()?
                .ports
                .iter()
                .flatten()
                .map(|p| p.port)
                .collect();
        if ports.is_empty() || ports.contains(&port) {
            return None;
        }
        let w = self.workload(&sig.object);
        let (spec, prefix) = self.template(&w)?;
        let needle = format!(":{port}");
        // The env var that holds the address: it names the Service (or its ClusterIP) and the port.
        let names = [svc.name.as_str(), host];
        let found = spec.containers.iter().enumerate().find_map(|(i, ctr)| {
            ctr.env.iter().flatten().enumerate().find_map(|(j, e)| {
                let val = e.value.as_deref()?;
                (val.contains(&needle) && names.iter().any(|n| val.contains(n)))
                    .then(|| (i, j, e.name.clone(), val.to_string()))
            })
        });
        if found.is_none() {
            // The configuration already names the Service with a port it exposes (a fixed
            // snapshot, or a log older than the fix): nothing to blame here.
            let right = spec
                .containers
                .iter()
                .flat_map(|c| c.env.iter().flatten())
                .any(|e| {
                    e.value.as_deref().is_some_and(|v| {
                        ports
                            .iter()
                            .any(|p| v.contains(&format!("{}:{p}", svc.name)))
                    })
                });
            if right {
                return None;
            }
        }
        let good = ports[0];
        let mut v = Verified::new(
            w.clone(),
            if found.is_some() { 1.0 } else { 0.8 },
            format!(
                "{} calls {}:{port}, but Service {} exposes {}: the address in its configuration names the wrong port",
                w.kind_name(),
                svc.name,
                svc.name,
                ports.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
            ),
        )
        .ev(
            EvidenceSource::Spec,
            &svc,
            format!("Service {} ports: {}", svc.name, ports.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")),
            "spec.ports",
        );
        if let Some((i, j, name, val)) = found {
            let fixed = val.replace(&needle, &format!(":{good}"));
            v = v
                .ev(
                    EvidenceSource::Spec,
                    &w,
                    format!("env {name} = {val}"),
                    &format!("spec.template.spec.containers[{i}].env[{j}].value"),
                )
                .param(
                    "pointer",
                    json!(format!("{prefix}/containers/{i}/env/{j}/value")),
                )
                .param("value", json!(fixed))
                .param("env", json!(name));
        }
        Some(v)
    }

    /// Cluster names fail to resolve because the pod template replaces the cluster DNS:
    /// `dnsPolicy: None` with its own nameservers, or `Default` (the node's resolv.conf).
    pub(super) fn pod_dns_config(&self, sig: &Signal) -> Option<Verified> {
        if sig.code != "log_dns_failure" {
            return None;
        }
        let w = self.workload(&sig.object);
        let (spec, prefix) = self.template(&w)?;
        let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
        if !matches!(policy, "None" | "Default") {
            return None;
        }
        let cluster_dns: Vec<&str> = self
            .c
            .services
            .iter()
            .filter(|s| {
                s.r.namespace.as_deref() == Some("kube-system")
                    && matches!(s.r.name.as_str(), "kube-dns" | "coredns")
            })
            .filter_map(|s| s.o.spec.as_ref()?.cluster_ip.as_deref())
            .collect();
        let servers: Vec<String> = spec
            .dns_config
            .as_ref()
            .and_then(|d| d.nameservers.clone())
            .unwrap_or_default();
        if policy == "None" && servers.iter().any(|s| cluster_dns.contains(&s.as_str())) {
            return None;
        }
        // A name the cluster serves, or one the app was meant to reach inside it.
        let in_cluster = sig.peer.as_deref().is_some_and(|p| {
            self.c.resolve_service(p, ns_of(&sig.object)).is_some() || !p.contains('.')
        });
        if !in_cluster {
            return None;
        }
        let txt = if policy == "None" {
            format!(
                "dnsPolicy None with nameservers {}",
                if servers.is_empty() {
                    "(none)".into()
                } else {
                    servers.join(", ")
                }
            )
        } else {
            "dnsPolicy Default (the node's resolv.conf, which knows no Service names)".to_string()
        };
        Some(
            Verified::new(
                w.clone(),
                1.0,
                format!(
                    "{}'s pods use {txt} instead of the cluster DNS, so they cannot resolve {} ({})",
                    w.kind_name(),
                    sig.peer.as_deref().unwrap_or("Service names"),
                    trim(&sig.detail)
                ),
            )
            .ev(EvidenceSource::Spec, &w, txt.clone(), "spec.template.spec.dnsPolicy")
            .param("prefix", json!(prefix))
            .param("has_dns_config", json!(spec.dns_config.is_some())),
        )
    }

    /// An object the workload needs does not exist while the namespace's quota on that kind of
    /// object is used up: it could not be created (`exceeded quota: Q, requested: services=1`).
    /// A Service its callers cannot resolve, a ConfigMap or Secret its pods cannot mount, a
    /// claim they cannot bind.
    pub(super) fn quota_blocks_creation(&self, sig: &Signal) -> Option<Verified> {
        let name = sig.peer.as_deref()?;
        let (kind, resource, ns) = match sig.code.as_str() {
            "log_dns_failure" | "log_connection_refused" => {
                if name.parse::<std::net::IpAddr>().is_ok()
                    || self.c.resolve_service(name, ns_of(&sig.object)).is_some()
                {
                    return None;
                }
                let labels: Vec<&str> = name.split('.').collect();
                let ns = match labels.get(1) {
                    Some(ns) if labels.len() == 2 || labels.get(2) == Some(&"svc") => *ns,
                    Some(_) => return None,
                    None => ns_of(&sig.object),
                };
                ("Service", "services", ns)
            }
            "mount_missing_configmap" => ("ConfigMap", "configmaps", ns_of(&sig.object)),
            "mount_missing_secret" => ("Secret", "secrets", ns_of(&sig.object)),
            "create_config_error" if sig.detail.contains("configmap") => {
                ("ConfigMap", "configmaps", ns_of(&sig.object))
            }
            "create_config_error" if sig.detail.contains("secret") => {
                ("Secret", "secrets", ns_of(&sig.object))
            }
            _ => return None,
        };
        let name = name.split('.').next().unwrap_or(name);
        if self.c.exists(&ObjectRef::new(kind, ns, name)) {
            return None;
        }
        let keys = [resource.to_string(), format!("count/{resource}")];
        let (q, key, hard, used) = self
            .c
            .quotas
            .iter()
            .filter(|q| q.r.namespace.as_deref() == Some(ns))
            .find_map(|q| {
                // spec.hard is what the quota allows (status.hard lags an edit).
                let hard = q.o.spec.as_ref().and_then(|s| s.hard.as_ref()).or(q
                    .o
                    .status
                    .as_ref()
                    .and_then(|s| s.hard.as_ref()))?;
                let used = q.o.status.as_ref()?.used.as_ref()?;
                keys.iter().find_map(|k| {
                    let h = parse_quantity(&hard.get(k)?.0)?;
                    let u = parse_quantity(&used.get(k)?.0)?;
                    (u >= h).then_some((q, k.clone(), h, u))
                })
            })?;
        Some(
            Verified::new(
                q.r.clone(),
                1.0,
                format!(
                    "ResourceQuota {} allows {hard} {resource} and {used} exist, so {kind} {name} could not be created; {} needs it",
                    q.r.name,
                    self.workload(&sig.object).name
                ),
            )
            .ev(
                EvidenceSource::Status,
                &q.r,
                format!("status.used[{key}] = {used}, hard = {hard}"),
                &format!("status.used.{key}"),
            )
            .param("quota_key", json!(key))
            .param("quota_value", json!((hard as i64 + 1).to_string()))
            .param("object", json!(format!("{kind} {name}"))),
        )
    }

    /// A caller gets HTTP 5xx from a Service whose pods are Ready: the fault is behind it.
    /// Follow the hop into the backend and take its own verified cause (a database that
    /// refuses writes, a dependency of its own); else the backend itself.
    pub(super) fn upstream_server_error(
        &self,
        sig: &Signal,
        path: &[ObjectRef],
        depth: usize,
    ) -> Vec<Verified> {
        let Some(svc) = self.peer_service(sig, path) else {
            return Vec::new();
        };
        let pods = self.selected_pods(&svc);
        if !pods.iter().any(|p| pod_ready(&p.o)) {
            return Vec::new(); // no ready backend: BackendNotReady's case
        }
        let backend = self.workload(&pods[0].r);
        let caller = self.workload(&sig.object);
        if path.contains(&backend) || caller == backend {
            return Vec::new();
        }
        let mut out = Vec::new();
        if depth + 2 <= MAX_HOPS {
            let mut p = path.to_vec();
            p.push(svc.clone());
            p.push(backend.clone());
            let scope = scope_of(self.c, self.g, &backend);
            let deeper = self.analyze(&scope, p, depth + 2);
            for f in deeper.into_iter().filter(|f| {
                !matches!(
                    f.reason.as_str(),
                    "BackendNotReady" | "UpstreamServerError" | "ApplicationCrash"
                )
            }) {
                let mut v = Verified::new(
                    f.object.clone(),
                    f.score,
                    format!(
                        "{} (behind Service {}, which answers {} with server errors)",
                        f.summary, svc.name, caller.name
                    ),
                );
                v.evidence = f.evidence;
                v.params = f.params;
                v.via = f.path[path.len()..].to_vec();
                v.params.insert("_reason".into(), json!(f.reason));
                out.push(v);
            }
        }
        let mut v = Verified::new(
            backend.clone(),
            0.6,
            format!(
                "{} answers {} with server errors (HTTP 5xx) while its pods are Ready: the fault is in {} or in what it calls",
                backend.kind_name(),
                caller.name,
                backend.name
            ),
        )
        .ev(
            EvidenceSource::Graph,
            &svc,
            format!("{} calls Service {} → {}", caller.name, svc.name, backend.name),
            "depends_on",
        );
        v.via = vec![svc];
        out.push(v);
        out
    }

    /// A dependency refuses the caller's credentials: the credentials the caller's pod template
    /// hands it (a Secret through env or envFrom, or literal env) are wrong or stale.
    pub(super) fn dependency_auth(&self, sig: &Signal) -> Option<Verified> {
        if sig.code != "log_auth_failed" {
            return None;
        }
        let w = self.workload(&sig.object);
        let (spec, _) = self.template(&w)?;
        let secrets: Vec<String> = spec
            .containers
            .iter()
            .flat_map(|c| env_sources(c, "Secret"))
            .collect();
        let mut v = Verified::new(
            w.clone(),
            0.9,
            format!(
                "{} is refused by {} with the credentials it is configured with ({})",
                w.kind_name(),
                sig.peer.as_deref().unwrap_or("its dependency"),
                trim(&sig.detail)
            ),
        );
        if let Some(s) = secrets.first() {
            let r = ObjectRef::new("Secret", ns_of(&w), s);
            v = v
                .ev(
                    EvidenceSource::Spec,
                    &w,
                    format!("credentials come from Secret {s}"),
                    "spec.template.spec.containers[].env",
                )
                .param("secret", json!(r.name));
        }
        Some(v)
    }

    /// Callers' logs say the database refuses work (out of connections, read-only): the fault
    /// is in the database the callers share, not in each caller.
    pub(super) fn database_rejects(&self, sig: &Signal, path: &[ObjectRef]) -> Option<Verified> {
        if sig.code != "log_db_rejects" {
            return None;
        }
        let ns = ns_of(&sig.object);
        // The Service the line names, else the database workload the caller's configuration
        // points at most closely.
        let named = self
            .peer_service(sig, path)
            .and_then(|s| self.selected_pods(&s).first().map(|p| self.workload(&p.r)));
        let db = named.or_else(|| self.database_for(&sig.object, ns))?;
        if path.contains(&db) || self.workload(&sig.object) == db {
            return None;
        }
        let callers = self
            .signals
            .iter()
            .filter(|s| s.code == "log_db_rejects")
            .map(|s| self.workload(&s.object))
            .collect::<std::collections::BTreeSet<_>>();
        Some(
            Verified::new(
                db.clone(),
                1.0,
                format!(
                    "database {} refuses work ({}); {} caller{} fail{} on it",
                    db.kind_name(),
                    trim(&sig.detail),
                    callers.len(),
                    if callers.len() == 1 { "" } else { "s" },
                    if callers.len() == 1 { "s" } else { "" }
                ),
            )
            .ev(
                EvidenceSource::Graph,
                &db,
                format!(
                    "callers failing on it: {}",
                    callers
                        .iter()
                        .map(|c| c.name.as_str())
                        .take(8)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "depends_on",
            ),
        )
    }

    /// The database workload a pod most likely uses: a database image in its namespace whose
    /// name shares the most with the names in the pod's configuration (env, envFrom Secrets and
    /// ConfigMaps: `ts-route-mysql` → `tsdb-mysql`).
    fn database_for(&self, pod: &ObjectRef, ns: &str) -> Option<ObjectRef> {
        let spec = self.pod(pod)?.o.spec.as_ref()?;
        let mut words: Vec<String> = Vec::new();
        for c in &spec.containers {
            for e in c.env.iter().flatten() {
                words.push(e.name.to_ascii_lowercase());
                if let Some(v) = &e.value {
                    words.push(v.to_ascii_lowercase());
                }
            }
            for f in c.env_from.iter().flatten() {
                if let Some(s) = &f.secret_ref {
                    words.push(s.name.to_ascii_lowercase());
                }
                if let Some(m) = &f.config_map_ref {
                    words.push(m.name.to_ascii_lowercase());
                }
            }
        }
        // A name that carries database settings (`ts-route-mysql`, `DB_HOST`) points at the
        // database more than any other (`nacos`, a discovery config): its tokens weigh double.
        let about_db = |w: &str| {
            DB_IMAGES.iter().any(|d| w.contains(d))
                || ["db", "sql", "database", "jdbc"]
                    .iter()
                    .any(|d| w.contains(d))
        };
        let mut tokens: Vec<(String, f64)> = Vec::new();
        for w in &words {
            let weight = if about_db(w) { 2.0 } else { 1.0 };
            for t in w
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|t| t.len() >= 2)
            {
                match tokens.iter_mut().find(|(x, _)| x == t) {
                    Some(e) => e.1 = f64::max(e.1, weight),
                    None => tokens.push((t.to_string(), weight)),
                }
            }
        }
        let mut best: BTreeMap<ObjectRef, f64> = BTreeMap::new();
        let workloads = self
            .c
            .statefulsets
            .iter()
            .map(|o| {
                (
                    &o.r,
                    o.o.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
                )
            })
            .chain(self.c.deployments.iter().map(|o| {
                (
                    &o.r,
                    o.o.spec.as_ref().and_then(|s| s.template.spec.as_ref()),
                )
            }));
        for (r, tspec) in workloads {
            if r.namespace.as_deref() != Some(ns) {
                continue;
            }
            let is_db = tspec.is_some_and(|s| {
                s.containers.iter().any(|c| {
                    let img = c.image.as_deref().unwrap_or("").to_ascii_lowercase();
                    let repo = img.rsplit('/').next().unwrap_or("");
                    DB_IMAGES.iter().any(|d| repo.starts_with(d))
                })
            });
            if !is_db {
                continue;
            }
            let name = r.name.to_ascii_lowercase();
            let mut score = if words.iter().any(|w| w.contains(&name)) {
                3.0
            } else {
                0.0
            };
            for part in name.split('-').filter(|p| p.len() >= 2) {
                let exact = tokens
                    .iter()
                    .filter(|(t, _)| t == part)
                    .map(|(_, w)| *w)
                    .fold(0.0, f64::max);
                let prefix = tokens
                    .iter()
                    .filter(|(t, _)| part.starts_with(t.as_str()) || t.starts_with(part))
                    .map(|(_, w)| 0.5 * w)
                    .fold(0.0, f64::max);
                score += f64::max(exact, prefix);
            }
            best.insert(r.clone(), score);
        }
        best.into_iter()
            .filter(|(_, s)| *s > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1).then_with(|| b.0.name.cmp(&a.0.name)))
            .map(|(r, _)| r)
    }
}
