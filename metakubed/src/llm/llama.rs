//! The llama-family forward pass (SmolLM2, Llama, Mistral-style) over candle's quantized tensors,
//! modelled on candle-transformers' `quantized_llama` (MIT / Apache-2.0) with one change: a
//! prompt of several tokens runs each matrix dequantized to f32 for that matrix only — f32 GEMM
//! reads a prompt about 5× faster than the quantized kernel on a CPU (`benches/llm.rs`), and
//! dequantizing all of SmolLM2-135M's matrices takes ~80 ms, so no f32 copy is kept — while a
//! single decoding step keeps the quantized kernel, which is the faster one there. On a GPU the
//! quantized kernels are used throughout.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor, D};
use candle_transformers::utils::{build_causal_mask, repeat_kv};

/// Rows (tokens × batch) from which a matrix product runs in f32.
const F32_FROM_ROWS: usize = 8;

/// A weight matrix kept quantized, multiplied in f32 for a prompt.
#[derive(Debug, Clone)]
struct Linear {
    q: Arc<QTensor>,
    mm: QMatMul,
}

impl Linear {
    fn new(q: QTensor) -> Result<Linear> {
        let q = Arc::new(with_simd_kernel(q)?);
        Ok(Linear {
            mm: QMatMul::from_arc(q.clone())?,
            q,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let rows = x.elem_count() / x.dim(D::Minus1)?;
        if rows < F32_FROM_ROWS || !x.device().is_cpu() || x.dtype() != DType::F32 {
            return self.mm.forward(x);
        }
        let w = self.q.dequantize(x.device())?;
        match *x.dims() {
            [b, _, _] => x.matmul(&w.broadcast_left(b)?.t()?),
            _ => x.matmul(&w.t()?),
        }
    }
}

/// A CPU matrix in a quantized type whose matrix–vector product candle-core 0.11 runs in plain
/// scalar code (`k_quants.rs`: Q4_1, Q5_0 and Q5_1 have no AVX or NEON `vec_dot`, Q4_0, Q8_0 and
/// the k-quants do) is re-quantized to Q8_0 once at load. Q8_0 holds every Q4_1/Q5 value within
/// half a step of 1/127 of its block's largest value, far inside the source's own 1/15 or 1/31
/// steps, and a decoding step multiplies it with SIMD: SmolLM2-135M (Q4_1) decodes 1.43× faster
/// (40.2 → 57.6 tok/s in `benches/llm.rs`, same run) for ~60 MB more memory and ~0.8 s more
/// load. Other types, and any type on a GPU, are kept as they are.
fn with_simd_kernel(q: QTensor) -> Result<QTensor> {
    match q.dtype() {
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 if q.device().is_cpu() => {
            QTensor::quantize(&q.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)
        }
        _ => Ok(q),
    }
}

/// RMS normalisation with its weight.
#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn new(q: QTensor, eps: f32) -> Result<RmsNorm> {
        Ok(RmsNorm {
            weight: q.dequantize(&q.device())?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::rms_norm(x, &self.weight, self.eps)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    gate: Linear,
    down: Linear,
    up: Linear,
    attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    cos: Tensor,
    sin: Tensor,
    kv: Option<KvCache>,
}

/// A layer's attention cache: keys and values as `(batch, kv heads, capacity, head dim)`,
/// written in place up to `len`. (Concatenating each step's key onto the cache copied all of
/// it per token per layer: quadratic over a reply.) Clones share the buffer until one of them
/// writes: that one first copies what is written into a buffer of its own, so a cached system
/// prefix is never written through a clone of it.
#[derive(Debug, Clone)]
struct KvCache {
    k: Tensor,
    v: Tensor,
    len: usize,
    /// Counts the clones sharing `k` and `v`.
    sharers: Arc<()>,
}

impl KvCache {
    /// Positions a new cache has room for; it doubles when full (SmolLM2-135M: 12 MB per 256
    /// positions over its 30 layers).
    const START: usize = 256;

    /// An empty cache for keys and values shaped like `k` and `v`.
    fn new(k: &Tensor, v: &Tensor) -> Result<KvCache> {
        Ok(KvCache {
            k: Self::buffer(k, Self::START)?,
            v: Self::buffer(v, Self::START)?,
            len: 0,
            sharers: Arc::new(()),
        })
    }

    /// A zeroed buffer shaped like `t` with `capacity` positions.
    fn buffer(t: &Tensor, capacity: usize) -> Result<Tensor> {
        let (b, h, _, d) = t.dims4()?;
        Tensor::zeros((b, h, capacity, d), t.dtype(), t.device())
    }

    /// Writes `k` and `v` after what is cached; answers the whole cache.
    fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = k.dim(2)?;
        let capacity = self.k.dim(2)?;
        if self.len + n > capacity || Arc::strong_count(&self.sharers) > 1 {
            let capacity = if self.len + n > capacity {
                (2 * capacity).max(self.len + n)
            } else {
                capacity
            };
            self.k = self.copied(&self.k, capacity)?;
            self.v = self.copied(&self.v, capacity)?;
            self.sharers = Arc::new(());
        }
        self.k.slice_set(&k.contiguous()?, 2, self.len)?;
        self.v.slice_set(&v.contiguous()?, 2, self.len)?;
        self.len += n;
        self.current()
    }

    /// A copy of the written part of `t` in a new buffer of `capacity` positions.
    fn copied(&self, t: &Tensor, capacity: usize) -> Result<Tensor> {
        let out = Self::buffer(t, capacity)?;
        if self.len > 0 {
            out.slice_set(&t.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
        }
        Ok(out)
    }

    /// The cached keys and values (views, not copies).
    fn current(&self) -> Result<(Tensor, Tensor)> {
        Ok((
            self.k.narrow(2, 0, self.len)?,
            self.v.narrow(2, 0, self.len)?,
        ))
    }
}

impl Layer {
    fn attention(&mut self, x: &Tensor, mask: Option<&Tensor>, pos: usize) -> Result<Tensor> {
        let (b, n, embd) = x.dims3()?;
        let heads = |t: Tensor, h: usize| -> Result<Tensor> {
            t.reshape((b, n, h, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = heads(self.wq.forward(x)?, self.n_head)?;
        let k = heads(self.wk.forward(x)?, self.n_kv_head)?;
        let v = heads(self.wv.forward(x)?, self.n_kv_head)?;
        let cos = self.cos.narrow(0, pos, n)?;
        let sin = self.sin.narrow(0, pos, n)?;
        // Llama's GGUF convention: interleaved pairs (2i, 2i+1).
        let q = candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?;
        let k = candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?;
        if pos == 0 {
            self.kv = None;
        }
        let cache = match self.kv.take() {
            Some(cache) => cache,
            None => KvCache::new(&k, &v)?,
        };
        let cache = self.kv.insert(cache);
        let (k, v) = cache.append(&k, &v)?;
        let rep = self.n_head / self.n_kv_head;
        let scale = (self.head_dim as f64).sqrt();
        if n == 1 && rep > 1 {
            // One decoding step: each group of `rep` query heads attends to its shared key and
            // value head directly, instead of copying the cache `rep` times (`repeat_kv`).
            let qg = q.reshape((b, self.n_kv_head, rep, self.head_dim))?;
            let att = candle_nn::ops::softmax_last_dim(&(qg.matmul(&k.t()?)? / scale)?)?;
            let y = att.matmul(&v)?.reshape((b, n, embd))?;
            return self.wo.forward(&y);
        }
        let k = repeat_kv(k, rep)?;
        let v = repeat_kv(v, rep)?;
        let att = (q.matmul(&k.t()?)? / scale)?;
        let att = match mask {
            None => att,
            Some(m) => {
                let m = m.broadcast_as(att.shape())?;
                let neg =
                    Tensor::new(f32::NEG_INFINITY, att.device())?.broadcast_as(att.shape())?;
                m.where_cond(&neg, &att)?
            }
        };
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let y = att.matmul(&v.contiguous()?)?;
        let y = y.transpose(1, 2)?.reshape((b, n, embd))?;
        self.wo.forward(&y)
    }

    fn mlp(&self, x: &Tensor) -> Result<Tensor> {
        let g = candle_nn::ops::silu(&self.gate.forward(x)?)?;
        self.down.forward(&(g * self.up.forward(x)?)?)
    }
}

/// A llama-family model loaded from a GGUF file.
#[derive(Debug, Clone)]
pub struct Model {
    embed: candle_nn::Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    masks: HashMap<(usize, usize), Tensor>,
}

impl Model {
    /// Reads the weights the GGUF metadata describes (`llama.*` keys, `blk.N.*` tensors).
    pub fn from_gguf<R: Read + Seek>(
        ct: gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Model> {
        let md = |k: &str| match ct.metadata.get(k) {
            Some(v) => Ok(v),
            None => candle_core::bail!("cannot find {k} in the GGUF metadata"),
        };
        if md("llama.expert_count")
            .and_then(|v| v.to_u32())
            .unwrap_or(0)
            > 1
        {
            candle_core::bail!("mixture-of-experts llama models are not supported");
        }
        let n_head = md("llama.attention.head_count")?.to_u32()? as usize;
        let n_kv_head = md("llama.attention.head_count_kv")?.to_u32()? as usize;
        let blocks = md("llama.block_count")?.to_u32()? as usize;
        let embd = md("llama.embedding_length")?.to_u32()? as usize;
        let rope_dim = md("llama.rope.dimension_count")?.to_u32()? as usize;
        let eps = md("llama.attention.layer_norm_rms_epsilon")?.to_f32()?;
        let base = md("llama.rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(10_000.0);
        let (cos, sin) = rope_tables(rope_dim, base, device)?;
        let embed_q = ct.tensor(reader, "token_embd.weight", device)?;
        let embed = candle_nn::Embedding::new(embed_q.dequantize(device)?, embd);
        let norm = RmsNorm::new(ct.tensor(reader, "output_norm.weight", device)?, eps)?;
        let output = match ct.tensor(reader, "output.weight", device) {
            Ok(t) => Linear::new(t)?,
            Err(_) => Linear::new(embed_q)?, // tied embeddings
        };
        let mut layers = Vec::with_capacity(blocks);
        for i in 0..blocks {
            let mut t = |name: &str| ct.tensor(reader, &format!("blk.{i}.{name}.weight"), device);
            layers.push(Layer {
                wq: Linear::new(t("attn_q")?)?,
                wk: Linear::new(t("attn_k")?)?,
                wv: Linear::new(t("attn_v")?)?,
                wo: Linear::new(t("attn_output")?)?,
                gate: Linear::new(t("ffn_gate")?)?,
                down: Linear::new(t("ffn_down")?)?,
                up: Linear::new(t("ffn_up")?)?,
                attn_norm: RmsNorm::new(t("attn_norm")?, eps)?,
                ffn_norm: RmsNorm::new(t("ffn_norm")?, eps)?,
                n_head,
                n_kv_head,
                head_dim: embd / n_head,
                cos: cos.clone(),
                sin: sin.clone(),
                kv: None,
            });
        }
        Ok(Model {
            embed,
            layers,
            norm,
            output,
            masks: HashMap::new(),
        })
    }

    /// Forgets the attention cache.
    pub fn clear_kv_cache(&mut self) {
        for l in &mut self.layers {
            l.kv = None;
        }
    }

    /// The logits after `x` (`(batch, tokens)` ids) read at position `pos`.
    pub fn forward(&mut self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let (_, n) = x.dims2()?;
        let mask = if n == 1 {
            None
        } else {
            let key = (n, pos + n);
            let mask = match self.masks.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => e.get().clone(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(build_causal_mask(n, pos, x.device())?).clone()
                }
            };
            Some(mask)
        };
        let mut h = self.embed.forward(x)?;
        for l in &mut self.layers {
            let a = l.attention(&l.attn_norm.forward(&h)?, mask.as_ref(), pos)?;
            let h1 = (a + &h)?;
            h = (l.mlp(&l.ffn_norm.forward(&h1)?)? + h1)?;
        }
        let last = self.norm.forward(&h)?.i((.., n - 1, ..))?;
        self.output.forward(&last)
    }
}

/// Rotary embedding tables for `MAX_POSITIONS` positions.
fn rope_tables(dim: usize, base: f32, device: &Device) -> Result<(Tensor, Tensor)> {
    const MAX_POSITIONS: usize = 4096;
    let theta: Vec<f32> = (0..dim)
        .step_by(2)
        .map(|i| 1.0 / base.powf(i as f32 / dim as f32))
        .collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let idx = Tensor::arange(0, MAX_POSITIONS as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((MAX_POSITIONS, 1))?
        .matmul(&theta.reshape((1, theta.elem_count()))?)?;
    Ok((idx.cos()?, idx.sin()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` positions of keys for 2 heads of dimension 3, valued from `start` on.
    fn positions(start: usize, n: usize) -> Tensor {
        let v: Vec<f32> = (start * 6..(start + n) * 6).map(|i| i as f32).collect();
        Tensor::from_vec(v, (1, n, 2, 3), &Device::Cpu)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.contiguous()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn the_cache_holds_what_was_appended_across_growth() {
        let first = positions(0, KvCache::START - 1);
        let mut c = KvCache::new(&first, &first).unwrap();
        c.append(&first, &first).unwrap();
        // Past the first buffer's capacity: it doubles and keeps what was written.
        let more = positions(KvCache::START - 1, 3);
        let (k, v) = c.append(&more, &more).unwrap();
        let whole = positions(0, KvCache::START + 2);
        assert_eq!(k.dims(), whole.dims());
        assert_eq!(values(&k), values(&whole));
        assert_eq!(values(&v), values(&whole));
    }

    #[test]
    fn a_clone_writes_into_its_own_buffer() {
        let prefix = positions(0, 4);
        let mut cached = KvCache::new(&prefix, &prefix).unwrap();
        cached.append(&prefix, &prefix).unwrap();
        let mut a = cached.clone();
        let mut b = cached.clone();
        a.append(&positions(4, 2), &positions(4, 2)).unwrap();
        let (kb, _) = b.append(&positions(100, 1), &positions(100, 1)).unwrap();
        // The cached prefix is untouched, and each clone sees its own continuation.
        assert_eq!(values(&cached.current().unwrap().0), values(&prefix));
        assert_eq!(values(&a.current().unwrap().0), values(&positions(0, 6)));
        let want = Tensor::cat(&[&prefix, &positions(100, 1)], 2).unwrap();
        assert_eq!(values(&kb), values(&want));
    }
}
