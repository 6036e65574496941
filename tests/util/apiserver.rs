//! A local HTTP server that answers the real Kubernetes REST paths from a fixture dump:
//! lists (`/api/v1/namespaces/{ns}/pods`, `/apis/apps/v1/namespaces/{ns}/deployments`, …),
//! gets, pod logs (`…/pods/{name}/log?container=C`), PATCH (applied unless a dry run, and
//! recorded), and watch streams (`?watch=true`: the changes after a resourceVersion as chunked
//! JSON lines, BOOKMARKs when asked, `410 Gone` for a resourceVersion older than the server keeps).
//! It binds 127.0.0.1 only, so the kube-rs path is exercised without a cluster.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kubectl_metakube::collect::dump::read_dump;
use metakube_shared::{KindInfo, KubeObject};
use serde_json::{json, Value};

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Content-Type.
    pub content_type: String,
    /// Body.
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

/// Follow-up changes a patch causes (what the cluster's controllers would do next): the
/// object patched in, `(type, object)` watch events out.
pub type OnPatch = Arc<dyn Fn(&Value) -> Vec<(&'static str, Value)> + Send + Sync>;

#[derive(Default)]
struct Data {
    objects: Vec<KubeObject>,
    /// Every change as a watch event: (resourceVersion, kind, namespace, event).
    journal: Vec<(u64, String, Option<String>, Value)>,
    rv: u64,
    /// A watch from a resourceVersion older than this is answered 410 Gone.
    oldest: u64,
    on_patch: Option<OnPatch>,
    /// How long a watch stays open (the API server's `timeoutSeconds`, shortened).
    watch_for: Duration,
    logs: BTreeMap<(String, String, String), String>,
    forbidden: Vec<String>,
    seen: Vec<Seen>,
    /// Response body bytes sent (lists, gets and logs; watch streams not counted).
    sent: u64,
    /// Most items per list page, whatever `limit` asks (an API server may return fewer).
    page_cap: usize,
}

/// A running fake API server.
pub struct ApiServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    data: Arc<Mutex<Data>>,
}

impl ApiServer {
    /// Serves the objects and logs of a dump folder; kinds in `forbidden` answer 403.
    pub fn start(dump: &Path, forbidden: &[&str]) -> ApiServer {
        ApiServer::start_paged(dump, forbidden, usize::MAX)
    }

    /// The same, answering lists in pages of at most `page_cap` items with a `continue` token
    /// (honouring `limit` and `continue` as the API server does).
    pub fn start_paged(dump: &Path, forbidden: &[&str], page_cap: usize) -> ApiServer {
        let c = read_dump(dump).expect("fixture dump");
        let mut logs = BTreeMap::new();
        for l in c.logs {
            logs.insert((l.namespace, l.pod, l.container), l.text);
        }
        // Secrets in a dump have empty values; give them some, to prove they are not kept.
        // Every object carries managedFields, as the API server writes them (a dump's objects
        // lost theirs to kubectl).
        let objects = c
            .objects
            .into_iter()
            .map(|mut o| {
                if let Some(m) = o
                    .value_mut()
                    .get_mut("metadata")
                    .and_then(Value::as_object_mut)
                {
                    m.entry("managedFields").or_insert_with(|| {
                        json!([{
                            "apiVersion": "v1",
                            "fieldsType": "FieldsV1",
                            "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}, "f:spec": {}},
                            "manager": "kubectl-client-side-apply",
                            "operation": "Update",
                            "time": "2025-11-12T08:41:01Z"
                        }])
                    });
                }
                if o.kind() == "Secret" {
                    if let Some(d) = o.value_mut().get_mut("data").and_then(Value::as_object_mut) {
                        for v in d.values_mut() {
                            *v = json!("c3VwZXItc2VjcmV0");
                        }
                    }
                }
                o
            })
            .collect();
        let data = Arc::new(Mutex::new(Data {
            objects,
            logs,
            forbidden: forbidden.iter().map(|s| s.to_string()).collect(),
            seen: Vec::new(),
            page_cap,
            rv: 100,
            watch_for: Duration::from_secs(2),
            ..Default::default()
        }));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let d = data.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let d = d.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &d);
                });
            }
        });
        ApiServer { url, data }
    }

    /// Requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.data.lock().expect("lock").seen.clone()
    }

    /// Makes a change, as the API server would: a new resourceVersion, the object stored (or
    /// removed), and a watch event for watchers.
    pub fn push(&self, typ: &str, object: Value) {
        push(&mut self.data.lock().expect("lock"), typ, object);
    }

    /// Response body bytes sent so far (watch streams aside).
    pub fn bytes_sent(&self) -> u64 {
        self.data.lock().expect("lock").sent
    }

    /// An object as the server holds it now.
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let r = metakube_shared::ObjectRef::new(kind, namespace, name);
        let d = self.data.lock().expect("lock");
        d.objects
            .iter()
            .find(|o| o.object_ref() == r)
            .map(|o| o.value().clone())
    }

    /// Forgets the history so far: a watch resuming from before now gets `410 Gone`.
    pub fn compact(&self) {
        let mut d = self.data.lock().expect("lock");
        d.oldest = d.rv + 1;
    }

    /// What the cluster does after a patch is applied (pods recover, …).
    pub fn on_patch(&self, f: OnPatch) {
        self.data.lock().expect("lock").on_patch = Some(f);
    }

    /// Writes a kubeconfig pointing at this server, with `namespace` as the context's default.
    pub fn kubeconfig(&self, path: &Path, namespace: &str) {
        let kc = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fixture\n  cluster:\n    server: {}\ncontexts:\n- name: fixture\n  context:\n    cluster: fixture\n    user: tester\n    namespace: {namespace}\ncurrent-context: fixture\nusers:\n- name: tester\n  user:\n    token: test-token\n",
            self.url
        );
        std::fs::write(path, kc).expect("write kubeconfig");
    }
}

fn push(d: &mut Data, typ: &str, mut object: Value) {
    d.rv += 1;
    object["metadata"]["resourceVersion"] = json!(d.rv.to_string());
    let o = KubeObject::new(object.clone());
    let r = o.object_ref();
    d.objects.retain(|x| x.object_ref() != r);
    if typ != "DELETED" {
        d.objects.push(o);
    }
    let rv = d.rv;
    d.journal.push((
        rv,
        r.kind.clone(),
        r.namespace.clone(),
        json!({"type": typ, "object": object}),
    ));
}

/// Applies a PATCH to the stored object (JSON patch, or a merge patch for merge and strategic
/// bodies) and runs the follow-up hook.
fn apply_patch(
    d: &mut Data,
    info: &KindInfo,
    ns: Option<&str>,
    name: &str,
    ctype: &str,
    body: &str,
) {
    let Some(o) = d
        .objects
        .iter()
        .find(|o| o.kind() == info.kind && o.namespace() == ns && o.name() == name)
    else {
        return;
    };
    let mut v = o.value().clone();
    let Ok(p) = serde_json::from_str::<Value>(body) else {
        return;
    };
    if ctype.starts_with("application/json-patch") {
        let Ok(ops) = serde_json::from_value::<json_patch::Patch>(p) else {
            return;
        };
        if json_patch::patch(&mut v, &ops).is_err() {
            return;
        }
    } else {
        json_patch::merge(&mut v, &p);
    }
    push(d, "MODIFIED", v.clone());
    if let Some(hook) = d.on_patch.clone() {
        for (typ, o) in hook(&v) {
            push(d, typ, o);
        }
    }
}

fn chunk(stream: &mut TcpStream, line: &Value) -> std::io::Result<()> {
    let mut body = serde_json::to_vec(line).unwrap_or_default();
    body.push(b'\n');
    write!(stream, "{:x}\r\n", body.len())?;
    stream.write_all(&body)?;
    stream.write_all(b"\r\n")?;
    stream.flush()
}

/// A watch: the journal's events of this kind (and namespace) after `resourceVersion`, then new
/// ones as they come, until the watch times out (with a BOOKMARK first when asked).
fn serve_watch(
    stream: &mut TcpStream,
    data: &Mutex<Data>,
    info: &KindInfo,
    ns: Option<&str>,
    q: &BTreeMap<&str, String>,
) -> std::io::Result<()> {
    write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")?;
    let mut from: u64 = q
        .get("resourceVersion")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let (oldest, wait) = {
        let d = data.lock().expect("lock");
        (d.oldest, d.watch_for)
    };
    if from < oldest {
        chunk(
            stream,
            &json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": format!("too old resource version: {from} ({oldest})"), "reason": "Expired", "code": 410}}),
        )?;
        stream.write_all(b"0\r\n\r\n")?;
        return stream.flush();
    }
    let node_events =
        q.get("fieldSelector").map(String::as_str) == Some("involvedObject.kind=Node");
    let until = Instant::now() + wait;
    loop {
        let lines: Vec<(u64, Value)> = {
            let d = data.lock().expect("lock");
            d.journal
                .iter()
                .filter(|(rv, kind, n, ev)| {
                    *rv > from
                        && kind == info.kind
                        && (ns.is_none() || n.as_deref() == ns)
                        && (!node_events
                            || ev.pointer("/object/involvedObject/kind") == Some(&json!("Node")))
                })
                .map(|(rv, _, _, ev)| (*rv, ev.clone()))
                .collect()
        };
        for (rv, ev) in lines {
            chunk(stream, &ev)?;
            from = rv;
        }
        if Instant::now() >= until {
            if q.get("allowWatchBookmarks").map(String::as_str) == Some("true") {
                let rv = data.lock().expect("lock").rv.max(from);
                chunk(
                    stream,
                    &json!({"type": "BOOKMARK", "object": {"kind": info.kind, "apiVersion": info.api_version, "metadata": {"resourceVersion": rv.to_string()}}}),
                )?;
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stream.write_all(b"0\r\n\r\n")?;
    stream.flush()
}

fn status(code: u16, reason: &str, message: &str) -> (u16, String, Value) {
    (
        code,
        "application/json".into(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}),
    )
}

fn serve(mut stream: TcpStream, data: &Mutex<Data>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut len = 0usize;
    let mut ctype = String::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap_or(0),
                "content-type" => ctype = v.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body).to_string();
    let watch = {
        let mut d = data.lock().expect("lock");
        d.seen.push(Seen {
            method: method.clone(),
            path: target.clone(),
            content_type: ctype.clone(),
            body: body.clone(),
            at: Instant::now(),
        });
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let q = query_map(query);
        let (info, ns, name) = resource(path);
        if let (Some(info), Some(name), "PATCH", false) =
            (info, name, method.as_str(), q.contains_key("dryRun"))
        {
            apply_patch(&mut d, info, ns.as_deref(), &name, &ctype, &body);
        }
        match info {
            Some(info) if matches!(q.get("watch").map(String::as_str), Some("true" | "1")) => {
                Some((
                    info,
                    ns,
                    q.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<BTreeMap<String, String>>(),
                ))
            }
            _ => None,
        }
    };
    if let Some((info, ns, q)) = watch {
        let q: BTreeMap<&str, String> = q.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        return serve_watch(&mut stream, data, info, ns.as_deref(), &q);
    }
    let (code, ct, payload) = {
        let d = data.lock().expect("lock");
        route(&d, &method, &target, &body)
    };
    let bytes = match payload {
        Value::String(s) if ct.starts_with("text/") => s.into_bytes(),
        v => serde_json::to_vec(&v).unwrap_or_default(),
    };
    data.lock().expect("lock").sent += bytes.len() as u64;
    write!(stream, "HTTP/1.1 {code} X\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", bytes.len())?;
    stream.write_all(&bytes)?;
    stream.flush()
}

fn query_map(query: &str) -> BTreeMap<&str, String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.replace("%3D", "=").replace("%2C", ",")))
        .collect()
}

/// The kind, namespace and name a REST path names (`/api/v1/namespaces/ns/pods/x`).
fn resource(path: &str) -> (Option<&'static KindInfo>, Option<String>, Option<String>) {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest: &[&str] = match segs.as_slice() {
        ["api", _v, rest @ ..] => rest,
        ["apis", _g, _v, rest @ ..] => rest,
        _ => return (None, None, None),
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        r => (None, r),
    };
    let info = rest.first().and_then(|p| KindInfo::from_list_file(p));
    (info, ns, rest.get(1).map(|n| n.to_string()))
}

fn route(d: &Data, method: &str, target: &str, _body: &str) -> (u16, String, Value) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let q = query_map(query);
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/group/version/...
    let rest: &[&str] = match segs.as_slice() {
        ["api", _v, rest @ ..] => rest,
        ["apis", _g, _v, rest @ ..] => rest,
        _ => {
            return status(
                404,
                "NotFound",
                &format!("the server could not find the requested resource ({path})"),
            )
        }
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(*ns), rest),
        r => (None, r),
    };
    let Some(plural) = rest.first() else {
        return status(404, "NotFound", "no resource");
    };
    let Some(info) = KindInfo::from_list_file(plural) else {
        return status(
            404,
            "NotFound",
            &format!("the server doesn't have a resource type \"{plural}\""),
        );
    };
    if d.forbidden.iter().any(|f| f == plural) {
        return status(403, "Forbidden", &format!("{plural} is forbidden: User \"tester\" cannot list resource \"{plural}\" in API group \"\" in the namespace \"{}\"", ns.unwrap_or("")));
    }
    let matches = |o: &&KubeObject| {
        o.kind() == info.kind && (!info.namespaced || o.namespace() == ns || ns.is_none())
    };
    match rest {
        [_] => {
            let field = q.get("fieldSelector").cloned().unwrap_or_default();
            // Only the page is copied (a 20k-object list is read in 40 pages).
            let items: Vec<&KubeObject> = d
                .objects
                .iter()
                .filter(matches)
                .filter(|o| match field.strip_prefix("involvedObject.kind=") {
                    Some(k) => o.pointer("/involvedObject/kind").and_then(Value::as_str) == Some(k),
                    None => true,
                })
                .collect();
            // Pages: `continue` is the offset of the next item; a bad token is 410 Gone.
            let limit: usize = q
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(usize::MAX);
            let from: usize = match q.get("continue") {
                None => 0,
                Some(t) => match t.strip_prefix("page-").and_then(|n| n.parse().ok()) {
                    Some(n) => n,
                    None => {
                        return status(410, "Expired", "The provided continue parameter is too old")
                    }
                },
            };
            let page = limit.min(d.page_cap).max(1);
            let to = from.saturating_add(page).min(items.len());
            let mut metadata = json!({"resourceVersion": d.rv.to_string()});
            if to < items.len() {
                metadata["continue"] = json!(format!("page-{to}"));
                metadata["remainingItemCount"] = json!(items.len() - to);
            }
            let items: Vec<Value> = items[from.min(to)..to]
                .iter()
                .map(|o| {
                    let mut v = o.value().clone();
                    if let Some(m) = v.as_object_mut() {
                        m.remove("kind");
                        m.remove("apiVersion");
                    }
                    v
                })
                .collect();
            (
                200,
                "application/json".into(),
                json!({"kind": format!("{}List", info.kind), "apiVersion": info.api_version, "metadata": metadata, "items": items}),
            )
        }
        [_, name] => match d.objects.iter().filter(matches).find(|o| o.name() == *name) {
            Some(o) if method == "PATCH" => (200, "application/json".into(), o.value().clone()),
            Some(o) => (200, "application/json".into(), o.value().clone()),
            None => status(
                404,
                "NotFound",
                &format!(
                    "{}.{} \"{name}\" not found",
                    info.plural,
                    info.api_version.split('/').next().unwrap_or("")
                ),
            ),
        },
        [_, name, "log"] => {
            let c = q.get("container").cloned().unwrap_or_default();
            if q.get("previous").map(String::as_str) == Some("true") {
                return status(
                    400,
                    "BadRequest",
                    &format!("previous terminated container \"{c}\" in pod \"{name}\" not found"),
                );
            }
            match d
                .logs
                .get(&(ns.unwrap_or("").to_string(), name.to_string(), c))
            {
                Some(t) => (200, "text/plain".into(), Value::String(t.clone())),
                None => (200, "text/plain".into(), Value::String(String::new())),
            }
        }
        _ => status(404, "NotFound", "unsupported path"),
    }
}
