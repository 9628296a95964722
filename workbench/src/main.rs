//! `workbench`: the thin command line over the workbench's crates.
//!
//! - `workbench campaign ...` runs a matrix of N/W/R settings x nemeses on a
//!   real cluster (Docker, or local processes when no engine answers) and
//!   writes `results/<campaign>/` with a table per nemesis.
//! - `workbench check <dir>` re-checks a run or a whole campaign offline.
//! - `workbench clean` removes containers and networks a killed workbench left.
//!
//! Exit codes: 0 every run as valid as expected, 1 not, 2 unknown (e.g. a
//! fault the backend cannot perform, or an error before a verdict), 130
//! interrupted.

mod admin_poll;
mod campaign;
mod check;
mod expect;
mod run;
mod table;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use history::Resolution;
use nemesis::NemesisKind;
use workload::register::NodeChoice;

use crate::campaign::{Backend, Plan};

#[derive(Parser)]
#[command(name = "workbench", version, about = "A Jepsen-style workbench for a Dynamo-style store")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a matrix of configurations x nemeses and write results/<name>/.
    Campaign(CampaignArgs),
    /// Re-check a run directory or a campaign directory offline.
    Check {
        dir: PathBuf,
        /// Rewrite results.json with the new verdicts.
        #[arg(long)]
        write: bool,
    },
    /// Remove containers and networks a dead workbench left (its label, owner gone).
    Clean {
        /// Also remove those of workbenches still running.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Args)]
struct CampaignArgs {
    /// Campaign name (directory under --results-dir); default: campaign-<UTC time>.
    #[arg(long)]
    name: Option<String>,
    #[arg(long, default_value = "results")]
    results_dir: PathBuf,
    /// docker, local, or auto (docker when an engine answers, else local).
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Node image tag (docker); default: the tag `make image` wrote to target/dynamo-node.image.
    #[arg(long)]
    image: Option<String>,
    /// dynamo-node binary (local backend); default: target/{release,debug}/dynamo-node.
    #[arg(long)]
    node_binary: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    #[arg(long, default_value_t = 3)]
    n: u32,
    /// W,R pairs separated by spaces or semicolons, e.g. "1,1 2,2 3,1 1,3".
    #[arg(long, default_value = "1,1 2,2 3,1 1,3")]
    quorums: String,
    /// Comma-separated: siblings, lww.
    #[arg(long, default_value = "siblings")]
    resolution: String,
    /// Comma-separated: none, partition.
    #[arg(long, default_value = "none,partition")]
    nemesis: String,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Seconds of workload with faults per run.
    #[arg(long, default_value_t = 20)]
    time_limit: u64,
    /// Seconds of fault-free workload after the final heal.
    #[arg(long, default_value_t = 3)]
    quiet: u64,
    #[arg(long, default_value_t = 6)]
    concurrency: u32,
    /// Target ops/s across all clients (0: closed loop).
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    #[arg(long, default_value_t = 5)]
    keys: u32,
    /// fixed (client i -> node i) or random (a node per op).
    #[arg(long, default_value = "random")]
    node_choice: String,
    #[arg(long, default_value_t = 0.5)]
    read_fraction: f64,
    /// Fraction of writes that carry the context of the client's last read.
    #[arg(long, default_value_t = 0.5)]
    rmw_fraction: f64,
    #[arg(long, default_value_t = 500)]
    request_timeout_ms: u64,
    #[arg(long, default_value_t = 2000)]
    client_timeout_ms: u64,
    /// Also require the known behaviour: no stale reads without faults,
    /// stale reads under partitions for W+R<=N.
    #[arg(long)]
    expect_anomalies: bool,
}

fn parse_list<T: std::str::FromStr<Err = String>>(s: &str, what: &str) -> Result<Vec<T>> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(|x| x.parse::<T>().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<T>>>()
        .with_context(|| format!("bad --{what}"))
}

fn parse_quorums(s: &str) -> Result<Vec<(u32, u32)>> {
    s.split([' ', ';']).filter(|x| !x.is_empty()).map(|pair| {
        let (w, r) = pair.split_once(',').with_context(|| format!("quorum {pair:?} is not W,R"))?;
        Ok((w.trim().parse().with_context(|| format!("bad W in {pair:?}"))?, r.trim().parse().with_context(|| format!("bad R in {pair:?}"))?))
    }).collect()
}

async fn choose_backend(args: &CampaignArgs) -> Result<Backend> {
    let want = args.backend.as_str();
    let docker_up = want != "local" && docker::docker_available().await;
    match (want, docker_up) {
        ("docker", false) => bail!("--backend docker, but no Docker engine answers; is the daemon running?"),
        ("docker" | "auto", true) => Ok(Backend::Docker { image: image_tag(args)? }),
        ("local" | "auto", false) | ("local", _) => {
            if want == "auto" {
                eprintln!("no Docker engine answers: falling back to local processes (partitions will be reported unsupported)");
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

async fn campaign(args: CampaignArgs) -> Result<i32> {
    let backend = choose_backend(&args).await?;
    let plan = Plan {
        name: args.name.clone().unwrap_or_else(|| format!("campaign-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"))),
        results_dir: args.results_dir.clone(),
        backend,
        node_count: args.nodes,
        n: args.n,
        quorums: parse_quorums(&args.quorums)?,
        resolutions: parse_list::<Resolution>(&args.resolution, "resolution")?,
        nemeses: parse_list::<NemesisKind>(&args.nemesis, "nemesis")?,
        seed: args.seed,
        time_limit_s: args.time_limit,
        quiet_s: args.quiet,
        concurrency: args.concurrency,
        rate: args.rate,
        keys: args.keys,
        node_choice: args.node_choice.parse::<NodeChoice>().map_err(anyhow::Error::msg)?,
        read_fraction: args.read_fraction,
        rmw_fraction: args.rmw_fraction,
        request_timeout_ms: args.request_timeout_ms,
        client_timeout_ms: args.client_timeout_ms,
        expect_anomalies: args.expect_anomalies,
    };
    campaign::run_campaign(&plan).await
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Campaign(args) => campaign(args).await,
        Command::Check { dir, write } => check::check(&dir, write),
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
