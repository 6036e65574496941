//! The daemon client: HTTP/1.1 over the Unix socket (hyper + hyperlocal), and starting
//! `metakubed` when nothing listens.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyperlocal::{UnixClientExt, UnixConnector};
use metakube_shared::{ErrorBody, Health, PROTOCOL, PROTOCOL_HEADER};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("no metakubed is listening on {socket}: {why}\n  start it with `systemctl --user start metakubed` (after `kubectl metakube daemon install`) or run `metakubed` in another terminal")]
    NoDaemon {
        /// Socket path.
        socket: PathBuf,
        /// What happened.
        why: String,
    },
    /// The daemon answered with an error.
    #[error("metakubed refused the request ({status}): {}", body.message)]
    Daemon {
        /// HTTP status.
        status: u16,
        /// The error body.
        body: ErrorBody,
    },
    /// The process listening on the socket is not the user's own daemon.
    #[error("refusing to talk to {socket}: {why}; another user may have taken the socket (set --socket / METAKUBE_SOCKET to a folder of your own)")]
    Untrusted {
        /// Socket path.
        socket: PathBuf,
        /// What was found.
        why: String,
    },
    /// The exchange failed.
    #[error("talking to metakubed on {socket}: {why}")]
    Transport {
        /// Socket path.
        socket: PathBuf,
        /// What failed.
        why: String,
    },
}

/// A client bound to one socket.
pub struct DaemonClient {
    socket: PathBuf,
    http: Client<UnixConnector, Full<Bytes>>,
    timeout: Duration,
    /// Set once the listener was found to run as this user.
    trusted: tokio::sync::OnceCell<()>,
}

impl DaemonClient {
    /// A client for the socket at `socket` (made absolute).
    pub fn new(socket: &Path, timeout: Duration) -> DaemonClient {
        let socket = std::path::absolute(socket).unwrap_or_else(|_| socket.to_path_buf());
        DaemonClient {
            socket,
            http: Client::unix(),
            timeout,
            trusted: tokio::sync::OnceCell::new(),
        }
    }

    /// The same client with another request timeout (for requests whose work grows with
    /// their size, such as a memory import).
    pub fn with_timeout(mut self, timeout: Duration) -> DaemonClient {
        self.timeout = timeout;
        self
    }

    /// Checks, once, that the process listening on the socket runs as this user
    /// (SO_PEERCRED): a snapshot is never sent to anyone else. A socket nobody listens on is
    /// left to the request, which reports it.
    async fn check_listener(&self) -> Result<(), ClientError> {
        if self.trusted.initialized() {
            return Ok(());
        }
        let Ok(stream) = tokio::net::UnixStream::connect(&self.socket).await else {
            return Ok(());
        };
        let me = rustix::process::geteuid().as_raw();
        let cred = stream.peer_cred().map_err(|e| ClientError::Untrusted {
            socket: self.socket.clone(),
            why: format!("cannot read the listener's credentials: {e}"),
        })?;
        if cred.uid() != me {
            return Err(ClientError::Untrusted {
                socket: self.socket.clone(),
                why: format!(
                    "the listener runs as uid {}, not as you (uid {me})",
                    cred.uid()
                ),
            });
        }
        let _ = self.trusted.set(());
        Ok(())
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// An exchange with the daemon on this socket that failed.
    fn transport(&self, why: impl std::fmt::Display) -> ClientError {
        ClientError::Transport {
            socket: self.socket.clone(),
            why: why.to_string(),
        }
    }

    async fn send(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Bytes), ClientError> {
        self.check_listener().await?;
        let uri: hyper::Uri = hyperlocal::Uri::new(&self.socket, path).into();
        let req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(PROTOCOL_HEADER, PROTOCOL.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| self.transport(e))?;
        let fut = async {
            let resp = self.http.request(req).await.map_err(|e| {
                let not_there = !self.socket.exists()
                    || format!("{e:?}").contains("ConnectionRefused")
                    || format!("{e:?}").contains("NotFound");
                if not_there {
                    ClientError::NoDaemon {
                        socket: self.socket.clone(),
                        why: "connection refused or socket missing".into(),
                    }
                } else {
                    self.transport(e)
                }
            })?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| self.transport(e))?
                .to_bytes();
            Ok((status, bytes))
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| self.transport(format!("no answer within {:?}", self.timeout)))?
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.send(method, path, body).await?;
        if !(200..300).contains(&status) {
            let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| {
                ErrorBody::new(
                    metakube_shared::ErrorCode::Internal,
                    String::from_utf8_lossy(&bytes).to_string(),
                )
            });
            return Err(ClientError::Daemon { status, body });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| self.transport(format!("unexpected answer: {e}")))
    }

    /// `GET` a JSON endpoint.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(hyper::Method::GET, path, None).await
    }

    /// `GET` a text endpoint (metrics).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let (_, b) = self.send(hyper::Method::GET, path, None).await?;
        Ok(String::from_utf8_lossy(&b).to_string())
    }

    /// `POST` JSON, answer JSON.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = self.encode(body, 0)?;
        self.post_bytes(path, bytes).await
    }

    /// `POST /v1/diagnose`, answer the diagnosis. The request is taken by value: its snapshot
    /// is freed while the daemon works (see [`free_aside`]).
    pub async fn diagnose(
        &self,
        req: metakube_shared::DiagnoseRequest,
    ) -> Result<metakube_shared::Diagnosis, ClientError> {
        let bytes = self.encode(&req, req.snapshot.json_len_hint())?;
        free_aside(req);
        self.post_bytes("/v1/diagnose", bytes).await
    }

    /// A request body as JSON (timed in the debug log), written into a buffer of `len_hint`
    /// bytes to start with (a 20k-object snapshot is 25 MB: grown by doubling, it would be
    /// copied and faulted in several times over).
    fn encode<B: Serialize>(&self, body: &B, len_hint: usize) -> Result<Vec<u8>, ClientError> {
        let t = std::time::Instant::now();
        let mut bytes = Vec::with_capacity(len_hint);
        serde_json::to_writer(&mut bytes, body).map_err(|e| self.transport(e))?;
        tracing::debug!(
            bytes = bytes.len(),
            ms = t.elapsed().as_secs_f64() * 1e3,
            "request encoded"
        );
        Ok(bytes)
    }

    /// `POST` encoded JSON, answer JSON (timed in the debug log).
    async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<T, ClientError> {
        let t = std::time::Instant::now();
        let answer = self.call(hyper::Method::POST, path, Some(bytes)).await;
        tracing::debug!(path, ms = t.elapsed().as_secs_f64() * 1e3, "answered");
        answer
    }

    /// `POST` a diagnose request asking for the streamed answer: `on_event` gets the
    /// diagnosis as soon as it arrives, then each piece of explanation, then the checked
    /// explanation. The request timeout covers the diagnosis; the explanation may take up to
    /// `explain_timeout` more.
    pub async fn diagnose_stream(
        &self,
        body: metakube_shared::DiagnoseRequest,
        explain_timeout: Duration,
        on_event: &mut dyn FnMut(metakube_shared::StreamEvent),
    ) -> Result<(), ClientError> {
        let bytes = self.encode(&body, body.snapshot.json_len_hint())?;
        free_aside(body);
        self.check_listener().await?;
        let uri: hyper::Uri = hyperlocal::Uri::new(&self.socket, "/v1/diagnose").into();
        let req = hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri(uri)
            .header(PROTOCOL_HEADER, PROTOCOL.to_string())
            .header("content-type", "application/json")
            .header("accept", metakube_shared::NDJSON)
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| self.transport(e))?;
        let resp = tokio::time::timeout(self.timeout, self.http.request(req))
            .await
            .map_err(|_| self.transport(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| ClientError::NoDaemon {
                socket: self.socket.clone(),
                why: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        if !(200..300).contains(&status) {
            let bytes = body
                .collect()
                .await
                .map_err(|e| self.transport(e))?
                .to_bytes();
            let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| {
                ErrorBody::new(
                    metakube_shared::ErrorCode::Internal,
                    String::from_utf8_lossy(&bytes).to_string(),
                )
            });
            return Err(ClientError::Daemon { status, body });
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut got_diagnosis = false;
        let deadline = Instant::now() + self.timeout + explain_timeout;
        loop {
            let wait = if got_diagnosis {
                deadline.saturating_duration_since(Instant::now())
            } else {
                self.timeout
            };
            let frame = match tokio::time::timeout(wait, body.frame()).await {
                Err(_) if got_diagnosis => return Ok(()), // explanation too slow: keep the answer
                Err(_) => {
                    return Err(self.transport(format!("no answer within {:?}", self.timeout)))
                }
                Ok(None) => break,
                Ok(Some(f)) => f.map_err(|e| self.transport(e))?,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let ev: metakube_shared::StreamEvent = serde_json::from_slice(&line)
                    .map_err(|e| self.transport(format!("unexpected stream line: {e}")))?;
                if matches!(ev, metakube_shared::StreamEvent::Diagnosis { .. }) {
                    got_diagnosis = true;
                }
                on_event(ev);
            }
        }
        if !got_diagnosis {
            return Err(self.transport("the stream ended before the diagnosis"));
        }
        Ok(())
    }

    /// `DELETE` an endpoint, answer JSON.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(hyper::Method::DELETE, path, None).await
    }

    /// The daemon's health, if one answers.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get("/v1/health").await
    }
}

/// Where the daemon binary is: beside this executable, then on PATH.
pub fn find_daemon() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("metakubed")));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return Some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("metakubed"))
            .find(|p| p.is_file())
    })
}

/// Makes sure a daemon answers: starts `metakubed` (detached, logging to `log`) when none
/// does and `autostart` allows, and waits up to 15 s for health. Returns whether it started one.
pub async fn ensure_daemon(
    client: &DaemonClient,
    autostart: bool,
    log: &Path,
    say: &(dyn Fn(&str) + Sync),
) -> Result<bool, ClientError> {
    match client.health().await {
        Ok(_) => return Ok(false),
        Err(ClientError::NoDaemon { .. }) if autostart => {}
        Err(e) => return Err(e),
    }
    let bin = find_daemon().ok_or_else(|| ClientError::NoDaemon {
        socket: client.socket().to_path_buf(),
        why: "and no metakubed binary was found beside kubectl-metakube or on PATH".into(),
    })?;
    if let Some(d) = log.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| ClientError::NoDaemon {
            socket: client.socket().to_path_buf(),
            why: format!("cannot open daemon log {}: {e}", log.display()),
        })?;
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("--socket")
        .arg(client.socket())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(logf);
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0); // not killed by the terminal's Ctrl-C
    }
    let child = cmd.spawn().map_err(|e| ClientError::NoDaemon {
        socket: client.socket().to_path_buf(),
        why: format!("starting {}: {e}", bin.display()),
    })?;
    say(&format!(
        "started metakubed (pid {}, log {})",
        child.id(),
        log.display()
    ));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        match client.health().await {
            Ok(_) => return Ok(true),
            Err(e) if Instant::now() > deadline => {
                return Err(ClientError::NoDaemon {
                    socket: client.socket().to_path_buf(),
                    why: format!(
                        "started {} but it did not answer within 15s ({e}); see {}",
                        bin.display(),
                        log.display()
                    ),
                })
            }
            Err(_) => {}
        }
    }
}

/// Frees a sent request's snapshot on another thread while the daemon works: a large
/// namespace's JSON tree took ~50 ms to free, after the answer had arrived. (Without a
/// thread it is freed here, as before.)
fn free_aside(req: metakube_shared::DiagnoseRequest) {
    let _ = std::thread::Builder::new()
        .name("free-snapshot".into())
        .spawn(move || drop(req));
}
