//! `/v1/memory/…`: what episodic memory holds, and forgetting, exporting and importing it.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use metakube_shared::{ErrorCode, PROTOCOL, PROTOCOL_HEADER};
use serde_json::json;

use super::routes::{error, json as reply, read_body};
use super::State;
use crate::memory::{Episode, Memory};

type Resp = Response<http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>>;

fn query<'a>(req: &'a Request<Incoming>, key: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, "true"));
        (k == key).then_some(v)
    })
}

/// Routes one `/v1/memory/…` request.
pub async fn route(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let method = req.method().clone();
    let warm = match super::routes::warm_or_unavailable(&state).await {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    let Some(memory) = warm.memory.clone() else {
        let why = state
            .component("episode_index")
            .map(|c| format!("{}: {}", format!("{:?}", c.state).to_lowercase(), c.detail))
            .unwrap_or_default();
        return error(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            format!("episodic memory is not available ({why})"),
        );
    };
    let rest = path.strip_prefix("/v1/memory").unwrap_or("");
    match (method.clone(), rest) {
        (Method::GET, "/stats") => blocking(&state, move || Ok(json!(memory.stats()))).await,
        (Method::POST, "/search") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Query {
                query: String,
                #[serde(default)]
                limit: Option<usize>,
            }
            let q: Query = match super::routes::read_body(&state, req, "memory search").await {
                Ok(q) => q,
                Err(resp) => return resp,
            };
            blocking(&state, move || {
                Ok(json!(memory
                    .search(&q.query, q.limit.unwrap_or(5).min(50))
                    .map_err(|e| e.to_string())?))
            })
            .await
        }
        (Method::GET, "/episodes") => {
            let limit = query(&req, "limit").and_then(|v| v.parse().ok()).unwrap_or(50);
            blocking(&state, move || Ok(json!(memory.list(limit).map_err(|e| e.to_string())?))).await
        }
        (Method::GET | Method::DELETE, r) if r.starts_with("/episodes/") => {
            let Ok(id) = r["/episodes/".len()..].parse::<u64>() else {
                return error(&state, StatusCode::BAD_REQUEST, ErrorCode::BadRequest, format!("{r:?} is not /episodes/<numeric id>"));
            };
            if method == Method::DELETE {
                return blocking(&state, move || Ok(json!({"forgotten": memory.forget(&[id]).map_err(|e| e.to_string())?}))).await;
            }
            match tokio::task::spawn_blocking(move || memory.get(id)).await {
                Ok(Ok(Some(e))) => reply(StatusCode::OK, &e),
                Ok(Ok(None)) => error(&state, StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("no episode {id}")),
                Ok(Err(e)) => error(&state, StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, e.to_string()),
                Err(e) => error(&state, StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, e.to_string()),
            }
        }
        (Method::GET, "/export") => {
            let unmasked = query(&req, "unmasked").is_some_and(|v| v == "true");
            let episodes = query(&req, "format").is_some_and(|v| v == "episodes");
            let st = state.clone();
            match tokio::task::spawn_blocking(move || export(&memory, unmasked, episodes)).await {
                Ok(Ok(body)) => Response::builder()
                    .header(header::CONTENT_TYPE, "application/jsonl")
                    .header(PROTOCOL_HEADER, PROTOCOL.to_string())
                    .body(super::routes::full(body))
                    .unwrap_or_else(|_| Response::new(super::routes::full(Bytes::new()))),
                Ok(Err(e)) => error(&st, StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, e),
                Err(e) => error(&st, StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, e.to_string()),
            }
        }
        (Method::POST, "/import") => {
            let episodes: Vec<Episode> = match read_body(&state, req, "memory import").await {
                Ok(e) => e,
                Err(r) => return r,
            };
            blocking(&state, move || Ok(json!({"imported": memory.import(episodes).map_err(|e| e.to_string())?}))).await
        }
        _ => error(&state, StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("no endpoint {method} {path}; memory serves GET stats, POST search, GET episodes, GET|DELETE episodes/ID, GET export, POST import")),
    }
}

async fn blocking(
    state: &State,
    f: impl FnOnce() -> Result<serde_json::Value, String> + Send + 'static,
) -> Resp {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => reply(StatusCode::OK, &v),
        Ok(Err(e)) => error(
            state,
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            e,
        ),
        Err(e) => error(
            state,
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            e.to_string(),
        ),
    }
}

/// Every episode as one JSON line: KFRD records (default) or episodes (for import), names
/// masked unless `unmasked`.
fn export(memory: &Memory, unmasked: bool, episodes: bool) -> Result<Vec<u8>, String> {
    let all = memory.list(usize::MAX).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for mut e in all.into_iter().rev() {
        let line = if episodes {
            if !unmasked {
                e.reasoning = e
                    .reasoning
                    .iter()
                    .map(|r| crate::memory::scrub::scrub(r, &e.names))
                    .collect();
                for a in &mut e.actions {
                    a.summary = crate::memory::scrub::scrub(&a.summary, &e.names);
                    a.command = a
                        .command
                        .as_deref()
                        .map(|c| crate::memory::scrub::scrub(c, &e.names));
                }
                e.outcome.note = e
                    .outcome
                    .note
                    .as_deref()
                    .map(|n| crate::memory::scrub::scrub(n, &e.names));
                if let Some(l) = &mut e.learned {
                    l.name = crate::memory::scrub::scrub(&l.name, &e.names);
                    l.fix_command = l
                        .fix_command
                        .as_deref()
                        .map(|c| crate::memory::scrub::scrub(c, &e.names));
                }
                e.names.clear();
            }
            serde_json::to_vec(&e)
        } else {
            serde_json::to_vec(&e.kfrd(unmasked))
        }
        .map_err(|e| e.to_string())?;
        out.extend(line);
        out.push(b'\n');
    }
    Ok(out)
}
