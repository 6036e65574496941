//! The OpenAI-compatible backend: `POST {endpoint}/chat/completions` with `stream: true`,
//! reading server-sent events. vLLM, llama.cpp's server and Ollama all speak it; this is how a
//! team serves a bigger model (e.g. a Qwen3-8B fine-tune) to many workstations.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use super::{Explainer, Generation, LlmConfig, LlmError, Prompt};

/// Longest a whole generation may take.
const GENERATION_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most of an error answer's body kept for the message.
const ERROR_BODY_BYTES: usize = 64 << 10;

/// How the endpoint is reached: plain HTTP, or TLS with the system's CA roots.
#[derive(Clone)]
enum Connector {
    Plain(HttpConnector),
    Tls(hyper_rustls::HttpsConnector<HttpConnector>),
}

impl Connector {
    fn for_url(url: &str) -> Result<Connector, String> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        if !url.starts_with("https://") {
            return Ok(Connector::Plain(http));
        }
        http.enforce_http(false);
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("cannot load the system's CA certificates: {e}"))?
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        Ok(Connector::Tls(tls))
    }

    /// Sends one request on a fresh client (the runtime it runs on may differ per call).
    async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let builder = Client::builder(TokioExecutor::new());
        match self {
            Connector::Plain(c) => builder.build(c.clone()).request(req).await,
            Connector::Tls(c) => builder.build(c.clone()).request(req).await,
        }
    }
}

/// A chat-completions endpoint.
pub struct OpenAi {
    endpoint: String,
    model: String,
    key: Option<String>,
    temperature: f64,
    seed: u64,
    connector: Connector,
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
        let err = |message: String| LlmError::Endpoint {
            endpoint: endpoint.clone(),
            message,
        };
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            return Err(err("the endpoint must be an http:// or https:// URL".into()));
        }
        let key = match &cfg.api_key_env {
            Some(var) => Some(
                std::env::var(var)
                    .map_err(|_| err(format!("API key variable {var} is not set")))?,
            ),
            None => None,
        };
        let connector = Connector::for_url(&endpoint).map_err(err)?;
        Ok(OpenAi {
            endpoint,
            model: cfg.api_model.clone(),
            key,
            temperature: cfg.temperature,
            seed: cfg.seed,
            connector,
        })
    }

    fn err(&self, message: impl Into<String>) -> LlmError {
        LlmError::Endpoint {
            endpoint: self.endpoint.clone(),
            message: message.into(),
        }
    }

    /// Posts the request and reads the answer's server-sent events (parsed by `sse-stream`
    /// as the HTML standard defines them: CRLF or LF, comments, fields split across lines
    /// and across reads).
    async fn stream(
        &self,
        body: Value,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, LlmError> {
        let start = Instant::now();
        let mut req = Request::post(format!("{}/chat/completions", self.endpoint))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "text/event-stream");
        if let Some(k) = &self.key {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {k}"));
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| self.err(format!("building the request: {e}")))?;
        let resp = self
            .connector
            .send(req)
            .await
            .map_err(|e| self.err(error_chain(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            let text = match Limited::new(resp.into_body(), ERROR_BODY_BYTES)
                .collect()
                .await
            {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                Err(e) => format!("(the body could not be read: {e})"),
            };
            return Err(self.err(format!(
                "HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            )));
        }
        let mut events = sse_stream::SseStream::new(resp.into_body());
        let mut g = Generation::default();
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| self.err(format!("reading the stream: {e}")))?;
            let Some(data) = event.data else {
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

/// An error with its causes ("client error (Connect): tcp connect error: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
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
        let work = async {
            tokio::time::timeout(GENERATION_TIMEOUT, self.stream(body, on_text))
                .await
                .unwrap_or_else(|_| {
                    Err(self.err(format!(
                        "no complete answer within {} s",
                        GENERATION_TIMEOUT.as_secs()
                    )))
                })
        };
        // The daemon generates on a blocking thread of its runtime; elsewhere (tests, benches)
        // a runtime of its own runs the request.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt.block_on(work),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| self.err(format!("cannot start an I/O runtime: {e}")))?
                .block_on(work),
        }
    }
}
