//! Offline input: a `kubectl cluster-info dump --output-directory` folder, plus any
//! `kubectl get -o json` List files placed beside it (cluster-scoped kinds at top level,
//! namespaced kinds in a namespace folder), and `<ns>/<pod>/logs.txt`.
//!
//! A file that cannot be read is skipped with a gap naming it and what was wrong; an unknown
//! kind is skipped the same way. Logs are read line by line and only a bounded tail is kept,
//! so a 100 MB log costs no more memory than a small one.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use metakube_shared::snapshot::MAX_LOG_BYTES;
use metakube_shared::{ContainerLog, Gap, KindInfo, ObjectRef};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::list::{object_of_item, ListText};
use super::{CollectError, Collected};

/// Largest list file read, in bytes (a dump of a very large namespace is ~100 MB of pods).
const MAX_LIST_BYTES: u64 = 512 * 1024 * 1024;

/// Reads a whole dump folder: every list and every log.
pub fn read_dump(dir: &Path) -> Result<Collected, CollectError> {
    let mut out = Collected::default();
    for path in dump_entries(dir)? {
        if path.is_dir() {
            read_namespace_lists(&path, &mut out)?;
            read_namespace_logs(&path, &mut out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            read_list_file(&path, None, &mut out);
        }
    }
    Ok(out)
}

/// Reads from a dump only what a diagnosis of `target` looks at, so a cluster's dump costs
/// what the target's neighbourhood costs, not what the cluster does: the cluster-scoped lists,
/// the lists of the namespaces [`super::scope_namespaces`] names plus `default` (node events)
/// and `kube-system` (the cluster DNS), and the logs of the pods [`super::log_pods`] picks and
/// of the DNS pods. After [`super::select`] the snapshot is the one [`read_dump`] gives.
///
/// A cluster-scoped target (its pods may be anywhere) or a target not found in its namespace
/// (the error lists where it does exist) falls back to reading every namespace's lists; logs
/// are still read only for the pods that matter.
pub fn read_dump_for(dir: &Path, target: &ObjectRef) -> Result<Collected, CollectError> {
    // Each file or namespace read is kept under its path, then all are put together in the
    // order `read_dump` reads them, so the engine sees the same objects in the same order.
    let mut parts: BTreeMap<PathBuf, Collected> = BTreeMap::new();
    let mut namespaces: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in dump_entries(dir)? {
        if path.is_dir() {
            namespaces.insert(namespace_of(&path), path);
        } else if path.extension().is_some_and(|e| e == "json") {
            let mut part = Collected::default();
            read_list_file(&path, None, &mut part);
            parts.insert(path, part);
        }
    }
    let read_lists = |names: Vec<String>,
                      parts: &mut BTreeMap<PathBuf, Collected>|
     -> Result<(), CollectError> {
        for n in names {
            if let Some(p) = namespaces.get(&n) {
                if !parts.contains_key(p) {
                    let mut part = Collected::default();
                    read_namespace_lists(p, &mut part)?;
                    parts.insert(p.clone(), part);
                }
            }
        }
        Ok(())
    };
    let first = [
        target.namespace.clone(),
        Some("default".into()),
        Some("kube-system".into()),
    ];
    read_lists(first.into_iter().flatten().collect(), &mut parts)?;
    // A namespaced target's pods and controllers are all in its own namespace's lists.
    let own = target
        .namespace
        .as_ref()
        .and_then(|n| namespaces.get(n))
        .and_then(|p| parts.get(p))
        .filter(|p| p.objects.iter().any(|o| o.object_ref() == *target));
    match own.map(|p| super::scope_namespaces(target, &super::target_pods(&p.objects, target))) {
        Some(scope) => read_lists(scope.into_iter().collect(), &mut parts)?,
        None => read_lists(namespaces.keys().cloned().collect(), &mut parts)?,
    }
    let mut out = Collected::default();
    for (_, mut part) in parts {
        out.objects.append(&mut part.objects);
        out.gaps.append(&mut part.gaps);
    }
    let own = super::target_pods(&out.objects, target);
    let scope = super::scope_namespaces(target, &own);
    let mut pods = super::log_pods(&out.objects, &own, &scope);
    drop(own);
    pods.extend(
        out.objects
            .iter()
            .filter(|o| o.kind() == "Pod" && super::is_cluster_dns(o))
            .map(|o| {
                (
                    o.namespace().unwrap_or("").to_string(),
                    o.name().to_string(),
                )
            }),
    );
    pods.sort();
    pods.dedup();
    for (ns, pod) in pods {
        // Both names passed `valid_name` when their list was read: no `/`, no `..`.
        let Some(logs) = namespaces.get(&ns).map(|d| d.join(&pod).join("logs.txt")) else {
            continue;
        };
        if logs.is_file() {
            read_pod_logs(&logs, &ns, &mut out);
        }
    }
    Ok(out)
}

/// The sorted entries of a dump folder, after checking that it is one.
fn dump_entries(dir: &Path) -> Result<Vec<PathBuf>, CollectError> {
    let meta = std::fs::metadata(dir).map_err(|source| CollectError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(CollectError::NotADump {
            path: dir.to_path_buf(),
            why: "not a directory".into(),
        });
    }
    let entries = read_dir_sorted(dir)?;
    let has_lists = entries
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "json"))
        || entries
            .iter()
            .any(|p| p.is_dir() && p.join("pods.json").exists());
    if !has_lists {
        return Err(CollectError::NotADump {
            path: dir.to_path_buf(),
            why: "no nodes.json and no <namespace>/pods.json: is this a `kubectl cluster-info dump --output-directory` folder?".into(),
        });
    }
    Ok(entries)
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, CollectError> {
    let rd = std::fs::read_dir(dir).map_err(|source| CollectError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    Ok(v)
}

/// The lists `kubectl cluster-info dump` always writes for a namespace it dumps; without them
/// a diagnosis cannot call anything in that namespace healthy.
const NAMESPACE_LISTS: [&str; 2] = ["pods.json", "events.json"];

fn namespace_of(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Reads a namespace folder's lists (`pods.json`, `events.json`, …).
fn read_namespace_lists(dir: &Path, out: &mut Collected) -> Result<(), CollectError> {
    let ns = namespace_of(dir);
    for f in NAMESPACE_LISTS {
        if !dir.join(f).is_file() {
            out.gaps.push(Gap {
                what: dir.join(f).display().to_string(),
                namespace: Some(ns.clone()),
                reason: "missing from the dump (kubectl cluster-info dump writes it for every namespace it dumps)".into(),
            });
        }
    }
    let lists: Vec<PathBuf> = read_dir_sorted(dir)?
        .into_iter()
        .filter(|p| !p.is_dir() && p.extension().is_some_and(|e| e == "json"))
        .collect();
    for mut part in read_list_files(&lists, Some(&ns)) {
        out.objects.append(&mut part.objects);
        out.gaps.append(&mut part.gaps);
    }
    Ok(())
}

/// Reads list files on up to one thread per core (a large namespace's `pods.json` parses on
/// one while its events, ReplicaSets and Services parse on another), largest first; the
/// parts come back in the order of `paths`, so the objects' order does not depend on timing.
fn read_list_files(paths: &[PathBuf], ns: Option<&str>) -> Vec<Collected> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(paths.len());
    let read = |p: &Path| {
        let mut c = Collected::default();
        read_list_file(p, ns, &mut c);
        c
    };
    if workers <= 1 {
        return paths.iter().map(|p| read(p)).collect();
    }
    let mut order: Vec<usize> = (0..paths.len()).collect();
    // One stat per file, not per comparison.
    order.sort_by_cached_key(|&i| {
        std::cmp::Reverse(std::fs::metadata(&paths[i]).map_or(0, |m| m.len()))
    });
    let next = AtomicUsize::new(0);
    let parts: Vec<Mutex<Collected>> = paths.iter().map(|_| Mutex::default()).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let c = read(&paths[i]);
                    *parts[i].lock().unwrap_or_else(|p| p.into_inner()) = c;
                }
            });
        }
    });
    parts
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect()
}

/// Reads every `<pod>/logs.txt` of a namespace folder.
fn read_namespace_logs(dir: &Path, out: &mut Collected) -> Result<(), CollectError> {
    let ns = namespace_of(dir);
    for path in read_dir_sorted(dir)? {
        let logs = path.join("logs.txt");
        if path.is_dir() && logs.is_file() {
            read_pod_logs(&logs, &ns, out);
        }
    }
    Ok(())
}

/// Reads one pod's `logs.txt`; a failure becomes a gap.
fn read_pod_logs(logs: &Path, ns: &str, out: &mut Collected) {
    match read_logs(logs) {
        Ok(mut l) => out.logs.append(&mut l),
        Err(e) => out.gaps.push(Gap {
            what: logs.display().to_string(),
            namespace: Some(ns.to_string()),
            reason: e.to_string(),
        }),
    }
}

/// Reads one List file; problems become gaps. Its items stay the JSON text they are in the
/// file ([`object_of_item`]): no value tree is built for a namespace's pods to be sent on.
fn read_list_file(path: &Path, ns: Option<&str>, out: &mut Collected) {
    let gap = |reason: String| Gap {
        what: path.display().to_string(),
        namespace: ns.map(str::to_string),
        reason,
    };
    let text = match read_bounded(path) {
        Ok(t) => t,
        Err(e) => {
            out.gaps.push(gap(e));
            return;
        }
    };
    let (info, items) = match parse_list(&text, path) {
        Ok(list) => list,
        Err(reason) => {
            out.gaps.push(gap(reason));
            return;
        }
    };
    for item in items {
        let o = match object_of_item(item, info) {
            Ok(o) => o,
            Err(e) => {
                out.gaps.push(gap(format!("{e}; skipped")));
                continue;
            }
        };
        if o.name().is_empty() {
            out.gaps.push(gap(format!(
                "a {} item has no metadata.name; skipped",
                info.kind
            )));
            continue;
        }
        // The API server only accepts DNS-1123 names: anything else in a dump was not
        // written by one, and must never reach a path or a printed command.
        if let Some(bad) = [Some(o.name()), o.namespace()]
            .into_iter()
            .flatten()
            .find(|n| !metakube_shared::object::valid_name(n))
        {
            out.gaps.push(gap(format!(
                "a {} item is named {bad:?}, which is not a valid Kubernetes name; skipped",
                info.kind
            )));
            continue;
        }
        out.objects.push(o);
    }
}

/// Only regular files are read: opening a FIFO would block, a device could stream forever.
fn regular_file(path: &Path) -> Result<(), String> {
    let m = std::fs::metadata(path).map_err(|e| format!("cannot open: {e}"))?;
    if m.is_file() {
        Ok(())
    } else {
        Err("not a regular file (a FIFO, device or folder); skipped".into())
    }
}

fn read_bounded(path: &Path) -> Result<String, String> {
    regular_file(path)?;
    let f = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_LIST_BYTES {
        return Err(format!(
            "{len} bytes is more than the {MAX_LIST_BYTES}-byte limit for one list"
        ));
    }
    let mut s = String::with_capacity(len as usize);
    f.take(MAX_LIST_BYTES)
        .read_to_string(&mut s)
        .map_err(|e| format!("cannot read as UTF-8 text: {e}"))?;
    Ok(s)
}

/// The kind and items of a List: from its `kind` (`PodList`) or, failing that, the file name.
/// The items are the list's own text, not copied (a namespace's pods are tens of MB).
pub fn parse_list<'a>(
    text: &'a str,
    path: &Path,
) -> Result<(&'static KindInfo, Vec<&'a RawValue>), String> {
    let mut list = ListText::read(text)?;
    let list_kind = list.kind().map(str::to_string);
    let from_kind = list_kind
        .as_deref()
        .and_then(|k| k.strip_suffix("List"))
        .and_then(KindInfo::lookup);
    let items = list.items()?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let info = from_kind.or_else(|| KindInfo::from_list_file(&stem));
    // A generic `List` of mixed kinds: items carry their own kind.
    #[derive(Deserialize)]
    struct ItemKind {
        kind: Option<Value>,
    }
    let item_kind = |i: &RawValue| -> Option<String> {
        let k = serde_json::from_str::<ItemKind>(i.get()).ok()?.kind?;
        k.as_str().map(str::to_string)
    };
    match info {
        Some(info) => Ok((info, items)),
        None if !items.is_empty() && items.iter().all(|i| item_kind(i).is_some()) => {
            let k = item_kind(items[0]).unwrap_or_default();
            match KindInfo::lookup(&k) {
                Some(i) => Ok((i, items)),
                None => Err(format!("unknown kind {k:?}; skipped")),
            }
        }
        None => Err(format!(
            "unknown kind {:?} (from {}); skipped",
            list_kind.as_deref().unwrap_or(&stem),
            if list_kind.is_some() {
                "the list's kind"
            } else {
                "the file name"
            }
        )),
    }
}

/// Parses a `logs.txt`: one block per container between START and END lines.
pub fn read_logs(path: &Path) -> std::io::Result<Vec<ContainerLog>> {
    regular_file(path).map_err(std::io::Error::other)?;
    let mut r = BufReader::new(File::open(path)?);
    let mut out = Vec::new();
    let mut cur: Option<(String, String, String)> = None;
    let mut tail = Tail::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Lines are read as bytes: a log may hold invalid UTF-8; one line is capped.
        let n = read_line_capped(&mut r, &mut buf, 64 * 1024)?;
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(rest) = line.strip_prefix("==== START logs for container ") {
            if let Some((c, ns, pod)) = parse_header(rest) {
                cur = Some((ns, pod, c));
                tail = Tail::default();
                continue;
            }
        }
        if line.starts_with("==== END logs for container ") {
            if let Some(block) = cur.take() {
                out.push(finish(block, &mut tail));
            }
            continue;
        }
        if cur.is_some() {
            tail.push(line);
        }
    }
    if let Some(block) = cur.take() {
        out.push(finish(block, &mut tail));
    }
    Ok(out)
}

/// Closes one container's block.
fn finish((namespace, pod, container): (String, String, String), tail: &mut Tail) -> ContainerLog {
    let (text, dropped) = tail.take();
    ContainerLog {
        namespace,
        pod,
        container,
        previous: false,
        text,
        truncated_bytes: dropped,
    }
}

pub(crate) fn read_line_capped(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Ok(total);
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let room = cap.saturating_sub(buf.len());
        buf.extend_from_slice(&avail[..take.min(room)]);
        r.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}

/// `C of pod NS/POD ====` → (C, NS, POD).
fn parse_header(rest: &str) -> Option<(String, String, String)> {
    let rest = rest.strip_suffix(" ====")?;
    let (c, pod) = rest.split_once(" of pod ")?;
    let (ns, pod) = pod.split_once('/')?;
    Some((c.to_string(), ns.to_string(), pod.to_string()))
}

/// The last [`MAX_LOG_BYTES`] of a stream of lines.
#[derive(Default)]
struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
    dropped: u64,
}

impl Tail {
    fn push(&mut self, line: &str) {
        self.lines.push_back(line.to_string());
        self.bytes += line.len() + 1;
        while self.bytes > MAX_LOG_BYTES {
            match self.lines.pop_front() {
                Some(l) => {
                    self.bytes -= l.len() + 1;
                    self.dropped += l.len() as u64 + 1;
                }
                None => break,
            }
        }
    }

    fn take(&mut self) -> (String, u64) {
        let mut s = String::with_capacity(self.bytes);
        for l in self.lines.drain(..) {
            s.push_str(&l);
            s.push('\n');
        }
        let d = self.dropped;
        self.bytes = 0;
        self.dropped = 0;
        (s, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metakube_shared::KubeObject;
    use std::io::Write;

    #[test]
    fn logs_blocks_are_split_per_container_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("logs.txt");
        let mut f = File::create(&p).unwrap();
        writeln!(f, "==== START logs for container init of pod ns/p ====").unwrap();
        writeln!(f, "hello").unwrap();
        writeln!(f, "==== END logs for container init of pod ns/p ====").unwrap();
        writeln!(f, "==== START logs for container app of pod ns/p ====").unwrap();
        for i in 0..20_000 {
            writeln!(f, "line {i} {}", "x".repeat(20)).unwrap();
        }
        writeln!(f, "==== END logs for container app of pod ns/p ====").unwrap();
        drop(f);
        let logs = read_logs(&p).unwrap();
        assert_eq!(logs.len(), 2);
        assert_eq!(
            (logs[0].container.as_str(), logs[0].text.as_str()),
            ("init", "hello\n")
        );
        assert!(logs[1].text.len() <= MAX_LOG_BYTES);
        assert!(logs[1]
            .text
            .ends_with(&format!("line 19999 {}\n", "x".repeat(20))));
        assert!(logs[1].truncated_bytes > 0);
    }

    fn write_list(path: &Path, items: serde_json::Value) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            serde_json::json!({"kind": "List", "items": items}).to_string(),
        )
        .unwrap();
    }

    #[test]
    fn only_the_targets_neighbourhood_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_list(
            &d.join("nodes.json"),
            serde_json::json!([{"metadata": {"name": "n1"}}]),
        );
        let pod = |ns: &str, name: &str, env: &str| {
            serde_json::json!([{"metadata": {"name": name, "namespace": ns},
                "spec": {"containers": [{"name": "c", "env": [{"name": "U", "value": env}]}]}}])
        };
        write_list(
            &d.join("shop/pods.json"),
            pod("shop", "web", "http://db.data.svc:5432"),
        );
        write_list(&d.join("shop/events.json"), serde_json::json!([]));
        write_list(&d.join("data/pods.json"), pod("data", "db", ""));
        write_list(&d.join("data/events.json"), serde_json::json!([]));
        // Another team's namespace, broken: never opened for a diagnosis in `shop`.
        std::fs::create_dir_all(d.join("other/x")).unwrap();
        std::fs::write(d.join("other/pods.json"), "{\"items\": [").unwrap();
        std::fs::write(
            d.join("other/x/logs.txt"),
            "==== START logs for container c of pod other/x ====\nboom\n",
        )
        .unwrap();
        for (ns, p) in [("shop", "web"), ("data", "db")] {
            std::fs::create_dir_all(d.join(ns).join(p)).unwrap();
            std::fs::write(
                d.join(ns).join(p).join("logs.txt"),
                format!("==== START logs for container c of pod {ns}/{p} ====\nhello\n"),
            )
            .unwrap();
        }
        let target = ObjectRef::new("Pod", "shop", "web");
        let c = read_dump_for(d, &target).unwrap();
        let names: Vec<&str> = c.objects.iter().map(|o| o.name()).collect();
        // The namespace its pod calls by FQDN is read, logs included.
        assert_eq!(names, vec!["db", "n1", "web"]);
        let logs: Vec<&str> = c.logs.iter().map(|l| l.pod.as_str()).collect();
        assert_eq!(logs, vec!["db", "web"]);
        assert!(
            c.gaps.iter().all(|g| !g.what.contains("other")),
            "{:?}",
            c.gaps
        );
        // The whole read does open it (and reports the truncated list).
        let all = read_dump(d).unwrap();
        assert!(all.gaps.iter().any(|g| g.what.ends_with("other/pods.json")));
        assert!(all.logs.iter().any(|l| l.pod == "x"));
        // A target that is not where it was asked for: every namespace is read for the hint.
        let c = read_dump_for(d, &ObjectRef::new("Pod", "shop", "db")).unwrap();
        assert!(c.objects.iter().any(|o| o.namespace() == Some("data")));
    }

    #[test]
    fn list_kind_comes_from_kind_or_file_name() {
        let kind = |text: &str, file: &str| parse_list(text, Path::new(file)).map(|l| l.0.kind);
        let pods = r#"{"kind": "PodList", "items": [{"metadata": {"name": "a"}}]}"#;
        assert_eq!(kind(pods, "x.json"), Ok("Pod"));
        assert_eq!(parse_list(pods, Path::new("x.json")).unwrap().1.len(), 1);
        assert_eq!(
            kind(r#"{"items": []}"#, "persistentvolumeclaims.json"),
            Ok("PersistentVolumeClaim")
        );
        let mixed = r#"{"kind": "List", "items": [{"kind": "ConfigMap"}, {"kind": "Secret"}]}"#;
        assert_eq!(kind(mixed, "extra.json"), Ok("ConfigMap"));
        for (text, why) in [
            (
                r#"{"kind": "WidgetList", "items": []}"#,
                "unknown kind \"WidgetList\" (from the list's kind)",
            ),
            (
                r#"{"items": [{"metadata": {}}]}"#,
                "unknown kind \"widgets\" (from the file name)",
            ),
            (r#"{"kind": "PodList"}"#, "no \"items\" array"),
            (
                r#"{"kind": "PodList", "items": {"a": 1}}"#,
                "no \"items\" array",
            ),
            (
                r#"{"kind": "PodList", "items": null}"#,
                "no \"items\" array",
            ),
            (r#""PodList""#, "not a Kubernetes List (invalid type"),
            (
                r#"{"kind": "PodList", "items": [{"metadata": {"#,
                "not valid JSON (EOF",
            ),
            (
                r#"{"kind": "PodList", "items": [}"#,
                "not valid JSON (expected value",
            ),
        ] {
            let e = kind(text, "widgets.json").unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    /// A list file as kubectl writes it (indented, items without kind): its objects are kept as
    /// compact text, equal to the values `KubeObject::from_list_item` makes of the items; a
    /// Secret's values, managedFields and a Node's images are gone wherever they are.
    #[test]
    fn list_items_are_read_as_text_and_cleaned_like_values() {
        let dir = tempfile::tempdir().unwrap();
        let pods = serde_json::json!({"apiVersion": "v1", "kind": "PodList", "items": [
            {"metadata": {"name": "a", "namespace": "shop", "labels": {"app": "a b"}},
             "spec": {"containers": [{"name": "c", "args": ["x  y", "q\"  \"z"]}]}},
            {"metadata": {"name": "b", "namespace": "shop",
                          "managedFields": [{"manager": "kubectl"}]}}
        ], "metadata": {"resourceVersion": "1"}});
        let mixed = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "shop"},
             "data": {"k": "v"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "shop"},
             "data": {"password": "aHVudGVyMg=="}}
        ]});
        let nodes = serde_json::json!({"kind": "NodeList", "items": [
            {"metadata": {"name": "n1"}, "status": {"images": [{"names": ["x"]}], "nodeInfo": {}}}
        ]});
        let mut c = Collected::default();
        for (file, list) in [
            ("pods.json", &pods),
            ("extra.json", &mixed),
            ("nodes.json", &nodes),
        ] {
            let path = dir.path().join(file);
            std::fs::write(&path, serde_json::to_string_pretty(list).unwrap()).unwrap();
            read_list_file(&path, Some("shop"), &mut c);
        }
        assert!(c.gaps.is_empty(), "{:?}", c.gaps);
        let names: Vec<(&str, &str)> = c.objects.iter().map(|o| (o.kind(), o.name())).collect();
        assert_eq!(
            names,
            [
                ("Pod", "a"),
                ("Pod", "b"),
                ("ConfigMap", "cm"),
                ("Secret", "s"),
                ("Node", "n1")
            ]
        );
        let a = &c.objects[0];
        assert!(
            a.json().is_some_and(|t| !t.contains('\n')),
            "kept as compact text"
        );
        let info = KindInfo::lookup("Pod").unwrap();
        assert_eq!(
            a.value(),
            KubeObject::from_list_item(pods["items"][0].clone(), info).value()
        );
        assert_eq!(a.value()["spec"]["containers"][0]["args"][1], "q\"  \"z");
        assert!(!c.objects[1].has_managed_fields());
        assert_eq!(c.objects[1].value()["apiVersion"], "v1");
        assert_eq!(c.objects[2].value()["data"]["k"], "v");
        assert_eq!(
            c.objects[3].value()["data"]["password"],
            "",
            "a Secret's value, in a generic List"
        );
        assert!(c.objects[4].pointer("/status/images").is_none());
        assert!(c.objects[4].pointer("/status/nodeInfo").is_some());
    }
}
