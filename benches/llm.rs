//! KubeLLM on the default SmolLM2-135M Q4_1 GGUF: load time, warm first-token latency and
//! decode speed on a real explanation prompt, and a cold one-shot (load + explain, what a
//! process without a daemon does) against the warm daemon's explain, as a ratio.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use metakubed::llm::candle::CandleLlm;
use metakubed::llm::{grounding, Explainer, LlmConfig};

fn llm(c: &mut Criterion) {
    let cfg = LlmConfig::default();
    let path = cfg.model_path(&metakube_benches::root().join("models"));
    let snap = metakube_benches::snapshot(100);
    let d = metakubed::diagnose(&metakubed::Knowledge::builtin(), &snap, "bench".into())
        .expect("diagnose")
        .diagnosis;
    let t = Instant::now();
    let mut m = CandleLlm::load(&path, &cfg).expect("models/fetch.sh has run");
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    let prompt = grounding::prompt(&d, &|s| m.count_tokens(s), cfg.max_prompt_tokens);
    // Warm: the daemon's case (the system prefix is cached after the first call).
    m.generate(&prompt, cfg.max_tokens, &mut |_| true)
        .expect("warm-up");
    let mut first = Vec::new();
    let mut tps = Vec::new();
    let mut warm_total = Vec::new();
    let mut prompt_tokens = 0;
    for _ in 0..5 {
        let g = m
            .generate(&prompt, cfg.max_tokens, &mut |_| true)
            .expect("generate");
        first.push(g.first_token_ms);
        tps.push(g.tokens_per_s());
        warm_total.push(g.total_ms);
        prompt_tokens = g.prompt_tokens;
    }
    // Cold: a one-shot process loads the model, then explains.
    let t = Instant::now();
    let mut cold = CandleLlm::load(&path, &cfg).expect("load");
    cold.generate(&prompt, cfg.max_tokens, &mut |_| true)
        .expect("generate");
    let cold_ms = t.elapsed().as_secs_f64() * 1000.0;
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let warm_ms = med(warm_total);
    println!(
        "llm {}: load {load_ms:.0} ms; prompt {prompt_tokens} tokens; warm first token p50 {:.0} ms; decode {:.1} tok/s; warm explain {warm_ms:.0} ms; cold one-shot {cold_ms:.0} ms ({:.2}x the warm daemon)",
        m.name(),
        med(first),
        med(tps),
        cold_ms / warm_ms
    );
    let mut g = c.benchmark_group("llm");
    g.sample_size(10);
    g.bench_function("first_token_warm", |b| {
        b.iter(|| m.generate(&prompt, 1, &mut |_| true).expect("generate"))
    });
    g.bench_function("load", |b| {
        b.iter(|| CandleLlm::load(&path, &cfg).expect("load"))
    });
    g.finish();
}

criterion_group!(benches, llm);
criterion_main!(benches);
