//! `admin.jsonl`: snapshots of each node's admin counters taken by the harness.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminSnapshot {
    /// Nanoseconds since the run started, same clock as the history.
    pub time: u64,
    pub node: String,
    /// False when the node did not answer its admin status in time.
    pub reachable: bool,
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    #[serde(default)]
    pub merkle_roots: BTreeMap<String, String>,
}
