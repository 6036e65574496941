//! `metakubed`: parse flags, build the configuration, run the server.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use metakube_shared::paths;
use metakubed::config::{FileConfig, DEFAULT_MAX_BODY_BYTES};
use metakubed::Config;

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
    /// Log filter (tracing EnvFilter syntax), e.g. info or metakubed=debug
    #[arg(long, env = "METAKUBE_LOG", default_value = "info")]
    log: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?,
        )
        .with_writer(std::io::stderr)
        .init();
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| paths::config_file(paths::process_env));
    let file = FileConfig::load(&config_path)?;
    let uid = rustix::process::getuid().as_raw();
    let config = Config {
        socket: args
            .socket
            .or(file.socket)
            .unwrap_or_else(|| paths::socket_path(paths::process_env, uid)),
        data_dir: args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| paths::data_dir(paths::process_env)),
        max_body_bytes: args
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(DEFAULT_MAX_BODY_BYTES),
        ephemeral: args.ephemeral,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(metakubed::server::run(config))
        .context("metakubed failed")?;
    Ok(())
}
