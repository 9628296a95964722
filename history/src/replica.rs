//! `replica_reads.jsonl`: what each home replica itself holds for a key,
//! read after the final heal and quiet period.
//!
//! A coordinator's read merges R replies and may repair on the way, so it
//! cannot tell whether one particular replica holds a write. Hinted handoff
//! promises exactly that (the stand-in hands the write to its home), so the
//! harness asks each home replica directly (`Admin.LocalGet`, no
//! coordinator) for every key that had a hinted acknowledged write, and
//! records one line per (key, node). The hint-delivery checker reads it
//! offline, like every other run file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{read_jsonl, HistoryError, Sibling};

/// One replica-local read of one key on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaRead {
    /// Nanoseconds since the run started, same clock as the history.
    pub time: u64,
    /// The key read.
    pub key: String,
    /// The node whose own stored copy was read.
    pub node: String,
    /// False when the node did not answer in time; `siblings` is then empty
    /// and says nothing.
    pub reachable: bool,
    /// The node's stored siblings, in the history's read format (for the set
    /// workload each value is the JSON array of elements it holds). Empty
    /// and reachable: the node holds nothing for the key.
    #[serde(default)]
    pub siblings: Vec<Sibling>,
    /// Whether the node is one of the key's home replicas by the preference
    /// list the harness was given (false: read because a write named it in
    /// `hinted_for`, yet the ring no longer lists it).
    #[serde(default = "default_true")]
    pub home: bool,
    /// Why the read failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn default_true() -> bool {
    true
}

/// Reads `replica_reads.jsonl`; None when the run has none (older runs,
/// peer stores, or a run with no hinted write), so a checker can tell
/// "not read" from "read and empty".
pub fn read_replica_reads(path: &Path) -> Result<Option<Vec<ReplicaRead>>, HistoryError> {
    if !path.exists() {
        return Ok(None);
    }
    read_jsonl(path).map(Some)
}
