//! `admin.jsonl`: snapshots of each node's admin counters taken by the harness.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One line of `admin.jsonl`: what one node's `Admin.Status` said at one
/// moment. The harness polls every node about once a second and right after
/// each nemesis action and the final heal; the hint-delivery and convergence
/// checkers read these lines back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminSnapshot {
    /// Nanoseconds since the run started, same clock as the history.
    pub time: u64,
    /// The node polled (`n1`, ...), as in the history's `node` field.
    pub node: String,
    /// False when the node did not answer its admin status in time.
    pub reachable: bool,
    /// The node's named counters, by the names `dynamo-node`'s metrics give
    /// them: counts since the node started (requests, siblings, ...) and
    /// levels such as `hints_pending`. Empty when it did not answer.
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// The Merkle root (16 hex digits) of each key range the node
    /// replicates, keyed by the range's name (its sorted replica set, e.g.
    /// `n1+n2+n3`): equal roots across replicas mean the range converged.
    /// Empty when it did not answer.
    #[serde(default)]
    pub merkle_roots: BTreeMap<String, String>,
}
