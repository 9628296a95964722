//! One run's definition: everything that makes it what it is, and how that
//! becomes node flags, the workload's config and `run.json`.
//!
//! The knobs every run of a campaign shares are one [`Knobs`] value, held
//! as the matrix made it and handed to the workload and `run.json` as it
//! is. The store's switches (sloppy quorum, hinted handoff, read repair,
//! anti-entropy, storage engine) are `Option`s: `None` means the node's own
//! default, and no flag is passed, so a campaign never breaks on a node that
//! predates a flag it was not asked to set. Which values were then in force
//! is not guessed here: the campaign records what the nodes report in
//! `Admin.Status` when the run starts ([`crate::campaign`], through
//! [`crate::run::apply_status`]); until then,
//! `run.json` holds the flags passed (`switches_passed`) and `false` for the
//! rest.

use history::{Fsync, Knobs, Resolution, RunConfig, RunLabels, StorageEngine};
use nemesis::Composition;
use workload::WorkloadConfig;

pub use history::Switches;

use crate::datacenters::Layout;
use crate::flag_values::Word;
use crate::store::Store;

/// Which workload a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum WorkloadKind {
    /// Reads and writes of unique values.
    Register,
    /// Read-merge-write adds of unique elements (the shopping cart).
    Set,
    /// A question, its answer after reading it, on two keys; readers read
    /// the answer, then the question (consistent-prefix reads).
    Prefix,
}

impl WorkloadKind {
    /// The name on the command line and in `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Set => "set",
            WorkloadKind::Prefix => "prefix",
        }
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
    /// Write quorum: the acks `w_word` comes to in a client's own DC.
    pub w: u32,
    /// Read quorum: the replies `r_word` comes to in a client's own DC.
    pub r: u32,
    /// Write quorum as the nodes are given it (a number, or a word).
    pub w_word: Word,
    /// Read quorum as the nodes are given it.
    pub r_word: Word,
    /// The datacenters the nodes are split into.
    pub layout: Layout,
    /// Conflict resolution.
    pub resolution: Resolution,
    /// Store feature switches.
    pub switches: Switches,
    /// `--storage` for the nodes (None: node default).
    pub storage: Option<StorageEngine>,
    /// `--fsync` for the nodes (None: node default).
    pub fsync: Option<Fsync>,
    /// The workload.
    pub workload: WorkloadKind,
    /// The nemeses, each on its own schedule.
    pub nemesis: Composition,
    /// Which repetition of this configuration (`--test-count`).
    pub test_index: u32,
    /// This run's seed (the campaign's seed plus the repetition).
    pub seed: u64,
    /// The knobs every run of the campaign shares.
    pub knobs: Knobs,
    /// These nemesis schedules instead of the ones drawn from the seed
    /// (`explore`'s shrinking drops actions from a failing schedule).
    pub schedule_override: Option<Vec<nemesis::Schedule>>,
}

impl RunSpec {
    /// Records in `run.json` (`fault_mechanisms`) how the backend performs
    /// each of this run's faults, as `how` answers (the simulator answers
    /// before its cluster exists, the other backends from their cluster).
    pub fn record_mechanisms(&self, run: &mut RunConfig, how: impl Fn(docker::Fault) -> Option<&'static str>) {
        let mechanisms: std::collections::BTreeMap<String, &str> = self
            .nemesis
            .kinds
            .iter()
            .filter_map(|k| k.fault())
            .filter_map(|fault| how(fault).map(|how| (fault.name().to_string(), how)))
            .collect();
        if !mechanisms.is_empty() {
            run.extra.insert("fault_mechanisms".into(), serde_json::json!(mechanisms));
        }
    }

    /// Node ids `n1..n{node_count}`.
    pub fn node_ids(&self) -> Vec<String> {
        (1..=self.node_count).map(|i| format!("n{i}")).collect()
    }

    /// Node -> DC for the recorder to stamp each client op's `dc`; empty
    /// for a run of one DC, whose history stays as it was.
    pub fn client_dcs(&self) -> std::collections::BTreeMap<String, String> {
        if !self.layout.is_multi_dc() {
            return Default::default();
        }
        self.layout.dc_map(&self.node_ids())
    }

    /// Flags every node of this run gets.
    pub fn node_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--n".into(),
            self.n.to_string(),
            "--w".into(),
            self.w_word.to_string(),
            "--r".into(),
            self.r_word.to_string(),
            "--resolution".into(),
            self.resolution.as_str().into(),
            "--request-timeout-ms".into(),
            self.knobs.request_timeout_ms.to_string(),
        ];
        args.extend(self.layout.node_args(&self.node_ids()));
        for (flag, value) in self.switches.passed() {
            args.push(flag.into());
            args.push(value.to_string());
        }
        if let Some(batching) = self.knobs.replica_batching {
            args.push("--replica-batching".into());
            args.push(batching.to_string());
        }
        if let Some(bytes) = self.knobs.memtable_bytes {
            args.push("--memtable-bytes".into());
            args.push(bytes.to_string());
        }
        if let Some(storage) = self.storage {
            args.push("--storage".into());
            args.push(storage.as_str().into());
        }
        if let Some(fsync) = self.fsync {
            args.push("--fsync".into());
            args.push(fsync.as_str().into());
        }
        args
    }

    /// `run.json` for this run, before its nodes report what is in force.
    pub fn run_config(&self, backend: &str, image: &str) -> RunConfig {
        let s = self.switches;
        // Peer stores have none of our mechanisms: record them off.
        let passed = |v: Option<bool>| self.store == Store::Dynamo && v == Some(true);
        RunConfig {
            nodes: self.node_ids(),
            n: self.n,
            w: self.w,
            r: self.r,
            sloppy_quorum: passed(s.sloppy_quorum),
            resolution: self.resolution,
            hinted_handoff: passed(s.hinted_handoff),
            read_repair: passed(s.read_repair),
            anti_entropy: passed(s.anti_entropy),
            workload: self.workload.as_str().into(),
            nemesis: self.nemesis.names(),
            seed: self.seed,
            backend: backend.into(),
            node_image: image.into(),
            started_at: chrono::Utc::now().to_rfc3339(),
            knobs: self.knobs.clone(),
            labels: RunLabels {
                run_name: self.name.clone(),
                store: self.store.as_str().into(),
                test_index: self.test_index,
                switches_passed: self.switches,
                storage_requested: self.storage,
                fsync_requested: self.fsync,
                storage: None,
            },
            topology: self.layout.topology(&self.node_ids(), self.w_word, self.r_word),
            extra: Default::default(),
        }
    }

    /// The workload's config: the knobs as they are, and this run's seed.
    pub fn workload_config(&self) -> WorkloadConfig {
        WorkloadConfig::new(self.knobs.clone(), self.seed).with_datacenters(self.layout.groups(self.node_count))
    }
}
