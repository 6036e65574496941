//! Writes a snapshot in the `kubectl cluster-info dump --output-directory` layout, so any
//! diagnosis can be replayed with `--from-dump` and attached to a bug report.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use metakube_shared::{KindInfo, Snapshot};
use serde_json::{json, Value};

use super::CollectError;

/// The files cluster-info dump always writes per namespace, even when empty.
const ALWAYS: &[&str] = &[
    "events",
    "replication-controllers",
    "services",
    "daemonsets",
    "deployments",
    "replicasets",
    "pods",
];

fn io(path: &Path) -> impl Fn(std::io::Error) -> CollectError {
    let path = path.to_path_buf();
    move |source| CollectError::Io {
        path: path.clone(),
        source,
    }
}

/// `base/part…`, created, refusing any part that is not a Kubernetes name (so no `..`, `/`
/// or absolute path) and any folder that is a symlink or resolves outside `base`.
fn folder_in(base: &Path, parts: &[(&str, &str)]) -> Result<PathBuf, CollectError> {
    let mut d = base.to_path_buf();
    for (what, part) in parts {
        if !metakube_shared::object::valid_name(part) {
            return Err(CollectError::UnsafePath {
                path: d.join(part),
                why: format!("the {what} {part:?} is not a valid Kubernetes name"),
            });
        }
        d.push(part);
        match std::fs::symlink_metadata(&d) {
            Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
                return Err(CollectError::UnsafePath {
                    path: d,
                    why: "it exists and is not a plain folder (a symlink could lead out of the output folder)".into(),
                })
            }
            Ok(_) => {}
            Err(_) => std::fs::create_dir(&d).map_err(io(&d))?,
        }
    }
    Ok(d)
}

/// Creates (or truncates) a file without following a symlink at its place.
fn create_file(path: &Path) -> Result<std::fs::File, CollectError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
                CollectError::UnsafePath {
                    path: path.to_path_buf(),
                    why: "it is a symlink".into(),
                }
            }
            _ => io(path)(e),
        })
}

/// Writes `snap` under `dir`. Only valid Kubernetes names become folder names; nothing is
/// written through a symlink or outside `dir`.
pub fn write_dump(snap: &Snapshot, dir: &Path) -> Result<(), CollectError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // (namespace or "", file stem) -> items
    let mut lists: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for o in &snap.objects {
        let Some(info) = KindInfo::lookup(o.kind()) else {
            continue;
        };
        let stem = if info.kind == "ReplicationController" {
            "replication-controllers"
        } else {
            info.plural
        };
        let mut item = o.value().clone();
        if let Some(m) = item.as_object_mut() {
            m.remove("kind");
            m.remove("apiVersion");
        }
        lists
            .entry((o.namespace().unwrap_or("").to_string(), stem.to_string()))
            .or_default()
            .push(item);
    }
    let mut namespaces: Vec<String> = lists
        .keys()
        .map(|(n, _)| n.clone())
        .filter(|n| !n.is_empty())
        .collect();
    namespaces.push(snap.meta.namespace.clone());
    namespaces.sort();
    namespaces.dedup();
    for ns in &namespaces {
        for stem in ALWAYS {
            lists.entry((ns.clone(), stem.to_string())).or_default();
        }
    }
    for ((ns, stem), mut items) in lists {
        items.sort_by(|a, b| name(a).cmp(name(b)));
        let info = KindInfo::from_list_file(&stem);
        let list = json!({
            "kind": format!("{}List", info.map_or("", |i| i.kind)),
            "apiVersion": info.map_or("v1", |i| i.api_version),
            "metadata": {"resourceVersion": ""},
            "items": items,
        });
        let d = if ns.is_empty() {
            dir.to_path_buf()
        } else {
            folder_in(dir, &[("namespace", &ns)])?
        };
        let path = d.join(format!("{stem}.json"));
        let text = serde_json::to_string_pretty(&list).unwrap_or_default();
        create_file(&path)?
            .write_all(text.as_bytes())
            .map_err(io(&path))?;
    }
    // logs.txt per pod, one block per container.
    let mut by_pod: BTreeMap<(String, String), Vec<&metakube_shared::ContainerLog>> =
        BTreeMap::new();
    for l in snap.logs.iter().filter(|l| !l.previous) {
        by_pod
            .entry((l.namespace.clone(), l.pod.clone()))
            .or_default()
            .push(l);
    }
    for ((ns, pod), logs) in by_pod {
        let d = folder_in(dir, &[("namespace", &ns), ("pod", &pod)])?;
        let path = d.join("logs.txt");
        let mut f = create_file(&path)?;
        for l in logs {
            let w = |f: &mut std::fs::File| -> std::io::Result<()> {
                writeln!(
                    f,
                    "==== START logs for container {} of pod {ns}/{pod} ====",
                    l.container
                )?;
                f.write_all(l.text.as_bytes())?;
                if !l.text.is_empty() && !l.text.ends_with('\n') {
                    writeln!(f)?;
                }
                writeln!(
                    f,
                    "==== END logs for container {} of pod {ns}/{pod} ====",
                    l.container
                )
            };
            w(&mut f).map_err(io(&path))?;
        }
    }
    Ok(())
}

fn name(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use metakube_shared::{ContainerLog, KubeObject, ObjectRef};

    fn snap(ns: &str, pod: &str) -> Snapshot {
        let mut s: Snapshot = serde_json::from_value(json!({
            "target": {"kind": "Pod", "namespace": "shop", "name": "web"},
            "objects": [],
            "meta": {"source": {"type": "dump", "path": "d"}, "namespace": "shop", "collected_at": "2026-01-01T00:00:00Z",
                     "collector_version": "test"}
        }))
        .unwrap();
        s.objects.push(KubeObject::new(json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "web", "namespace": "shop"}
        })));
        s.logs.push(ContainerLog {
            namespace: ns.into(),
            pod: pod.into(),
            container: "app".into(),
            previous: false,
            text: "hello\n".into(),
            truncated_bytes: 0,
        });
        s.target = ObjectRef::new("Pod", "shop", "web");
        s
    }

    #[test]
    fn names_that_are_not_kubernetes_names_never_become_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        for (ns, pod) in [
            ("../../x", "p"),
            ("shop", "/tmp/x"),
            ("shop", ".."),
            ("a/b", "p"),
        ] {
            let e = write_dump(&snap(ns, pod), &out).unwrap_err();
            assert!(
                matches!(e, CollectError::UnsafePath { .. }),
                "{ns}/{pod}: {e}"
            );
        }
        assert!(!tmp.path().join("x").exists());
        // A valid snapshot writes where it should.
        write_dump(&snap("shop", "web"), &out).unwrap();
        assert!(out.join("shop/web/logs.txt").is_file());
    }

    #[test]
    fn a_symlink_in_the_output_folder_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join("shop")).unwrap();
        let e = write_dump(&snap("shop", "web"), &out).unwrap_err();
        assert!(matches!(e, CollectError::UnsafePath { .. }), "{e}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        // A file symlink is not written through either.
        std::fs::remove_file(out.join("shop")).unwrap();
        let target = tmp.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, out.join("nodes.json")).unwrap();
        let mut s = snap("shop", "web");
        s.objects.push(KubeObject::new(json!({
            "kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1"}
        })));
        let e = write_dump(&s, &out).unwrap_err();
        assert!(matches!(e, CollectError::UnsafePath { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
