//! Does a compact frame pay on the socket (issue 12)? The request for a 21k-object namespace,
//! as JSON, sent over a Unix socket as it is, against the same bytes zstd-compressed (level 1
//! and 3) — compress, send the smaller frame, decompress. Prints the sizes once.
//!
//! And how the daemon reads it: every object into a JSON value tree then typed from the tree
//! (as before stop 26), against each object kept as its bytes plus the fields that name it and
//! typed straight from the bytes ([`metakube_shared::KubeObject`]) — read, type every pod and
//! event (most of the objects), free.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use criterion::{criterion_group, criterion_main, Criterion};
use k8s_openapi::api::core::v1::{Event, Pod};
use metakube_shared::{DiagnoseOptions, DiagnoseRequest};
use serde::Deserialize;
use serde_json::Value;

/// The request as value trees: what the daemon read before objects kept their bytes.
#[derive(Deserialize)]
struct ValueRequest {
    snapshot: ValueSnapshot,
}

#[derive(Deserialize)]
struct ValueSnapshot {
    objects: Vec<Value>,
}

/// Sends `bytes` over a fresh Unix socket pair and reads them back on another thread.
fn send(bytes: &[u8]) -> usize {
    let (mut a, mut b) = UnixStream::pair().expect("socket pair");
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut buf = Vec::with_capacity(bytes.len());
            b.read_to_end(&mut buf).expect("read");
            buf.len()
        });
        a.write_all(bytes).expect("write");
        drop(a);
        reader.join().expect("reader")
    })
}

fn frame(c: &mut Criterion) {
    let snapshot = metakube_benches::read_and_select(
        &metakube_benches::grown_dump(20_000, 1),
        &metakube_benches::grown_target(),
    );
    let req = DiagnoseRequest {
        snapshot,
        options: DiagnoseOptions::default(),
    };
    let json = serde_json::to_vec(&req).expect("json");
    let z1 = zstd::encode_all(&json[..], 1).expect("zstd");
    let z3 = zstd::encode_all(&json[..], 3).expect("zstd");
    eprintln!(
        "frame bench: {} objects, JSON {:.1} MB, zstd-1 {:.2} MB ({:.1}x), zstd-3 {:.2} MB ({:.1}x)",
        req.snapshot.objects.len(),
        json.len() as f64 / 1e6,
        z1.len() as f64 / 1e6,
        json.len() as f64 / z1.len() as f64,
        z3.len() as f64 / 1e6,
        json.len() as f64 / z3.len() as f64
    );
    let mut g = c.benchmark_group("frame_21k");
    g.sample_size(20);
    g.bench_function("json_serialize", |b| {
        b.iter(|| serde_json::to_vec(&req).expect("json"))
    });
    g.bench_function("send_json", |b| b.iter(|| send(&json)));
    for (level, z) in [(1, &z1), (3, &z3)] {
        g.bench_function(format!("zstd{level}_compress_send_decompress"), |b| {
            b.iter(|| {
                let z = zstd::encode_all(&json[..], level).expect("zstd");
                send(&z);
                zstd::decode_all(&z[..]).expect("unzstd")
            })
        });
        g.bench_function(format!("zstd{level}_decompress"), |b| {
            b.iter(|| zstd::decode_all(&z[..]).expect("unzstd"))
        });
    }
    g.bench_function("read_and_type_as_value_trees", |b| {
        b.iter(|| {
            let r: ValueRequest = serde_json::from_slice(&json).expect("request");
            let mut typed = 0;
            for o in &r.snapshot.objects {
                match o.get("kind").and_then(Value::as_str) {
                    Some("Pod") => typed += Pod::deserialize(o).is_ok() as usize,
                    Some("Event") => typed += Event::deserialize(o).is_ok() as usize,
                    _ => {}
                }
            }
            typed
        })
    });
    g.bench_function("read_and_type_from_bytes", |b| {
        b.iter(|| {
            let r: DiagnoseRequest = serde_json::from_slice(&json).expect("request");
            let mut typed = 0;
            for o in &r.snapshot.objects {
                match o.kind() {
                    "Pod" => typed += o.typed::<Pod>().is_ok() as usize,
                    "Event" => typed += o.typed::<Event>().is_ok() as usize,
                    _ => {}
                }
            }
            typed
        })
    });
    g.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
