#!/usr/bin/env python3
"""The reference for KubeLLM's speed: llama.cpp (llama-cpp-python from PyPI) on the same GGUF,
the same prompt text and the same number of greedy tokens as the candle bench measured.

Reads the JSON `cargo bench --bench llm` writes when METAKUBE_LLM_BENCH_OUT is set (the prompt
formatted by the model's chat template, the candle figures), measures llama.cpp on it with the
same thread count, and prints both and their ratios. Run through benches/llm_vs_llamacpp.sh,
which installs llama-cpp-python into a venv under ~/.cache/metakube/ first.
"""
import argparse
import json
import os
import statistics
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("candle_json", help="what the candle bench wrote")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    c = json.load(open(a.candle_json))
    from llama_cpp import Llama

    t = time.perf_counter()
    llm = Llama(model_path=c["model"], n_ctx=1024, n_threads=a.threads,
                n_threads_batch=a.threads, n_batch=512, verbose=False)
    load_ms = (time.perf_counter() - t) * 1000
    toks = llm.tokenize(c["prompt"].encode(), add_bos=False, special=True)
    n_gen = c["tokens"]
    first, prefill, decode = [], [], []
    for _ in range(a.runs):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(toks)
        tok = llm.sample(top_k=1, temp=0.0)
        t1 = time.perf_counter()
        for _ in range(n_gen - 1):
            llm.eval([tok])
            tok = llm.sample(top_k=1, temp=0.0)
        t2 = time.perf_counter()
        first.append((t1 - t0) * 1000)
        prefill.append(len(toks) / (t1 - t0))
        decode.append((n_gen - 1) / (t2 - t1))
    r = {
        "load_ms": load_ms,
        "prompt_tokens": len(toks),
        "first_token_ms": statistics.median(first),
        "prefill_tok_s": statistics.median(prefill),
        "decode_tok_s": statistics.median(decode),
    }
    print(f"{'':28}{'candle (metakube)':>20}{'llama.cpp':>12}{'candle / llama.cpp':>22}")
    print(f"{'prompt tokens':28}{c['prompt_tokens']:>20}{r['prompt_tokens']:>12}")
    rows = [
        ("first token, cold (ms)", c["first_token_cold_ms"], r["first_token_ms"], False),
        ("prefill (tok/s)", c["prefill_tok_s"], r["prefill_tok_s"], True),
        ("decode (tok/s)", c["decode_tok_s"], r["decode_tok_s"], True),
    ]
    for name, cv, lv, higher in rows:
        ratio = cv / lv
        print(f"{name:28}{cv:>20.1f}{lv:>12.1f}{ratio:>21.2f}x"
              + ("" if higher else " (time: lower is better)"))
    print(f"{'first token, warm (ms)':28}{c['first_token_warm_ms']:>20.1f}{'':>12}"
          "   (the daemon: system prompt's cache reused)")
    print(json.dumps({"candle": c | {"prompt": None}, "llama_cpp": r}))


if __name__ == "__main__":
    main()
