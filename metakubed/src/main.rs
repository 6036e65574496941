//! `metakubed`: parse flags, build the configuration, run the server.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use metakube_shared::paths;
use metakubed::config::{FileConfig, DEFAULT_MAX_BODY_BYTES};
use metakubed::store::Store;
use metakubed::Config;

// Snapshots of large namespaces are tens of MB of JSON and typed objects built and freed per
// request: mimalloc frees them faster than the system allocator and gives the memory back
// afterwards.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (include/mimalloc.h).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long memory a request freed stays with the daemon before going back to the OS, in ms.
/// mimalloc's default (1 s) gives it back between two diagnoses of a large namespace, and the
/// next one faults it in again, zeroed by the kernel: at 20k objects that was a third of the
/// daemon's time (typing 193–290 ms against 81–207, the whole request 690–900 ms against
/// 330–540, requests 1.5 s apart). After 10 s idle the daemon is as small as before.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// Keeps freed memory for [`PURGE_DELAY_MS`], unless `MIMALLOC_PURGE_DELAY` says otherwise.
#[allow(unsafe_code)] // one FFI call into the allocator
fn allocator_keeps_memory_between_requests() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets one integer option; mimalloc reads options atomically at each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

/// The metakube daemon: answers `kubectl metakube` over a Unix socket.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Unix socket to listen on [default: $XDG_RUNTIME_DIR/metakube/metakubed.sock]
    #[arg(long, env = "METAKUBE_SOCKET")]
    socket: Option<PathBuf>,
    /// Data directory (RocksDB) [default: $XDG_DATA_HOME/metakube]
    #[arg(long, env = "METAKUBE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file [default: $XDG_CONFIG_HOME/metakube/config.toml]
    #[arg(long, env = "METAKUBE_CONFIG")]
    config: Option<PathBuf>,
    /// Largest request body accepted, in bytes
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// Persist nothing (for tests and one-off runs)
    #[arg(long)]
    ephemeral: bool,
    /// Models directory [default: $METAKUBE_MODELS, or models/ beside the executable]
    #[arg(long, env = "METAKUBE_MODELS")]
    models_dir: Option<PathBuf>,
    /// Turn episodic memory off (every answer takes the analytical pathway)
    #[arg(long)]
    no_memory: bool,
    /// Explanation backend: candle (local GGUF), openai (compatible endpoint) or none
    #[arg(long, env = "METAKUBE_LLM")]
    llm: Option<metakubed::llm::Backend>,
    /// GGUF model for the candle backend [default: SmolLM2-135M-Instruct Q4_1 under the models dir]
    #[arg(long, env = "METAKUBE_LLM_MODEL")]
    llm_model: Option<PathBuf>,
    /// OpenAI-compatible base URL for the openai backend (e.g. http://127.0.0.1:8000/v1)
    #[arg(long, env = "METAKUBE_LLM_ENDPOINT")]
    llm_endpoint: Option<String>,
    /// How a local model is held to the facts: clauses (sentences copied from the facts),
    /// words (only the facts' words) or off [default: clauses]
    #[arg(long, env = "METAKUBE_LLM_CONSTRAIN")]
    llm_constrain: Option<metakubed::llm::Constrain>,
    /// Ablation for measuring learning: the analytical pathway does not conclude these causes
    /// (comma-separated reason codes, or `all`), so only memory taught by corrections can
    #[arg(long, value_delimiter = ',', value_name = "REASONS")]
    withhold_causes: Vec<String>,
    /// Milliseconds a diagnosis may take before it answers with what it has (its fix then
    /// unvalidated) [default: 20000]
    #[arg(long, value_name = "MS")]
    request_budget_ms: Option<u64>,
    /// Maintenance of the data folder instead of serving
    #[command(subcommand)]
    command: Option<Maintenance>,
    /// Log filter (tracing EnvFilter syntax), e.g. info or metakubed=debug
    #[arg(long, env = "METAKUBE_LOG", default_value = "info")]
    log: String,
}

/// Commands that work on the data folder while no daemon runs on it.
#[derive(Debug, clap::Subcommand)]
enum Maintenance {
    /// The RocksDB store: back it up, or repair one that does not open
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
}

#[derive(Debug, clap::Subcommand)]
enum StoreAction {
    /// Copy every file of the store, as it is, into a new folder (do this before a repair)
    Backup {
        /// Where to copy it (new or empty)
        #[arg(long)]
        to: PathBuf,
    },
    /// Rebuild a store that does not open (lost CURRENT or MANIFEST) from its table files
    Repair,
}

/// Runs a maintenance command; the data folder's lock keeps a daemon out meanwhile.
fn maintain(data_dir: &std::path::Path, m: &Maintenance) -> anyhow::Result<()> {
    let _lock = metakubed::server::DataDirLock::acquire(data_dir, std::path::Path::new("-"))
        .context("stop the daemon first (kubectl metakube daemon stop)")?;
    let db = data_dir.join("db");
    match m {
        Maintenance::Store {
            action: StoreAction::Backup { to },
        } => {
            let n = metakubed::store::RocksStore::backup(&db, to)?;
            println!("copied {n} file(s) of {} to {}", db.display(), to.display());
        }
        Maintenance::Store {
            action: StoreAction::Repair,
        } => {
            metakubed::store::RocksStore::repair(&db)?;
            let s = metakubed::store::RocksStore::open(&db)?;
            let (d, f) = s.counts()?;
            println!(
                "repaired {}: it opens, with {d} diagnoses and {f} feedback records",
                db.display()
            );
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    allocator_keeps_memory_between_requests();
    // Everything the daemon writes (store, index, socket, logs) is for this user only: no
    // other user may read the RocksDB files or the write-ahead log.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?,
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: a log file or the journal gets plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| paths::config_file(paths::process_env));
    let file = FileConfig::load(&config_path)?;
    let uid = rustix::process::getuid().as_raw();
    let mut config = Config::new(
        args.socket
            .or(file.socket)
            .unwrap_or_else(|| paths::socket_path(paths::process_env, uid)),
        args.data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| paths::data_dir(paths::process_env)),
    );
    if let Some(m) = &args.command {
        return maintain(&config.data_dir, m);
    }
    config.max_body_bytes = args
        .max_body_bytes
        .or(file.max_body_bytes)
        .unwrap_or(DEFAULT_MAX_BODY_BYTES);
    config.ephemeral = args.ephemeral;
    if let Some(d) = args.models_dir.or(file.models_dir) {
        config.models_dir = d;
    }
    config.memory_enabled = !args.no_memory;
    if let Some(ms) = args.request_budget_ms.or(file.request_budget_ms) {
        config.request_budget = std::time::Duration::from_millis(ms);
    }
    if let Some(n) = file.max_diagnoses {
        config.max_diagnoses = n;
    }
    config.withhold_causes = args
        .withhold_causes
        .into_iter()
        .map(|r| if r == "all" { "*".to_string() } else { r })
        .collect();
    if let Some(m) = file.memory {
        config.memory = m;
    }
    if let Some(l) = file.llm {
        config.llm = l;
    }
    if let Some(b) = args.llm {
        config.llm.backend = b;
    }
    if let Some(m) = args.llm_model {
        config.llm.model = Some(m);
    }
    if let Some(e) = args.llm_endpoint {
        config.llm.endpoint = Some(e);
    }
    if let Some(c) = args.llm_constrain {
        config.llm.constrain = c;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(metakubed::server::run(config))
        .context("metakubed failed")?;
    Ok(())
}
