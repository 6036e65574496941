//! Request routing and the handlers of protocol v1.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::FutureExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use jiff::Timestamp;
use metakube_shared::{
    ChangesRequest, ChangesResponse, ComponentState, DiagnoseRequest, Diagnosis, ErrorBody,
    ErrorCode, Explanation, FeedbackOutcome, FeedbackRequest, FeedbackResponse, Health, Pathway,
    ProtocolVersion, Snapshot, Stats, StreamEvent, NDJSON, PROTOCOL, PROTOCOL_HEADER,
};
use serde::Serialize;
use tracing::{error, info};

use super::State;
use crate::engine::Recall;
use crate::history::History;
use crate::store::{FeedbackRecord, StoredDiagnosis};

type Body = BoxBody<Bytes, std::convert::Infallible>;
type Resp = Response<Body>;

pub(super) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub(super) fn json<T: Serialize>(status: StatusCode, body: &T) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(PROTOCOL_HEADER, PROTOCOL.to_string())
        .body(full(bytes))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

pub(super) fn error(
    state: &State,
    status: StatusCode,
    code: ErrorCode,
    message: impl Into<String>,
) -> Resp {
    state.metrics.rejected.inc();
    let mut body = ErrorBody::new(code, message);
    if code == ErrorCode::ProtocolMismatch {
        body.server_protocols = vec![PROTOCOL];
    }
    json(status, &body)
}

/// Entry point for every request; a panic inside a handler becomes a 500, never a crash.
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Resp, std::convert::Infallible> {
    let st = state.clone();
    match AssertUnwindSafe(route(state, req)).catch_unwind().await {
        Ok(r) => Ok(r),
        Err(_) => {
            st.metrics.panics.inc();
            error!("request handler panicked");
            Ok(error(
                &st,
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "the daemon hit an internal error on this request; it is still running",
            ))
        }
    }
}

async fn route(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (method.clone(), path.as_str()) {
        (Method::GET, "/v1/health") => health(&state),
        (Method::GET, "/v1/stats") => stats(&state).await,
        (Method::GET, "/metrics") => Response::builder()
            .header(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .body(full(state.metrics.render(state.started.elapsed().as_secs_f64())))
            .unwrap_or_else(|_| Response::new(full(Bytes::new()))),
        (Method::POST, "/v1/diagnose") => diagnose(state, req).await,
        (Method::POST, "/v1/feedback") => feedback(state, req).await,
        (Method::POST, "/v1/changes") => changes(state, req).await,
        (_, p) if p.starts_with("/v1/memory") => super::memory_routes::route(state, req).await,
        (_, "/v1/health" | "/v1/stats" | "/metrics" | "/v1/diagnose" | "/v1/feedback" | "/v1/changes") => {
            error(&state, StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed, format!("{method} is not allowed on {path}"))
        }
        _ => error(&state, StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("no endpoint {path}; protocol v1 serves /v1/health, /v1/diagnose, /v1/feedback, /v1/changes, /v1/stats, /v1/memory/… and /metrics")),
    }
}

fn health(state: &State) -> Resp {
    let mut components = state
        .components
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    // Memory changes with every feedback, and the store's writes can start failing (a full
    // disk): report both live.
    let warm = state.warm.borrow().clone();
    if let (Some(why), Some(c)) = (
        warm.as_ref().and_then(|w| w.store.failing()),
        components.iter_mut().find(|c| c.name == "store"),
    ) {
        c.state = ComponentState::Failed;
        c.detail = why;
    }
    let memory = warm.and_then(|w| w.memory.clone());
    if let (Some(m), Some(c)) = (
        memory,
        components.iter_mut().find(|c| c.name == "episode_index"),
    ) {
        let s = m.stats();
        c.detail = format!(
            "{} episodes in {} patterns, FAISS {}, θ {:.2}",
            s.episodes, s.patterns, s.index, s.theta
        );
    }
    json(
        StatusCode::OK,
        &Health {
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: PROTOCOL,
            uptime_s: state.started.elapsed().as_secs_f64(),
            pid: std::process::id(),
            components,
        },
    )
}

async fn stats(state: &State) -> Resp {
    // Counts come from the store: wait until it is open (health never waits).
    let warm = state.warm().await;
    let (stored, fb) = match warm {
        Some(w) => tokio::task::spawn_blocking(move || w.store.counts().unwrap_or((0, 0)))
            .await
            .unwrap_or((0, 0)),
        None => (0, 0),
    };
    let m = &state.metrics;
    json(
        StatusCode::OK,
        &Stats {
            diagnoses: m.diagnoses.get(),
            intuitive: m.intuitive.get(),
            rejected: m.rejected.get(),
            feedback_total: fb,
            diagnoses_stored: stored,
            latency_p50_ms: m.quantile(0.5),
            latency_p99_ms: m.quantile(0.99),
        },
    )
}

/// The warm state, waiting for it to load; 503 when the daemon is shutting down.
pub(super) async fn warm_or_unavailable(state: &State) -> Result<Arc<super::Warm>, Resp> {
    state.warm().await.ok_or_else(|| {
        error(
            state,
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "the daemon is shutting down",
        )
    })
}

/// Bodies up to this size are parsed on the runtime's thread (microseconds).
const INLINE_PARSE_BYTES: usize = 256 * 1024;

/// Checks the protocol header and reads a JSON body within the size limit.
pub(super) async fn read_body<T: serde::de::DeserializeOwned + Send + 'static>(
    state: &State,
    req: Request<Incoming>,
    what: &str,
) -> Result<T, Resp> {
    let client = match req
        .headers()
        .get(PROTOCOL_HEADER)
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => {
            return Err(error(
                state,
                StatusCode::BAD_REQUEST,
                ErrorCode::ProtocolMismatch,
                format!("missing {PROTOCOL_HEADER} header; this daemon speaks protocol {PROTOCOL}"),
            ));
        }
        Some(v) => v.parse::<ProtocolVersion>().map_err(|e| {
            error(
                state,
                StatusCode::BAD_REQUEST,
                ErrorCode::ProtocolMismatch,
                e,
            )
        })?,
    };
    if !PROTOCOL.compatible_with(client) {
        return Err(error(
            state,
            StatusCode::BAD_REQUEST,
            ErrorCode::ProtocolMismatch,
            format!("client speaks protocol {client}, this daemon speaks {PROTOCOL}: upgrade the {} so both use major version {}", if client > PROTOCOL { "daemon" } else { "plugin" }, client.major.max(PROTOCOL.major)),
        ));
    }
    let limit = state.config.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(error(state, StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge, format!("{what} body of {} bytes exceeds the daemon's limit of {limit} bytes (max_body_bytes)", declared.unwrap_or(0))));
    }
    let collected = tokio::time::timeout(
        super::BODY_TIMEOUT,
        Limited::new(req.into_body(), limit).collect(),
    )
    .await;
    let Ok(collected) = collected else {
        return Err(error(
            state,
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::BadRequest,
            format!(
                "the {what} body did not arrive within {} s",
                super::BODY_TIMEOUT.as_secs()
            ),
        ));
    };
    let body = match collected {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(error(
                state,
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooLarge,
                format!("{what} body exceeds the daemon's limit of {limit} bytes (max_body_bytes)"),
            ));
        }
        Err(e) => {
            return Err(error(
                state,
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                format!("could not read the {what} body: {e}"),
            ))
        }
    };
    let t = Instant::now();
    let bytes = body.len();
    // A large snapshot takes a tenth of a second or more to parse: on a blocking thread, so the
    // runtime's workers keep answering health checks and other clients meanwhile.
    let parsed = if bytes > INLINE_PARSE_BYTES {
        match tokio::task::spawn_blocking(move || serde_json::from_slice::<T>(&body)).await {
            Ok(p) => p,
            Err(e) => {
                return Err(error(
                    state,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    format!("parsing the {what} body failed: {e}"),
                ))
            }
        }
    } else {
        serde_json::from_slice(&body)
    };
    tracing::debug!(
        what,
        bytes,
        ms = t.elapsed().as_secs_f64() * 1e3,
        "body parsed"
    );
    parsed.map_err(|e| {
        error(
            state,
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("{what} body is not a valid request: {e}"),
        )
    })
}

async fn diagnose(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let start = Instant::now();
    let stream = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(NDJSON));
    // Set when this handler is dropped before the work ends (the client hung up): while the
    // body is parsed (off the runtime) that is counted here; once the engine runs, it stops at
    // its next stage instead of computing an answer nobody reads, and counts it.
    let mut gone = AbandonOnDrop::new(state.metrics.abandoned.clone());
    let request: DiagnoseRequest = match read_body(&state, req, "diagnose").await {
        Ok(r) => r,
        Err(resp) => {
            gone.disarm();
            return resp;
        }
    };
    let warm = match warm_or_unavailable(&state).await {
        Ok(w) => w,
        Err(resp) => {
            gone.disarm();
            return resp;
        }
    };
    let id = uuid::Uuid::new_v4().to_string();
    let w = warm.clone();
    let no_llm = request.options.no_llm;
    // The model's text only when asked for (or turned on by `[llm] default`).
    let explain = !no_llm && request.options.explain.unwrap_or(state.config.llm.default);
    let flag = gone.engine_counts();
    let st = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        let k = w.knowledge.read().unwrap_or_else(|p| p.into_inner()).clone();
        let memory: Option<&dyn Recall> = match &w.memory {
            Some(m) if !request.options.no_memory => Some(m.as_ref()),
            _ => None,
        };
        let deadline = Some(start + st.config.request_budget);
        // A live cluster's graph from its last diagnosis, re-linked rather than built.
        let key = crate::kept::graph_key(&request.snapshot);
        let mut taken = key.as_deref().map(|k| w.graphs.take(k));
        let mut kept = taken
            .as_mut()
            .map(|t| std::mem::take(&mut t.kept))
            .unwrap_or_default();
        let mut out = crate::engine::diagnose_kept(
            &k,
            &request.snapshot,
            id,
            memory,
            &|| flag.load(Ordering::Relaxed),
            deadline,
            &mut kept,
        );
        if let Some(r) = out.as_ref().ok().and_then(|d| d.relinked.as_ref()) {
            st.metrics.graphs_relinked.inc();
            st.metrics.graph_objects_derived.inc_by(r.derived as u64);
        }
        if let (Some(key), Some(taken), true) = (&key, taken, out.is_ok()) {
            let t = Instant::now();
            match w.graphs.put(key, taken, kept) {
                Ok(n) => tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, records = n, "graph kept"),
                Err(e) => tracing::warn!(error = %e, "could not store the cluster's graph; the next diagnosis builds it again"),
            }
        }
        if let Ok(d) = &mut out {
            let t = Instant::now();
            attach_changes(&w.history, &request.snapshot, &mut d.diagnosis);
            tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "changes attached");
        }
        if matches!(out, Err(crate::engine::EngineError::Abandoned)) {
            st.metrics.abandoned.inc();
            info!("diagnosis abandoned: the client went away");
        }
        if let Ok(d) = &out {
            let stored = StoredDiagnosis {
                diagnosis: d.diagnosis.clone(),
                edges: d.edges.clone(),
                at: Timestamp::now(),
                trace: Some(d.trace.clone()),
            };
            let t = Instant::now();
            let put = w.store.put_diagnosis(&stored);
            tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "diagnosis stored");
            if let Err(e) = put {
                tracing::warn!(error = %e, "could not store the diagnosis; feedback on it will not be possible");
            }
        }
        // What an explanation may name: only needed when one is streamed.
        let names = if stream && explain {
            snapshot_names(&request.snapshot)
        } else {
            Vec::new()
        };
        // Freeing a large snapshot's JSON tree takes a tenth of a second: not on the answer's
        // path (if no thread can be made, it is freed here as before).
        let _ = std::thread::Builder::new()
            .name("free-snapshot".into())
            .spawn(move || drop(request));
        out.map(|d| (d, names))
    })
    .await;
    gone.disarm();
    match result {
        Ok(Ok((d, names))) => {
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            state.metrics.diagnoses.inc();
            if d.diagnosis.pathway == Pathway::Intuitive {
                state.metrics.intuitive.inc();
            }
            state.metrics.observe(ms);
            info!(id = %d.diagnosis.id, target = %d.diagnosis.target, pathway = ?d.diagnosis.pathway, ms, "diagnosed");
            if stream {
                stream_explanation(&state, d.diagnosis, names, Explain::decide(no_llm, explain))
            } else {
                json(StatusCode::OK, &d.diagnosis)
            }
        }
        Ok(Err(e)) => error(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidSnapshot,
            e.to_string(),
        ),
        Err(e) if e.is_panic() => {
            state.metrics.panics.inc();
            error!("diagnosis panicked");
            error(&state, StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "the diagnosis failed with an internal error; the daemon is still running (please report it with the snapshot)")
        }
        Err(e) => error(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            e.to_string(),
        ),
    }
}

/// The history sees the snapshot (a live cluster's objects compared by resourceVersion), and
/// the changes near the target and the root cause join the diagnosis as evidence.
fn attach_changes(h: &History, snap: &Snapshot, d: &mut Diagnosis) {
    let now = Timestamp::now();
    if let Err(e) = h.observe(snap, now) {
        tracing::warn!(error = %e, "the change history could not be updated");
    }
    let mut centre = vec![d.target.clone()];
    if let Some(rc) = &d.root_cause {
        centre.push(rc.object.clone());
    }
    match crate::history::changes_near(Some(h), snap, &centre, None, now) {
        Ok(n) => d.changes = n.changes,
        Err(e) => tracing::warn!(error = %e, "the change history could not be read"),
    }
    // The last change to the root cause (or the target) before the first failure is worth a
    // sentence of its own: it is often the answer to "what did we do?".
    let trigger =
        metakube_shared::change::trigger(d.changes.iter().filter(|c| centre.contains(&c.object)));
    if let Some(c) = trigger {
        let sentence = format!(
            " Changed {}: {}.",
            c.when("the first failure"),
            c.describe()
        );
        d.explanation.push_str(&sentence);
    }
}

/// `POST /v1/changes`: what changed near a target, from its rollout revisions and (for a live
/// cluster) the daemon's history, which the snapshot also updates.
async fn changes(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let request: ChangesRequest = match read_body(&state, req, "changes").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let warm = match warm_or_unavailable(&state).await {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let res = tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        let snap = &request.snapshot;
        let obs = warm.history.observe(snap, now)?;
        let n = crate::history::changes_near(
            Some(&warm.history),
            snap,
            std::slice::from_ref(&snap.target),
            request
                .since_s
                .map(|s| jiff::SignedDuration::from_secs(s as i64)),
            now,
        )?;
        let cluster = crate::history::cluster_key(&snap.meta.source);
        Ok::<_, crate::store::StoreError>(ChangesResponse {
            target: snap.target.clone(),
            tracked_since: cluster.as_deref().and_then(|c| warm.history.since(c)),
            cluster,
            first_failure: n.first_failure,
            since: n.since,
            near: n.near.objects.into_iter().collect(),
            changes: n.changes,
            compared: obs.compared,
            unchanged: obs.unchanged,
        })
    })
    .await;
    match res {
        Ok(Ok(r)) => json(StatusCode::OK, &r),
        Ok(Err(e)) if e.is_unavailable() => error(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            format!("the change history is not available: {e}"),
        ),
        Ok(Err(e)) => error(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            format!("the change history could not be read: {e}"),
        ),
        Err(_) => error(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "the changes handler failed",
        ),
    }
}

/// Raises a flag when dropped unless disarmed: hyper drops a handler whose client went away.
struct AbandonOnDrop {
    flag: Arc<std::sync::atomic::AtomicBool>,
    armed: bool,
    /// The abandoned counter, until the engine watches the flag and counts for itself.
    uncounted: Option<prometheus_client::metrics::counter::Counter>,
}

impl AbandonOnDrop {
    fn new(abandoned: prometheus_client::metrics::counter::Counter) -> AbandonOnDrop {
        AbandonOnDrop {
            flag: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            armed: true,
            uncounted: Some(abandoned),
        }
    }
    /// The flag the engine watches; from now on it counts an abandoned diagnosis itself.
    fn engine_counts(&mut self) -> Arc<std::sync::atomic::AtomicBool> {
        self.uncounted = None;
        self.flag.clone()
    }
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, Ordering::Relaxed);
            if let Some(c) = self.uncounted.take() {
                c.inc();
                info!("diagnosis abandoned before it started: the client went away");
            }
        }
    }
}

/// Object names and namespaces in a snapshot: what an explanation may name.
fn snapshot_names(s: &metakube_shared::Snapshot) -> Vec<String> {
    let mut v: Vec<String> = s
        .objects
        .iter()
        .flat_map(|o| {
            [
                Some(o.name().to_string()),
                o.namespace().map(str::to_string),
            ]
        })
        .flatten()
        .collect();
    v.sort();
    v.dedup();
    v
}

fn ndjson_line(e: &StreamEvent) -> Bytes {
    let mut b = serde_json::to_vec(e).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// Whether a streamed diagnosis gets the model's explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Explain {
    /// Generate it.
    Yes,
    /// The client declined (`--no-llm`): say so in the stream.
    Declined,
    /// Not asked for and not on by default: the stream ends with the diagnosis.
    NotAsked,
}

impl Explain {
    fn decide(no_llm: bool, explain: bool) -> Explain {
        match (no_llm, explain) {
            (true, _) => Explain::Declined,
            (false, true) => Explain::Yes,
            (false, false) => Explain::NotAsked,
        }
    }
}

/// Streams the diagnosis at once, then the explanation as the model writes it, then the
/// checked explanation. The model is never waited for before the diagnosis is sent.
fn stream_explanation(
    state: &Arc<State>,
    d: Diagnosis,
    names: Vec<String>,
    explain: Explain,
) -> Resp {
    let (tx, rx) = futures::channel::mpsc::unbounded::<Bytes>();
    let _ = tx.unbounded_send(ndjson_line(&StreamEvent::Diagnosis {
        diagnosis: Box::new(d.clone()),
    }));
    if explain == Explain::NotAsked {
        drop(tx);
        return ndjson_response(rx);
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let unavailable = |why: String| Explanation {
            unavailable: Some(why),
            ..Default::default()
        };
        let explanation = if explain == Explain::Declined {
            unavailable("skipped (--no-llm)".into())
        } else {
            // The diagnosis is already out; the explanation may wait for a model still loading.
            let deadline = Instant::now() + std::time::Duration::from_secs(60);
            while st
                .component("llm")
                .is_some_and(|c| c.state == ComponentState::Loading)
                && Instant::now() < deadline
                && !tx.is_closed()
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            // One model, one generation at a time: a bounded queue waits for it; a client that
            // left while waiting costs nothing (no prompt is read for it).
            let waiting = st.explain_waiting.fetch_add(1, Ordering::SeqCst);
            let guard = if waiting >= super::EXPLAIN_QUEUE {
                None
            } else {
                Some(st.llm.lock().unwrap_or_else(|p| p.into_inner()))
            };
            st.explain_waiting.fetch_sub(1, Ordering::SeqCst);
            let Some(mut guard) = guard else {
                let _ = tx.unbounded_send(ndjson_line(&StreamEvent::Explanation {
                    explanation: unavailable(format!(
                        "the model is busy ({waiting} explanation(s) queued); the diagnosis above is complete"
                    )),
                }));
                return;
            };
            if tx.is_closed() {
                return;
            }
            match guard.as_mut() {
                Some(model) => {
                    let mut on_text = |piece: &str| {
                        if piece.is_empty() {
                            return !tx.is_closed(); // reading the prompt: still wanted?
                        }
                        tx.unbounded_send(ndjson_line(&StreamEvent::Token {
                            text: piece.to_string(),
                        }))
                        .is_ok()
                    };
                    crate::llm::explain(model.as_mut(), &st.config.llm, &d, &names, &mut on_text)
                }
                None => unavailable(match st.component("llm") {
                    // The state in lower case, the detail as written (paths keep their case).
                    Some(c) => format!(
                        "model {}{}",
                        format!("{:?}", c.state).to_lowercase(),
                        if c.detail.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", c.detail)
                        }
                    ),
                    None => "no model".into(),
                }),
            }
        };
        let _ = tx.unbounded_send(ndjson_line(&StreamEvent::Explanation { explanation }));
    });
    ndjson_response(rx)
}

/// An NDJSON response whose lines come from `rx` until its senders are gone.
fn ndjson_response(rx: futures::channel::mpsc::UnboundedReceiver<Bytes>) -> Resp {
    let body = StreamBody::new(futures::StreamExt::map(rx, |b| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(b))
    }));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, NDJSON)
        .header(PROTOCOL_HEADER, PROTOCOL.to_string())
        .body(BodyExt::boxed(body))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// How much one confirmation moves a domain-graph edge.
pub const FIXED_DELTA: f64 = 0.05;
/// How much one refutation moves a domain-graph edge.
pub const NOT_FIXED_DELTA: f64 = -0.1;

/// Why feedback was refused (besides a store failure).
enum Refused {
    /// No such diagnosis.
    Unknown(String),
    /// Other feedback is recorded for it.
    Conflict(String),
}

/// Whether two feedbacks say the same (a retry, not a change of mind).
fn same_feedback(a: &FeedbackRequest, b: &FeedbackRequest) -> bool {
    a.outcome == b.outcome
        && a.cause == b.cause
        && a.reason == b.reason
        && a.category == b.category
        && a.note == b.note
        && a.fix_command == b.fix_command
}

/// A feedback in a few words, for the conflict message.
fn describe(r: &FeedbackRequest) -> String {
    let mut s = match r.outcome {
        FeedbackOutcome::Fixed => "fixed".to_string(),
        FeedbackOutcome::NotFixed => "not fixed".to_string(),
    };
    if let Some(c) = &r.cause {
        s.push_str(&format!(", cause {}/{}", c.kind, c.name));
    }
    if let Some(x) = &r.reason {
        s.push_str(&format!(", reason {x}"));
    }
    s
}

/// How a feedback moves the domain graph's edges: its outcome's delta on the (symptom, reason)
/// edges behind the answer, and a confirmation of a corrected reason for the symptoms seen.
fn weight_moves(stored: &StoredDiagnosis, r: &FeedbackRequest) -> Vec<((String, String), f64)> {
    let delta = match r.outcome {
        FeedbackOutcome::Fixed => FIXED_DELTA,
        FeedbackOutcome::NotFixed => NOT_FIXED_DELTA,
    };
    let mut out: Vec<((String, String), f64)> = stored
        .edges
        .iter()
        .map(|(s, c)| ((s.clone(), c.clone()), delta))
        .collect();
    if let Some(reason) = r
        .reason
        .as_ref()
        .filter(|x| stored.diagnosis.root_cause.as_ref().map(|c| &c.reason) != Some(*x))
    {
        let symptoms: std::collections::BTreeSet<&String> =
            stored.edges.iter().map(|(s, _)| s).collect();
        out.extend(
            symptoms
                .into_iter()
                .map(|s| ((s.clone(), reason.clone()), FIXED_DELTA)),
        );
    }
    out
}

async fn feedback(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let request: FeedbackRequest = match read_body(&state, req, "feedback").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let warm = match warm_or_unavailable(&state).await {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let w = warm.clone();
    let res = tokio::task::spawn_blocking(
        move || -> Result<Result<FeedbackResponse, Refused>, crate::store::StoreError> {
            let Some(stored) = w.store.get_diagnosis(&request.diagnosis_id)? else {
                return Ok(Err(Refused::Unknown(format!(
                    "no diagnosis with id {} is stored here",
                    request.diagnosis_id
                ))));
            };
            // One outcome per diagnosis: the same feedback again changes nothing; another one
            // must say it replaces the first.
            let previous = w.store.feedback_for(&request.diagnosis_id)?.pop();
            if let Some(p) = &previous {
                if same_feedback(&p.request, &request) {
                    return Ok(Ok(FeedbackResponse {
                        diagnosis_id: request.diagnosis_id.clone(),
                        recorded: true,
                        episode: p.episode,
                        learned: None,
                        unchanged: true,
                    }));
                }
                if !request.replace {
                    return Ok(Err(Refused::Conflict(format!(
                        "diagnosis {} already has feedback ({}, at {}); to change it, send the new one with --replace",
                        request.diagnosis_id,
                        describe(&p.request),
                        p.at
                    ))));
                }
            }
            // Hold the write lock across the durable write so weights and store stay in step; the
            // in-memory weights change only once the record is on disk.
            let mut k = w.knowledge.write().unwrap_or_else(|p| p.into_inner());
            let mut next = k.domain.clone();
            let mut changed: Vec<((String, String), f64)> = Vec::new();
            // A replaced outcome's moves are taken back first.
            if let Some(p) = &previous {
                for ((s, r), d) in weight_moves(&stored, &p.request) {
                    if let Some(nw) = next.adjust(&s, &r, -d) {
                        changed.push(((s, r), nw));
                    }
                }
            }
            for ((s, r), d) in weight_moves(&stored, &request) {
                if let Some(nw) = next.adjust(&s, &r, d) {
                    changed.retain(|(k, _)| *k != (s.clone(), r.clone()));
                    changed.push(((s, r), nw));
                }
            }
            let id = request.diagnosis_id.clone();
            let now = Timestamp::now();
            let commit = |ops: &[crate::store::Op], episode: Option<u64>| {
                let record = FeedbackRecord {
                    request: request.clone(),
                    at: now,
                    episode,
                };
                w.store.put_feedback(&record, &changed, ops)
            };
            let known = |r: &str| next.cause(r).map(|c| c.category);
            let learnt = match &w.memory {
                Some(m) => m
                    .learn(&stored, &request, &known, now, commit)
                    .map_err(|e| match e {
                        crate::memory::MemoryError::Store(s) => s,
                        other => crate::store::StoreError::Io {
                            path: "episodic memory".into(),
                            source: std::io::Error::other(other.to_string()),
                        },
                    })?,
                None => {
                    commit(&[], None)?;
                    crate::memory::Learnt::default()
                }
            };
            k.domain = next;
            drop(k);
            // The replaced feedback's episode goes (after the new record is durable: a crash in
            // between leaves one episode too many, never one too few).
            if let (Some(m), Some(old)) = (&w.memory, previous.and_then(|p| p.episode)) {
                if let Err(e) = m.forget(&[old]) {
                    tracing::warn!(error = %e, episode = old, "could not forget the replaced episode");
                }
            }
            Ok(Ok(FeedbackResponse {
                diagnosis_id: id,
                recorded: true,
                episode: learnt.episode,
                learned: learnt.learned,
                unchanged: false,
            }))
        },
    )
    .await;
    match res {
        Ok(Ok(Ok(r))) => {
            if !r.unchanged {
                state.metrics.feedback.inc();
            }
            json(StatusCode::OK, &r)
        }
        Ok(Ok(Err(Refused::Unknown(msg)))) => error(
            &state,
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownDiagnosis,
            msg,
        ),
        Ok(Ok(Err(Refused::Conflict(msg)))) => {
            error(&state, StatusCode::CONFLICT, ErrorCode::Conflict, msg)
        }
        Ok(Err(e)) if e.is_unavailable() => error(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            format!("feedback was not stored: {e}"),
        ),
        Ok(Err(e)) => error(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            format!("feedback was not stored: {e}"),
        ),
        Err(_) => error(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "feedback handler failed; nothing was stored",
        ),
    }
}
