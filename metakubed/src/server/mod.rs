//! The daemon's edge: HTTP/1.1 on a Unix socket (hyper), warm state loaded in the background,
//! peers of another uid refused, graceful shutdown that flushes the store.

mod memory_routes;
mod metrics;
mod routes;
mod slots;

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metakube_shared::{ComponentState, ComponentStatus};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::engine::Knowledge;
use crate::graph::domain::{Cause, DomainGraph};
use crate::llm::Explainer;
use crate::memory::embed::MiniLm;
use crate::memory::Memory;
use crate::store::{MemStore, RecoveringStore, Store, UnavailableStore};

pub use metrics::Metrics;

/// Server failures that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The socket cannot be set up.
    #[error("cannot listen on {path}: {source}")]
    Listen {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Another daemon answers on the socket.
    #[error("another metakubed is already listening on {0}")]
    AlreadyRunning(PathBuf),
    /// The socket's folder could let another user in (or swap the socket).
    #[error("refusing to listen in {path}: {why}; put the socket in a folder only you can enter (--socket / METAKUBE_SOCKET)")]
    UnsafeSocketDir {
        /// The folder.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Another daemon holds the data folder.
    #[error("the data folder {path} is in use by another metakubed ({holder}); stop it first, or give this one its own --data-dir")]
    DataDirInUse {
        /// The folder.
        path: PathBuf,
        /// Who holds it (pid, socket), as it wrote.
        holder: String,
    },
    /// The data folder's lock cannot be taken.
    #[error("cannot lock the data folder {path}: {source}")]
    DataDirLock {
        /// The lock file.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Time a client has to send a request's headers, from connecting or from its previous
/// answer (keep-alive idle); then the connection is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a client has to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// An exclusive lock on the data folder, held for the daemon's life: a second daemon on the
/// same folder would fail on RocksDB's LOCK, fall back to no store, and lose what it
/// acknowledged. It refuses to start instead, naming the first.
pub struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    /// Takes `DIR/metakubed.lock` (flock, exclusive, non-blocking) and writes this daemon's pid
    /// and socket into it.
    pub fn acquire(dir: &Path, socket: &Path) -> Result<DataDirLock, ServerError> {
        use std::io::{Read, Seek, Write};
        let path = dir.join("metakubed.lock");
        let err = |source| ServerError::DataDirLock {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(err)?;
        if let Err(e) =
            rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        {
            if e == rustix::io::Errno::WOULDBLOCK {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(ServerError::DataDirInUse {
                    path: dir.to_path_buf(),
                    holder: holder.trim().to_string(),
                });
            }
            return Err(err(e.into()));
        }
        file.set_len(0).map_err(err)?;
        file.rewind().map_err(err)?;
        writeln!(
            file,
            "pid {}, socket {}",
            std::process::id(),
            socket.display()
        )
        .map_err(err)?;
        Ok(DataDirLock { _file: file })
    }
}

/// What the daemon keeps warm.
pub struct Warm {
    /// Knowledge, with memory-adjusted weights.
    pub knowledge: RwLock<Knowledge>,
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Episodic memory, when enabled and its embedder loaded.
    pub memory: Option<Arc<Memory>>,
    /// Each live cluster's change history (over `store`).
    pub history: Arc<crate::history::History>,
    /// Each live cluster's KubeGraph, re-linked from one diagnosis to the next (over `store`).
    pub graphs: Arc<crate::kept::KeptGraphs>,
}

/// The explanation model, loaded after the warm state; one generation at a time.
pub type SharedLlm = Arc<std::sync::Mutex<Option<Box<dyn Explainer>>>>;

/// Shared state of the running daemon.
pub struct State {
    /// Configuration in force.
    pub config: Config,
    /// Start time.
    pub started: Instant,
    /// Warm state, once loaded.
    pub warm: watch::Receiver<Option<Arc<Warm>>>,
    /// Component status for health.
    pub components: RwLock<Vec<ComponentStatus>>,
    /// Counters and latencies.
    pub metrics: Metrics,
    /// The explanation model (None until loaded, or when off or failed).
    pub llm: SharedLlm,
    /// Explanations waiting for the model (one generates at a time).
    pub explain_waiting: std::sync::atomic::AtomicUsize,
}

/// Explanations that may wait for the model; more are answered "busy" at once (the diagnosis
/// itself never waits for the model).
pub const EXPLAIN_QUEUE: usize = 4;

impl State {
    /// Waits until the warm state is loaded.
    pub async fn warm(&self) -> Option<Arc<Warm>> {
        let mut rx = self.warm.clone();
        let r = rx.wait_for(|w| w.is_some()).await.ok()?;
        r.clone()
    }

    /// The state of one component.
    pub fn component(&self, name: &str) -> Option<ComponentStatus> {
        self.components
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|c| c.name == name)
            .cloned()
    }

    fn set_component(&self, name: &str, state: ComponentState, detail: String) {
        let mut c = self.components.write().unwrap_or_else(|p| p.into_inner());
        match c.iter_mut().find(|c| c.name == name) {
            Some(x) => {
                x.state = state;
                x.detail = detail;
            }
            None => c.push(ComponentStatus {
                name: name.into(),
                state,
                detail,
            }),
        }
    }
}

/// Loads the store and knowledge in the background, so health answers at once.
fn load_warm(state: Arc<State>, tx: watch::Sender<Option<Arc<Warm>>>) {
    tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut knowledge = Knowledge::builtin();
        knowledge.withheld = state.config.withhold_causes.iter().cloned().collect();
        if !knowledge.withheld.is_empty() {
            tracing::warn!(causes = ?knowledge.withheld, "ablation: the analytical pathway withholds these causes");
        }
        let store: Arc<dyn Store> = if state.config.ephemeral {
            state.set_component(
                "store",
                ComponentState::Disabled,
                "ephemeral: nothing is persisted".into(),
            );
            Arc::new(MemStore::default())
        } else {
            match RecoveringStore::open(
                &state.config.data_dir.join("db"),
                state.config.max_diagnoses,
            ) {
                Ok(s) => {
                    let (d, f) = s.counts().unwrap_or((0, 0));
                    state.set_component(
                        "store",
                        ComponentState::Ready,
                        format!(
                            "RocksDB at {}, opened with {d} diagnoses and {f} feedback records (/v1/stats counts live)",
                            state.config.data_dir.join("db").display()
                        ),
                    );
                    Arc::new(s)
                }
                Err(e) => {
                    // Diagnoses are still answered; nothing that needs saving is acknowledged.
                    warn!(error = %e, "store unavailable: feedback and memory writes answer 503");
                    state.set_component("store", ComponentState::Failed, e.to_string());
                    Arc::new(UnavailableStore::new(e.to_string()))
                }
            }
        };
        knowledge.domain = load_domain(store.as_ref());
        match store.weights() {
            Ok(w) => knowledge.domain.set_weights(w),
            Err(e) => {
                warn!(error = %e, "cannot read domain-graph weights; using the seeded priors")
            }
        }
        let edges = knowledge.domain.weights().len();
        state.set_component(
            "domain_graph",
            ComponentState::Ready,
            format!(
                "{} causes, {edges} symptom→cause edges, {} log templates",
                knowledge.domain.causes().len(),
                count_templates()
            ),
        );
        let memory = load_memory(&state, &store);
        info!(ms = t.elapsed().as_millis() as u64, "warm state loaded");
        let history = Arc::new(crate::history::History::new(store.clone()));
        let graphs = Arc::new(crate::kept::KeptGraphs::new(store.clone()));
        let _ = tx.send(Some(Arc::new(Warm {
            knowledge: RwLock::new(knowledge),
            store,
            memory,
            history,
            graphs,
        })));
        load_llm(&state);
    });
}

/// The embedder, then episodic memory over the store (its index rebuilt when needed).
fn load_memory(state: &State, store: &Arc<dyn Store>) -> Option<Arc<Memory>> {
    let cfg = &state.config;
    if !cfg.memory_enabled {
        for c in ["embedder", "episode_index"] {
            state.set_component(
                c,
                ComponentState::Disabled,
                "memory is off (--no-memory)".into(),
            );
        }
        return None;
    }
    let t = Instant::now();
    let embedder = match MiniLm::load(&cfg.embedder_dir(), &candle_core::Device::Cpu) {
        Ok(e) => e,
        Err(e) => {
            warn!(error = %e, "embedder unavailable; episodic memory is off");
            state.set_component("embedder", ComponentState::Failed, e.to_string());
            state.set_component(
                "episode_index",
                ComponentState::Disabled,
                "needs the embedder".into(),
            );
            return None;
        }
    };
    state.set_component(
        "embedder",
        ComponentState::Ready,
        format!(
            "all-MiniLM-L6-v2 from {} ({} ms)",
            cfg.embedder_dir().display(),
            t.elapsed().as_millis()
        ),
    );
    let index_path = (!cfg.ephemeral).then(|| cfg.data_dir.join("index").join("episodes.faiss"));
    match Memory::open(
        cfg.memory.clone(),
        store.clone(),
        Box::new(embedder),
        index_path,
    ) {
        Ok(m) => {
            let s = m.stats();
            state.set_component(
                "episode_index",
                ComponentState::Ready,
                format!(
                    "{} episodes in {} patterns, FAISS {}, θ {:.2}",
                    s.episodes, s.patterns, s.index, s.theta
                ),
            );
            Some(Arc::new(m))
        }
        Err(e) => {
            warn!(error = %e, "episodic memory unavailable");
            state.set_component("episode_index", ComponentState::Failed, e.to_string());
            None
        }
    }
}

/// Every 5 s while the store's writes fail: a try at making them work again (a probe write,
/// then a reopen), so a full disk that gets room again needs no restart.
async fn store_upkeep(state: Arc<State>) {
    let Some(warm) = state.warm().await else {
        return;
    };
    loop {
        tokio::time::sleep(STORE_RETRY).await;
        if warm.store.failing().is_none() {
            continue;
        }
        let s = warm.store.clone();
        if let Ok(true) = tokio::task::spawn_blocking(move || s.recover()).await {
            info!("the store writes again");
        }
    }
}

/// How often a store whose writes fail is tried again.
const STORE_RETRY: Duration = Duration::from_secs(5);

/// Every 30 s: episodic memory's index rebuilt when it wants it (off the request path) and
/// saved when changed.
async fn memory_upkeep(state: Arc<State>) {
    let Some(warm) = state.warm().await else {
        return;
    };
    let Some(memory) = warm.memory.clone() else {
        return;
    };
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let m = memory.clone();
        match tokio::task::spawn_blocking(move || m.maintain()).await {
            Ok(Ok(true)) => info!("episode index rebuilt"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => warn!(error = %e, "episode index upkeep failed; retrying later"),
            Err(_) => warn!("episode index upkeep panicked; retrying later"),
        }
    }
}

/// Loads the explanation model; diagnoses are answered meanwhile, without it.
fn load_llm(state: &State) {
    let cfg = &state.config;
    let t = Instant::now();
    match crate::llm::load(&cfg.llm, &cfg.models_dir) {
        Ok(Some(mut m)) => {
            if let Err(e) = m.prepare(crate::llm::grounding::SYSTEM) {
                warn!(error = %e, "explanation model: the system prompt was not read ahead");
            }
            let name = m.name();
            *state.llm.lock().unwrap_or_else(|p| p.into_inner()) = Some(m);
            info!(model = %name, ms = t.elapsed().as_millis() as u64, "explanation model loaded");
            state.set_component(
                "llm",
                ComponentState::Ready,
                format!("{name}, loaded in {} ms", t.elapsed().as_millis()),
            );
        }
        Ok(None) => state.set_component(
            "llm",
            ComponentState::Disabled,
            "backend none: templated explanations only".into(),
        ),
        Err(e) => {
            warn!(error = %e, "explanation model unavailable");
            state.set_component("llm", ComponentState::Failed, e.to_string());
        }
    }
}

/// The domain graph as persisted; seeded from the shipped YAML on first start and whenever
/// a new version ships other knowledge (memory-learned weights are kept either way).
pub fn load_domain(store: &dyn Store) -> DomainGraph {
    let seed = DomainGraph::seed_fingerprint();
    let stored_seed = store.get_meta("domain_seed").ok().flatten();
    if stored_seed.as_deref() == Some(seed.as_bytes()) {
        if let Some(Ok(causes)) = store
            .get_meta("domain_causes")
            .ok()
            .flatten()
            .map(|b| serde_json::from_slice::<Vec<Cause>>(&b))
        {
            return DomainGraph::from_causes(causes);
        }
        warn!("persisted domain graph is unreadable; seeding it again");
    }
    let builtin = DomainGraph::builtin();
    let causes = serde_json::to_vec(builtin.causes()).unwrap_or_default();
    if let Err(e) = store.put_meta(&[
        ("domain_causes", causes),
        ("domain_seed", seed.into_bytes()),
    ]) {
        warn!(error = %e, "cannot persist the domain graph");
    }
    builtin
}

fn count_templates() -> usize {
    crate::signals::LOG_PATTERNS_YAML
        .matches("- class:")
        .count()
}

/// Prepares the socket: a 0700 directory, a stale socket removed, 0600 on the new one.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    let err = |source| ServerError::Listen {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
        check_socket_dir(dir)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServerError::AlreadyRunning(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let l = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(l)
}

/// The socket's folder must be this user's and closed to others: in a folder another user
/// owns or may write to (a predictable `/tmp/metakube-$UID` made first by someone else), that
/// user could replace the socket and receive every snapshot.
fn check_socket_dir(dir: &Path) -> Result<(), ServerError> {
    use std::os::unix::fs::MetadataExt;
    let unsafe_dir = |why: String| ServerError::UnsafeSocketDir {
        path: dir.to_path_buf(),
        why,
    };
    let m = std::fs::symlink_metadata(dir).map_err(|e| unsafe_dir(e.to_string()))?;
    if !m.is_dir() {
        return Err(unsafe_dir("it is not a directory (a symlink?)".into()));
    }
    let me = rustix::process::geteuid().as_raw();
    if m.uid() != me {
        return Err(unsafe_dir(format!(
            "it belongs to uid {}, not to you (uid {me})",
            m.uid()
        )));
    }
    if m.mode() & 0o077 != 0 {
        return Err(unsafe_dir(format!(
            "its mode is {:o}: group or others may enter it (it must be 0700)",
            m.mode() & 0o7777
        )));
    }
    Ok(())
}

/// A listener handed over by systemd (`LISTEN_FDS`), if any.
fn activated_listener() -> Option<UnixListener> {
    let mut fds = listenfd::ListenFd::from_env();
    let l = fds.take_unix_listener(0).ok().flatten()?;
    l.set_nonblocking(true).ok()?;
    UnixListener::from_std(l).ok()
}

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let _lock = if config.ephemeral {
        None
    } else {
        Some(DataDirLock::acquire(&config.data_dir, &config.socket)?)
    };
    let (listener, owned_socket) = match activated_listener() {
        Some(l) => {
            info!("using the socket passed by systemd (socket activation)");
            (l, false)
        }
        None => (bind(&config.socket)?, true),
    };
    info!(socket = %config.socket.display(), "metakubed listening");
    serve(listener, config.clone(), shutdown_signal()).await;
    if owned_socket {
        let _ = std::fs::remove_file(&config.socket);
    }
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
    }
}

/// Serves on a listener until `shutdown` completes, then drains connections and flushes.
pub async fn serve(
    listener: UnixListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (tx, rx) = watch::channel(None);
    let state = Arc::new(State {
        config,
        started: Instant::now(),
        warm: rx,
        components: RwLock::new(vec![
            ComponentStatus {
                name: "store".into(),
                state: ComponentState::Loading,
                detail: String::new(),
            },
            ComponentStatus {
                name: "domain_graph".into(),
                state: ComponentState::Loading,
                detail: String::new(),
            },
            ComponentStatus {
                name: "embedder".into(),
                state: ComponentState::Loading,
                detail: String::new(),
            },
            ComponentStatus {
                name: "episode_index".into(),
                state: ComponentState::Loading,
                detail: String::new(),
            },
            ComponentStatus {
                name: "llm".into(),
                state: ComponentState::Loading,
                detail: String::new(),
            },
        ]),
        metrics: Metrics::default(),
        llm: Arc::new(std::sync::Mutex::new(None)),
        explain_waiting: std::sync::atomic::AtomicUsize::new(0),
    });
    load_warm(state.clone(), tx);
    let upkeep = tokio::spawn(memory_upkeep(state.clone()));
    let store_upkeep = tokio::spawn(store_upkeep(state.clone()));
    let my_uid = rustix::process::getuid().as_raw();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = slots::Slots::new(slots::connection_slots());
    let mut refused_logged = Instant::now() - Duration::from_secs(60);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                match stream.peer_cred() {
                    Ok(c) if c.uid() == my_uid => {}
                    Ok(c) => {
                        warn!(peer_uid = c.uid(), "refusing a peer of another user");
                        continue;
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot read peer credentials; refusing");
                        continue;
                    }
                }
                // A slot per connection keeps file descriptors for the store and models; when
                // they are all taken, the oldest idle connection makes room (slots.rs).
                let Some(held) = slots.admit() else {
                    if refused_logged.elapsed() > Duration::from_secs(10) {
                        warn!("every connection slot is serving a request; closing new connections until one frees");
                        refused_logged = Instant::now();
                    }
                    continue;
                };
                let st = state.clone();
                let asking = held.clone();
                let conn = hyper::server::conn::http1::Builder::new()
                    .max_buf_size(64 * 1024)
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(if held.spare { Duration::from_secs(2) } else { HEADER_TIMEOUT })
                    .keep_alive(!held.spare)
                    .serve_connection(TokioIo::new(stream), service_fn(move |req| {
                        asking.asked();
                        routes::handle(st.clone(), req)
                    }));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    tokio::select! {
                        r = conn => if let Err(e) = r {
                            debug!(error = %e, "connection ended with an error");
                        },
                        _ = held.close.notified() => debug!("closed an idle connection to make room for a new one"),
                    }
                    held.release();
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    upkeep.abort();
    store_upkeep.abort();
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => warn!("connections still open after 10s; closing"),
    }
    let warm = state.warm.borrow().clone();
    if let Some(w) = warm {
        let store = w.store.clone();
        let memory = w.memory.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(m) = memory {
                if let Err(e) = m.persist_index() {
                    warn!(error = %e, "saving the episode index failed; it is rebuilt at start");
                }
            }
            if let Err(e) = store.flush() {
                warn!(error = %e, "flushing the store failed");
            }
        })
        .await;
    }
    info!("metakubed stopped");
}
