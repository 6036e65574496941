//! The snapshot on the wire: what the daemon reads from the socket is the objects' bytes and
//! the fields that name them, typed straight from the bytes (no JSON value tree per object).
//! Read that way, every scenario of tests/scenarios (and ../shared/scenarios when present)
//! types into the same cluster and gets the same diagnosis as the snapshot the plugin sent,
//! and typing it builds no value tree. On the plugin's side, a dump's list items are read as
//! their compact text: every item of every scenario's dump equals the item read as a JSON
//! value, with the kind filled in and the noise removed on the value.

use std::path::{Path, PathBuf};

use kubectl_metakube::collect::dump::read_dump;
use kubectl_metakube::collect::list::strip_noise;
use metakube_shared::{DiagnoseOptions, DiagnoseRequest, KindInfo, KubeObject, Snapshot};
use metakubed::snapshot::Cluster;
use metakubed::Knowledge;
use serde_json::Value;

/// The typed vectors of two clusters are equal, kind by kind (references and objects).
macro_rules! same_typed {
    ($name:expr, $a:expr, $b:expr, $($field:ident),+) => {$(
        assert!(
            $a.$field.iter().map(|o| (&o.r, &o.o)).eq($b.$field.iter().map(|o| (&o.r, &o.o))),
            "{}: {} typed from the wire differ from those sent",
            $name,
            stringify!($field)
        );
    )+};
}

/// The diagnosis as JSON, without what differs between any two runs.
fn answer(k: &Knowledge, snap: &Snapshot) -> Value {
    let d = metakubed::engine::diagnose(k, snap, "wire".into()).expect("diagnoses");
    let mut v = serde_json::to_value(&d.diagnosis).unwrap();
    let m = v.as_object_mut().unwrap();
    m.remove("timings_ms");
    m.remove("id");
    v
}

fn check(root: &Path) -> usize {
    let k = Knowledge::builtin();
    let mut checked = 0;
    for (name, sent) in metakube_tests::scenario_snapshots(root) {
        let bytes = serde_json::to_vec(&DiagnoseRequest {
            snapshot: sent.clone(),
            options: DiagnoseOptions::default(),
        })
        .unwrap();
        let got: DiagnoseRequest = serde_json::from_slice(&bytes).unwrap();
        let got = got.snapshot;
        assert_eq!(got.objects.len(), sent.objects.len(), "{name}");
        assert!(
            got.objects.iter().all(|o| !o.is_parsed()),
            "{name}: reading the request built value trees"
        );
        for (a, b) in sent.objects.iter().zip(&got.objects) {
            assert_eq!(
                (a.object_ref(), a.resource_version(), a.controller()),
                (b.object_ref(), b.resource_version(), b.controller()),
                "{name}"
            );
        }
        let (a, b) = (Cluster::from_snapshot(&sent), Cluster::from_snapshot(&got));
        let parsed: Vec<String> = got
            .objects
            .iter()
            .filter(|o| o.is_parsed())
            .map(|o| o.object_ref().to_string())
            .collect();
        assert!(
            parsed.is_empty(),
            "{name}: typing built value trees of {parsed:?}"
        );
        same_typed!(
            name,
            a,
            b,
            pods,
            nodes,
            services,
            endpoints,
            deployments,
            replicasets,
            statefulsets,
            daemonsets,
            jobs,
            cronjobs,
            configmaps,
            secrets,
            serviceaccounts,
            pvcs,
            pvs,
            storageclasses,
            netpols,
            ingresses,
            quotas,
            limitranges,
            hpas,
            events
        );
        assert_eq!(a.gaps, b.gaps, "{name}");
        assert_eq!(a.collected_kinds, b.collected_kinds, "{name}");
        assert_eq!(
            answer(&k, &sent),
            answer(&k, &got),
            "{name}: another diagnosis"
        );
        // What the bytes hold is what was sent.
        assert_eq!(got, sent, "{name}");
        checked += 1;
    }
    checked
}

#[test]
fn a_snapshot_read_from_the_wire_types_and_diagnoses_as_the_one_sent() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    assert!(check(&root) >= 100);
}

#[test]
fn a_snapshot_read_from_the_wire_types_and_diagnoses_as_the_one_sent_on_the_shared_scenarios() {
    let Some(root) = metakube_tests::shared_scenarios_or_skip() else {
        return;
    };
    assert!(check(&root) >= 80);
}

/// A dump's objects read as values, the plain way: each list file parsed whole, each item given
/// the list's kind, a Secret's values blanked, managedFields and node images removed; items
/// without a valid name left out, as the plugin leaves them out (with a gap).
fn items_as_values(dump: &Path) -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = Vec::new();
    for e in std::fs::read_dir(dump).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            for f in std::fs::read_dir(&p).unwrap().flatten() {
                files.push(f.path());
            }
        } else {
            files.push(p);
        }
    }
    let mut out = Vec::new();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
    {
        let Ok(list) = serde_json::from_str::<Value>(&std::fs::read_to_string(f).unwrap()) else {
            continue;
        };
        let Some(items) = list["items"].as_array() else {
            continue;
        };
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        let info = list["kind"]
            .as_str()
            .and_then(|k| k.strip_suffix("List"))
            .and_then(KindInfo::lookup)
            .or_else(|| KindInfo::from_list_file(&stem))
            .or_else(|| items.first()?["kind"].as_str().and_then(KindInfo::lookup));
        let Some(info) = info else {
            continue;
        };
        for item in items {
            let mut o = KubeObject::from_list_item(item.clone(), info);
            if info.kind == "Secret" || o.kind() == "Secret" {
                metakube_shared::strip_secret_values(o.value_mut());
            }
            strip_noise(o.value_mut());
            let named = [Some(o.name()), o.namespace()]
                .into_iter()
                .flatten()
                .all(metakube_shared::object::valid_name);
            if named && !o.name().is_empty() {
                out.push((o.object_ref().to_string(), o.into_value()));
            }
        }
    }
    out.sort_by_cached_key(|(r, v)| (r.clone(), v.to_string()));
    out
}

fn check_dump_reading(root: &Path) -> usize {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("dump"))
        .filter(|d| d.is_dir())
        .collect();
    dirs.sort();
    for dump in &dirs {
        let read = read_dump(dump).unwrap();
        let kept_as_text = read
            .objects
            .iter()
            .filter(|o| !matches!(o.kind(), "Secret" | "Node"))
            .all(|o| o.json().is_some_and(|t| !t.contains('\n')));
        assert!(
            kept_as_text,
            "{}: an object was read into a value tree",
            dump.display()
        );
        let mut got: Vec<(String, Value)> = read
            .objects
            .into_iter()
            .map(|o| (o.object_ref().to_string(), o.into_value()))
            .collect();
        got.sort_by_cached_key(|(r, v)| (r.clone(), v.to_string()));
        let want = items_as_values(dump);
        assert_eq!(got.len(), want.len(), "{}", dump.display());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{}", dump.display());
        }
    }
    dirs.len()
}

#[test]
fn a_dumps_items_read_as_text_equal_the_items_read_as_values() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    assert!(check_dump_reading(&root) >= 100);
    if let Some(shared) = metakube_tests::shared_scenarios_or_skip() {
        assert!(check_dump_reading(&shared) >= 80);
    }
}
