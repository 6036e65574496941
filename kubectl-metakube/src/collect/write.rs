//! Writes a snapshot in the `kubectl cluster-info dump --output-directory` layout, so any
//! diagnosis can be replayed with `--from-dump` and attached to a bug report.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

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

/// Writes `snap` under `dir`.
pub fn write_dump(snap: &Snapshot, dir: &Path) -> Result<(), CollectError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CollectError::Io {
            path: path.clone(),
            source,
        }
    };
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
        let mut item = o.0.clone();
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
            dir.join(&ns)
        };
        std::fs::create_dir_all(&d).map_err(io(&d))?;
        let path = d.join(format!("{stem}.json"));
        let text = serde_json::to_string_pretty(&list).unwrap_or_default();
        std::fs::write(&path, text).map_err(io(&path))?;
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
        let d = dir.join(&ns).join(&pod);
        std::fs::create_dir_all(&d).map_err(io(&d))?;
        let path = d.join("logs.txt");
        let mut f = std::fs::File::create(&path).map_err(io(&path))?;
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
