//! Fixtures for the criterion benches: a realistic snapshot grown to a given object count.

use std::path::{Path, PathBuf};

use kubectl_metakube::collect::{dump::read_dump, select};
use metakube_shared::{KubeObject, ObjectRef, Snapshot, SnapshotSource};
use serde_json::Value;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The cascade scenario (caller → Service with a wrong selector) as a snapshot, with healthy
/// copies of its other workloads added until it holds at least `min_objects` objects.
pub fn snapshot(min_objects: usize) -> Snapshot {
    let dir = root().join("tests/scenarios/011-network-selector-mismatch-cascade-0");
    let y: serde_yaml_like::Expected = serde_yaml_like::read(&dir.join("expected.yaml"));
    let target = ObjectRef::new(&y.kind, &y.namespace, &y.name);
    let c = read_dump(&dir.join("dump")).expect("fixture dump");
    let mut snap = select(
        c,
        &target,
        SnapshotSource::Dump {
            path: dir.display().to_string(),
        },
        None,
    )
    .expect("select");
    let template: Vec<KubeObject> = snap
        .objects
        .iter()
        .filter(|o| {
            matches!(
                o.kind(),
                "Pod"
                    | "ReplicaSet"
                    | "Deployment"
                    | "Service"
                    | "Endpoints"
                    | "Event"
                    | "ConfigMap"
            )
        })
        .filter(|o| o.namespace() == Some(y.namespace.as_str()))
        .cloned()
        .collect();
    let mut i = 0;
    while snap.objects.len() < min_objects {
        i += 1;
        for o in &template {
            let mut v = o.value().clone();
            let name = format!("filler{i}-{}", o.name());
            v["metadata"]["name"] = Value::String(name);
            if let Some(l) = v.pointer_mut("/metadata/labels/app") {
                *l = Value::String(format!("filler{i}"));
            }
            if let Some(sel) = v.pointer_mut("/spec/selector/app") {
                *sel = Value::String(format!("filler{i}"));
            }
            if let Some(n) = v.pointer_mut("/involvedObject/name") {
                *n = Value::String(format!("filler{i}-{}", n.as_str().unwrap_or("")));
            }
            snap.objects.push(KubeObject::new(v));
        }
    }
    snap
}

/// A cluster-info dump grown by `benches/grow_dump.py` to at least `objects` objects over
/// `namespaces` namespaces around the selector-mismatch cascade (`deploy/auth -n team-a`, root
/// cause `service/redis`); written once per size under the system's temporary folder.
pub fn grown_dump(objects: usize, namespaces: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("metakube-dump-{objects}-{namespaces}"));
    if !dir.join("nodes.json").is_file() {
        let tmp = dir.with_extension("partial");
        let ok = std::process::Command::new("python3")
            .arg(root().join("benches/grow_dump.py"))
            .args([objects.to_string(), namespaces.to_string()])
            .arg(&tmp)
            .status()
            .expect("python3 runs benches/grow_dump.py");
        assert!(ok.success(), "grow_dump.py failed");
        std::fs::rename(&tmp, &dir).expect("rename grown dump");
    }
    dir
}

/// The target of [`grown_dump`].
pub fn grown_target() -> ObjectRef {
    ObjectRef::new("Deployment", "team-a", "auth")
}

/// What the plugin does with a dump before it sends it: read the target's neighbourhood and
/// select.
pub fn read_and_select(dump: &Path, target: &ObjectRef) -> Snapshot {
    let c = kubectl_metakube::collect::dump::read_dump_for(dump, target).expect("read dump");
    select(
        c,
        target,
        SnapshotSource::Dump {
            path: dump.display().to_string(),
        },
        None,
    )
    .expect("select")
}

mod serde_yaml_like {
    //! expected.yaml's target block, read without a YAML dependency in the benches.
    use std::path::Path;

    pub struct Expected {
        pub kind: String,
        pub namespace: String,
        pub name: String,
    }

    pub fn read(p: &Path) -> Expected {
        let text = std::fs::read_to_string(p).expect("expected.yaml");
        let mut e = Expected {
            kind: String::new(),
            namespace: String::new(),
            name: String::new(),
        };
        let mut in_target = false;
        for line in text.lines() {
            if line.starts_with("target:") {
                in_target = true;
                continue;
            }
            if in_target && !line.starts_with("  ") {
                break;
            }
            if let Some((k, v)) = line.trim().split_once(": ") {
                match k {
                    "kind" => e.kind = v.to_string(),
                    "namespace" => e.namespace = v.to_string(),
                    "name" => e.name = v.to_string(),
                    _ => {}
                }
            }
        }
        e
    }
}
