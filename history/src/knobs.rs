//! The run knobs as one typed value: what the campaign's flags set, the
//! matrix hands every run, the workload runs with, and `run.json` records.
//!
//! Why here: `run.json` is read back by the workbench's tables and
//! expectations and by the checkers (which depend on this crate alone), so
//! the typed form has to live where all of them can see it. The enums a
//! knob takes ([`Arrival`], [`NodeChoice`], [`KeyShape`]) are pure data
//! too; the workload crate re-exports them and gives them behaviour.
//!
//! `run.json` is a public contract: [`Knobs`] and [`RunLabels`] are
//! flattened into [`crate::RunConfig`] under the exact field names earlier
//! versions wrote (`keys`, `key_distribution`, `node_choice`, ...), so old
//! run directories read back into the same types, and a field this version
//! added is `#[serde(default)]` for runs written before it.

use serde::{Deserialize, Serialize};

/// How operations are offered to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Each process issues its next op when the last one completed
    /// (optionally paced by `rate`).
    #[default]
    Closed,
    /// Ops arrive at `rate` ops/s on a Poisson schedule from the seed.
    Open,
}

impl Arrival {
    /// Every mode, in the order `--help` lists them.
    pub const ALL: [Arrival; 2] = [Arrival::Closed, Arrival::Open];

    /// The name in flags and `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arrival::Closed => "closed",
            Arrival::Open => "open",
        }
    }
}

impl std::str::FromStr for Arrival {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arrival::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown arrival mode {s:?} (expected closed or open)"))
    }
}

/// How a worker picks the node it sends an op to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeChoice {
    /// Worker i always talks to node i mod nodes (sticky client).
    Fixed,
    /// A node drawn from the seed for every op.
    #[default]
    Random,
}

impl NodeChoice {
    /// Every choice, in the order `--help` lists them.
    pub const ALL: [NodeChoice; 2] = [NodeChoice::Fixed, NodeChoice::Random];

    /// The name in flags and `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeChoice::Fixed => "fixed",
            NodeChoice::Random => "random",
        }
    }
}

impl std::str::FromStr for NodeChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeChoice::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown node choice {s:?} (expected fixed or random)"))
    }
}

/// A storage engine of the node (`--storage`): the node's `StorageKind`,
/// value for value (`sim/tests/mirrors.rs` checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageEngine {
    /// In memory; lost on restart.
    Memory,
    /// The LSM engine under the data directory (commit log, SSTables).
    Lsm,
}

impl StorageEngine {
    /// Every engine, in the order `--help` lists them.
    pub const ALL: [StorageEngine; 2] = [StorageEngine::Memory, StorageEngine::Lsm];

    /// The name in the node's `--storage` flag, its `Admin.Status` and `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageEngine::Memory => "memory",
            StorageEngine::Lsm => "lsm",
        }
    }
}

/// The node's commit-log fsync policy (`--fsync`): when a write becomes
/// durable. Under the simulator a kill is a power loss, so this decides
/// what the node keeps. The node's `FsyncPolicy`, value for value
/// (`sim/tests/mirrors.rs` checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Synced before every acknowledgement.
    Always,
    /// Group commit: acknowledged once the batch it joined is synced.
    Batch,
    /// Acknowledged at once; durable only when the kernel writes it back.
    Never,
}

impl Fsync {
    /// Every policy, in the order `--help` lists them.
    pub const ALL: [Fsync; 3] = [Fsync::Always, Fsync::Batch, Fsync::Never];

    /// The name in the node's `--fsync` flag and `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Batch => "batch",
            Fsync::Never => "never",
        }
    }
}

/// The shape of the key distribution, without its size (`keys`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum KeyShape {
    /// Every key equally likely.
    #[default]
    Uniform,
    /// Key of rank i with weight `1 / (i + 1)^exponent`.
    Zipfian {
        /// The skew, finite and not negative; 1.0 is classic Zipf.
        exponent: f64,
    },
}

impl KeyShape {
    /// Its name in flags and `run.json`: `uniform`, `zipfian:1`.
    pub fn label(self) -> String {
        match self {
            KeyShape::Uniform => "uniform".into(),
            KeyShape::Zipfian { exponent } => format!("zipfian:{exponent}"),
        }
    }
}

impl std::str::FromStr for KeyShape {
    type Err = String;
    /// `uniform`, `zipfian` (exponent 1) or `zipfian:<exponent>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("unknown key distribution {s:?} (uniform, zipfian, zipfian:<exponent >= 0>)");
        match s.split_once(':') {
            None if s == "uniform" => Ok(KeyShape::Uniform),
            None if s == "zipfian" => Ok(KeyShape::Zipfian { exponent: 1.0 }),
            Some(("zipfian", e)) => match e.parse::<f64>() {
                Ok(exponent) if exponent.is_finite() && exponent >= 0.0 => Ok(KeyShape::Zipfian { exponent }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for KeyShape {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<KeyShape> for String {
    fn from(shape: KeyShape) -> String {
        shape.label()
    }
}

/// The knobs every run of a campaign shares: how long, how hard, on which
/// keys and nodes the workload runs. The campaign's flags build one, the
/// matrix hands it to every run unchanged, the workload configs hold it and
/// `run.json` records it (flattened: `concurrency`, `keys`, ... at the top).
/// Fields missing from an older `run.json` read as their default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Knobs {
    /// Seconds of fault-free workload before the faults.
    pub warmup_s: u64,
    /// Seconds of workload with faults (a contract field of `run.json`).
    pub time_limit_s: u64,
    /// Seconds of fault-free workload after the final heal, for hints,
    /// repairs and late writes to land.
    pub quiet_s: u64,
    /// Client processes, each with one op outstanding (at least 1).
    pub concurrency: u32,
    /// Target ops/s over all clients; 0: closed loop, as fast as possible.
    pub rate: f64,
    /// Closed loop, or open loop at `rate` (then positive).
    pub arrival: Arrival,
    /// Keys `k0..k{keys-1}` (at least 1; 0 only in runs that predate it).
    pub keys: u32,
    /// Which keys are hot: uniform or zipfian.
    pub key_distribution: KeyShape,
    /// Whether a client sticks to one node or picks one per op.
    pub node_choice: NodeChoice,
    /// Probability that an op is a read.
    pub read_fraction: f64,
    /// Register: probability that a write carries the last read's context.
    pub rmw_fraction: f64,
    /// The node's own deadline for gathering W acks / R replies.
    pub request_timeout_ms: u64,
    /// The client's deadline; longer than the node's so its verdict arrives.
    pub client_timeout_ms: u64,
    /// `--replica-batching` passed to every node; None: no flag (the
    /// node's default). Absent from `run.json` when not passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_batching: Option<bool>,
    /// `--memtable-bytes` passed to every node (small: the LSM engine
    /// flushes SSTables within a short run, so the `corrupt` nemesis has
    /// tables to damage); None: no flag. Absent from `run.json` when not passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memtable_bytes: Option<u64>,
    /// How long a client process backs off after the store refused one of
    /// its ops for load (our node's `overloaded`), in ms: each wait is drawn
    /// from the run's seed between half and one and a half times this.
    /// 0 (and runs that predate it): no back-off; absent from `run.json`
    /// then.
    #[serde(skip_serializing_if = "is_zero")]
    pub refused_backoff_ms: u64,
}

/// Whether a count is 0 (left out of `run.json`).
fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Knobs {
    /// The whole length of a run's workload: warm-up, faults and quiet.
    pub fn total_s(&self) -> u64 {
        self.warmup_s + self.time_limit_s + self.quiet_s
    }
}

/// The node's feature switches a run sets; `None` passes no flag, leaving
/// the node's own default (what that was, `Admin.Status` tells: see
/// [`crate::RunConfig`]'s `sloppy_quorum` and siblings). `run.json` records
/// them as `switches_passed`, keyed by the flag, only those given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Switches {
    /// `--sloppy-quorum`.
    #[serde(rename = "--sloppy-quorum", default, skip_serializing_if = "Option::is_none")]
    pub sloppy_quorum: Option<bool>,
    /// `--hinted-handoff`.
    #[serde(rename = "--hinted-handoff", default, skip_serializing_if = "Option::is_none")]
    pub hinted_handoff: Option<bool>,
    /// `--read-repair`.
    #[serde(rename = "--read-repair", default, skip_serializing_if = "Option::is_none")]
    pub read_repair: Option<bool>,
    /// `--anti-entropy`.
    #[serde(rename = "--anti-entropy", default, skip_serializing_if = "Option::is_none")]
    pub anti_entropy: Option<bool>,
}

impl Switches {
    /// `(flag, short name, value)` of every switch, set or not.
    fn all(&self) -> [(&'static str, &'static str, Option<bool>); 4] {
        [
            ("--sloppy-quorum", "sloppy", self.sloppy_quorum),
            ("--hinted-handoff", "hh", self.hinted_handoff),
            ("--read-repair", "rr", self.read_repair),
            ("--anti-entropy", "ae", self.anti_entropy),
        ]
    }

    /// `(flag, value)` for every switch that was set.
    pub fn passed(&self) -> Vec<(&'static str, bool)> {
        self.all().into_iter().filter_map(|(flag, _, v)| v.map(|v| (flag, v))).collect()
    }

    /// A short label of the set switches: `sloppy:on hh:off`.
    pub fn label(&self) -> String {
        let on_off = |v: bool| if v { "on" } else { "off" };
        let set = self.all().into_iter().filter_map(|(_, short, v)| v.map(|v| format!("{short}:{}", on_off(v))));
        set.collect::<Vec<_>>().join(" ")
    }
}

/// What names and places one run among a campaign's: recorded in `run.json`
/// (flattened) so tables and expectations read them back typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunLabels {
    /// Directory name inside the campaign, e.g. `partition-register-n3-w2-r2-siblings`.
    pub run_name: String,
    /// The store under test: `dynamo` (ours), or a peer (`etcd-serializable`, ...).
    pub store: String,
    /// Which repetition of its configuration (`--test-count`).
    pub test_index: u32,
    /// The switch flags given to the nodes.
    pub switches_passed: Switches,
    /// `--storage` as requested (None: the node's default).
    pub storage_requested: Option<StorageEngine>,
    /// `--fsync` as requested (None: the node's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fsync_requested: Option<Fsync>,
    /// The storage engine the nodes reported in `Admin.Status` at the start
    /// (absent when the run did not get that far, or for peer stores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
}

impl Default for RunLabels {
    /// What a `run.json` without these fields was: a single run of our store.
    fn default() -> RunLabels {
        RunLabels {
            run_name: String::new(),
            store: "dynamo".into(),
            test_index: 0,
            switches_passed: Switches::default(),
            storage_requested: None,
            fsync_requested: None,
            storage: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_serialize_as_the_flags_given() {
        let s = Switches { sloppy_quorum: Some(true), hinted_handoff: Some(false), ..Switches::default() };
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(json, serde_json::json!({"--sloppy-quorum": true, "--hinted-handoff": false}));
        assert_eq!(serde_json::from_value::<Switches>(json).unwrap(), s);
        assert_eq!(s.label(), "sloppy:on hh:off");
        assert_eq!(s.passed(), vec![("--sloppy-quorum", true), ("--hinted-handoff", false)]);
    }

    #[test]
    fn names_round_trip_through_text_and_json() {
        for shape in ["uniform", "zipfian:1", "zipfian:0.5"] {
            assert_eq!(shape.parse::<KeyShape>().unwrap().label(), shape);
        }
        assert_eq!("zipfian".parse::<KeyShape>(), Ok(KeyShape::Zipfian { exponent: 1.0 }));
        assert!("zipfian:-1".parse::<KeyShape>().is_err() && "pareto".parse::<KeyShape>().is_err());
        assert_eq!(serde_json::to_string(&KeyShape::Zipfian { exponent: 1.5 }).unwrap(), "\"zipfian:1.5\"");
        assert_eq!(serde_json::to_string(&NodeChoice::Fixed).unwrap(), "\"fixed\"");
        assert_eq!(serde_json::to_string(&Arrival::Open).unwrap(), "\"open\"");
        for a in Arrival::ALL {
            assert_eq!(a.as_str().parse::<Arrival>(), Ok(a));
        }
        for c in NodeChoice::ALL {
            assert_eq!(c.as_str().parse::<NodeChoice>(), Ok(c));
        }
    }
}
