//! The `campaign` subcommand's flags, and how they become a [`Plan`].
//!
//! Every list flag takes comma-separated values and is one dimension of the
//! matrix. The switch flags take `default`, `true`, `false` (or a list, e.g.
//! `true,false` to run both): `default` passes no flag to the node. A TOML
//! file (`--config`) may hold the same flags by name (`nemesis =
//! ["none", "kill+clock"]`, `time-limit = 10`); flags on the command line
//! override it. Its `[ssh]` table, the hosts of `--backend ssh`, is read
//! by [`crate::ssh_table`].
//!
//! Every value is typed by the parser ([`crate::flag_values`]): a bad one
//! is refused with the flag and the allowed values named (exit code 2), and
//! [`CampaignArgs::matrix`] refuses combinations that cannot run (N above
//! the cluster size, an open loop without a rate, `--resume` without
//! `--name`), all before a backend is chosen or a container started.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use history::{Arrival, Fsync, Knobs, NodeChoice, Resolution, StorageEngine};
use nemesis::Composition;
use workload::KeyShape;

use crate::backend::{Backend, BackendChoice, Overrides};
use crate::campaign::Plan;
use crate::datacenters::Layout;
use crate::flag_values::{self, one_of, CompositionParser, Quorums};
use crate::matrix::{switch_combinations, Matrix};
use crate::spec::WorkloadKind;
use crate::store::Store;

/// A switch's value: leave the node's default, or set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// Pass no flag: the node's own default.
    Default,
    /// Pass `--<switch> true`.
    #[value(alias = "on")]
    True,
    /// Pass `--<switch> false`.
    #[value(alias = "off")]
    False,
}

impl Switch {
    /// `None` for the node's default.
    pub fn value(self) -> Option<bool> {
        match self {
            Switch::Default => None,
            Switch::True => Some(true),
            Switch::False => Some(false),
        }
    }
}

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
    /// Where the nodes run (auto: docker when an engine answers, else the simulator).
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Node image tag (docker); default: the tag `make image` wrote to target/dynamo-node.image.
    #[arg(long)]
    pub image: Option<String>,
    /// dynamo-node binary (local and ssh backends); default: target/{release,debug}/dynamo-node.
    #[arg(long)]
    pub node_binary: Option<PathBuf>,
    #[command(flatten)]
    pub ssh: crate::ssh_args::SshArgs,
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub nodes: usize,
    /// Stores, comma-separated (peers get one row each; register only).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "dynamo")]
    pub stores: Vec<Store>,
    /// Replication factors N, comma-separated [default: 3]. With --dcs, N comes from --replicas-per-dc.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub n: Vec<u32>,
    /// Datacenters: --nodes split evenly into dc1, dc2, ... (clients spread over them, each talking
    /// to its own DC's nodes); replicas are then placed per DC.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=16))]
    pub dcs: usize,
    /// With --dcs: replicas of every key in each DC, comma-separated to compare several (N is this
    /// times --dcs).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub replicas_per_dc: Vec<u32>,
    /// W,R pairs separated by spaces or semicolons, e.g. "1,1 2,2 3,1 1,3"; a pair above every --n is
    /// refused, one above some N is skipped for that N (and the skipped rows named). W and R may also
    /// be words: one, all, local (a majority of the client's DC's replicas), each (a majority in every
    /// DC), e.g. "local,local each,local 3,2".
    #[arg(long, default_value = "1,1 2,2 3,1 1,3", value_parser = flag_values::quorums)]
    pub quorums: Quorums,
    /// Conflict resolutions, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "siblings", value_parser = one_of(&Resolution::ALL, Resolution::as_str))]
    pub resolution: Vec<Resolution>,
    /// Sloppy quorum (comma-separated to run several).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "default")]
    pub sloppy_quorum: Vec<Switch>,
    /// Hinted handoff (comma-separated to run several).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "default")]
    pub hinted_handoff: Vec<Switch>,
    /// Read repair (comma-separated to run several).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "default")]
    pub read_repair: Vec<Switch>,
    /// Anti-entropy (comma-separated to run several).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "default")]
    pub anti_entropy: Vec<Switch>,
    /// Replica batching on every node (`dynamo-node --replica-batching`).
    #[arg(long, value_enum, default_value = "default")]
    pub replica_batching: Switch,
    /// Storage engine for the nodes; default: the node's.
    #[arg(long, value_parser = one_of(&StorageEngine::ALL, StorageEngine::as_str))]
    pub storage: Option<StorageEngine>,
    /// Commit-log fsync policy for the nodes; default: the node's. Under the
    /// simulator a kill is a power loss, and this decides what it keeps.
    #[arg(long, value_parser = one_of(&Fsync::ALL, Fsync::as_str))]
    pub fsync: Option<Fsync>,
    /// Workloads, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "register")]
    pub workload: Vec<WorkloadKind>,
    /// Comma-separated nemeses; compose with +, e.g. "none,kill+clock".
    #[arg(long, value_delimiter = ',', default_value = "none,partition", value_parser = CompositionParser)]
    pub nemesis: Vec<Composition>,
    /// Runs per configuration (seeds seed, seed+1, ...).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub test_count: u32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Seconds of fault-free workload before the faults.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// Seconds of workload with faults per run.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub time_limit: u64,
    /// Seconds of fault-free workload after the final heal.
    #[arg(long, default_value_t = 3)]
    pub quiet: u64,
    /// Client processes, each with one op outstanding.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Target ops/s across all clients (0: closed loop, as fast as possible).
    #[arg(long, default_value_t = 200.0, value_parser = flag_values::rate)]
    pub rate: f64,
    /// closed: each client goes again when its op completes (paced by --rate);
    /// open: ops arrive at --rate on a seeded Poisson schedule whatever the
    /// store does, taken by a free client of --concurrency or counted as
    /// dropped_arrivals.
    #[arg(long, default_value = "closed", value_parser = one_of(&Arrival::ALL, Arrival::as_str))]
    pub arrival: Arrival,
    /// Number of keys (k0, k1, ...).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub keys: u32,
    /// uniform, zipfian, or zipfian:<exponent >= 0>.
    #[arg(long, default_value = "uniform", value_parser = flag_values::key_shape)]
    pub key_dist: KeyShape,
    /// fixed (client i -> node i) or random (a node per op).
    #[arg(long, default_value = "random", value_parser = one_of(&NodeChoice::ALL, NodeChoice::as_str))]
    pub node_choice: NodeChoice,
    /// Fraction of ops that are reads (0..=1).
    #[arg(long, default_value_t = 0.5, value_parser = flag_values::fraction)]
    pub read_fraction: f64,
    /// Fraction of register writes that carry the context of the client's last read (0..=1).
    #[arg(long, default_value_t = 0.5, value_parser = flag_values::fraction)]
    pub rmw_fraction: f64,
    /// The node's deadline for gathering W acks / R replies.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,
    /// The client's deadline; longer than the node's so its verdict arrives.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub client_timeout_ms: u64,
    /// After the store refused an op for load (our node's `overloaded`), a
    /// client process waits about this long before its next op: a seeded
    /// delay between half and one and a half times it. 0: no back-off.
    #[arg(long, default_value_t = 20)]
    pub refused_backoff_ms: u64,
    /// LSM memtable size for the nodes (`dynamo-node --memtable-bytes`);
    /// default: the node's. Small values flush SSTables within a short run.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub memtable_bytes: Option<u64>,
    /// Also require the known behaviour (see `expect.rs`): stale reads under
    /// partitions for W+R<=N, lost adds under LWW, none with siblings, ...
    #[arg(long)]
    pub expect_anomalies: bool,
    /// Nemesis schedules (a run's schedule.json, or the shrunk-schedule.json
    /// of `explore --shrink`) instead of those drawn from --seed; the flags
    /// must make exactly one run.
    #[arg(long)]
    pub schedule: Option<PathBuf>,
    /// Print the runs these flags make (one name a line) and exit 0: nothing
    /// runs and no backend is chosen; a bad flag is still refused (exit 2).
    #[arg(long)]
    pub dry_run: bool,
    /// Run even though this workbench was built with planted bugs
    /// (test-only, `--version` names them); simulated runs only.
    #[arg(long)]
    pub allow_planted_bugs: bool,
}

fn switch_values(switches: &[Switch]) -> Vec<Option<bool>> {
    switches.iter().map(|s| s.value()).collect()
}

impl CampaignArgs {
    /// The matrix these flags describe, refused when it cannot run.
    pub fn matrix(&self) -> Result<Matrix> {
        let (ns, layout) = self.replication()?;
        let matrix = Matrix {
            node_count: self.nodes,
            stores: self.stores.clone(),
            ns,
            layout,
            quorums: self.quorums.0.iter().map(|q| (q.w, q.r)).collect(),
            resolutions: self.resolution.clone(),
            switches: switch_combinations(
                &switch_values(&self.sloppy_quorum),
                &switch_values(&self.hinted_handoff),
                &switch_values(&self.read_repair),
                &switch_values(&self.anti_entropy),
            ),
            storage: self.storage,
            fsync: self.fsync,
            workloads: self.workload.clone(),
            nemeses: self.nemesis.clone(),
            test_count: self.test_count,
            seed: self.seed,
            knobs: self.knobs(),
            schedule_override: self.schedule.as_deref().map(read_schedules).transpose()?,
        };
        matrix.validate()?;
        Ok(matrix)
    }

    /// The replication factors and the datacenter layout: `--n` over one
    /// DC, or `--replicas-per-dc` times `--dcs`.
    fn replication(&self) -> Result<(Vec<u32>, Layout)> {
        if self.dcs == 1 {
            if !self.replicas_per_dc.is_empty() {
                bail!("--replicas-per-dc places replicas per datacenter: give --dcs 2 or more");
            }
            let ns = if self.n.is_empty() { vec![3] } else { self.n.clone() };
            return Ok((ns, Layout::default()));
        }
        if !self.n.is_empty() {
            bail!("--n with --dcs {}: N is --replicas-per-dc times --dcs; give --replicas-per-dc", self.dcs);
        }
        if !self.nodes.is_multiple_of(self.dcs) {
            bail!("--dcs {} must split --nodes {} evenly", self.dcs, self.nodes);
        }
        let per_dc = if self.replicas_per_dc.is_empty() { vec![1] } else { self.replicas_per_dc.clone() };
        let nodes_per_dc = (self.nodes / self.dcs) as u32;
        if let Some(k) = per_dc.iter().find(|k| **k > nodes_per_dc) {
            bail!(
                "--replicas-per-dc {k} exceeds the {nodes_per_dc} nodes of each datacenter (--nodes {} / --dcs {})",
                self.nodes,
                self.dcs
            );
        }
        let ns = per_dc.iter().map(|k| k * self.dcs as u32).collect();
        Ok((ns, Layout { dcs: self.dcs, replicas_per_dc: per_dc[0] }))
    }

    /// The knobs every run shares, from their flags.
    fn knobs(&self) -> Knobs {
        Knobs {
            warmup_s: self.warmup,
            time_limit_s: self.time_limit,
            quiet_s: self.quiet,
            concurrency: self.concurrency,
            rate: self.rate,
            arrival: self.arrival,
            keys: self.keys,
            key_distribution: self.key_dist,
            node_choice: self.node_choice,
            read_fraction: self.read_fraction,
            rmw_fraction: self.rmw_fraction,
            request_timeout_ms: self.request_timeout_ms,
            client_timeout_ms: self.client_timeout_ms,
            replica_batching: self.replica_batching.value(),
            memtable_bytes: self.memtable_bytes,
            refused_backoff_ms: self.refused_backoff_ms,
        }
    }

    /// The explicit image and binary for [`crate::backend::choose`].
    /// What `--backend` needs besides the choice: the image, the binary,
    /// and the SSH flags with the `[ssh]` table of `--config`, if any.
    pub fn overrides(&self) -> Result<Overrides> {
        let ssh = self.ssh.clone().with_table(self.config.as_deref())?;
        Ok(Overrides { image: self.image.clone(), node_binary: self.node_binary.clone(), ssh })
    }

    /// The whole plan, with the backend already chosen.
    pub fn plan(&self, matrix: Matrix, backend: Backend) -> Plan {
        Plan {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| format!("campaign-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"))),
            results_dir: self.results_dir.clone(),
            backend,
            matrix,
            expect_anomalies: self.expect_anomalies,
            resume: self.resume,
        }
    }

    /// Refuses flags that cannot go together, before anything starts.
    pub fn validate(&self) -> Result<()> {
        match (&self.name, self.resume) {
            (None, true) => bail!("--resume needs the --name of the campaign to finish"),
            (Some(name), true) => refuse_missing_campaign(&self.results_dir, name),
            _ => Ok(()),
        }
    }
}

/// Refuses `--resume --name <name>` when `results_dir/name` holds no run,
/// naming the directory looked in and the campaigns that are there.
fn refuse_missing_campaign(results_dir: &std::path::Path, name: &str) -> Result<()> {
    let dir = results_dir.join(name);
    if crate::campaign::has_runs(&dir) {
        return Ok(());
    }
    let what = if dir.is_dir() { "holds no run directory (none with a run.json)" } else { "does not exist" };
    let mut known: Vec<String> = std::fs::read_dir(results_dir)
        .map(|entries| entries.flatten().filter(|e| crate::campaign::has_runs(&e.path())))
        .into_iter()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    known.sort();
    let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
    bail!(
        "--resume --name {name}: nothing to finish: looked in {} (under --results-dir {}), which {what}; \
         campaigns there: {known}",
        dir.display(),
        results_dir.display()
    )
}

/// The nemesis schedules in `path` (the JSON list a run's `schedule.json` holds).
fn read_schedules(path: &std::path::Path) -> Result<Vec<nemesis::Schedule>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("--schedule: cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("--schedule: {} is not a list of nemesis schedules (schedule.json)", path.display()))
}

/// The flags a TOML config file stands for, to put before the command line's.
pub fn toml_flags(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table = text.parse().with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        if key == crate::ssh_table::TABLE {
            continue; // the hosts of --backend ssh, read by `ssh_table`
        }
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
/// `clean` keeps its `--config` as it is: it reads only the file's `[ssh]` table.
pub fn expand_config(args: Vec<String>) -> Result<Vec<String>> {
    let Some(i) = args.iter().position(|a| a == "--config") else { return Ok(args) };
    if args.iter().skip(1).find(|a| !a.starts_with('-')).is_some_and(|sub| sub == "clean") {
        return Ok(args);
    }
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
    fn clean_keeps_its_config_flag() {
        let args: Vec<String> =
            ["workbench", "clean", "--backend", "ssh", "--config", "/no/such.toml"].map(String::from).to_vec();
        assert_eq!(expand_config(args.clone()).unwrap(), args);
    }

    #[test]
    fn toml_file_becomes_flags_that_the_command_line_overrides() {
        let dir = std::env::temp_dir().join(format!("wb-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "nemesis = [\"none\", \"kill+clock\"]\nquorums = [\"1,1\", \"2,2\"]\ntime_limit = 7\nexpect-anomalies = true\n").unwrap();
        let args: Vec<String> = ["workbench", "campaign", "--config", path.to_str().unwrap(), "--time-limit", "9"]
            .map(String::from)
            .to_vec();
        let expanded = expand_config(args).unwrap();
        let joined = expanded.join(" ");
        assert!(joined.contains("--nemesis none,kill+clock"), "{joined}");
        assert!(joined.contains("--quorums 1,1 2,2"), "{joined}");
        assert!(joined.contains("--expect-anomalies"), "{joined}");
        let last_time = expanded.iter().rposition(|a| a == "--time-limit").unwrap();
        assert_eq!(expanded[last_time + 1], "9", "the command line comes last and wins");
    }

    #[test]
    /// Here rather than in `replay`, which needs nothing of `args` but this test.
    fn the_replay_parses_as_a_campaign_of_exactly_that_run() {
        use crate::matrix::tests::matrix;
        use crate::replay::{replay_args, tests::context};
        use clap::Parser;
        use std::path::Path;
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            command: Sub,
        }
        #[derive(clap::Subcommand)]
        enum Sub {
            Campaign(CampaignArgs),
        }
        for run in matrix().runs() {
            let dir = Path::new("results/c").join(&run.name);
            let mut argv = vec!["workbench".to_string()];
            argv.extend(replay_args(&run, &context(&dir)));
            let Sub::Campaign(args) = Cli::parse_from(argv).command;
            let replayed = args.matrix().expect("a valid matrix").runs();
            assert_eq!(replayed.len(), 1, "{}", run.name);
            let (a, b) = (&replayed[0], &run);
            assert_eq!(
                (a.n, a.w, a.r, a.resolution, a.switches, a.seed),
                (b.n, b.w, b.r, b.resolution, b.switches, b.seed)
            );
            assert_eq!((a.workload, &a.nemesis, &a.knobs), (b.workload, &b.nemesis, &b.knobs));
        }
    }
}
