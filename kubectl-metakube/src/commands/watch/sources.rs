//! Where watch events come from: a replay file, or kube-runtime watchers on a live cluster
//! (bookmarks, resumption from the last resourceVersion, a relist on 410 Gone, backoff on
//! errors — all kube-runtime's); and Prometheus for resource series.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::Context;
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{watcher, WatchStreamExt};
use metakube_shared::{KindInfo, KubeObject, ObjectRef};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::collect::live::Connection;
use crate::watch::event::{BadLine, EventType, WatchEvent};
use crate::watch::series::PodUsage;

/// What a source sends the watch loop.
#[derive(Debug)]
pub enum Incoming {
    /// Watch events, in order.
    Events(Vec<WatchEvent>),
    /// A relist (after 410 Gone or a restart) no longer lists these: they were deleted while
    /// the watch was away.
    Relisted {
        /// The objects gone.
        gone: Vec<ObjectRef>,
    },
    /// A watcher finished its first list.
    Synced,
    /// A replay line that is not a watch event.
    BadLine(BadLine),
    /// A watcher error (it retries with backoff).
    Failed(String),
}

/// The kinds watched on a live cluster: what shows a fault or links one (Secrets never: their
/// values are not metakube's to hold).
pub const WATCHED: &[&str] = &[
    "Pod",
    "Event",
    "Node",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "Service",
    "Endpoints",
    "PersistentVolumeClaim",
];

/// Longest replay line read (the rest of a longer one is skipped, and the line named).
const MAX_LINE: usize = 32 << 20;

/// Reads a replay file on a blocking thread, `batch` events at a time; the channel closes at
/// its end.
pub fn replay(path: &Path, batch: usize) -> anyhow::Result<mpsc::Receiver<Incoming>> {
    let f = std::fs::File::open(path).with_context(|| format!("--replay {}", path.display()))?;
    if !f.metadata()?.is_file() {
        anyhow::bail!("--replay {}: not a regular file", path.display());
    }
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut r = std::io::BufReader::new(f);
        let mut line = Vec::new();
        let mut number = 0usize;
        let mut events = Vec::with_capacity(batch);
        loop {
            line.clear();
            let n = match crate::collect::dump::read_line_capped(&mut r, &mut line, MAX_LINE) {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.blocking_send(Incoming::Failed(format!(
                        "--replay: read error after line {number}: {e}"
                    )));
                    break;
                }
            };
            if n == 0 {
                break;
            }
            number += 1;
            let parsed = if n > MAX_LINE {
                Err(BadLine {
                    line: number,
                    why: format!(
                        "{n} bytes, more than the {} MiB a watch event may take (the API server keeps objects under 1.5 MiB)",
                        MAX_LINE >> 20
                    ),
                })
            } else {
                match std::str::from_utf8(&line) {
                    Ok(text) if text.trim().is_empty() => continue,
                    Ok(text) => WatchEvent::parse(text.trim_end(), number),
                    Err(e) => Err(BadLine {
                        line: number,
                        why: format!("not UTF-8 ({e})"),
                    }),
                }
            };
            match parsed {
                Ok(ev) => events.push(ev),
                Err(e) => {
                    if tx.blocking_send(Incoming::BadLine(e)).is_err() {
                        return;
                    }
                }
            }
            if events.len() >= batch
                && tx
                    .blocking_send(Incoming::Events(std::mem::take(&mut events)))
                    .is_err()
            {
                return;
            }
        }
        if !events.is_empty() {
            let _ = tx.blocking_send(Incoming::Events(events));
        }
    });
    Ok(rx)
}

/// How many watchers [`live`] starts (node events from `default` need one more when a single
/// namespace is watched).
pub fn watchers(one_namespace: bool) -> usize {
    WATCHED.len() + usize::from(one_namespace)
}

/// The bookmark the API server ends an initial list with (streaming lists, KEP-3157), written
/// to a recording when every watcher has listed, so a replay knows where the state ends.
pub fn initial_events_end() -> WatchEvent {
    WatchEvent {
        kind: EventType::Bookmark,
        object: serde_json::json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"annotations": {"k8s.io/initial-events-end": "true"}}}),
    }
}

/// Starts one kube-runtime watcher per watched kind (namespaced kinds in `namespace`, or all
/// namespaces; Nodes cluster-wide; node events from `default`).
pub fn live(conn: &Connection, namespace: Option<&str>) -> mpsc::Receiver<Incoming> {
    let (tx, rx) = mpsc::channel(64);
    for kind in WATCHED {
        let Some(info) = KindInfo::lookup(kind) else {
            continue;
        };
        let mut scopes: Vec<Option<&str>> = vec![if info.namespaced { namespace } else { None }];
        if *kind == "Event" && namespace.is_some() {
            scopes.push(Some("default")); // node events live there
        }
        for ns in scopes {
            tokio::spawn(watch_kind(
                conn.client.clone(),
                info,
                ns.map(str::to_string),
                tx.clone(),
            ));
        }
    }
    rx
}

fn api_resource(info: &KindInfo) -> ApiResource {
    let (group, version) = info
        .api_version
        .split_once('/')
        .unwrap_or(("", info.api_version));
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, info.kind),
        info.plural,
    )
}

async fn watch_kind(
    client: kube::Client,
    info: &'static KindInfo,
    ns: Option<String>,
    tx: mpsc::Sender<Incoming>,
) {
    let ar = api_resource(info);
    let api: Api<DynamicObject> = match &ns {
        Some(n) => Api::namespaced_with(client, n, &ar),
        None => Api::all_with(client, &ar),
    };
    let mut config = watcher::Config::default();
    if info.kind == "Event" && ns.as_deref() == Some("default") {
        config = config.fields("involvedObject.kind=Node");
    }
    let mut stream = watcher(api, config).default_backoff().boxed();
    // What the store holds of this kind, to tell deletions missed while away after a relist.
    let mut held: HashSet<ObjectRef> = HashSet::new();
    let mut listing: Option<HashSet<ObjectRef>> = None;
    let mut init: Vec<WatchEvent> = Vec::new();
    let mut first = true;
    while let Some(item) = stream.next().await {
        let msg = match item {
            Ok(watcher::Event::Init) => {
                listing = Some(HashSet::new());
                continue;
            }
            Ok(watcher::Event::InitApply(o)) => {
                let ev = to_event(o, info, EventType::Added);
                if let Some(l) = listing.as_mut() {
                    l.insert(KubeObject::ref_of(&ev.object));
                }
                init.push(ev);
                if init.len() >= 500 {
                    let batch = std::mem::take(&mut init);
                    for e in &batch {
                        held.insert(KubeObject::ref_of(&e.object));
                    }
                    if tx.send(Incoming::Events(batch)).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            Ok(watcher::Event::InitDone) => {
                let batch = std::mem::take(&mut init);
                for e in &batch {
                    held.insert(KubeObject::ref_of(&e.object));
                }
                if !batch.is_empty() && tx.send(Incoming::Events(batch)).await.is_err() {
                    return;
                }
                let listed = listing.take().unwrap_or_default();
                let gone: Vec<ObjectRef> = held.difference(&listed).cloned().collect();
                held = listed;
                if std::mem::take(&mut first) && tx.send(Incoming::Synced).await.is_err() {
                    return;
                }
                if gone.is_empty() {
                    continue;
                }
                Incoming::Relisted { gone }
            }
            Ok(watcher::Event::Apply(o)) => {
                let ev = to_event(o, info, EventType::Modified);
                let r = KubeObject::ref_of(&ev.object);
                let ev = if held.insert(r) {
                    WatchEvent {
                        kind: EventType::Added,
                        ..ev
                    }
                } else {
                    ev
                };
                Incoming::Events(vec![ev])
            }
            Ok(watcher::Event::Delete(o)) => {
                let ev = to_event(o, info, EventType::Deleted);
                held.remove(&KubeObject::ref_of(&ev.object));
                Incoming::Events(vec![ev])
            }
            Err(e) => Incoming::Failed(format!(
                "watching {}{}: {e} (retrying with backoff)",
                info.plural,
                ns.as_deref()
                    .map(|n| format!(" in {n}"))
                    .unwrap_or_default()
            )),
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

fn to_event(o: DynamicObject, info: &KindInfo, kind: EventType) -> WatchEvent {
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert("kind".into(), Value::from(info.kind));
        m.insert("apiVersion".into(), Value::from(info.api_version));
    }
    WatchEvent { kind, object: v }
}

/// GETs a JSON document over HTTP or HTTPS (the system's CA roots).
async fn get_json(url: &str) -> anyhow::Result<Value> {
    use http_body_util::{BodyExt, Empty, Limited};
    use hyper_util::client::legacy::{connect::HttpConnector, Client};
    let uri: hyper::Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
    let builder = Client::builder(hyper_util::rt::TokioExecutor::new());
    let req = hyper::Request::get(uri).body(Empty::<bytes::Bytes>::new())?;
    let send = async {
        if url.starts_with("https://") {
            http.enforce_http(false);
            let tls = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .context("cannot load the system's CA certificates")?
                .https_only()
                .enable_http1()
                .wrap_connector(http);
            builder.build(tls).request(req).await
        } else {
            builder.build(http).request(req).await
        }
        .with_context(|| format!("GET {url}"))
    };
    let resp = tokio::time::timeout(std::time::Duration::from_secs(30), send)
        .await
        .with_context(|| format!("GET {url}: no answer within 30 s"))??;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), 256 << 20)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("GET {url}: reading the answer: {e}"))?
        .to_bytes();
    serde_json::from_slice(&body).with_context(|| {
        format!(
            "the answer (HTTP {status}) is not Prometheus JSON: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })
}

/// Reads one instant-vector query's value per pod.
async fn per_pod(base: &str, expr: &str) -> anyhow::Result<HashMap<ObjectRef, f64>> {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", expr)
        .finish();
    let v = get_json(&format!("{base}/api/v1/query?{query}")).await?;
    if v.get("status").and_then(Value::as_str) != Some("success") {
        anyhow::bail!(
            "query {expr:?} failed: {}",
            v.get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
        );
    }
    let mut out = HashMap::new();
    for r in v
        .pointer("/data/result")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let m = r.get("metric");
        let (Some(ns), Some(pod)) = (
            m.and_then(|m| m.get("namespace")).and_then(Value::as_str),
            m.and_then(|m| m.get("pod")).and_then(Value::as_str),
        ) else {
            continue;
        };
        let Some(x) = r
            .pointer("/value/1")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
        else {
            continue;
        };
        if x.is_finite() {
            out.insert(ObjectRef::new("Pod", ns, pod), x);
        }
    }
    Ok(out)
}

/// CPU and memory of every pod relative to its limits, from Prometheus' HTTP API
/// (`/api/v1/query`, cAdvisor series as the kubelet exports them).
pub async fn prometheus_usage(base: &str) -> anyhow::Result<PodUsage> {
    let base = base.trim_end_matches('/');
    let cpu = per_pod(base, r#"sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{container!=""}[2m])) / sum by (namespace, pod) (kube_pod_container_resource_limits{resource="cpu"})"#).await?;
    let mem = per_pod(base, r#"sum by (namespace, pod) (container_memory_working_set_bytes{container!=""}) / sum by (namespace, pod) (kube_pod_container_resource_limits{resource="memory"})"#).await?;
    let mut out: PodUsage = HashMap::new();
    for (p, c) in cpu {
        out.entry(p).or_default().0 = Some(c);
    }
    for (p, m) in mem {
        out.entry(p).or_default().1 = Some(m);
    }
    Ok(out)
}
