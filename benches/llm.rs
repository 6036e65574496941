//! KubeLLM on the default SmolLM2-135M Q4_1 GGUF: load time, warm first-token latency and
//! decode speed on a real explanation prompt, and a cold one-shot (load + explain, what a
//! process without a daemon does) against the warm daemon's explain, as a ratio.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use metakubed::llm::candle::{CandleLlm, Guide};
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
    // Cold prefill: the whole formatted prompt from an empty cache, as a reference engine
    // that keeps no cache between requests reads it (benches/llm_vs_llamacpp.sh compares it).
    let (prefix, rest) = m
        .tokenizer()
        .chat_split(&prompt.system, &prompt.user)
        .expect("chat template");
    let whole = format!("{prefix}{rest}");
    let mut cold_first = Vec::new();
    let mut cold_tps = Vec::new();
    let mut generated = 0;
    for _ in 0..3 {
        let g = m
            .generate_raw(&whole, cfg.max_tokens, &mut |_| true)
            .expect("generate");
        cold_first.push(g.first_token_ms);
        cold_tps.push(g.tokens_per_s());
        generated = g.tokens;
    }
    let whole_tokens = m.count_tokens(&whole);
    let cold_first_ms = med(cold_first);
    // The same prompt read by candle-transformers' quantized_llama (the quantized kernel for
    // the prompt too): what metakubed's f32 prompt reading is measured against.
    let stock_ms = {
        use candle_core::{Device, Tensor};
        let mut f = std::fs::File::open(path_of(&cfg)).expect("model");
        let ct = candle_core::quantized::gguf_file::Content::read(&mut f).expect("gguf");
        let mut stock = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(
            ct,
            &mut f,
            &Device::Cpu,
        )
        .expect("stock model");
        let ids = m.tokenizer().encode(&whole).expect("tokens");
        let mut v = Vec::new();
        for _ in 0..3 {
            stock.clear_kv_cache();
            let t = Instant::now();
            for (k, part) in ids.chunks(64).enumerate() {
                let input = Tensor::new(part, &Device::Cpu)
                    .expect("t")
                    .unsqueeze(0)
                    .expect("t");
                stock.forward(&input, k * 64).expect("forward");
            }
            v.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        med(v)
    };
    println!(
        "prompt of {whole_tokens} tokens, empty cache: metakubed llama (f32 prompt) first token {cold_first_ms:.0} ms; candle-transformers quantized_llama prefill {stock_ms:.0} ms ({:.2}x)",
        stock_ms / cold_first_ms
    );
    if let Ok(path) = std::env::var("METAKUBE_LLM_BENCH_OUT") {
        let out = serde_json::json!({
            "model": path_str(&path_of(&cfg)),
            "prompt": whole,
            "prompt_tokens": whole_tokens,
            "tokens": generated,
            "first_token_cold_ms": cold_first_ms,
            "first_token_warm_ms": med(first.clone()),
            "prefill_tok_s": whole_tokens as f64 / (cold_first_ms / 1000.0),
            "decode_tok_s": med(cold_tps),
            "threads": candle_core::utils::get_num_threads(),
            "stock_quantized_prefill_ms": stock_ms,
        });
        std::fs::write(&path, out.to_string()).expect("METAKUBE_LLM_BENCH_OUT");
    }
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
    // One token, the system prefix cached (free decoding: a grammar needs room for a whole
    // cause and fix, and the first token costs the same either way).
    g.bench_function("first_token_warm", |b| {
        b.iter(|| {
            m.generate_split(&prefix, &rest, Guide::Free, 1, &mut |_| true)
                .expect("generate")
        })
    });
    g.bench_function("load", |b| {
        b.iter(|| CandleLlm::load(&path, &cfg).expect("load"))
    });
    g.finish();
}

fn path_of(cfg: &LlmConfig) -> std::path::PathBuf {
    cfg.model_path(&metakube_benches::root().join("models"))
}

fn path_str(p: &std::path::Path) -> String {
    p.display().to_string()
}

criterion_group!(benches, llm);
criterion_main!(benches);
