//! The socket round trip as the plugin does it: serialize a 500-object snapshot, POST it over
//! the Unix socket to a real, warm `metakubed`, read the diagnosis back.

use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use kubectl_metakube::client::DaemonClient;
use metakube_shared::{DiagnoseOptions, DiagnoseRequest, Diagnosis};

fn roundtrip(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("metakubed.sock");
    let target_dir = std::env::current_exe()
        .expect("exe")
        .parent()
        .expect("deps")
        .parent()
        .expect("profile")
        .to_path_buf();
    let mut child = Command::new(target_dir.join("metakubed"))
        .args(["--ephemeral", "--socket"])
        .arg(&socket)
        .stderr(Stdio::null())
        .spawn()
        .expect("metakubed is built (cargo build --release --bins)");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = DaemonClient::new(&socket, Duration::from_secs(30));
    rt.block_on(async {
        for _ in 0..200 {
            if client.health().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("metakubed did not start");
    });
    let snap = metakube_benches::snapshot(500);
    let req = DiagnoseRequest {
        snapshot: snap,
        options: DiagnoseOptions {
            no_llm: true,
            explain: None,
            no_memory: true,
        },
    };
    c.bench_function("socket_roundtrip_500_objects", |b| {
        b.iter(|| {
            rt.block_on(async {
                client
                    .post::<_, Diagnosis>("/v1/diagnose", &req)
                    .await
                    .expect("diagnose")
            })
        })
    });
    let _ = child.kill();
    let _ = child.wait();
}

criterion_group!(benches, roundtrip);
criterion_main!(benches);
