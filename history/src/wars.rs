//! `wars.json`: the per-replica timings of the requests each node
//! coordinated during a run, for the PBS predictor of the t-visibility
//! checker.
//!
//! PBS (Bailis et al., VLDB 2012) predicts how soon an acknowledged write
//! becomes visible from four latency distributions: W (a coordinator's
//! store reaching the replica's apply), A (the apply's ack back), R (a
//! fetch reaching the replica's read) and S (the reply back). Every node
//! keeps its latest samples of each (`Admin.Wars`), split into *local*
//! (the replica was the coordinator itself) and *remote*; the harness reads
//! them once the workload stops and writes this file. The split point of
//! each round trip is the replica's clock, so `clock` says what the nodes'
//! clocks were (one simulated clock, one host clock, or skewed by a clock
//! nemesis) and each node's `clamped` how many samples fell outside the
//! coordinator's window and were clamped into it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One leg's samples, us, by class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegSamples {
    /// The replica was the coordinator itself: a direct call, no network.
    #[serde(default)]
    pub local: Vec<u32>,
    /// The replica was another node: over the network.
    #[serde(default)]
    pub remote: Vec<u32>,
}

/// What one node reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeWars {
    /// Stores it timed (all replicas, all of the run, not only those kept).
    pub stores: u64,
    /// Fetches it timed.
    pub fetches: u64,
    /// Samples whose replica time was clamped into the coordinator's window.
    pub clamped: u64,
    /// `"w"`, `"a"`, `"r"`, `"s"` -> samples (the latest few thousand each).
    pub legs: BTreeMap<String, LegSamples>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarsFile {
    /// Whose clocks split the round trips, in words (so a reader knows how
    /// far to trust W versus A and R versus S).
    pub clock: String,
    /// Node id -> what it reported; nodes that did not answer are absent.
    pub nodes: BTreeMap<String, NodeWars>,
}

impl WarsFile {
    /// Every node's samples of `leg` in one class, concatenated in node order.
    pub fn samples(&self, leg: &str, local: bool) -> Vec<u32> {
        let of = |n: &NodeWars| n.legs.get(leg).map(|l| if local { l.local.clone() } else { l.remote.clone() });
        self.nodes.values().filter_map(of).flatten().collect()
    }
}

/// Why `wars.json` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WarsError {
    /// The file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a `wars.json`.
    #[error("{path} is malformed: {source}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

/// Reads `wars.json`; None when the run has none (older runs, peer stores).
pub fn read_wars(path: &Path) -> Result<Option<WarsFile>, WarsError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|source| WarsError::Read { path: path.into(), source })?;
    serde_json::from_str(&text).map(Some).map_err(|source| WarsError::Malformed { path: path.into(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_concatenate_across_nodes_by_class_and_a_bad_file_is_an_error() {
        let leg = |local: Vec<u32>, remote: Vec<u32>| LegSamples { local, remote };
        let node = |w: LegSamples| NodeWars { legs: BTreeMap::from([("w".to_string(), w)]), ..NodeWars::default() };
        let file = WarsFile {
            clock: "one simulated clock".into(),
            nodes: BTreeMap::from([
                ("n1".into(), node(leg(vec![1], vec![10, 11]))),
                ("n2".into(), node(leg(vec![], vec![12]))),
            ]),
        };
        assert_eq!(file.samples("w", false), vec![10, 11, 12]);
        assert_eq!(file.samples("w", true), vec![1]);
        assert!(file.samples("s", false).is_empty());

        let dir = std::env::temp_dir().join(format!("wars-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wars.json");
        assert!(read_wars(&path).unwrap().is_none(), "absent: an older run");
        std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
        assert_eq!(read_wars(&path).unwrap(), Some(file));
        std::fs::write(&path, "{\"clock\": 3}").unwrap();
        assert!(matches!(read_wars(&path), Err(WarsError::Malformed { .. })));
        std::fs::remove_dir_all(&dir).ok();
    }
}
