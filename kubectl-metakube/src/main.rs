//! `kubectl metakube`: parse, dispatch, map errors to exit codes.
//!
//! Exit codes: 0 success (whether or not a problem was found), 2 usage or runtime error.
//! A closed stdout (`| head`) is not an error.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use kubectl_metakube::cli::{Cli, Command};
use kubectl_metakube::commands;

// A dump's lists are parsed into JSON trees of tens of MB: mimalloc builds and frees them faster
// than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (include/mimalloc.h).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// A command lives for one request: memory it frees is kept for its next allocation instead of
/// being given back to the OS (mimalloc v3 does so after 1 s) and faulted in, zeroed by the
/// kernel, again. It all goes back when the command exits. (The daemon keeps it 10 s: what a
/// large request freed serves the next one, and an idle daemon is small again.)
#[allow(unsafe_code)] // one FFI call into the allocator
fn allocator_keeps_memory() {
    // SAFETY: sets one integer option; mimalloc reads options atomically at each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let mut out = anstream::stdout();
    match &cli.command {
        Command::Diagnose(a) => {
            commands::diagnose::run(&cli.global, a, &mut out).await?;
        }
        Command::Snapshot(a) => commands::snapshot::run(&cli.global, a).await?,
        Command::Changes(a) => commands::changes::run(&cli.global, a, &mut out).await?,
        Command::Watch(a) => commands::watch::run(&cli.global, a, &mut out).await?,
        Command::Feedback(a) => commands::feedback::run(&cli.global, a).await?,
        Command::Mcp(a) => commands::mcp::run(&cli.global, a).await?,
        Command::Eval(a) if a.corrections => {
            commands::corrections::run(&cli.global, a, &mut out).await?;
        }
        Command::Eval(a) if a.learn => {
            commands::learn::run(&cli.global, a, &mut out).await?;
        }
        Command::Eval(a) => {
            commands::eval::run(&cli.global, a, &mut out).await?;
        }
        Command::Memory(a) => commands::memory::run(&cli.global, a, &mut out).await?,
        Command::Daemon(a) => commands::daemon::run(&cli.global, &a.action).await?,
        Command::Completion { shell } => {
            let mut raw = std::io::stdout();
            commands::completion::run(*shell, &mut raw);
        }
    }
    out.flush()?;
    Ok(())
}

fn main() -> ExitCode {
    allocator_keeps_memory();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("METAKUBE_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("metakube: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("metakube: error: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!("\n  caused by: {cause}"));
            }
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_option_is_the_one_mimalloc_reads() {
        // mimalloc v3's options.c: purge_delay defaults to 1000 (ms), the option after it
        // (use_numa_nodes) to 0; a shifted enum would read and set another option.
        // SAFETY: reads and sets integer options.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), 1000);
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY + 1), 0);
            allocator_keeps_memory();
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), -1);
        }
    }
}
