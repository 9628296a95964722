//! `workbench`: the thin command line over the workbench's crates.
//!
//! - `workbench campaign ...` runs a matrix of N/W/R settings x switches x
//!   workloads x nemeses on a cluster (Docker; the deterministic simulator
//!   when no engine answers; or local processes) and writes
//!   `results/<campaign>/` with a table per nemesis and workload, plots per
//!   run and `index.html`.
//! - `workbench explore --seeds A..B ...` runs one configuration over many
//!   seeds under the simulator, in parallel, and prints the seeds that fail
//!   with the command that replays each.
//! - `workbench check <dir>` re-checks a run or a whole campaign offline.
//! - `workbench clean` removes containers and networks a killed workbench
//!   left (`--backend ssh --hosts ...`: what it left on SSH hosts).
//!
//! Exit codes: 0 every run as valid as expected, 1 not, 2 unknown (e.g. a
//! fault the backend cannot perform, or an error before a verdict), 130
//! interrupted.

mod admin_poll;
mod args;
mod backend;
mod bench_load;
mod bench_peers;
mod bench_plot;
mod campaign;
mod check;
mod datacenters;
mod expect;
mod expect_dc;
mod explore;
mod flag_values;
mod index;
mod jepsen_check;
mod json_file;
mod matrix;
mod planted;
mod plot;
mod progress;
mod replay;
mod run;
mod sim_run;
mod spec;
mod ssh_args;
mod ssh_table;
mod store;
mod swarm;
mod table;
mod timeline;
#[cfg(test)]
mod timeline_browser;
mod wars;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::args::CampaignArgs;
use crate::backend::{BackendChoice, Overrides};

#[derive(Parser)]
#[command(name = "workbench", version = planted::VERSION, about = "A Jepsen-style workbench for a Dynamo-style store", args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a matrix of configurations x nemeses x workloads and write results/<name>/.
    Campaign(CampaignArgs),
    /// One configuration over many seeds under the simulator, in parallel:
    /// the seeds with invalid verdicts or anomalies, and how to replay each.
    #[command(mut_arg("backend", explore::backend_arg))]
    #[command(mut_args(explore::hide_campaign_only))]
    Explore(explore::ExploreArgs),
    /// Re-check a run directory or a campaign directory offline and print
    /// what the campaign printed (header, legend, tables, verdict).
    Check {
        /// A campaign directory (results/<name>) or one run directory in it;
        /// only directories whose run.json this workbench wrote are read.
        #[arg(required_unless_present = "jepsen")]
        dir: Option<PathBuf>,
        /// Also rewrite each run's results.json, plots and timeline.html
        /// from the new verdicts (default: print only, write nothing).
        #[arg(long, conflicts_with = "jepsen")]
        write: bool,
        /// Instead of a run directory, a Jepsen history (EDN: one op map per
        /// line, or a vector of them) to check for linearizability.
        #[arg(long, value_name = "HISTORY_EDN", conflicts_with = "dir")]
        jepsen: Option<PathBuf>,
        /// With --jepsen: the object each key is checked against,
        /// `register` (read, write) or `cas-register` (and cas).
        #[arg(long, default_value = "register", requires = "jepsen", conflicts_with = "dir")]
        model: checker::linearizable::Model,
        /// With --jepsen: every value is a [key value] tuple (Jepsen's
        /// independent keys); otherwise the history is one register.
        #[arg(long, requires = "jepsen", conflicts_with = "dir")]
        independent: bool,
    },
    /// Our store side by side with etcd and Redis under one closed-loop load
    /// (a benchmark, not a test); writes results/bench/<time>/bench.md.
    BenchPeers {
        #[command(flatten)]
        stores: StoresArgs,
        /// Seconds of load per store.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Clients, each with one request outstanding (closed loop).
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
        concurrency: u32,
        /// Seed of the keys and values the load writes and reads.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The share of ops that are reads (0: puts only, as `make
        /// bench-lazyfs` prices the put path).
        #[arg(long, default_value_t = bench_peers::DEFAULT_READ_FRACTION, value_parser = flag_values::fraction)]
        read_fraction: f64,
        /// Where results/bench/<time>/ goes (its parent).
        #[arg(long, default_value = "results")]
        results_dir: PathBuf,
        /// Measure only these contenders (comma-separated keys: dynamo3,
        /// etcd, redis, dynamo1, and dynamo1-lazyfs, which runs only when
        /// named), e.g. to profile one; default all the others.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Goodput, refusals and p99 against offered load (closed loops of 32
    /// to 4,096 clients), for our store with and without admission control,
    /// etcd and Redis (a benchmark, not a test); writes results/load/<time>/
    /// with load.md, load.json, goodput.png and p99.png.
    BenchLoad(BenchLoadArgs),
    /// Remove containers and networks a dead workbench left (its label, owner gone); with
    /// --backend ssh, the processes, run directories and iptables chain left on --hosts.
    Clean {
        /// Also remove those of workbenches still running (docker).
        #[arg(long)]
        all: bool,
        /// Where to clean: the Docker engine, or the SSH hosts of --hosts.
        #[arg(long, value_enum, default_value_t = CleanBackend::Docker)]
        backend: CleanBackend,
        /// A campaign's TOML file whose `[ssh]` table names the hosts (--backend ssh).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        ssh: ssh_args::SshArgs,
    },
}

/// `clean --backend`: what leftovers to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CleanBackend {
    /// Containers and networks with the workbench's label.
    Docker,
    /// Processes, run directories and the iptables chain on the SSH hosts of --hosts.
    Ssh,
}

/// `bench-peers` and `bench-load --backend`: where real etcd and Redis can
/// run (no simulator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PeerBackend {
    /// Docker when an engine answers, else local processes.
    Auto,
    /// Containers of the node image (which holds etcd and Redis too).
    Docker,
    /// Processes on loopback (etcd-server and redis-server from the host).
    Local,
}

impl PeerBackend {
    /// The campaign-wide choice this stands for.
    fn choice(self) -> BackendChoice {
        match self {
            PeerBackend::Auto => BackendChoice::Auto,
            PeerBackend::Docker => BackendChoice::Docker,
            PeerBackend::Local => BackendChoice::Local,
        }
    }
}

async fn campaign(args: CampaignArgs) -> Result<i32> {
    // Everything the flags can be wrong about is refused before a backend
    // is chosen, let alone a container started.
    args.validate()?;
    let matrix = args.matrix()?;
    let skipped = matrix.skipped();
    if !skipped.is_empty() {
        eprintln!("skipped rows whose W or R is above their N: {}", skipped.join(", "));
    }
    if args.dry_run {
        return Ok(print_runs(&matrix));
    }
    let backend = backend::choose(args.backend, &args.overrides()?, BackendChoice::Sim).await?;
    if let Some(why) = backend.refuses(&matrix) {
        anyhow::bail!("{why}");
    }
    planted::refuse_unless_allowed(matches!(backend, backend::Backend::Sim), args.allow_planted_bugs)?;
    campaign::run_campaign(&args.plan(matrix, backend)).await
}

/// `clean --backend ssh`: what killed runs left on every host of `--hosts`
/// (or of the `[ssh]` table of `--config`).
async fn clean_ssh(args: ssh_args::SshArgs, table_file: Option<&std::path::Path>) -> Result<i32> {
    let config = args.with_table(table_file)?.config(PathBuf::new())?;
    let hosts = docker::SshCluster::clean(&config).await?;
    eprintln!(
        "cleaned {hosts} hosts (processes, run directories and iptables chain under {})",
        docker::ssh::REMOTE_ROOT
    );
    Ok(0)
}

/// `--dry-run`: the runs a matrix makes, one name a line; exit code 0.
fn print_runs(matrix: &matrix::Matrix) -> i32 {
    let runs = matrix.runs();
    for run in &runs {
        println!("{}", run.name);
    }
    eprintln!("{} runs (--dry-run: nothing was run)", runs.len());
    0
}

/// Where the benchmarks' stores run: the flags bench-peers and bench-load share.
#[derive(Debug, clap::Args)]
struct StoresArgs {
    /// Where the stores run (auto: docker when an engine answers, else
    /// local processes; the peers are real etcd and Redis, so no sim).
    #[arg(long, value_enum, default_value_t = PeerBackend::Auto)]
    backend: PeerBackend,
    /// Node image tag (docker); default: the tag `make image` wrote to
    /// target/dynamo-node.image (the image also holds etcd and Redis).
    #[arg(long)]
    image: Option<String>,
    /// dynamo-node binary (local); default: target/{release,debug}/dynamo-node.
    #[arg(long)]
    node_binary: Option<PathBuf>,
}

impl StoresArgs {
    /// The backend these flags choose (local processes when `auto` finds no Docker).
    async fn backend(self) -> Result<backend::Backend> {
        let overrides = Overrides { image: self.image, node_binary: self.node_binary, ssh: Default::default() };
        backend::choose(self.backend.choice(), &overrides, BackendChoice::Local).await
    }
}

/// The flags of `workbench bench-load`.
#[derive(Debug, clap::Args)]
struct BenchLoadArgs {
    #[command(flatten)]
    stores: StoresArgs,
    /// Closed-loop client counts, ascending, one step each.
    #[arg(long, value_delimiter = ',', default_values_t = bench_load::DEFAULT_LEVELS)]
    levels: Vec<u32>,
    /// Seconds of load per step.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,
    /// Mean back-off of a client refused for load before its next
    /// request, ms (jittered from the seed between half and 1.5 times it).
    #[arg(long, default_value_t = 20)]
    refused_backoff_ms: u64,
    /// The seed of every client's keys, reads and back-offs.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where `load/<time>/` is written.
    #[arg(long, default_value = "results")]
    results_dir: PathBuf,
    /// Sweep only these stores (comma-separated keys: dynamo3,
    /// dynamo3-nolimit, etcd, redis, dynamo1); default all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// Checks the sweep's flags before any store starts, then runs it.
async fn bench_load(args: BenchLoadArgs) -> Result<i32> {
    bench_load::check_levels(&args.levels)?;
    let bench = workload::bench::BenchConfig {
        refused_backoff_ms: args.refused_backoff_ms,
        ..bench_peers::default_config(args.duration, 1, args.seed)
    };
    let config = bench_load::LoadConfig { levels: args.levels, bench, results_dir: args.results_dir, only: args.only };
    let backend = args.stores.backend().await?;
    bench_load::bench_load(&config, &backend).await
}

/// mimalloc instead of glibc's malloc, as the node: a check parses millions
/// of small JSON trees and versions and frees them again, and the
/// simulator runs every node's many small allocations in this process.
/// `workbench check` of a 123 s siblings run at 1,000 ops/s (194k history
/// lines) took 3.2 s of CPU (user) with glibc and 2.6 s with it, and peaked at
/// 868 MiB against 797 MiB (`/usr/bin/time -f "%U s %M KiB"`, 2026-12-07).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Check { jepsen: Some(path), model, independent, .. } => {
            jepsen_check::check_jepsen(&path, model, history::jepsen::Options { independent })
        }
        Command::Check { dir: Some(dir), write, .. } => check::check(&dir, write),
        Command::Check { dir: None, jepsen: None, .. } => unreachable!("clap requires a directory or --jepsen"),
        // Its workers run simulations, which must not be inside this runtime.
        Command::Explore(args) => tokio::task::block_in_place(|| explore::explore(&args)),
        Command::BenchPeers { stores, duration, concurrency, seed, read_fraction, results_dir, only } => {
            let config = workload::bench::BenchConfig {
                read_fraction,
                ..bench_peers::default_config(duration, concurrency, seed)
            };
            match stores.backend().await {
                Ok(backend) => bench_peers::bench_peers(&config, &backend, &results_dir, &only).await,
                Err(e) => Err(e),
            }
        }
        Command::BenchLoad(args) => bench_load(args).await,
        Command::Clean { backend: CleanBackend::Ssh, ssh, config, .. } => clean_ssh(ssh, config.as_deref()).await,
        Command::Clean { all, .. } => {
            let removed = if all { docker::remove_all_labeled().await } else { docker::remove_leftovers().await };
            removed
                .map(|n| {
                    eprintln!("removed {n} leftover containers/networks");
                    0
                })
                .map_err(Into::into)
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
