//! Does a compact frame pay on the socket (issue 12)? The request for a 21k-object namespace,
//! as JSON, sent over a Unix socket as it is, against the same bytes zstd-compressed (level 1
//! and 3) — compress, send the smaller frame, decompress. Prints the sizes once.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use criterion::{criterion_group, criterion_main, Criterion};
use metakube_shared::{DiagnoseOptions, DiagnoseRequest};

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
    g.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
