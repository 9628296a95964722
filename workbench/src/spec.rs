//! One run's definition: everything that makes it what it is, and how that
//! becomes node flags, workload configs and `run.json`.
//!
//! The store's switches (sloppy quorum, hinted handoff, read repair,
//! anti-entropy, storage engine) are `Option`s: `None` means the node's own
//! default, and no flag is passed, so a campaign never breaks on a node that
//! predates a flag it was not asked to set. `run.json` records the values in
//! force as the node's documented defaults and, under `switches_passed`,
//! exactly which flags were given.

use history::{Resolution, RunConfig};
use nemesis::Composition;
use serde_json::{json, Map, Value};
use workload::register::{NodeChoice, RegisterConfig};
use workload::set::SetConfig;
use workload::{Arrival, KeyDist};

use crate::store::Store;

/// Which workload a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum WorkloadKind {
    /// Reads and writes of unique values.
    Register,
    /// Read-merge-write adds of unique elements (the shopping cart).
    Set,
}

impl WorkloadKind {
    /// The name on the command line and in `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Set => "set",
        }
    }
}

/// The store's feature switches; `None` leaves the node's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Switches {
    /// `--sloppy-quorum`.
    pub sloppy_quorum: Option<bool>,
    /// `--hinted-handoff`.
    pub hinted_handoff: Option<bool>,
    /// `--read-repair`.
    pub read_repair: Option<bool>,
    /// `--anti-entropy`.
    pub anti_entropy: Option<bool>,
}

/// The node defaults the switches fall back to (the node's `--help`).
pub const DEFAULT_SLOPPY_QUORUM: bool = false;
/// Default of `--hinted-handoff`.
pub const DEFAULT_HINTED_HANDOFF: bool = true;
/// Default of `--read-repair`.
pub const DEFAULT_READ_REPAIR: bool = true;
/// Default of `--anti-entropy`.
pub const DEFAULT_ANTI_ENTROPY: bool = true;

impl Switches {
    /// `(flag, value)` for every switch that was set.
    pub fn passed(&self) -> Vec<(&'static str, bool)> {
        [
            ("--sloppy-quorum", self.sloppy_quorum),
            ("--hinted-handoff", self.hinted_handoff),
            ("--read-repair", self.read_repair),
            ("--anti-entropy", self.anti_entropy),
        ]
        .into_iter()
        .filter_map(|(flag, v)| v.map(|v| (flag, v)))
        .collect()
    }

    /// A short label of the non-default switches: `sloppy hh:off`.
    pub fn label(&self) -> String {
        let names = [("sloppy", self.sloppy_quorum), ("hh", self.hinted_handoff), ("rr", self.read_repair), ("ae", self.anti_entropy)];
        names.iter().filter_map(|(n, v)| v.map(|v| format!("{n}:{}", if v { "on" } else { "off" }))).collect::<Vec<_>>().join(" ")
    }
}

/// Everything that defines one run of a campaign.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Directory name inside the campaign, e.g. `partition-register-n3-w2-r2-siblings-t0`.
    pub name: String,
    /// The store under test: ours, or a peer (etcd, Redis).
    pub store: Store,
    /// Cluster size.
    pub node_count: usize,
    /// Replicas per key.
    pub n: u32,
    /// Write quorum.
    pub w: u32,
    /// Read quorum.
    pub r: u32,
    /// Conflict resolution.
    pub resolution: Resolution,
    /// Store feature switches.
    pub switches: Switches,
    /// `--storage` for the nodes (None: node default).
    pub storage: Option<String>,
    /// The workload.
    pub workload: WorkloadKind,
    /// The nemeses, each on its own schedule.
    pub nemesis: Composition,
    /// Which repetition of this configuration (`--test-count`).
    pub test_index: u32,
    /// This run's seed (the campaign's seed plus the repetition).
    pub seed: u64,
    /// Seconds of fault-free workload before the faults.
    pub warmup_s: u64,
    /// Seconds of workload with faults.
    pub time_limit_s: u64,
    /// Fault-free workload time after the final heal, seconds.
    pub quiet_s: u64,
    /// Client processes.
    pub concurrency: u32,
    /// Target ops/s over all clients (0: closed loop).
    pub rate: f64,
    /// Closed loop, or open loop at `rate`.
    pub arrival: Arrival,
    /// Key distribution.
    pub key_dist: KeyDist,
    /// How clients pick nodes.
    pub node_choice: NodeChoice,
    /// Fraction of ops that are reads.
    pub read_fraction: f64,
    /// Register: fraction of writes that carry the last read's context.
    pub rmw_fraction: f64,
    /// The node's own deadline for gathering W acks / R replies.
    pub request_timeout_ms: u64,
    /// The client's deadline; longer than the node's so its verdict arrives.
    pub client_timeout_ms: u64,
}

impl RunSpec {
    /// Node ids `n1..n{node_count}`.
    pub fn node_ids(&self) -> Vec<String> {
        (1..=self.node_count).map(|i| format!("n{i}")).collect()
    }

    /// Flags every node of this run gets.
    pub fn node_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--n".into(),
            self.n.to_string(),
            "--w".into(),
            self.w.to_string(),
            "--r".into(),
            self.r.to_string(),
            "--resolution".into(),
            self.resolution.as_str().into(),
            "--request-timeout-ms".into(),
            self.request_timeout_ms.to_string(),
        ];
        for (flag, value) in self.switches.passed() {
            args.push(flag.into());
            args.push(value.to_string());
        }
        if let Some(storage) = &self.storage {
            args.push("--storage".into());
            args.push(storage.clone());
        }
        args
    }

    /// `run.json` for this run.
    pub fn run_config(&self, backend: &str, image: &str) -> RunConfig {
        let s = self.switches;
        // Peer stores have none of our mechanisms: record them off.
        let ours = self.store == Store::Dynamo;
        RunConfig {
            nodes: self.node_ids(),
            n: self.n,
            w: self.w,
            r: self.r,
            sloppy_quorum: ours && s.sloppy_quorum.unwrap_or(DEFAULT_SLOPPY_QUORUM),
            resolution: self.resolution,
            hinted_handoff: ours && s.hinted_handoff.unwrap_or(DEFAULT_HINTED_HANDOFF),
            read_repair: ours && s.read_repair.unwrap_or(DEFAULT_READ_REPAIR),
            anti_entropy: ours && s.anti_entropy.unwrap_or(DEFAULT_ANTI_ENTROPY),
            workload: self.workload.as_str().into(),
            nemesis: self.nemesis.names(),
            seed: self.seed,
            time_limit_s: self.time_limit_s,
            concurrency: self.concurrency,
            rate: self.rate,
            backend: backend.into(),
            node_image: image.into(),
            started_at: chrono::Utc::now().to_rfc3339(),
            extra: self.extra_fields(),
        }
    }

    /// Knobs beyond the contract's fields, kept so a run can be repeated exactly.
    fn extra_fields(&self) -> Map<String, Value> {
        let passed: Map<String, Value> = self.switches.passed().into_iter().map(|(f, v)| (f.to_string(), json!(v))).collect();
        let value = json!({
            "run_name": self.name,
            "store": self.store.as_str(),
            "test_index": self.test_index,
            "warmup_s": self.warmup_s,
            "quiet_s": self.quiet_s,
            "keys": self.key_dist.keys(),
            "key_distribution": self.key_dist.label(),
            "node_choice": format!("{:?}", self.node_choice).to_lowercase(),
            "read_fraction": self.read_fraction,
            "rmw_fraction": self.rmw_fraction,
            "arrival": self.arrival.as_str(),
            "request_timeout_ms": self.request_timeout_ms,
            "client_timeout_ms": self.client_timeout_ms,
            "switches_passed": passed,
            "storage_requested": self.storage,
        });
        match value {
            Value::Object(map) => map,
            _ => unreachable!("json! of an object literal is an object"),
        }
    }

    /// The register workload's config.
    pub fn register_config(&self) -> RegisterConfig {
        RegisterConfig {
            concurrency: self.concurrency,
            key_dist: self.key_dist.clone(),
            rate: self.rate,
            arrival: self.arrival,
            read_fraction: self.read_fraction,
            rmw_fraction: self.rmw_fraction,
            node_choice: self.node_choice,
            seed: self.seed,
        }
    }

    /// The set workload's config.
    pub fn set_config(&self) -> SetConfig {
        SetConfig {
            concurrency: self.concurrency,
            key_dist: self.key_dist.clone(),
            rate: self.rate,
            arrival: self.arrival,
            read_fraction: self.read_fraction,
            node_choice: self.node_choice,
            seed: self.seed,
        }
    }
}
