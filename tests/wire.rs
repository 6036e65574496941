//! The snapshot on the wire: what the daemon reads from the socket is the objects' bytes and
//! the fields that name them, typed straight from the bytes (no JSON value tree per object).
//! Read that way, every scenario of tests/scenarios (and ../shared/scenarios when present)
//! types into the same cluster and gets the same diagnosis as the snapshot the plugin sent,
//! and typing it builds no value tree.

use std::path::Path;

use metakube_shared::{DiagnoseOptions, DiagnoseRequest, Snapshot};
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
