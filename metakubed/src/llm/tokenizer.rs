//! The tokenizer and chat template of a GGUF model, from its own metadata: the vocabulary
//! (`tokenizer.ggml.tokens`), merges, special tokens and `tokenizer.chat_template`, built into
//! a byte-level BPE with the tokenizers crate. No `tokenizer.json` is needed beside the model.

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, Tokenizer};

use super::LlmError;

/// The tokenizer and prompt format of one model.
pub struct GgufTokenizer {
    /// The byte-level BPE.
    pub tokenizer: Tokenizer,
    /// Ids that end generation (end of sequence, end of turn).
    pub stop_ids: Vec<u32>,
    /// The Jinja chat template, when the model ships one.
    pub chat_template: Option<String>,
    /// Beginning-of-sequence text, for templates that use it.
    pub bos: String,
    /// End-of-sequence text.
    pub eos: String,
}

fn md<'a>(ct: &'a Content, key: &str) -> Result<&'a Value, LlmError> {
    ct.metadata
        .get(key)
        .ok_or_else(|| LlmError::Model(format!("GGUF metadata has no {key}")))
}

fn strings(v: &Value, key: &str) -> Result<Vec<String>, LlmError> {
    v.to_vec()
        .map_err(|e| LlmError::Model(format!("{key}: {e}")))?
        .iter()
        .map(|x| {
            x.to_string()
                .cloned()
                .map_err(|e| LlmError::Model(format!("{key}: {e}")))
        })
        .collect()
}

impl GgufTokenizer {
    /// Builds the tokenizer from a GGUF file's metadata.
    pub fn from_gguf(ct: &Content) -> Result<GgufTokenizer, LlmError> {
        let model = md(ct, "tokenizer.ggml.model")?
            .to_string()
            .map_err(|e| LlmError::Model(e.to_string()))?;
        if model != "gpt2" {
            return Err(LlmError::Model(format!(
                "tokenizer model {model:?} is not supported (byte-level BPE, \"gpt2\", is)"
            )));
        }
        let tokens = strings(md(ct, "tokenizer.ggml.tokens")?, "tokenizer.ggml.tokens")?;
        let merges = strings(md(ct, "tokenizer.ggml.merges")?, "tokenizer.ggml.merges")?;
        let types: Vec<i32> = ct
            .metadata
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.to_vec().ok())
            .map(|v| v.iter().map(|x| x.to_i32().unwrap_or(1)).collect())
            .unwrap_or_default();
        let vocab: tokenizers::models::bpe::Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let merges: Vec<(String, String)> = merges
            .iter()
            .filter_map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            })
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| LlmError::Model(format!("building the BPE: {e}")))?;
        let mut tokenizer = Tokenizer::new(bpe);
        let pre = ct
            .metadata
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let byte_level = ByteLevel::new(false, true, true);
        // llama.cpp's "smollm" pre-tokenizer splits digits one by one before the GPT-2 regex.
        if pre == "smollm" {
            tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                PreTokenizerWrapper::ByteLevel(byte_level),
            ])));
        } else {
            tokenizer.with_pre_tokenizer(Some(byte_level));
        }
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
        // Control tokens (type 3) are special: never split, skipped when decoding.
        let special: Vec<AddedToken> = tokens
            .iter()
            .zip(types.iter().chain(std::iter::repeat(&1)))
            .filter(|(_, t)| **t == 3 || **t == 4)
            .map(|(s, _)| AddedToken::from(s.clone(), true))
            .collect();
        tokenizer.add_special_tokens(&special);
        let id = |key: &str| ct.metadata.get(key).and_then(|v| v.to_u32().ok());
        let mut stop_ids: Vec<u32> = id("tokenizer.ggml.eos_token_id").into_iter().collect();
        for t in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"] {
            if let Some(i) = tokens.iter().position(|x| x == t) {
                if !stop_ids.contains(&(i as u32)) {
                    stop_ids.push(i as u32);
                }
            }
        }
        let text_of = |i: Option<u32>| {
            i.and_then(|i| tokens.get(i as usize).cloned())
                .unwrap_or_default()
        };
        Ok(GgufTokenizer {
            bos: text_of(id("tokenizer.ggml.bos_token_id")),
            eos: text_of(id("tokenizer.ggml.eos_token_id")),
            stop_ids,
            chat_template: ct
                .metadata
                .get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok())
                .cloned(),
            tokenizer,
        })
    }

    /// Token ids of a text (special tokens in it are recognised).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        Ok(self
            .tokenizer
            .encode(text, false)
            .map_err(|e| LlmError::Model(format!("tokenizing: {e}")))?
            .get_ids()
            .to_vec())
    }

    /// Text of token ids, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, LlmError> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| LlmError::Model(format!("detokenizing: {e}")))
    }

    /// The chat prompt split where the user message begins: the part before depends only on
    /// the system message, so its attention cache can be computed once and reused.
    pub fn chat_split(&self, system: &str, user: &str) -> Result<(String, String), LlmError> {
        const MARK: &str = "\u{1}metakube-user-message\u{1}";
        let whole = self.chat(system, MARK)?;
        match whole.split_once(MARK) {
            Some((before, after)) => Ok((before.to_string(), format!("{user}{after}"))),
            None => Ok((String::new(), self.chat(system, user)?)),
        }
    }

    /// The chat prompt for a system and a user message, through the model's own template;
    /// ChatML when it ships none.
    pub fn chat(&self, system: &str, user: &str) -> Result<String, LlmError> {
        let Some(tpl) = &self.chat_template else {
            return Ok(format!(
                "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
            ));
        };
        let mut env = minijinja::Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template("chat", tpl)
            .map_err(|e| LlmError::Model(format!("chat template: {e}")))?;
        let t = env
            .get_template("chat")
            .map_err(|e| LlmError::Model(format!("chat template: {e}")))?;
        t.render(minijinja::context! {
            messages => vec![
                minijinja::context! { role => "system", content => system },
                minijinja::context! { role => "user", content => user },
            ],
            add_generation_prompt => true,
            enable_thinking => false,
            bos_token => self.bos.clone(),
            eos_token => self.eos.clone(),
        })
        .map_err(|e| LlmError::Model(format!("chat template: {e}")))
    }
}
