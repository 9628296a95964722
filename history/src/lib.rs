//! The history: what every run records and every checker reads.
//!
//! A run writes `history.jsonl` (one [`Op`] per line, in the order the harness
//! observed them), `run.json` (the [`RunConfig`] that produced it),
//! `admin.jsonl` (periodic [`AdminSnapshot`]s of every node's counters) and,
//! for our store, `replica_reads.jsonl` ([`ReplicaRead`]s: each home
//! replica's own copy of every key a hinted write touched) and
//! `wars.json` ([`WarsFile`]: each node's per-replica request timings).
//! The
//! format is a public contract (`docs/history-format.md`): fields are only
//! ever added, never renamed, so other tools can read old runs.
//!
//! Checkers read a history in its compact form ([`compact`]): interned
//! names and values, versions as rows of small integers, built once from
//! the ops ([`History::compact`]) or line by line from the file
//! ([`compact::CompactHistory::read`]).
//!
//! This crate is pure data plus the JSONL reader and writer. It knows nothing
//! of Docker, gRPC or tokio, which is what lets `workbench check <run-dir>`
//! re-check any run offline.

mod admin;
mod answer;
pub mod compact;
pub mod jepsen;
mod jsonl;
mod knobs;
mod op;
mod recorder;
mod replica;
mod run;
mod topology;
mod version;
mod wars;

pub use admin::AdminSnapshot;
pub use answer::{answer_value, Answer};
pub use jsonl::{read_admin, read_history, read_jsonl, HistoryError, JsonlWriter};
pub use knobs::{Arrival, Fsync, KeyShape, Knobs, NodeChoice, RunLabels, StorageEngine, Switches};
pub use op::{History, Op, OpPair, OpType, Process, Sibling, SiblingRef};
pub use recorder::{ElapsedNs, Recorder};
pub use replica::{read_replica_reads, ReplicaRead};
pub use run::{Resolution, RunConfig};
pub use topology::Topology;
pub use version::{Dot, Version};
pub use wars::{read_wars, LegSamples, NodeWars, WarsError, WarsFile};

/// File names inside a run directory.
pub mod files {
    /// The ops, one JSON object per line, in the order the harness observed them.
    pub const HISTORY: &str = "history.jsonl";
    /// The run's configuration ([`crate::RunConfig`]).
    pub const RUN: &str = "run.json";
    /// Snapshots of every node's admin counters during the run.
    pub const ADMIN: &str = "admin.jsonl";
    /// The checkers' verdicts and figures: `{"valid": ..., "checkers": {...}}`.
    pub const RESULTS: &str = "results.json";
    /// Replica-local reads of every key with a hinted write, after the quiet period.
    pub const REPLICA_READS: &str = "replica_reads.jsonl";
    /// Every node's per-replica request timings (PBS's W, A, R, S), our store only.
    pub const WARS: &str = "wars.json";
}
