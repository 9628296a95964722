//! The `dynamo-node` binary: parse flags, set up logging, serve until
//! SIGTERM or SIGINT, then shut down gracefully (in-flight requests finish).
//! A build with a planted bug (`planted.rs`) refuses to serve.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use dynamo_node::{Args, Config};
use tracing::info;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc. Judged on instructions, which a
/// noisy machine does not move: `make bench-instructions` counted 94k
/// instructions per N1 put with it against 110-113k without, and 79k per
/// get against 92-93k (malloc, free and their consolidation were a tenth
/// of a 3-node cluster's CPU under load: many small, short-lived
/// allocations of requests, siblings and h2 frames).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // Parsed first, so that --version and --help still answer.
    let args = Args::parse();
    if !dynamo_node::planted::PLANTED_BUGS.is_empty() {
        eprintln!(
            "dynamo-node: this binary was built with planted bugs {:?} (test-only cargo features); refusing to serve",
            dynamo_node::planted::PLANTED_BUGS
        );
        std::process::exit(2);
    }
    let threads = args.runtime_threads;
    let config = match Config::from_args(args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("dynamo-node: invalid configuration: {error}");
            std::process::exit(2);
        }
    };
    let runtime = runtime(threads).context("dynamo-node cannot start its async runtime")?;
    runtime.block_on(async {
        init_logging();
        dynamo_node::run(config, shutdown_signal()).await.context("dynamo-node failed")
    })
}

/// The runtime `--runtime-threads` asks for: single-threaded for 1, else
/// multi-threaded with that many workers (0: one per core).
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if threads > 1 {
        builder.worker_threads(threads);
    }
    builder.enable_all().build()
}

/// Logs to stderr; `RUST_LOG` overrides the default `info` level. Each line
/// carries the node id through the `node{id=..}` span.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Completes on the first SIGTERM (docker stop) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("SIGINT received, shutting down"),
        () = terminate => info!("SIGTERM received, shutting down"),
    }
}
