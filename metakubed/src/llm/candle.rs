//! The local backend: a quantized GGUF model through candle (llama family — SmolLM2, Llama,
//! Mistral-style — by [`super::llama`], whose prompt reading runs in f32; Qwen2 and Qwen3 by
//! candle-transformers), chosen by `general.architecture`.

use std::path::Path;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::{quantized_qwen2, quantized_qwen3};

use super::clauses::FactGrammar;
use super::constrain::Allowed;
use super::llama;
use super::tokenizer::GgufTokenizer;
use super::{Constrain, Explainer, Generation, LlmConfig, LlmError, Prompt};

enum Weights {
    Llama(llama::Model),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
}

impl Weights {
    fn forward(&mut self, x: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Llama(m) => m.forward(x, pos),
            Weights::Qwen2(m) => m.forward(x, pos),
            Weights::Qwen3(m) => m.forward(x, pos),
        }
    }

    /// A copy sharing the weights (and holding a copy of the attention cache), where the
    /// architecture's type allows it.
    fn clonable(&self) -> bool {
        !matches!(self, Weights::Qwen2(_))
    }

    fn try_clone(&self) -> Option<Weights> {
        match self {
            Weights::Llama(m) => Some(Weights::Llama(m.clone())),
            Weights::Qwen3(m) => Some(Weights::Qwen3(m.clone())),
            Weights::Qwen2(_) => None,
        }
    }

    fn clear(&mut self) {
        match self {
            Weights::Llama(m) => m.clear_kv_cache(),
            Weights::Qwen2(m) => m.clear_kv_cache(),
            Weights::Qwen3(m) => m.clear_kv_cache(),
        }
    }
}

/// A GGUF model kept loaded.
pub struct CandleLlm {
    weights: Weights,
    tok: GgufTokenizer,
    device: Device,
    file: String,
    arch: String,
    temperature: f64,
    seed: u64,
    repeat_penalty: f32,
    /// How generation is held to the facts.
    constrain: Constrain,
    /// Each token's text, for constrained generation (see [`pieces`]).
    pieces: std::sync::OnceLock<Vec<String>>,
    /// The system part of the prompt, already run through the model: (text, tokens, model
    /// with that attention cache).
    prefix: Option<(String, usize, Weights)>,
}

/// The device named in the configuration.
pub fn device(name: &str) -> Result<Device, LlmError> {
    Ok(match name {
        "cpu" => Device::Cpu,
        "cuda" => Device::new_cuda(0)?,
        "metal" => Device::new_metal(0)?,
        _ => {
            if candle_core::utils::cuda_is_available() {
                Device::new_cuda(0)?
            } else if candle_core::utils::metal_is_available() {
                Device::new_metal(0)?
            } else {
                Device::Cpu
            }
        }
    })
}

impl CandleLlm {
    /// Loads a GGUF file: tokenizer and chat template from its metadata, weights onto the
    /// configured device.
    pub fn load(path: &Path, cfg: &LlmConfig) -> Result<CandleLlm, LlmError> {
        let read_err = |source| LlmError::Read {
            path: path.into(),
            source,
        };
        let mut f = std::io::BufReader::new(std::fs::File::open(path).map_err(read_err)?);
        let ct = gguf_file::Content::read(&mut f)
            .map_err(|e| LlmError::Model(format!("{} is not a GGUF file: {e}", path.display())))?;
        let arch = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| "llama".into());
        let tok = GgufTokenizer::from_gguf(&ct)?;
        let device = device(&cfg.device)?;
        let weights = match arch.as_str() {
            "llama" | "mistral" => Weights::Llama(llama::Model::from_gguf(ct, &mut f, &device)?),
            "qwen2" => Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(
                ct, &mut f, &device,
            )?),
            "qwen3" => Weights::Qwen3(quantized_qwen3::ModelWeights::from_gguf(
                ct, &mut f, &device,
            )?),
            other => {
                return Err(LlmError::Model(format!(
                    "architecture {other:?} is not supported (llama, mistral, qwen2, qwen3 are)"
                )))
            }
        };
        let m = CandleLlm {
            weights,
            tok,
            device,
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            arch,
            temperature: cfg.temperature,
            seed: cfg.seed,
            repeat_penalty: cfg.repeat_penalty,
            constrain: cfg.constrain,
            pieces: std::sync::OnceLock::new(),
            prefix: None,
        };
        // Each token's text, read now (while the daemon loads in the background) rather than
        // in the first explanation a user waits for.
        if m.constrain != Constrain::Off {
            pieces(&m.pieces, &m.tok);
        }
        Ok(m)
    }

    /// The tokenizer (for tests and prompt bounding).
    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tok
    }

    /// Generates from already formatted prompt text.
    pub fn generate_raw(
        &mut self,
        text: &str,
        max_tokens: usize,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, LlmError> {
        self.generate_split("", text, Guide::Free, max_tokens, on_text)
    }

    /// A copy of the model that has read `prefix` (the system part of a prompt), and how many
    /// tokens that is: from the cache kept for the last prefix, or read now and kept.
    fn after_prefix(&mut self, prefix: &str) -> Result<(usize, Weights), LlmError> {
        let clone = |w: &Weights| w.try_clone().ok_or_else(|| LlmError::Model("clone".into()));
        if let Some((t, n, w)) = &self.prefix {
            if t == prefix {
                return Ok((*n, clone(w)?));
            }
        }
        let mut w = clone(&self.weights)?;
        w.clear();
        let n = if prefix.is_empty() {
            0
        } else {
            let ids = self.tok.encode(prefix)?;
            let input = Tensor::new(ids.as_slice(), &self.device)?.unsqueeze(0)?;
            w.forward(&input, 0)?;
            ids.len()
        };
        let copy = clone(&w)?;
        self.prefix = Some((prefix.to_string(), n, w));
        Ok((n, copy))
    }

    /// Generates from a prompt in two parts: `prefix` (the system part; its attention cache is
    /// kept and reused while it does not change) and `rest`, held to the facts as `guide` says
    /// (greedily when it holds them at all).
    pub fn generate_split(
        &mut self,
        prefix: &str,
        rest: &str,
        guide: Guide<'_>,
        max_tokens: usize,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, LlmError> {
        let start = Instant::now();
        // A copy that has read the system part (cached); Qwen2's type cannot be copied, so it
        // runs in place from an empty cache.
        let copy = if self.weights.clonable() {
            Some(self.after_prefix(prefix)?)
        } else {
            self.weights.clear();
            None
        };
        let s = Settings {
            tok: &self.tok,
            device: &self.device,
            temperature: self.temperature,
            seed: self.seed,
            repeat_penalty: self.repeat_penalty,
            constraint: match guide {
                Guide::Free => None,
                g => Some((g, pieces(&self.pieces, &self.tok))),
            },
        };
        match copy {
            Some((offset, mut weights)) => {
                decode_loop(&s, &mut weights, offset, rest, max_tokens, on_text, start)
            }
            None => {
                let text = format!("{prefix}{rest}");
                decode_loop(&s, &mut self.weights, 0, &text, max_tokens, on_text, start)
            }
        }
    }
}

/// Each token's text (a constrained generation's vocabulary), built at its first use.
fn pieces<'a>(cell: &'a std::sync::OnceLock<Vec<String>>, tok: &GgufTokenizer) -> &'a [String] {
    cell.get_or_init(|| {
        (0..tok.tokenizer.get_vocab_size(true) as u32)
            .map(|id| tok.decode(&[id]).unwrap_or_default())
            .collect()
    })
}

/// How a generation is held to the facts.
#[derive(Debug, Clone, Copy)]
pub enum Guide<'a> {
    /// Not at all: sampled or greedy over every token.
    Free,
    /// Only these words.
    Words(&'a Allowed),
    /// Only sentences of this grammar.
    Clauses(&'a FactGrammar),
}

struct Settings<'a> {
    tok: &'a GgufTokenizer,
    device: &'a Device,
    temperature: f64,
    seed: u64,
    repeat_penalty: f32,
    /// What holds the text to the facts, and each token's text.
    constraint: Option<(Guide<'a>, &'a [String])>,
}

/// Tokens tried, most likely first, for one constrained step.
const CONSTRAINED_CANDIDATES: usize = 256;

/// The most likely token whose text `allows` (a stop token when `may_stop`). When none of the
/// likeliest is allowed, the text ends — or, with `search_all`, the likeliest allowed token of
/// the whole vocabulary is taken (a grammar always has one until it is finished).
fn constrained_pick(
    logits: &Tensor,
    pieces: &[String],
    stop: &[u32],
    may_stop: bool,
    search_all: bool,
    allows: &dyn Fn(&str) -> bool,
) -> Result<u32, LlmError> {
    let v: Vec<f32> = logits.to_vec1()?;
    let ok = |i: usize| {
        let id = i as u32;
        if stop.contains(&id) {
            may_stop
        } else {
            pieces.get(i).is_some_and(|p| !p.is_empty() && allows(p))
        }
    };
    let mut idx: Vec<usize> = (0..v.len()).collect();
    let k = CONSTRAINED_CANDIDATES.min(idx.len());
    if k < idx.len() {
        idx.select_nth_unstable_by(k, |a, b| v[*b].total_cmp(&v[*a]));
        idx.truncate(k);
    }
    idx.sort_by(|a, b| v[*b].total_cmp(&v[*a]));
    if let Some(i) = idx.into_iter().find(|&i| ok(i)) {
        return Ok(i as u32);
    }
    if search_all {
        if let Some(i) = (0..v.len())
            .filter(|&i| ok(i))
            .max_by(|a, b| v[*a].total_cmp(&v[*b]))
        {
            return Ok(i as u32);
        }
    }
    stop.first()
        .copied()
        .ok_or_else(|| LlmError::Model("no stop token".into()))
}

/// Prompt tokens read per forward pass (between two checks that the client is still there). A
/// llama model dequantizes its matrices once per pass (~80 ms for SmolLM2-135M), so passes are
/// long: 256 tokens take under a second to read.
const PREFILL_CHUNK: usize = 256;

/// Prefill from `offset`, then decode greedily (or by sampling) until a stop token or
/// `max_tokens`, streaming complete characters to `on_text`.
fn decode_loop(
    s: &Settings<'_>,
    weights: &mut Weights,
    offset: usize,
    text: &str,
    max_tokens: usize,
    on_text: &mut dyn FnMut(&str) -> bool,
    start: Instant,
) -> Result<Generation, LlmError> {
    let prompt = s.tok.encode(text)?;
    if prompt.is_empty() {
        return Err(LlmError::Model("empty prompt".into()));
    }
    let sampling = if s.temperature <= 0.0 {
        Sampling::ArgMax
    } else {
        Sampling::All {
            temperature: s.temperature,
        }
    };
    let mut lp = LogitsProcessor::from_sampling(s.seed, sampling);
    let mut out: Vec<u32> = Vec::new();
    let mut emitted = String::new();
    // A grammar's reading of the text so far, the text, and how much of it was given out.
    let mut grammar = match s.constraint {
        Some((Guide::Clauses(g), _)) => Some(g.start()),
        _ => None,
    };
    let mut written = String::new();
    let mut said = 0;
    let mut first_token_ms = 0.0;
    // The prompt is read in chunks, asking between them whether to go on (`on_text("")`): a
    // client that left stops the prefill too, not only the decoding. Qwen2's mask does not
    // take a cache offset for several tokens, so it reads its prompt in one pass.
    let chunk = if weights.clonable() {
        PREFILL_CHUNK
    } else {
        prompt.len()
    };
    let mut logits = None;
    for (k, part) in prompt.chunks(chunk).enumerate() {
        if !on_text("") {
            return Ok(Generation {
                text: String::new(),
                prompt_tokens: offset + k * chunk,
                tokens: 0,
                first_token_ms: 0.0,
                total_ms: start.elapsed().as_secs_f64() * 1000.0,
            });
        }
        let input = Tensor::new(part, s.device)?.unsqueeze(0)?;
        logits = Some(weights.forward(&input, offset + k * chunk)?);
    }
    let Some(mut logits) = logits else {
        return Err(LlmError::Model("empty prompt".into()));
    };
    for i in 0..max_tokens {
        let l = logits.squeeze(0)?.to_dtype(candle_core::DType::F32)?;
        let l = if s.repeat_penalty == 1.0 || out.is_empty() {
            l
        } else {
            let from = out.len().saturating_sub(64);
            candle_transformers::utils::apply_repeat_penalty(&l, s.repeat_penalty, &out[from..])?
        };
        let stop = &s.tok.stop_ids;
        let next = match s.constraint {
            Some((Guide::Words(allowed), pieces)) => {
                constrained_pick(&l, pieces, stop, true, false, &|p| {
                    allowed.allows(&emitted, p)
                })?
            }
            Some((Guide::Clauses(_), pieces)) => match &grammar {
                Some(st) => {
                    constrained_pick(&l, pieces, stop, st.may_stop(), true, &|p| st.allows(p))?
                }
                None => break,
            },
            Some((Guide::Free, _)) | None => lp.sample(&l)?,
        };
        if i == 0 {
            first_token_ms = start.elapsed().as_secs_f64() * 1000.0;
        }
        if stop.contains(&next) {
            break;
        }
        out.push(next);
        if let (Some(st), Some((_, pieces))) = (grammar.take(), s.constraint) {
            // Held to a grammar: the text is the tokens' pieces, given out a whole sentence at
            // a time (a sentence the token limit cuts is never shown).
            let piece = pieces.get(next as usize).map_or("", String::as_str);
            let Some(st) = st.after(piece) else { break };
            written.push_str(piece);
            if st.at_boundary() && written.len() > said {
                let sentence = written[said..].to_string();
                said = written.len();
                if !on_text(&sentence) {
                    break;
                }
            }
            if st.finished() {
                break;
            }
            grammar = Some(st);
        } else {
            let text = s.tok.decode(&out)?;
            // Emit only complete characters (a multi-byte character may span tokens).
            if text.len() > emitted.len() && !text.ends_with('\u{fffd}') {
                let piece = text[emitted.len()..].to_string();
                emitted = text;
                if !on_text(&piece) {
                    break;
                }
            }
        }
        let input = Tensor::new(&[next], s.device)?.unsqueeze(0)?;
        logits = weights.forward(&input, offset + prompt.len() + out.len() - 1)?;
    }
    let text = match s.constraint {
        Some((Guide::Clauses(_), _)) => {
            written.truncate(said);
            written
        }
        _ => s.tok.decode(&out)?,
    };
    Ok(Generation {
        text,
        prompt_tokens: offset + prompt.len(),
        tokens: out.len(),
        first_token_ms,
        total_ms: start.elapsed().as_secs_f64() * 1000.0,
    })
}

impl Explainer for CandleLlm {
    fn name(&self) -> String {
        let dev = match &self.device {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
            Device::Metal(_) => "metal",
        };
        format!("candle:{} ({}, {dev})", self.file, self.arch)
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.tok.encode(text).map_or(text.len() / 3, |v| v.len())
    }

    fn prepare(&mut self, system: &str) -> Result<(), LlmError> {
        if self.weights.clonable() {
            let (prefix, _) = self.tok.chat_split(system, "")?;
            self.after_prefix(&prefix)?;
        }
        Ok(())
    }

    fn generate(
        &mut self,
        prompt: &Prompt,
        max_tokens: usize,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, LlmError> {
        let (prefix, rest) = self.tok.chat_split(&prompt.system, &prompt.user)?;
        match self.constrain {
            Constrain::Off => self.generate_split(&prefix, &rest, Guide::Free, max_tokens, on_text),
            Constrain::Words => {
                let (words, stems) = super::faithfulness::Lexicon::builtin().free_words();
                let allowed = Allowed::new(&prompt.user, words, stems);
                self.generate_split(&prefix, &rest, Guide::Words(&allowed), max_tokens, on_text)
            }
            Constrain::Clauses => {
                // About three bytes a token, as these facts tokenize (names, numbers, logs).
                let g = FactGrammar::from_facts(&prompt.user).within(max_tokens * 3);
                if g.is_empty() {
                    return Err(LlmError::Model(format!(
                        "no sentence of the facts fits in {max_tokens} tokens with the fix (raise [llm] max_tokens)"
                    )));
                }
                self.generate_split(&prefix, &rest, Guide::Clauses(&g), max_tokens, on_text)
            }
        }
    }
}
