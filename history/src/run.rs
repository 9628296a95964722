//! `run.json`: the whole configuration of one run, enough to repeat it.

use serde::{Deserialize, Serialize};

use crate::{Knobs, RunLabels, Topology};

/// How the store resolves concurrent writes; decides what "covers" means.
/// The node's `--resolution` takes the same values (`sim/tests/mirrors.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// Keep concurrent versions as siblings (vector clocks).
    #[default]
    Siblings,
    /// Last write wins by coordinator timestamp; concurrent writes are lost.
    Lww,
}

impl Resolution {
    /// Every resolution, in the order `--help` lists them.
    pub const ALL: [Resolution; 2] = [Resolution::Siblings, Resolution::Lww];

    /// The name in flags and `run.json`: `siblings` or `lww`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Siblings => "siblings",
            Resolution::Lww => "lww",
        }
    }
}

impl std::str::FromStr for Resolution {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "siblings" => Ok(Resolution::Siblings),
            "lww" => Ok(Resolution::Lww),
            other => Err(format!("unknown resolution {other:?} (expected siblings or lww)")),
        }
    }
}

/// `run.json`: the configuration of one run, enough to repeat it
/// (`docs/history-format.md`). The workbench writes it when the run starts
/// and again once the nodes have said what is in force; the checkers read
/// it back to know what the store promised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The node ids of the cluster, `n1` to `n{count}`, as they appear in
    /// the history's `node` field.
    pub nodes: Vec<String>,
    /// Replicas per key (N): the length of a key's preference list.
    pub n: u32,
    /// Replica acks a coordinator waits for before it acknowledges a write (W).
    pub w: u32,
    /// Replica replies a coordinator waits for before it answers a read (R).
    pub r: u32,
    /// Whether writes may go to nodes beyond the preference list when its
    /// members are down. True when the run passed the flag as on, until the
    /// first node reports in `Admin.Status` what is in force, which replaces
    /// it; always false for a peer store, and in a `run.json` without it.
    #[serde(default)]
    pub sloppy_quorum: bool,
    /// How the store resolves concurrent writes (`siblings` in a `run.json`
    /// without it).
    #[serde(default)]
    pub resolution: Resolution,
    /// Whether a node that took a write for a down replica keeps a hint and
    /// hands the write over later. Passed, then reported, as `sloppy_quorum`.
    #[serde(default)]
    pub hinted_handoff: bool,
    /// Whether a read that saw stale replicas writes the newest version back
    /// to them. Passed, then reported, as `sloppy_quorum`.
    #[serde(default)]
    pub read_repair: bool,
    /// Whether replicas compare Merkle trees in the background and exchange
    /// what differs. Passed, then reported, as `sloppy_quorum`.
    #[serde(default)]
    pub anti_entropy: bool,
    /// The workload: `register`, `set` or `prefix`.
    pub workload: String,
    /// The faults the nemesis injects, by name (`partition`, `kill`, ...);
    /// empty for a run without faults.
    #[serde(default)]
    pub nemesis: Vec<String>,
    /// The seed every random choice of the run (workload, fault schedule,
    /// simulator) is drawn from; under the simulator, the same seed replays
    /// the same run.
    pub seed: u64,
    /// Where the nodes ran: `docker`, `local` or `sim`.
    pub backend: String,
    /// What the nodes ran: the Docker image tag, the local binary's path, or
    /// the simulator's description of the library it runs. Empty in a
    /// `run.json` without it.
    #[serde(default)]
    pub node_image: String,
    /// When the run started: wall-clock time of the harness, RFC 3339 in UTC.
    pub started_at: String,
    /// The workload's knobs (`time_limit_s`, `concurrency`, `rate`, `keys`,
    /// ...), under the field names `run.json` always had.
    #[serde(flatten)]
    pub knobs: Knobs,
    /// The run's name, store, repetition and the flags given to the nodes.
    #[serde(flatten)]
    pub labels: RunLabels,
    /// Datacenters and quorum words (all absent for one DC with numbers).
    #[serde(flatten)]
    pub topology: Topology,
    /// Fields this version does not know, kept so a rewrite loses nothing.
    /// (Declared last: the typed fields above take their keys first.)
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl RunConfig {
    /// Overlapping read and write quorums: W + R > N.
    pub fn is_strict_quorum(&self) -> bool {
        self.w + self.r > self.n && !self.sloppy_quorum
    }

    /// Whether the nodes' acknowledged data survives a kill: they reported
    /// the LSM engine, or the simulator's power-loss disk (where a kill is a
    /// power loss) with a policy that syncs before the ack (the node's
    /// default, `batch`, does).
    pub fn durable_storage(&self) -> bool {
        match self.labels.storage.as_deref() {
            Some("lsm") => true,
            Some("power_loss") => self.labels.fsync_requested != Some(crate::Fsync::Never),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `run.json` as earlier versions wrote it: the knobs among `extra`.
    const OLD_RUN: &str = r#"{
        "nodes": ["n1", "n2", "n3"], "n": 3, "w": 2, "r": 2, "sloppy_quorum": false,
        "resolution": "lww", "hinted_handoff": true, "read_repair": true, "anti_entropy": true,
        "workload": "set", "nemesis": ["kill"], "seed": 42, "time_limit_s": 10, "concurrency": 6,
        "rate": 600.0, "backend": "docker", "node_image": "dynamo-node:abc", "started_at": "2026-11-30T00:00:00Z",
        "run_name": "kill-set-n3-w2-r2-lww-hh-off", "store": "dynamo", "test_index": 1, "warmup_s": 0,
        "quiet_s": 3, "keys": 2, "key_distribution": "zipfian:1", "node_choice": "fixed",
        "read_fraction": 0.5, "rmw_fraction": 0.5, "arrival": "closed", "request_timeout_ms": 500,
        "client_timeout_ms": 2000, "switches_passed": {"--hinted-handoff": false},
        "storage_requested": "lsm", "storage": "lsm", "some_future_field": [1, 2]
    }"#;

    #[test]
    fn an_old_run_json_reads_into_the_typed_fields_and_writes_back_the_same_names() {
        let run: RunConfig = serde_json::from_str(OLD_RUN).unwrap();
        assert_eq!((run.knobs.concurrency, run.knobs.keys, run.knobs.time_limit_s, run.knobs.quiet_s), (6, 2, 10, 3));
        assert_eq!(run.knobs.key_distribution, crate::KeyShape::Zipfian { exponent: 1.0 });
        assert_eq!(run.knobs.node_choice, crate::NodeChoice::Fixed);
        assert_eq!(run.labels.test_index, 1);
        assert_eq!(run.labels.switches_passed.hinted_handoff, Some(false));
        assert!(run.durable_storage());
        assert_eq!(run.extra.keys().collect::<Vec<_>>(), vec!["some_future_field"], "only unknown fields stay untyped");
        let old: serde_json::Value = serde_json::from_str(OLD_RUN).unwrap();
        assert_eq!(serde_json::to_value(&run).unwrap(), old, "the same fields, the same values");
    }

    #[test]
    fn a_run_json_without_the_later_fields_still_reads() {
        let mut old: serde_json::Value = serde_json::from_str(OLD_RUN).unwrap();
        for key in ["arrival", "store", "storage", "key_distribution", "switches_passed", "keys"] {
            old.as_object_mut().unwrap().remove(key);
        }
        let run: RunConfig = serde_json::from_value(old).unwrap();
        assert_eq!(run.labels.store, "dynamo");
        assert_eq!(run.knobs.arrival, crate::Arrival::Closed);
        assert_eq!(run.knobs.keys, 0, "unknown, not invented");
        assert!(!run.durable_storage());
    }
}
