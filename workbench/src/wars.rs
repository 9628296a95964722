//! Collecting `wars.json`: every node's per-replica request timings, read
//! once the workload has stopped.
//!
//! Each node keeps the latest few thousand W, A, R and S samples of the
//! requests it coordinated (`Admin.Wars`, see the node's
//! `coordinate/wars.rs`); the t-visibility checker predicts staleness from
//! them (PBS) and sets the prediction beside what the history measured. A
//! node that does not answer is left out, and the file says in words whose
//! clocks split each round trip, since W against A (and R against S) is
//! only as exact as the coordinator's and the replica's clocks agree.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use docker::Cluster;
use history::{files, LegSamples, NodeWars, WarsFile};
use nemesis::NemesisKind;
use proto::admin_client::AdminClient;

use crate::json_file::write_json;
use crate::spec::RunSpec;

/// How long one node may take to answer `Admin.Wars`.
const TIMEOUT_MS: u64 = 2_000;

/// Reads every member's timings and writes `wars.json` into `dir`.
pub async fn collect(spec: &RunSpec, cluster: &dyn Cluster, dir: &Path) -> Result<()> {
    let mut nodes = BTreeMap::new();
    for node in cluster.nodes() {
        let channel = cluster.channel(&node, Duration::from_millis(TIMEOUT_MS))?;
        match AdminClient::new(channel).wars(proto::WarsRequest {}).await {
            Ok(reply) => {
                nodes.insert(node, node_wars(reply.into_inner()));
            }
            Err(status) => tracing::warn!("{node} reported no request timings: {}", status.message()),
        }
    }
    let file = WarsFile { clock: clock_words(cluster.backend(), spec.nemesis.has(NemesisKind::Clock)), nodes };
    write_json(&dir.join(files::WARS), &file)
}

/// One node's `Admin.Wars` answer as the file stores it.
fn node_wars(reply: proto::WarsResponse) -> NodeWars {
    let mut legs: BTreeMap<String, LegSamples> = BTreeMap::new();
    for leg in reply.legs {
        let samples = legs.entry(leg.leg).or_default();
        match leg.local {
            true => samples.local = leg.samples_us,
            false => samples.remote = leg.samples_us,
        }
    }
    NodeWars { stores: reply.stores, fetches: reply.fetches, clamped: reply.clamped, legs }
}

/// Whose clocks split the round trips, for the reader of `wars.json`.
fn clock_words(backend: &str, clock_nemesis: bool) -> String {
    let base = match backend {
        "sim" => "one simulated clock for every node: each split is exact",
        "docker" => "the host's clock, which every container shares",
        "local" => "the host's clock, which every node process shares",
        _ => "clocks of unknown agreement",
    };
    match clock_nemesis {
        true => format!("{base}; a clock nemesis skewed nodes, so a node restarted while skewed splits off by its skew (see clamped)"),
        false => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_becomes_legs_by_class() {
        let leg = |leg: &str, local: bool, samples_us: Vec<u32>| proto::WarsLeg { leg: leg.into(), local, samples_us };
        let reply = proto::WarsResponse {
            legs: vec![leg("w", false, vec![300]), leg("w", true, vec![5]), leg("s", false, vec![])],
            clamped: 2,
            stores: 9,
            fetches: 0,
        };
        let node = node_wars(reply);
        assert_eq!(node.legs["w"], LegSamples { local: vec![5], remote: vec![300] });
        assert_eq!((node.stores, node.clamped), (9, 2));
        assert!(clock_words("docker", true).contains("skew"));
        assert!(!clock_words("sim", false).contains("skew"));
    }
}
