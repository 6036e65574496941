//! The OpenAI-compatible backend: `POST {endpoint}/chat/completions` with `stream: true`,
//! reading server-sent events. vLLM, llama.cpp's server and Ollama all speak it; this is how a
//! team serves a bigger model (e.g. a Qwen3-8B fine-tune) to many workstations.

use std::io::BufRead;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Explainer, Generation, LlmConfig, LlmError, Prompt};

/// A chat-completions endpoint.
pub struct OpenAi {
    endpoint: String,
    model: String,
    key: Option<String>,
    temperature: f64,
    seed: u64,
    agent: ureq::Agent,
}

impl OpenAi {
    /// A client for the configured endpoint (nothing is sent until a generation).
    pub fn new(cfg: &LlmConfig) -> Result<OpenAi, LlmError> {
        let endpoint = cfg
            .endpoint
            .clone()
            .ok_or_else(|| LlmError::Model("the openai backend needs [llm] endpoint".into()))?
            .trim_end_matches('/')
            .to_string();
        let key = match &cfg.api_key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| LlmError::Endpoint {
                endpoint: endpoint.clone(),
                message: format!("API key variable {var} is not set"),
            })?),
            None => None,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(OpenAi {
            endpoint,
            model: cfg.api_model.clone(),
            key,
            temperature: cfg.temperature,
            seed: cfg.seed,
            agent,
        })
    }

    fn err(&self, message: impl Into<String>) -> LlmError {
        LlmError::Endpoint {
            endpoint: self.endpoint.clone(),
            message: message.into(),
        }
    }
}

impl Explainer for OpenAi {
    fn name(&self) -> String {
        format!("openai:{} at {}", self.model, self.endpoint)
    }

    fn count_tokens(&self, text: &str) -> usize {
        // No tokenizer for a remote model: about four characters a token.
        text.len().div_ceil(4)
    }

    fn generate(
        &mut self,
        prompt: &Prompt,
        max_tokens: usize,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, LlmError> {
        let start = Instant::now();
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "stream": true,
        });
        let mut req = self
            .agent
            .post(format!("{}/chat/completions", self.endpoint))
            .header("Accept", "text/event-stream");
        if let Some(k) = &self.key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        let resp = req.send_json(&body).map_err(|e| self.err(e.to_string()))?;
        let status = resp.status();
        let mut reader = std::io::BufReader::new(resp.into_body().into_reader());
        if !status.is_success() {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut reader, &mut s);
            return Err(self.err(format!(
                "HTTP {status}: {}",
                s.chars().take(300).collect::<String>()
            )));
        }
        let mut g = Generation::default();
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| self.err(format!("reading the stream: {e}")))?;
            if n == 0 {
                break;
            }
            let Some(data) = line.trim().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                break;
            }
            let v: Value = serde_json::from_str(data)
                .map_err(|e| self.err(format!("bad event {data:?}: {e}")))?;
            if let Some(u) = v.get("usage").and_then(|u| u.get("prompt_tokens")) {
                g.prompt_tokens = u.as_u64().unwrap_or(0) as usize;
            }
            let piece = v
                .pointer("/choices/0/delta/content")
                .or_else(|| v.pointer("/choices/0/text"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if piece.is_empty() {
                continue;
            }
            if g.tokens == 0 {
                g.first_token_ms = start.elapsed().as_secs_f64() * 1000.0;
            }
            g.tokens += 1;
            g.text.push_str(piece);
            if !on_text(piece) {
                break;
            }
        }
        g.total_ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok(g)
    }
}
