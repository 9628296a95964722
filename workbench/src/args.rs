//! The `campaign` subcommand's flags, and how they become a [`Plan`].
//!
//! Every list flag takes comma-separated values and is one dimension of the
//! matrix. The switch flags take `default`, `true`, `false` (or a list, e.g.
//! `true,false` to run both): `default` passes no flag to the node. A TOML
//! file (`--config`) may hold the same flags by name (`nemesis =
//! ["none", "kill+clock"]`, `time-limit = 10`); flags on the command line
//! override it.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use history::Resolution;
use nemesis::Composition;
use workload::register::NodeChoice;
use workload::{Arrival, KeyDist};

use crate::store::Store;
use crate::campaign::{Backend, Plan};
use crate::matrix::{switch_combinations, Matrix};
use crate::spec::WorkloadKind;

/// `workbench campaign` flags.
#[derive(Args, Debug)]
pub struct CampaignArgs {
    /// A TOML file of flags (`key = value`, keys as the flags' names); the command line overrides it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Campaign name (directory under --results-dir); default: campaign-<UTC time>.
    #[arg(long)]
    pub name: Option<String>,
    /// Finish an interrupted campaign (same --name): finished runs are kept, not redone.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// docker, local, or auto (docker when an engine answers, else local).
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Node image tag (docker); default: the tag `make image` wrote to target/dynamo-node.image.
    #[arg(long)]
    pub image: Option<String>,
    /// dynamo-node binary (local backend); default: target/{release,debug}/dynamo-node.
    #[arg(long)]
    pub node_binary: Option<PathBuf>,
    /// Cluster size.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Stores, comma-separated: dynamo, etcd-linearizable, etcd-serializable,
    /// redis-primary, redis-replica (peers get one row each; register only).
    #[arg(long, default_value = "dynamo")]
    pub stores: String,
    /// Replication factors N, comma-separated.
    #[arg(long, default_value = "3")]
    pub n: String,
    /// W,R pairs separated by spaces or semicolons, e.g. "1,1 2,2 3,1 1,3"; pairs above N are skipped.
    #[arg(long, default_value = "1,1 2,2 3,1 1,3")]
    pub quorums: String,
    /// Comma-separated: siblings, lww.
    #[arg(long, default_value = "siblings")]
    pub resolution: String,
    /// Sloppy quorum: default, true, false (comma-separated to run several).
    #[arg(long, default_value = "default")]
    pub sloppy_quorum: String,
    /// Hinted handoff: default, true, false.
    #[arg(long, default_value = "default")]
    pub hinted_handoff: String,
    /// Read repair: default, true, false.
    #[arg(long, default_value = "default")]
    pub read_repair: String,
    /// Anti-entropy: default, true, false.
    #[arg(long, default_value = "default")]
    pub anti_entropy: String,
    /// Storage engine for the nodes (memory, lsm); default: the node's.
    #[arg(long)]
    pub storage: Option<String>,
    /// Comma-separated: register, set.
    #[arg(long, default_value = "register")]
    pub workload: String,
    /// Comma-separated nemeses; compose with +: none, partition, kill, pause, clock, latency, e.g. "none,kill+clock".
    #[arg(long, default_value = "none,partition")]
    pub nemesis: String,
    /// Runs per configuration (seeds seed, seed+1, ...).
    #[arg(long, default_value_t = 1)]
    pub test_count: u32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Seconds of fault-free workload before the faults.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// Seconds of workload with faults per run.
    #[arg(long, default_value_t = 20)]
    pub time_limit: u64,
    /// Seconds of fault-free workload after the final heal.
    #[arg(long, default_value_t = 3)]
    pub quiet: u64,
    #[arg(long, default_value_t = 6)]
    pub concurrency: u32,
    /// Target ops/s across all clients (0: closed loop, as fast as possible).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// closed: each client goes again when its op completes (paced by --rate);
    /// open: ops arrive at --rate on a seeded Poisson schedule whatever the
    /// store does, taken by a free client of --concurrency or counted as
    /// dropped_arrivals.
    #[arg(long, default_value = "closed")]
    pub arrival: String,
    #[arg(long, default_value_t = 5)]
    pub keys: u32,
    /// uniform, zipfian, or zipfian:<exponent>.
    #[arg(long, default_value = "uniform")]
    pub key_dist: String,
    /// fixed (client i -> node i) or random (a node per op).
    #[arg(long, default_value = "random")]
    pub node_choice: String,
    #[arg(long, default_value_t = 0.5)]
    pub read_fraction: f64,
    /// Fraction of register writes that carry the context of the client's last read.
    #[arg(long, default_value_t = 0.5)]
    pub rmw_fraction: f64,
    #[arg(long, default_value_t = 500)]
    pub request_timeout_ms: u64,
    #[arg(long, default_value_t = 2000)]
    pub client_timeout_ms: u64,
    /// Also require the known behaviour (see `expect.rs`): stale reads under
    /// partitions for W+R<=N, lost adds under LWW, none with siblings, ...
    #[arg(long)]
    pub expect_anomalies: bool,
}

fn parse_list<T: std::str::FromStr<Err = String>>(s: &str, what: &str) -> Result<Vec<T>> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| x.parse::<T>().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<T>>>()
        .with_context(|| format!("bad --{what}"))
}

fn parse_ns(s: &str) -> Result<Vec<u32>> {
    s.split([',', ' ']).filter(|x| !x.is_empty()).map(|x| x.parse::<u32>().with_context(|| format!("bad --n value {x:?}"))).collect()
}

fn parse_quorums(s: &str) -> Result<Vec<(u32, u32)>> {
    s.split([' ', ';'])
        .filter(|x| !x.is_empty())
        .map(|pair| {
            let (w, r) = pair.split_once(',').with_context(|| format!("quorum {pair:?} is not W,R"))?;
            Ok((w.trim().parse().with_context(|| format!("bad W in {pair:?}"))?, r.trim().parse().with_context(|| format!("bad R in {pair:?}"))?))
        })
        .collect()
}

fn parse_switch(s: &str, what: &str) -> Result<Vec<Option<bool>>> {
    s.split(',')
        .map(str::trim)
        .map(|v| match v {
            "default" => Ok(None),
            "true" | "on" => Ok(Some(true)),
            "false" | "off" => Ok(Some(false)),
            other => bail!("bad --{what} value {other:?} (default, true, false)"),
        })
        .collect()
}

impl CampaignArgs {
    /// The matrix these flags describe.
    pub fn matrix(&self) -> Result<Matrix> {
        Ok(Matrix {
            node_count: self.nodes,
            stores: parse_list::<Store>(&self.stores, "stores")?,
            ns: parse_ns(&self.n)?,
            quorums: parse_quorums(&self.quorums)?,
            resolutions: parse_list::<Resolution>(&self.resolution, "resolution")?,
            switches: switch_combinations(
                &parse_switch(&self.sloppy_quorum, "sloppy-quorum")?,
                &parse_switch(&self.hinted_handoff, "hinted-handoff")?,
                &parse_switch(&self.read_repair, "read-repair")?,
                &parse_switch(&self.anti_entropy, "anti-entropy")?,
            ),
            storage: self.storage.clone(),
            workloads: parse_list::<WorkloadKind>(&self.workload, "workload")?,
            nemeses: parse_list::<Composition>(&self.nemesis, "nemesis")?,
            test_count: self.test_count,
            seed: self.seed,
            warmup_s: self.warmup,
            time_limit_s: self.time_limit,
            quiet_s: self.quiet,
            concurrency: self.concurrency,
            rate: self.rate,
            arrival: self.arrival.parse::<Arrival>().map_err(anyhow::Error::msg)?,
            key_dist: KeyDist::parse(&self.key_dist, self.keys).map_err(anyhow::Error::msg)?,
            node_choice: self.node_choice.parse::<NodeChoice>().map_err(anyhow::Error::msg)?,
            read_fraction: self.read_fraction,
            rmw_fraction: self.rmw_fraction,
            request_timeout_ms: self.request_timeout_ms,
            client_timeout_ms: self.client_timeout_ms,
        })
    }

    /// The whole plan, with the backend already chosen.
    pub fn plan(&self, backend: Backend) -> Result<Plan> {
        if self.resume && self.name.is_none() {
            bail!("--resume needs the --name of the campaign to finish");
        }
        Ok(Plan {
            name: self.name.clone().unwrap_or_else(|| format!("campaign-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"))),
            results_dir: self.results_dir.clone(),
            backend,
            matrix: self.matrix()?,
            expect_anomalies: self.expect_anomalies,
            resume: self.resume,
        })
    }
}

/// The flags a TOML config file stands for, to put before the command line's.
pub fn toml_flags(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let flag = format!("--{}", key.replace('_', "-"));
        let sep = if flag == "--quorums" { " " } else { "," };
        let text = match value {
            toml::Value::Boolean(true) => {
                out.push(flag);
                continue;
            }
            toml::Value::Boolean(false) => continue,
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Array(items) => items.iter().map(toml_scalar).collect::<Result<Vec<_>>>()?.join(sep),
            other => bail!("{}: {key} = {other} is not a flag value", path.display()),
        };
        out.push(flag);
        out.push(text);
    }
    Ok(out)
}

fn toml_scalar(v: &toml::Value) -> Result<String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => bail!("{other} is not a scalar"),
    })
}

/// The process's arguments with a `--config` file's flags inserted right
/// after the subcommand, so the command line's own flags come later and win.
pub fn expand_config(args: Vec<String>) -> Result<Vec<String>> {
    let Some(i) = args.iter().position(|a| a == "--config") else { return Ok(args) };
    let path = args.get(i + 1).context("--config needs a file")?;
    let flags = toml_flags(std::path::Path::new(path))?;
    let sub = args.iter().position(|a| a == "campaign").context("--config belongs to `workbench campaign`")?;
    let mut out: Vec<String> = args[..=sub].to_vec();
    out.extend(flags);
    out.extend(args[sub + 1..].iter().cloned());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_file_becomes_flags_that_the_command_line_overrides() {
        let dir = std::env::temp_dir().join(format!("wb-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "nemesis = [\"none\", \"kill+clock\"]\nquorums = [\"1,1\", \"2,2\"]\ntime_limit = 7\nexpect-anomalies = true\n").unwrap();
        let args: Vec<String> = ["workbench", "campaign", "--config", path.to_str().unwrap(), "--time-limit", "9"].map(String::from).to_vec();
        let expanded = expand_config(args).unwrap();
        let joined = expanded.join(" ");
        assert!(joined.contains("--nemesis none,kill+clock"), "{joined}");
        assert!(joined.contains("--quorums 1,1 2,2"), "{joined}");
        assert!(joined.contains("--expect-anomalies"), "{joined}");
        let last_time = expanded.iter().rposition(|a| a == "--time-limit").unwrap();
        assert_eq!(expanded[last_time + 1], "9", "the command line comes last and wins");
    }

    #[test]
    fn switch_values_parse() {
        assert_eq!(parse_switch("default,true,off", "x").unwrap(), vec![None, Some(true), Some(false)]);
        assert!(parse_switch("maybe", "x").is_err());
    }
}
