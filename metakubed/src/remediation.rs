//! Stage: remediation. Turns a verified cause into fixes: a `kubectl patch` against the
//! root-cause object (values derived from the evidence), an exact `kubectl` command where a
//! patch does not fit, or a manual action saying exactly what to look at.
//!
//! Patches are validated by the engine: the patched object must still deserialize into its
//! k8s-openapi type, and re-diagnosing the snapshot with the patch applied must no longer
//! report the cause. Nothing here deletes PVCs, Namespaces or Secrets.

use metakube_shared::object::shell_word;
use metakube_shared::{ObjectRef, Patch, Remediation, Risk};
use serde_json::{json, Value};

use crate::graph::search::Finding;

/// Why a patch could not be applied to an object.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// An RFC 6902 operation failed: a path that names nothing, a failed `test`.
    #[error("json patch: {0}")]
    Json(#[from] json_patch::PatchError),
    /// The patch type is not one metakube writes.
    #[error("unsupported patch type {0}")]
    Type(String),
    /// The patch body is not an RFC 6902 operation list.
    #[error("malformed json patch: {0}")]
    Malformed(#[source] serde_json::Error),
    /// The patched object no longer fits its schema.
    #[error("patched {kind} does not fit the schema: {message}")]
    Schema {
        /// The kind.
        kind: String,
        /// serde's message.
        message: String,
    },
}

fn s(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn p<'a>(f: &'a Finding, k: &str) -> Option<&'a Value> {
    f.params.get(k).filter(|v| !v.is_null())
}

fn workload_param(f: &Finding) -> Option<ObjectRef> {
    p(f, "workload").and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// `kubectl -n NS patch kind NAME --type T -p 'BODY'`, shell-quoted.
pub fn patch_command(r: &ObjectRef, patch_type: &str, body: &Value) -> String {
    let body = serde_json::to_string(body)
        .unwrap_or_default()
        .replace('\'', "'\\''");
    format!(
        "kubectl {}patch {} {} --type {patch_type} -p '{body}'",
        r.namespace_flag(),
        r.kind.to_ascii_lowercase(),
        shell_word(&r.name)
    )
}

fn patch(r: &ObjectRef, patch_type: &str, body: Value, summary: String, risk: Risk) -> Remediation {
    Remediation {
        command: Some(patch_command(r, patch_type, &body)),
        patch: Some(Patch {
            object: r.clone(),
            patch_type: patch_type.into(),
            body,
            validated: false,
        }),
        summary,
        risk,
    }
}

fn command(cmd: String, summary: String, risk: Risk) -> Remediation {
    Remediation {
        summary,
        risk,
        command: Some(cmd),
        patch: None,
    }
}

fn manual(summary: String) -> Remediation {
    Remediation {
        summary,
        risk: Risk::High,
        command: None,
        patch: None,
    }
}

fn logs_cmd(r: &ObjectRef) -> String {
    let k = if r.kind == "Pod" {
        "pod".to_string()
    } else {
        r.kind.to_ascii_lowercase()
    };
    format!(
        "kubectl {}logs {k}/{} --all-containers --previous --tail=200",
        r.namespace_flag(),
        r.name
    )
}

/// Fixes for one finding, best first.
pub fn plan(f: &Finding) -> Vec<Remediation> {
    let o = &f.object;
    let mut out = Vec::new();
    match f.fix.as_str() {
        "raise_memory_limit" => {
            if let (Some(mem), Some(ptr)) = (p(f, "memory"), p(f, "pointer")) {
                out.push(patch(
                    o,
                    "json",
                    json!([{"op": "replace", "path": s(ptr), "value": mem}]),
                    format!("raise the memory limit of container {} to {} (twice the limit it is killed at)", s(p(f, "container").unwrap_or(&json!(""))), s(mem)),
                    Risk::Medium,
                ));
            } else if let Some(lp) = p(f, "limits_pointer") {
                let has = p(f, "has_limits").and_then(Value::as_bool).unwrap_or(false);
                let body = if has {
                    json!([{"op": "add", "path": format!("{}/memory", s(lp)), "value": "512Mi"}])
                } else {
                    json!([{"op": "add", "path": s(lp), "value": {"memory": "512Mi"}}])
                };
                out.push(patch(o, "json", body, "set a memory limit (512Mi) so the container is not killed by node memory pressure".into(), Risk::Medium));
            }
        }
        "investigate_leak" => {
            out.push(command(
                format!("kubectl {}rollout restart {}", o.namespace_flag(), o.kubectl_name()),
                "restart to buy time (the leak will return); then profile the heap of the container: its memory grows until the limit".into(),
                Risk::Medium,
            ));
            out.push(manual(format!("find the leak in {}: compare heap profiles over uptime; raising the limit only delays the next OOM kill", o.name)));
        }
        "fit_quota" => {
            if let (Some(w), Some(missing), Some(prefix)) = (workload_param(f), p(f, "missing").and_then(Value::as_array), p(f, "prefix")) {
                let hard = p(f, "quota_hard").cloned().unwrap_or(Value::Null);
                // Strategic merge: containers merge by name, so only the missing values are set.
                let mut containers: Vec<Value> = Vec::new();
                for m in missing {
                    let (Some(name), Some(res)) = (m.get(1).and_then(Value::as_str), m.get(2).and_then(Value::as_str)) else { continue };
                    let (section, rname) = res.split_once('.').unwrap_or(("requests", res));
                    let value = default_for(rname, section, &hard);
                    let entry = match containers.iter_mut().find(|c| c["name"] == name) {
                        Some(c) => c,
                        None => {
                            containers.push(json!({"name": name, "resources": {}}));
                            containers.last_mut().expect("just pushed")
                        }
                    };
                    json_patch::merge(&mut entry["resources"], &json!({ section: { rname: value } }));
                }
                let body = nest(&s(prefix), json!({"containers": containers}));
                out.push(patch(
                    &w,
                    "strategic",
                    body,
                    format!("set the resources ResourceQuota {} requires on {} so admission accepts its pods", o.name, w.name),
                    Risk::Medium,
                ));
            } else if let Some(w) = workload_param(f) {
                out.push(command(
                    format!("kubectl {}describe resourcequota {}", o.namespace_flag(), o.name),
                    format!("the quota is used up: lower {}'s requests or raise the quota's hard limits", w.name),
                    Risk::Medium,
                ));
            }
        }
        "fit_limitrange" => {
            if let (Some(res), Some(val), Some(prefix), Some(cs)) = (p(f, "resource"), p(f, "value"), p(f, "prefix"), p(f, "containers").and_then(Value::as_array)) {
                let ops: Vec<Value> = cs
                    .iter()
                    .filter_map(|c| c.get(0).and_then(Value::as_u64))
                    .map(|i| json!({"op": "replace", "path": format!("{}/containers/{i}/resources/limits/{}", s(prefix), s(res)), "value": val}))
                    .collect();
                out.push(patch(o, "json", Value::Array(ops), format!("lower limits.{} to {} to fit the LimitRange", s(res), s(val)), Risk::Medium));
            }
        }
        "raise_hpa_max" => {
            if let Some(max) = p(f, "max").and_then(Value::as_i64) {
                out.push(patch(o, "merge", json!({"spec": {"maxReplicas": max * 2}}), format!("raise maxReplicas from {max} to {}", max * 2), Risk::Medium));
            }
        }
        "fix_service_selector" => {
            if let Some(sel) = p(f, "selector") {
                out.push(patch(o, "merge", json!({"spec": {"selector": sel}}), format!("point Service {}'s selector at the labels its pods carry", o.name), Risk::Medium));
            }
        }
        "fix_target_port" => {
            if let (Some(i), Some(port)) = (p(f, "index").and_then(Value::as_u64), p(f, "port")) {
                out.push(patch(
                    o,
                    "json",
                    json!([{"op": "replace", "path": format!("/spec/ports/{i}/targetPort"), "value": port}]),
                    format!("send Service {} to port {} where its pods listen", o.name, port),
                    Risk::Medium,
                ));
            }
        }
        "allow_in_networkpolicy" => {
            if let Some(labels) = p(f, "labels") {
                let rule = json!({"from": [{"podSelector": {"matchLabels": labels}}]});
                let has = p(f, "has_ingress").and_then(Value::as_bool).unwrap_or(false);
                let body = if has { json!([{"op": "add", "path": "/spec/ingress/-", "value": rule}]) } else { json!([{"op": "add", "path": "/spec/ingress", "value": [rule]}]) };
                out.push(patch(o, "json", body, format!("admit the caller's pods in NetworkPolicy {}", o.name), Risk::Medium));
            }
        }
        "add_toleration" => {
            if let (Some(k), Some(prefix)) = (p(f, "key"), p(f, "prefix")) {
                let v = p(f, "value").map(s).unwrap_or_default();
                let effect = p(f, "effect").map(s).unwrap_or_else(|| "NoSchedule".into());
                let tol = if v.is_empty() {
                    json!({"key": k, "operator": "Exists", "effect": effect})
                } else {
                    json!({"key": k, "operator": "Equal", "value": v, "effect": effect})
                };
                let has = p(f, "has_tolerations").and_then(Value::as_bool).unwrap_or(false);
                let body = if has {
                    json!([{"op": "add", "path": format!("{}/tolerations/-", s(prefix)), "value": tol}])
                } else {
                    json!([{"op": "add", "path": format!("{}/tolerations", s(prefix)), "value": [tol]}])
                };
                out.push(patch(o, "json", body, format!("tolerate taint {} (or remove the taint from the node if it was not meant for this workload)", s(k)), Risk::Medium));
            }
        }
        "fix_node_selector" => {
            let prefix = p(f, "prefix").map(s).unwrap_or_default();
            let keys: Vec<String> = p(f, "remove_keys").and_then(Value::as_array).map(|a| a.iter().map(s).collect()).unwrap_or_default();
            let mut ops: Vec<Value> = keys.iter().map(|k| json!({"op": "remove", "path": format!("{prefix}/nodeSelector/{}", k.replace('~', "~0").replace('/', "~1"))})).collect();
            if p(f, "has_affinity").and_then(Value::as_bool).unwrap_or(false) {
                ops.push(json!({"op": "remove", "path": format!("{prefix}/affinity/nodeAffinity")}));
            }
            if !ops.is_empty() {
                out.push(patch(o, "json", Value::Array(ops), "drop the node constraint no node satisfies (or label a node to match it)".into(), Risk::Medium));
            }
        }
        "fix_pod_affinity" => {
            if let Some(prefix) = p(f, "prefix") {
                out.push(patch(o, "json", json!([{"op": "remove", "path": format!("{}/affinity/podAffinity", s(prefix))}]), "drop the pod affinity that no running pod satisfies (or deploy the pods it expects first)".into(), Risk::Medium));
            }
        }
        "fix_image" => {
            if let (Some(rev), Some(img)) = (p(f, "previous_revision"), p(f, "previous_image")) {
                out.push(command(
                    format!("kubectl {}rollout undo {} --to-revision={}", o.namespace_flag(), o.kubectl_name(), s(rev)),
                    format!("roll back to revision {} which ran {}", s(rev), s(img)),
                    Risk::Medium,
                ));
            }
            if let (Some(c), Some(img)) = (p(f, "container"), p(f, "image")) {
                out.push(manual(format!(
                    "set an image that exists: kubectl {}set image {} {}=<repository:tag> (the current {} cannot be pulled)",
                    o.namespace_flag(),
                    o.kubectl_name(),
                    s(c),
                    s(img)
                )));
            }
        }
        "add_pull_secret" => {
            if let (Some(prefix), Some(img)) = (p(f, "prefix"), p(f, "image")) {
                let registry = s(img).split('/').next().filter(|h| h.contains('.')).unwrap_or("docker.io").to_string();
                out.push(command(
                    format!("kubectl {}create secret docker-registry regcred --docker-server={registry} --docker-username=<user> --docker-password=<token>", o.namespace_flag()),
                    format!("create a pull secret for {registry}"),
                    Risk::Low,
                ));
                let has = p(f, "has_pull_secrets").and_then(Value::as_bool).unwrap_or(false);
                let body = if has {
                    json!([{"op": "add", "path": format!("{}/imagePullSecrets/-", s(prefix)), "value": {"name": "regcred"}}])
                } else {
                    json!([{"op": "add", "path": format!("{}/imagePullSecrets", s(prefix)), "value": [{"name": "regcred"}]}])
                };
                out.push(patch(o, "json", body, "use the pull secret in the pod template".into(), Risk::Medium));
            }
        }
        "create_or_point_configmap" | "create_secret" => {
            let w = workload_param(f);
            let before = out.len();
            if let (Some(w), Some(similar), Some(i), Some(prefix)) = (&w, p(f, "similar"), p(f, "volume_index").and_then(Value::as_u64), p(f, "prefix")) {
                let field = if o.kind == "ConfigMap" { "configMap/name" } else { "secret/secretName" };
                out.push(patch(
                    w,
                    "json",
                    json!([{"op": "replace", "path": format!("{}/volumes/{i}/{field}", s(prefix)), "value": similar}]),
                    format!("mount the existing {} {} instead of the missing {}", o.kind, s(similar), o.name),
                    Risk::Medium,
                ));
            }
            let create = if o.kind == "ConfigMap" {
                format!("kubectl {}create configmap {} --from-file=<file or directory>", o.namespace_flag(), o.name)
            } else {
                format!("kubectl {}create secret generic {} --from-literal=<key>=<value>", o.namespace_flag(), o.name)
            };
            // "or …" only as the alternative to mounting an existing one.
            let or = if out.len() > before { "or " } else { "" };
            out.push(command(create, format!("{or}create the missing {} {}", o.kind, o.name), Risk::Low));
        }
        "lower_requests" => {
            // The scheduler's NodeResourcesFit: no node has the requests free. Which to lower
            // (or how much capacity to add) needs the nodes' allocated resources.
            out.push(command(
                "kubectl describe nodes".into(),
                format!(
                    "lower the resource requests of {} to what a node has free, or add node capacity (each node's allocated requests are in kubectl describe nodes)",
                    o.name
                ),
                Risk::Low,
            ));
        }
        "create_serviceaccount" => {
            if let Some(sa) = p(f, "sa") {
                out.push(command(format!("kubectl {}create serviceaccount {}", o.namespace_flag(), s(sa)), format!("create ServiceAccount {}", s(sa)), Risk::Low));
            }
        }
        "fix_probe_port" => {
            if let (Some(ptr), Some(port)) = (p(f, "pointer"), p(f, "port")) {
                out.push(patch(o, "json", json!([{"op": "replace", "path": s(ptr), "value": port}]), format!("probe the port the container serves ({port})"), Risk::Medium));
            }
        }
        "expand_pvc" => {
            if let Some(st) = p(f, "storage") {
                let expandable = p(f, "expandable").and_then(Value::as_bool).unwrap_or(false);
                out.push(patch(
                    o,
                    "merge",
                    json!({"spec": {"resources": {"requests": {"storage": st}}}}),
                    format!(
                        "grow claim {} to {}{}",
                        o.name,
                        s(st),
                        if expandable { "" } else { " (its StorageClass must allow volume expansion; otherwise migrate the data to a larger claim)" }
                    ),
                    if expandable { Risk::Medium } else { Risk::High },
                ));
            }
        }
        "fix_storage_class" => {
            if let Some(sc) = p(f, "storage_class") {
                match p(f, "default_class") {
                    Some(d) => out.push(command(
                        format!(
                            "kubectl get storageclass {} -o json | sed 's/\"name\": *\"{}\"/\"name\": \"{}\"/' | kubectl create -f -",
                            s(d),
                            s(d),
                            s(sc)
                        ),
                        format!("create StorageClass {} as a copy of the default class {} (a claim's storageClassName cannot be changed)", s(sc), s(d)),
                        Risk::Low,
                    )),
                    None => out.push(manual(format!("create StorageClass {} (a claim's storageClassName is immutable), or recreate claim {} with an existing class", s(sc), o.name))),
                }
            }
        }
        "relieve_node" | "manual_node" | "unpin_node" => {
            if let Some(w) = p(f, "pinned").and_then(|v| serde_json::from_value::<ObjectRef>(v.clone()).ok()) {
                out.push(patch(&w, "json", json!([{"op": "remove", "path": "/spec/template/spec/nodeName"}]), format!("unpin {} from node {} so the scheduler can place it elsewhere", w.name, o.name), Risk::Medium));
            }
            if let (Some(w), true) = (workload_param(f), p(f, "pinned").and_then(Value::as_bool).unwrap_or(false)) {
                out.push(command(
                    format!("kubectl {}get {} -o jsonpath='{{.spec.template.spec.nodeSelector}}'", w.namespace_flag(), w.kubectl_name()),
                    format!("{} is pinned to node {}: drop the hostname nodeSelector or spread it over nodes with room", w.name, o.name),
                    Risk::Medium,
                ));
            }
            out.push(command(format!("kubectl describe node {}", o.name), format!("inspect node {}: conditions, allocated resources and the kubelet's eviction thresholds", o.name), Risk::Low));
            let cond = p(f, "condition").map(s).unwrap_or_default();
            if cond == "DiskPressure" {
                out.push(manual(format!("free disk on {} (images, logs) or restore the kubelet's evictionHard thresholds (nodefs.available, imagefs.available)", o.name)));
            }
        }
        "manual_config" => {
            if let Some(ptr) = p(f, "command_pointer") {
                out.push(patch(
                    o,
                    "json",
                    json!([{"op": "remove", "path": s(ptr)}]),
                    format!(
                        "run the image's own entrypoint instead of the command override of container {} (entrypoints often drop root and initialise configuration); review the args it keeps",
                        p(f, "container").map(s).unwrap_or_default()
                    ),
                    Risk::Medium,
                ));
            }
            out.push(command(logs_cmd(o), format!("read what {} refuses in its log and correct that setting (command, env, securityContext or config file)", o.name), Risk::Low));
        }
        "per_replica_claims" => {
            if let Some(w) = workload_param(f) {
                out.push(command(
                    format!("kubectl {}scale {} --replicas=1", w.namespace_flag(), w.kubectl_name()),
                    format!("run one replica while {} shares the ReadWriteOnce claim {}", w.name, o.name),
                    Risk::Medium,
                ));
                out.push(manual(format!(
                    "give each replica its own volume: move {} to a StatefulSet with volumeClaimTemplates, or use a ReadWriteMany class",
                    w.name
                )));
            }
        }
        "manual_dns" => {
            out.push(command(
                format!("kubectl -n kube-system logs {} --all-containers --tail=50", o.kubectl_name()),
                format!("read why {} is not ready (a forward/loop error in its Corefile, OOM, a crash)", o.name),
                Risk::Low,
            ));
            out.push(command(
                format!("kubectl -n kube-system rollout restart {}", o.kubectl_name()),
                "restart the cluster DNS once its configuration is fixed".into(),
                Risk::Medium,
            ));
        }
        "uncordon" => {
            let nodes: Vec<String> = p(f, "nodes")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_else(|| vec![o.name.clone()]);
            out.push(patch(o, "merge", json!({"spec": {"unschedulable": false}}), format!("uncordon node {} so the scheduler can place pods on it again", o.name), Risk::Medium));
            if nodes.len() > 1 {
                out.push(command(format!("kubectl uncordon {}", nodes.join(" ")), format!("uncordon every node the pods may run on ({})", nodes.join(", ")), Risk::Medium));
            }
        }
        "manual_scheduler" => {
            let node = p(f, "node").map(s).unwrap_or_else(|| "the control-plane node".into());
            let comp = p(f, "component").map(s).unwrap_or_else(|| "kube-scheduler".into());
            out.push(command(format!("kubectl -n kube-system get pods -l component={comp} -o wide"), format!("see whether a {comp} pod runs (static pod clusters)"), Risk::Low));
            out.push(manual(format!("start {comp} on {node} (systemd clusters: `systemctl status {comp}`, `journalctl -u {comp}`, then `systemctl restart {comp}`); the waiting pods are handled as soon as it runs")));
        }
        "scale_up" => {
            let n = p(f, "replicas").cloned().unwrap_or(json!(1));
            out.push(patch(o, "merge", json!({"spec": {"replicas": n}}), format!("scale {} back to {n} replica(s) so its Service has endpoints again", o.name), Risk::Low));
        }
        "fix_env_port" => {
            if let (Some(ptr), Some(v)) = (p(f, "pointer"), p(f, "value")) {
                out.push(patch(o, "json", json!([{"op": "replace", "path": s(ptr), "value": v}]), format!("point {} at the port its Service exposes ({})", p(f, "env").map(s).unwrap_or_default(), s(v)), Risk::Medium));
            }
        }
        "fix_dns_policy" => {
            if let Some(prefix) = p(f, "prefix") {
                let mut ops = vec![json!({"op": "replace", "path": format!("{}/dnsPolicy", s(prefix)), "value": "ClusterFirst"})];
                if p(f, "has_dns_config").and_then(Value::as_bool).unwrap_or(false) {
                    ops.push(json!({"op": "remove", "path": format!("{}/dnsConfig", s(prefix))}));
                }
                out.push(patch(o, "json", Value::Array(ops), "use the cluster DNS again (dnsPolicy ClusterFirst, no custom nameservers)".into(), Risk::Medium));
            }
        }
        "raise_quota" => {
            if let (Some(k), Some(v)) = (p(f, "quota_key"), p(f, "quota_value")) {
                out.push(patch(o, "merge", json!({"spec": {"hard": {s(k): v}}}), format!("raise ResourceQuota {}'s {} to {} so {} can be created (then re-apply it)", o.name, s(k), s(v), p(f, "object").map(s).unwrap_or_default()), Risk::Medium));
            }
        }
        "manual_database" => {
            out.push(command(logs_cmd(o), format!("read {}'s own log: connection count, read-only switch, replication state", o.name), Risk::Low));
            out.push(manual(format!("restore {}: make it writable again (MySQL `SET GLOBAL read_only=OFF`, PostgreSQL `default_transaction_read_only`), or raise its connection limit (max_connections) and find the client that holds connections", o.name)));
        }
        "fix_probe_protocol" => {
            if let Some(ptr) = p(f, "pointer") {
                let kind = p(f, "probe_kind").map(s).unwrap_or_else(|| "tcpSocket".into());
                let port = p(f, "port").cloned().unwrap_or(Value::Null);
                if !port.is_null() {
                    out.push(patch(
                        o,
                        "json",
                        json!([{"op": "remove", "path": format!("{}/httpGet", s(ptr))}, {"op": "add", "path": format!("{}/{kind}", s(ptr)), "value": {"port": port}}]),
                        format!("probe port {port} with the {kind} handler the server answers instead of HTTP GET"),
                        Risk::Medium,
                    ));
                }
            }
        }
        "manual_credentials" => {
            let secret = p(f, "secret").map(s);
            match secret {
                Some(sec) => out.push(command(
                    format!("kubectl {}get secret {} -o jsonpath='{{.data}}'", o.namespace_flag(), shell_word(&sec)),
                    format!("check the credentials in Secret {sec} against the account the dependency expects, fix them, then restart {}", o.name),
                    Risk::Low,
                )),
                None => out.push(manual(format!("check the user and password {} is configured with against the account the dependency expects", o.name))),
            }
        }
        "allow_egress" => {
            let port = p(f, "port").cloned().unwrap_or(json!(53));
            let dns = p(f, "dns").and_then(Value::as_bool).unwrap_or(false);
            let rule = if dns {
                json!({"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]})
            } else {
                json!({"ports": [{"port": port, "protocol": "TCP"}]})
            };
            let op = if p(f, "has_egress").and_then(Value::as_bool).unwrap_or(false) {
                json!([{"op": "add", "path": "/spec/egress/-", "value": rule}])
            } else {
                json!([{"op": "add", "path": "/spec/egress", "value": [rule]}])
            };
            out.push(patch(o, "json", op, format!("allow egress to port {port}{} in NetworkPolicy {}", if dns { " (DNS)" } else { "" }, o.name), Risk::Medium));
        }
        "fix_volume_permissions" => {
            let vol = p(f, "volume").map(s).unwrap_or_default();
            let path = p(f, "path").map(s).unwrap_or_default();
            if p(f, "kind").map(s).as_deref() == Some("hostPath") {
                let node = p(f, "node").map(s).unwrap_or_default();
                out.push(manual(format!("give the container's user ownership of the hostPath directory behind volume {vol} on node {node} (e.g. `chown -R 999:999 <dir>` there), or mount a PersistentVolumeClaim instead; the pod mounts it at {path}")));
            } else {
                out.push(manual(format!("set spec.template.spec.securityContext.fsGroup to the container's group so the kubelet makes claim {vol} (mounted at {path}) writable for it")));
            }
        }
        "template" => {
            let text = p(f, "fix_text").map(s).unwrap_or_default();
            out.push(command(format!("kubectl {}describe {} {}", o.namespace_flag(), o.kind.to_ascii_lowercase(), o.name), format!("inspect {} {}", o.kind, o.name), Risk::Low));
            if !text.is_empty() {
                out.push(manual(text));
            }
        }
        "remembered" => {
            let text = p(f, "resolution").map(s).unwrap_or_default();
            let episode = p(f, "episode").map(|e| e.to_string()).unwrap_or_default();
            match p(f, "command").map(s).filter(|c| !c.is_empty()) {
                Some(cmd) => out.push(command(
                    cmd.to_string(),
                    format!("the command that resolved it last time (episode {episode}); read it before running it"),
                    Risk::Medium,
                )),
                None if !text.is_empty() => out.push(manual(format!("as resolved last time (episode {episode}): {text}"))),
                None => {}
            }
        }
        "manual_upstream" => out.push(manual(format!("fix {} so it answers with valid data; check its recent changes and what it returns: {}", o.name, logs_cmd(o)))),
        "manual_dependency" => {
            let host = p(f, "host").map(s).unwrap_or_default();
            out.push(manual(format!("check that {host} is the right address and that it is up and reachable from the cluster (kubectl {}run -it --rm probe --image=busybox -- nslookup {host})", o.namespace_flag())));
        }
        "manual_service_name" => {
            let host = p(f, "host").map(s).unwrap_or_default();
            out.push(command(format!("kubectl {}get services", o.namespace_flag()), format!("no Service named {host}: point the caller at the right Service name or create it"), Risk::Low));
        }
        _ => {}
    }
    if out.iter().all(|r| r.patch.is_none()) {
        out.push(match f.category {
            metakube_shared::Category::Application => command(
                logs_cmd(o),
                format!(
                    "read the application's own error in {} and fix the code or data path it names",
                    o.name
                ),
                Risk::Low,
            ),
            _ => command(
                format!(
                    "kubectl {}describe {}",
                    o.namespace_flag(),
                    o.kubectl_name()
                ),
                format!(
                    "inspect {} and correct the fault this diagnosis names",
                    o.name
                ),
                Risk::Low,
            ),
        });
    }
    out
}

fn default_for(name: &str, section: &str, hard: &Value) -> Value {
    let from_quota = hard
        .get(format!("{section}.{name}"))
        .and_then(Value::as_str)
        .map(str::to_string);
    match name {
        "cpu" => json!(if section == "limits" { "500m" } else { "100m" }),
        "memory" => json!(if section == "limits" {
            "512Mi"
        } else {
            "128Mi"
        }),
        _ => json!(from_quota.unwrap_or_else(|| "1".into())),
    }
}

/// Applies a patch of type `json` (RFC 6902) or `merge` (RFC 7386), both by the json-patch
/// crate, or `strategic` (Kubernetes' strategic merge, below) to an object.
pub fn apply(obj: &Value, patch_type: &str, body: &Value) -> Result<Value, PatchError> {
    let mut out = obj.clone();
    match patch_type {
        "merge" => json_patch::merge(&mut out, body),
        "strategic" => strategic(&mut out, body),
        "json" => {
            let ops: json_patch::Patch =
                serde_json::from_value(body.clone()).map_err(PatchError::Malformed)?;
            json_patch::patch(&mut out, &ops)?;
        }
        other => return Err(PatchError::Type(other.into())),
    }
    Ok(out)
}

/// Strategic merge as the API server does it for the lists metakube patches: lists of objects
/// with a `name` (containers, volumes, env) merge element by element; other lists replace.
fn strategic(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    strategic(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (Value::Array(t), Value::Array(p))
            if p.iter()
                .all(|e| e.get("name").is_some_and(Value::is_string)) =>
        {
            for e in p {
                match t.iter_mut().find(|x| x.get("name") == e.get("name")) {
                    Some(x) => strategic(x, e),
                    None => t.push(e.clone()),
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Wraps `inner` in the objects a JSON pointer names (`/spec/template/spec`).
fn nest(pointer: &str, inner: Value) -> Value {
    pointer
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .fold(inner, |acc, seg| json!({ seg: acc }))
}

/// Checks that an object still fits its k8s-openapi type.
pub fn check_schema(obj: &Value) -> Result<(), PatchError> {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v2 as hpa, batch::v1 as batch, core::v1 as core,
        networking::v1 as net,
    };
    fn check<T: serde::de::DeserializeOwned>(obj: &Value, kind: &str) -> Result<(), PatchError> {
        T::deserialize(obj)
            .map(|_| ())
            .map_err(|e| PatchError::Schema {
                kind: kind.into(),
                message: e.to_string(),
            })
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    match kind {
        "Deployment" => check::<apps::Deployment>(obj, kind),
        "StatefulSet" => check::<apps::StatefulSet>(obj, kind),
        "DaemonSet" => check::<apps::DaemonSet>(obj, kind),
        "ReplicaSet" => check::<apps::ReplicaSet>(obj, kind),
        "Job" => check::<batch::Job>(obj, kind),
        "CronJob" => check::<batch::CronJob>(obj, kind),
        "Pod" => check::<core::Pod>(obj, kind),
        "Service" => check::<core::Service>(obj, kind),
        "Node" => check::<core::Node>(obj, kind),
        "PersistentVolumeClaim" => check::<core::PersistentVolumeClaim>(obj, kind),
        "NetworkPolicy" => check::<net::NetworkPolicy>(obj, kind),
        "HorizontalPodAutoscaler" => check::<hpa::HorizontalPodAutoscaler>(obj, kind),
        "ResourceQuota" => check::<core::ResourceQuota>(obj, kind),
        "Ingress" => check::<net::Ingress>(obj, kind),
        other => Err(PatchError::Schema {
            kind: other.into(),
            message: "metakube does not patch this kind".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_patch_ops() {
        let doc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "a"}}});
        let out = apply(
            &doc,
            "json",
            &json!([{"op": "replace", "path": "/spec/ports/0/targetPort", "value": 80}]),
        )
        .unwrap();
        assert_eq!(out["spec"]["ports"][0]["targetPort"], 80);
        let out = apply(
            &doc,
            "json",
            &json!([{"op": "add", "path": "/spec/ports/-", "value": {"port": 1}}]),
        )
        .unwrap();
        assert_eq!(out["spec"]["ports"].as_array().unwrap().len(), 2);
        let e = apply(
            &doc,
            "json",
            &json!([{"op": "replace", "path": "/spec/nope/x", "value": 1}]),
        )
        .unwrap_err();
        assert!(matches!(e, PatchError::Json(_)), "{e:?}");
        assert!(e.to_string().contains("/spec/nope"), "{e}");
        let e = apply(&doc, "json", &json!({"op": "add"})).unwrap_err();
        assert!(matches!(e, PatchError::Malformed(_)), "{e:?}");
        let out = apply(
            &doc,
            "merge",
            &json!({"spec": {"selector": {"app": "b", "gone": null}}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["selector"], json!({"app": "b"}));
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let doc = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x", "resources": {"requests": {"cpu": "1"}}},
            {"name": "b", "image": "y"}
        ]}}}});
        let body = nest(
            "/spec/template/spec",
            json!({"containers": [{"name": "b", "resources": {"limits": {"cpu": "500m"}}}]}),
        );
        let out = apply(&doc, "strategic", &body).unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs[0]["resources"]["requests"]["cpu"], "1");
        assert_eq!(cs[1]["image"], "y");
        assert_eq!(cs[1]["resources"]["limits"]["cpu"], "500m");
    }

    #[test]
    fn schema_check_catches_wrong_types() {
        let svc = json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
        assert!(check_schema(&svc).is_ok());
        let bad = apply(
            &svc,
            "json",
            &json!([{"op": "replace", "path": "/spec/ports/0/port", "value": "eighty"}]),
        )
        .unwrap();
        assert!(matches!(check_schema(&bad), Err(PatchError::Schema { .. })));
    }

    #[test]
    fn commands_are_shell_quoted() {
        // The name is quoted too: a crafted dump must not turn a pasted fix into code.
        let r = ObjectRef::new("Service", "shop", "it's");
        let cmd = patch_command(&r, "merge", &json!({"a": "it's"}));
        assert_eq!(
            cmd,
            r#"kubectl -n shop patch service 'it'\''s' --type merge -p '{"a":"it'\''s"}'"#
        );
    }

    #[test]
    fn a_missing_object_is_created_as_the_fix_or_as_the_alternative_to_an_existing_one() {
        let finding = |params: BTreeMapParams| Finding {
            reason: "MissingSecret".into(),
            category: metakube_shared::Category::Configuration,
            object: ObjectRef::new("Secret", "core", "reports-db"),
            score: 1.0,
            summary: String::new(),
            evidence: Vec::new(),
            symptoms: Vec::new(),
            path: Vec::new(),
            fix: "create_secret".into(),
            params,
            note: String::new(),
            learned_from: None,
        };
        let alone = plan(&finding(BTreeMapParams::new()));
        assert_eq!(
            alone[0].summary, "create the missing Secret reports-db",
            "{alone:?}"
        );
        assert!(
            !alone.iter().any(|r| r.summary.starts_with("or ")),
            "{alone:?}"
        );
        let mut params = BTreeMapParams::new();
        params.insert(
            "workload".into(),
            serde_json::to_value(ObjectRef::new("Deployment", "core", "reports")).unwrap(),
        );
        params.insert("similar".into(), json!("reports-db-creds"));
        params.insert("volume_index".into(), json!(0));
        params.insert("prefix".into(), json!("/spec/template/spec"));
        let both = plan(&finding(params));
        assert!(
            both[0]
                .summary
                .starts_with("mount the existing Secret reports-db-creds"),
            "{both:?}"
        );
        assert_eq!(both[1].summary, "or create the missing Secret reports-db");
    }

    type BTreeMapParams = std::collections::BTreeMap<String, Value>;
}
