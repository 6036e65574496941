//! Live collection with kube-rs: kubeconfig, `--context`, `-n`; lists on the real REST paths,
//! concurrently; a forbidden or unserved kind is recorded as a gap, not fatal. Secret values
//! are never deserialized: only key names are kept.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use jiff::Timestamp;
use kube::config::{KubeConfigOptions, Kubeconfig};
use metakube_shared::snapshot::MAX_LOG_BYTES;
use metakube_shared::{
    ContainerLog, Gap, KindInfo, KubeObject, ObjectRef, Patch, Snapshot, SnapshotSource, TargetRef,
    KINDS,
};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use super::list::{continue_token, object_of_item, ListText};
use super::{log_pods, referenced_namespaces, select, target_pods, CollectError, Collected};

/// How to reach the cluster.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// `-n`; the context's namespace when absent.
    pub namespace: Option<String>,
    /// `--request-timeout`.
    pub request_timeout: Option<Duration>,
}

/// A connected client and what it resolved.
#[derive(Clone)]
pub struct Connection {
    /// The client.
    pub client: kube::Client,
    /// The namespace requests run in.
    pub namespace: String,
    /// The kubeconfig context used.
    pub context: Option<String>,
    /// The API server URL.
    pub cluster_url: String,
}

/// Connects with the user's kubeconfig.
pub async fn connect(opts: &LiveOptions) -> Result<Connection, CollectError> {
    let kc_opts = KubeConfigOptions {
        context: opts.context.clone(),
        cluster: None,
        user: None,
    };
    let kubeconfig = match &opts.kubeconfig {
        Some(p) => Kubeconfig::read_from(p).map_err(|e| {
            CollectError::Api(format!("cannot read kubeconfig {}: {e}", p.display()))
        })?,
        None => Kubeconfig::read().map_err(|e| {
            CollectError::Api(format!(
                "cannot read kubeconfig ($KUBECONFIG or ~/.kube/config): {e}"
            ))
        })?,
    };
    let context = opts
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone());
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &kc_opts)
        .await
        .map_err(|e| {
            CollectError::Api(format!(
                "kubeconfig context {}: {e}",
                context.as_deref().unwrap_or("(current)")
            ))
        })?;
    if let Some(t) = opts.request_timeout {
        config.connect_timeout = Some(t);
        config.read_timeout = Some(t);
    }
    let namespace = opts
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let cluster_url = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)
        .map_err(|e| CollectError::Api(format!("cannot create a client for {cluster_url}: {e}")))?;
    Ok(Connection {
        client,
        namespace,
        context,
        cluster_url,
    })
}

/// The REST path of a kind's collection (`/apis/apps/v1/namespaces/ns/deployments`).
pub fn collection_path(info: &KindInfo, ns: Option<&str>) -> String {
    let base = if info.api_version.contains('/') {
        format!("/apis/{}", info.api_version)
    } else {
        format!("/api/{}", info.api_version)
    };
    match ns {
        Some(ns) if info.namespaced => format!("{base}/namespaces/{ns}/{}", info.plural),
        _ => format!("{base}/{}", info.plural),
    }
}

/// Whether one object could be read.
enum Fetch {
    Found,
    Gap(String),
}

async fn get_json(client: &kube::Client, path: &str) -> Result<Fetch, CollectError> {
    let req = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| CollectError::Api(e.to_string()))?;
    match client.request::<Value>(req).await {
        Ok(_) => Ok(Fetch::Found),
        Err(kube::Error::Api(s)) if matches!(s.code, 401 | 403 | 404 | 405) => {
            Ok(Fetch::Gap(format!("{} ({})", s.message, s.reason)))
        }
        Err(e) => Err(CollectError::Api(format!("GET {path}: {e}"))),
    }
}

/// Items asked for per list request: a large namespace comes in pages (the API server's
/// `limit`/`continue`), so neither side builds one giant answer and a slow list shows progress.
pub const LIST_PAGE: usize = 500;

/// `path` asking for one page of at most [`LIST_PAGE`] items, after the given continue token.
fn page_path(path: &str, token: Option<&str>) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    match token {
        None => format!("{path}{sep}limit={LIST_PAGE}"),
        Some(t) => format!(
            "{path}{sep}limit={LIST_PAGE}&continue={}",
            form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
        ),
    }
}

/// What listing a kind gave: its objects, or why it could not be listed.
enum Listed {
    Items(Vec<KubeObject>),
    Gap(String),
}

/// A whole list of `info`'s kind, read page by page; each page's items are kept as the text
/// they arrived in ([`object_of_item`]), so a large namespace is not built into value trees
/// to be sent on. Refused or missing resources are a gap, as for one request.
async fn get_list(
    client: &kube::Client,
    path: &str,
    info: &'static KindInfo,
) -> Result<Listed, CollectError> {
    let mut objects = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let url = page_path(path, token.as_deref());
        let req = http::Request::get(&url)
            .body(Vec::new())
            .map_err(|e| CollectError::Api(e.to_string()))?;
        let text = match client.request_text(req).await {
            Ok(t) => t,
            Err(kube::Error::Api(s)) if matches!(s.code, 401 | 403 | 404 | 405) => {
                return Ok(Listed::Gap(format!("{} ({})", s.message, s.reason)))
            }
            Err(e) => return Err(CollectError::Api(format!("GET {url}: {e}"))),
        };
        let bad = |why: String| CollectError::Api(format!("GET {url}: {why}"));
        let mut page = ListText::read(&text).map_err(bad)?;
        // An empty page may say `"items": null`: no items. Anything else not a list is an error.
        let items = match page.lacks_items() {
            true => Vec::new(),
            false => page.items().map_err(bad)?,
        };
        for item in items {
            objects.push(object_of_item(item, info).map_err(bad)?);
        }
        token = page.next_page();
        if token.is_none() {
            break;
        }
    }
    Ok(Listed::Items(objects))
}

#[derive(Deserialize)]
struct KeysOnlyList {
    #[serde(default)]
    items: Vec<KeysOnlySecret>,
    #[serde(default)]
    metadata: Value,
}

/// A Secret read without its values: serde skips each value as it parses.
#[derive(Deserialize)]
struct KeysOnlySecret {
    metadata: Value,
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    data: BTreeMap<String, IgnoredAny>,
}

async fn list_secrets(
    client: &kube::Client,
    ns: &str,
) -> Result<Result<Vec<KubeObject>, String>, CollectError> {
    let info = KindInfo::lookup("Secret").expect("Secret is a known kind");
    let path = collection_path(info, Some(ns));
    let mut secrets: Vec<KeysOnlySecret> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let req = http::Request::get(page_path(&path, token.as_deref()))
            .body(Vec::new())
            .map_err(|e| CollectError::Api(e.to_string()))?;
        let l = match client.request::<KeysOnlyList>(req).await {
            Ok(l) => l,
            Err(kube::Error::Api(s)) if matches!(s.code, 401 | 403 | 404) => {
                return Ok(Err(format!("{} ({})", s.message, s.reason)))
            }
            Err(e) => return Err(CollectError::Api(format!("GET {path}: {e}"))),
        };
        token = continue_token(&l.metadata);
        secrets.extend(l.items);
        if token.is_none() {
            break;
        }
    }
    Ok(Ok(secrets
        .into_iter()
        .map(|s| {
            let mut meta = s.metadata;
            if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                a.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
            if let Some(m) = meta.as_object_mut() {
                m.remove("managedFields");
            }
            let data: serde_json::Map<String, Value> = s
                .data
                .into_keys()
                .map(|k| (k, Value::String(String::new())))
                .collect();
            KubeObject::new(serde_json::json!({"kind": "Secret", "apiVersion": "v1", "metadata": meta, "type": s.type_, "data": data}))
        })
        .collect()))
}

/// Lists every kind metakube reads in the given namespaces, plus cluster-scoped kinds.
async fn list_all(
    client: &kube::Client,
    namespaces: &BTreeSet<String>,
    out: &mut Collected,
) -> Result<(), CollectError> {
    let mut jobs: Vec<(&'static KindInfo, Option<String>)> = Vec::new();
    for info in KINDS.iter().filter(|k| k.kind != "Namespace") {
        if info.namespaced {
            if info.kind == "Secret" {
                continue;
            }
            for ns in namespaces {
                jobs.push((info, Some(ns.clone())));
            }
        } else {
            jobs.push((info, None));
        }
    }
    let results: Vec<_> = stream::iter(jobs)
        .map(|(info, ns)| async move {
            let path = collection_path(info, ns.as_deref());
            (info, ns, get_list(client, &path, info).await)
        })
        .buffer_unordered(12)
        .collect()
        .await;
    for (info, ns, r) in results {
        match r? {
            Listed::Items(mut objects) => out.objects.append(&mut objects),
            Listed::Gap(reason) => out.gaps.push(Gap {
                what: info.plural.to_string(),
                namespace: ns,
                reason,
            }),
        }
    }
    for ns in namespaces {
        match list_secrets(client, ns).await? {
            Ok(mut v) => out.objects.append(&mut v),
            Err(reason) => out.gaps.push(Gap {
                what: "secrets".into(),
                namespace: Some(ns.clone()),
                reason,
            }),
        }
    }
    Ok(())
}

async fn fetch_log(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<Option<ContainerLog>, String> {
    let path = format!(
        "/api/v1/namespaces/{ns}/pods/{pod}/log?container={container}&tailLines=2000&limitBytes={MAX_LOG_BYTES}{}",
        if previous { "&previous=true" } else { "" }
    );
    let req = http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    match client.request_text(req).await {
        Ok(text) => Ok(Some(ContainerLog::bounded(
            ns, pod, container, previous, &text,
        ))),
        Err(kube::Error::Api(s)) if s.code == 400 && previous => Ok(None), // no previous run
        Err(kube::Error::Api(s)) => Err(format!("{} ({})", s.message, s.reason)),
        Err(e) => Err(e.to_string()),
    }
}

/// Container names of a pod (init first) and whether each has restarted.
fn containers(p: &KubeObject) -> Vec<(String, bool)> {
    let restarted: BTreeSet<String> =
        ["/status/containerStatuses", "/status/initContainerStatuses"]
            .iter()
            .filter_map(|s| p.pointer(s).and_then(Value::as_array))
            .flatten()
            .filter(|c| c.get("restartCount").and_then(Value::as_i64).unwrap_or(0) > 0)
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
    ["/spec/initContainers", "/spec/containers"]
        .iter()
        .filter_map(|s| p.pointer(s).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .map(|n| (n.to_string(), restarted.contains(n)))
        .collect()
}

/// Collects everything about `target` and selects it into a snapshot.
pub async fn collect(
    conn: &Connection,
    target: &TargetRef,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Snapshot, CollectError> {
    let client = &conn.client;
    let tref = target.in_namespace(&conn.namespace);
    let info = KindInfo::lookup(&target.kind)
        .ok_or_else(|| CollectError::Api(format!("unknown kind {}", target.kind)))?;
    progress(&format!(
        "checking {}/{}",
        target.kind.to_ascii_lowercase(),
        target.name
    ));
    let path = format!(
        "{}/{}",
        collection_path(info, tref.namespace.as_deref()),
        target.name
    );
    if let Fetch::Gap(reason) = get_json(client, &path).await? {
        return Err(CollectError::TargetNotFound {
            target: format!("{}/{}", target.kind.to_ascii_lowercase(), target.name),
            where_: tref
                .namespace
                .as_ref()
                .map(|n| format!(" in namespace {n}"))
                .unwrap_or_default(),
            hint: format!(
                " (context {}): {reason}",
                conn.context.as_deref().unwrap_or("current")
            ),
        });
    }
    let mut out = Collected::default();
    let mut namespaces = BTreeSet::from([conn.namespace.clone()]);
    progress(&format!("listing objects in namespace {}", conn.namespace));
    list_all(client, &namespaces, &mut out).await?;
    // Namespaces the target's pods call by FQDN, and node events from `default`.
    let pods: Vec<KubeObject> = target_pods(&out.objects, &tref)
        .into_iter()
        .cloned()
        .collect();
    let extra: BTreeSet<String> = referenced_namespaces(&pods.iter().collect::<Vec<_>>())
        .into_iter()
        .filter(|n| !namespaces.contains(n))
        .collect();
    if !extra.is_empty() {
        progress(&format!(
            "listing objects in {}",
            extra.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
        let mut more = Collected::default();
        list_all(client, &extra, &mut more).await?;
        out.objects
            .extend(more.objects.into_iter().filter(|o| o.namespace().is_some()));
        out.gaps.extend(more.gaps);
        namespaces.extend(extra);
    }
    if !namespaces.contains("default") {
        let info = KindInfo::lookup("Event").expect("Event is a known kind");
        let path = format!(
            "{}?fieldSelector=involvedObject.kind%3DNode",
            collection_path(info, Some("default"))
        );
        if let Listed::Items(mut objects) = get_list(client, &path, info).await? {
            out.objects.append(&mut objects);
        }
    }
    if !namespaces.contains("kube-system") {
        // The cluster DNS, which every pod depends on.
        for kind in ["Deployment", "Pod"] {
            let info = KindInfo::lookup(kind).expect("known kind");
            let path = format!(
                "{}?labelSelector=k8s-app%3Dkube-dns",
                collection_path(info, Some("kube-system"))
            );
            match get_list(client, &path, info).await? {
                Listed::Items(mut objects) => out.objects.append(&mut objects),
                Listed::Gap(reason) => out.gaps.push(Gap {
                    what: format!("cluster DNS {}", info.plural),
                    namespace: Some("kube-system".into()),
                    reason,
                }),
            }
        }
    }
    let wanted = log_pods(&out.objects, &target_pods(&out.objects, &tref), &namespaces);
    progress(&format!("reading logs of {} pods", wanted.len()));
    let mut log_jobs = Vec::new();
    for (ns, pod) in &wanted {
        let Some(p) = out
            .objects
            .iter()
            .find(|o| o.kind() == "Pod" && o.name() == pod && o.namespace() == Some(ns.as_str()))
        else {
            continue;
        };
        for (c, restarted) in containers(p) {
            log_jobs.push((ns.clone(), pod.clone(), c.clone(), false));
            if restarted {
                log_jobs.push((ns.clone(), pod.clone(), c, true));
            }
        }
    }
    let logs: Vec<_> = stream::iter(log_jobs)
        .map(|(ns, pod, c, prev)| async move {
            let r = fetch_log(client, &ns, &pod, &c, prev).await;
            (ns, pod, c, r)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for (ns, pod, c, r) in logs {
        match r {
            Ok(Some(l)) => out.logs.push(l),
            Ok(None) => {}
            Err(reason) => out.gaps.push(Gap {
                what: format!("logs of pod/{pod} container {c}"),
                namespace: Some(ns),
                reason,
            }),
        }
    }
    let source = SnapshotSource::Live {
        context: conn.context.clone(),
        cluster: Some(conn.cluster_url.clone()),
    };
    select(out, &tref, source, Some(Timestamp::now()))
}

/// The content type of a patch type, as the API server expects it.
pub fn patch_content_type(t: &str) -> Option<&'static str> {
    match t {
        "merge" => Some("application/merge-patch+json"),
        "json" => Some("application/json-patch+json"),
        "strategic" => Some("application/strategic-merge-patch+json"),
        _ => None,
    }
}

/// Kinds metakube never changes however a patch is written.
pub const PROTECTED_KINDS: &[&str] = &[
    "PersistentVolumeClaim",
    "Namespace",
    "Secret",
    "PersistentVolume",
];

/// Sends a patch (server-side dry run when `dry_run`); returns the object the server answers.
pub async fn apply_patch(
    client: &kube::Client,
    p: &Patch,
    dry_run: bool,
) -> Result<Value, CollectError> {
    let r: &ObjectRef = &p.object;
    let removes = p.body.as_array().is_some_and(|ops| {
        ops.iter().any(|o| {
            o.get("op").and_then(Value::as_str) == Some("remove")
                && o.get("path").and_then(Value::as_str) == Some("")
        })
    });
    if PROTECTED_KINDS.contains(&r.kind.as_str()) && (removes || p.patch_type != "merge") {
        return Err(CollectError::Api(format!("refusing to patch {} this way: metakube never deletes or rewrites PVCs, Namespaces or Secrets", r)));
    }
    let info = KindInfo::lookup(&r.kind)
        .ok_or_else(|| CollectError::Api(format!("unknown kind {}", r.kind)))?;
    let ct = patch_content_type(&p.patch_type)
        .ok_or_else(|| CollectError::Api(format!("unsupported patch type {}", p.patch_type)))?;
    let path = format!(
        "{}/{}?fieldManager=metakube{}",
        collection_path(info, r.namespace.as_deref()),
        r.name,
        if dry_run { "&dryRun=All" } else { "" }
    );
    let body = serde_json::to_vec(&p.body).map_err(|e| CollectError::Api(e.to_string()))?;
    let req = http::Request::patch(&path)
        .header("content-type", ct)
        .body(body)
        .map_err(|e| CollectError::Api(e.to_string()))?;
    client.request::<Value>(req).await.map_err(|e| {
        CollectError::Api(format!(
            "PATCH {} ({}): {e}",
            r,
            if dry_run {
                "server-side dry run"
            } else {
                "apply"
            }
        ))
    })
}

/// Deletes a pod (its controller recreates it); a server-side dry run when `dry_run`.
pub async fn delete_pod(
    client: &kube::Client,
    pod: &ObjectRef,
    dry_run: bool,
) -> Result<Value, CollectError> {
    if pod.kind != "Pod" {
        return Err(CollectError::Api(format!(
            "refusing to delete {pod}: only pods are deleted"
        )));
    }
    let info = KindInfo::lookup("Pod").expect("Pod is a known kind");
    let path = format!(
        "{}/{}{}",
        collection_path(info, pod.namespace.as_deref()),
        pod.name,
        if dry_run { "?dryRun=All" } else { "" }
    );
    let req = http::Request::delete(&path)
        .body(Vec::new())
        .map_err(|e| CollectError::Api(e.to_string()))?;
    client.request::<Value>(req).await.map_err(|e| {
        CollectError::Api(format!(
            "DELETE {pod} ({}): {e}",
            if dry_run {
                "server-side dry run"
            } else {
                "apply"
            }
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_paths() {
        let d = KindInfo::lookup("deploy").unwrap();
        assert_eq!(
            collection_path(d, Some("shop")),
            "/apis/apps/v1/namespaces/shop/deployments"
        );
        let p = KindInfo::lookup("po").unwrap();
        assert_eq!(
            collection_path(p, Some("shop")),
            "/api/v1/namespaces/shop/pods"
        );
        let n = KindInfo::lookup("node").unwrap();
        assert_eq!(collection_path(n, Some("shop")), "/api/v1/nodes");
    }

    #[test]
    fn secret_values_are_never_kept() {
        let json = r#"{"items":[{"metadata":{"name":"db","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"password\":\"aHVudGVy\"}}"}},"type":"Opaque","data":{"password":"aHVudGVy","user":"YWRtaW4="}}]}"#;
        let l: KeysOnlyList = serde_json::from_str(json).unwrap();
        assert_eq!(
            l.items[0].data.keys().collect::<Vec<_>>(),
            vec!["password", "user"]
        );
    }
}
