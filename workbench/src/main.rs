//! `workbench`: the thin command line over the workbench's crates.
//!
//! - `workbench campaign ...` runs a matrix of N/W/R settings x switches x
//!   workloads x nemeses on a real cluster (Docker, or local processes when
//!   no engine answers) and writes `results/<campaign>/` with a table per
//!   nemesis and workload, plots per run and `index.html`.
//! - `workbench check <dir>` re-checks a run or a whole campaign offline.
//! - `workbench clean` removes containers and networks a killed workbench left.
//!
//! Exit codes: 0 every run as valid as expected, 1 not, 2 unknown (e.g. a
//! fault the backend cannot perform, or an error before a verdict), 130
//! interrupted.

mod admin_poll;
mod args;
mod bench_peers;
mod bench_plot;
mod campaign;
mod check;
mod expect;
mod index;
mod matrix;
mod plot;
mod progress;
mod run;
mod spec;
mod store;
mod table;
mod windows;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::args::CampaignArgs;
use crate::campaign::Backend;

#[derive(Parser)]
#[command(name = "workbench", version, about = "A Jepsen-style workbench for a Dynamo-style store", args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a matrix of configurations x nemeses x workloads and write results/<name>/.
    Campaign(CampaignArgs),
    /// Re-check a run directory or a campaign directory offline.
    Check {
        dir: PathBuf,
        /// Rewrite results.json (and the plots) with the new verdicts.
        #[arg(long)]
        write: bool,
    },
    /// Our store side by side with etcd and Redis under one closed-loop load
    /// (a benchmark, not a test); writes results/bench/<time>/bench.md.
    BenchPeers {
        #[arg(long, default_value = "auto")]
        backend: String,
        #[arg(long)]
        image: Option<String>,
        #[arg(long)]
        node_binary: Option<PathBuf>,
        /// Seconds of load per store.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        #[arg(long, default_value_t = 32)]
        concurrency: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value = "results")]
        results_dir: PathBuf,
        /// Measure only these contenders (comma-separated keys: dynamo3,
        /// etcd, redis, dynamo1), e.g. to profile one; default all.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Remove containers and networks a dead workbench left (its label, owner gone).
    Clean {
        /// Also remove those of workbenches still running.
        #[arg(long)]
        all: bool,
    },
}

async fn choose_backend(args: &CampaignArgs) -> Result<Backend> {
    let want = args.backend.as_str();
    let docker_up = want != "local" && docker::docker_available().await;
    match (want, docker_up) {
        ("docker", false) => bail!("--backend docker, but no Docker engine answers; is the daemon running?"),
        ("docker" | "auto", true) => Ok(Backend::Docker { image: image_tag(args)? }),
        ("local" | "auto", false) | ("local", _) => {
            if want == "auto" {
                eprintln!("no Docker engine answers: falling back to local processes (partitions and latency will be reported unsupported)");
            }
            let binary = match &args.node_binary {
                Some(b) => b.clone(),
                None => docker::find_node_binary()
                    .context("no dynamo-node binary found: run `cargo build --release -p dynamo-node` or pass --node-binary")?,
            };
            Ok(Backend::Local { binary })
        }
        (other, _) => bail!("unknown --backend {other:?} (expected docker, local or auto)"),
    }
}

fn image_tag(args: &CampaignArgs) -> Result<String> {
    if let Some(image) = &args.image {
        return Ok(image.clone());
    }
    let path = PathBuf::from("target/dynamo-node.image");
    let tag = std::fs::read_to_string(&path)
        .with_context(|| format!("no node image recorded in {}: run `make image` first (or pass --image)", path.display()))?;
    Ok(tag.trim().to_string())
}

async fn bench_peers(
    backend: &str,
    image: Option<String>,
    node_binary: Option<PathBuf>,
    config: workload::bench::BenchConfig,
    results_dir: &std::path::Path,
    only: &[String],
) -> Result<i32> {
    let docker_up = backend != "local" && docker::docker_available().await;
    let place = match (backend, docker_up) {
        ("docker", false) => bail!("--backend docker, but no Docker engine answers"),
        ("docker" | "auto", true) => {
            let image = match image {
                Some(i) => i,
                None => docker::built_image_tag().context("no node image: run `make image` first (or pass --image)")?,
            };
            bench_peers::Where::Docker { image }
        }
        ("local" | "auto", _) => bench_peers::Where::Local {
            node_binary: node_binary.or_else(docker::find_node_binary).context("no dynamo-node binary found")?,
        },
        (other, _) => bail!("unknown --backend {other:?} (expected docker, local or auto)"),
    };
    bench_peers::bench_peers(&config, &place, results_dir, only).await
}

async fn campaign(args: CampaignArgs) -> Result<i32> {
    let backend = choose_backend(&args).await?;
    let plan = args.plan(backend)?;
    campaign::run_campaign(&plan).await
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let argv = match args::expand_config(std::env::args().collect()) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    };
    let cli = Cli::parse_from(argv);
    let code = match cli.command {
        Command::Campaign(args) => campaign(args).await,
        Command::Check { dir, write } => check::check(&dir, write),
        Command::BenchPeers { backend, image, node_binary, duration, concurrency, seed, results_dir, only } => {
            let config = bench_peers::default_config(duration, concurrency, seed);
            bench_peers(&backend, image, node_binary, config, &results_dir, &only).await
        }
        Command::Clean { all } => {
            let removed = if all { docker::remove_all_labeled().await } else { docker::remove_leftovers().await };
            removed.map(|n| {
            eprintln!("removed {n} leftover containers/networks");
            0
        }).map_err(Into::into)
        }
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // Nothing was decided: the same code as an unknown verdict.
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
