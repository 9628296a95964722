//! The anti-entropy loop: rounds of exchanges, every `--aae-interval-ms`.
//!
//! The first round waits a per-node offset within the interval so nodes do
//! not all start at once, and every round first follows a ring change
//! (rebuilding the trees from storage). Each round runs one exchange per
//! range this node replicates, with the partner the schedule picks
//! (`repair::anti_entropy::AntiEntropy::partner`), under a concurrency
//! permit; the exchange protocol itself is `repair::anti_entropy::exchange`.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};
use xxhash_rust::xxh3::xxh3_64;

use crate::node::Node;
use crate::node_id::NodeId;
use crate::placement::ring::Ring;
use crate::repair::anti_entropy::{exchange, AaeError, AntiEntropy, TransportPeer, MIN_RPC_TIMEOUT_MS};
use crate::transport::TransportError;

/// Runs anti-entropy rounds every `--aae-interval-ms` until the node stops
/// (`drivers::background` drops it at its stop signal). The first round waits a
/// per-node offset within the interval so nodes do not all start at once.
pub async fn run(node: Arc<Node>) {
    let interval = Duration::from_millis(node.config().aae_interval_ms);
    let offset_ms = xxh3_64(node.config().id.to_string().as_bytes()) % node.config().aae_interval_ms.max(1);
    tokio::time::sleep(Duration::from_millis(offset_ms)).await;
    info!(interval_ms = node.config().aae_interval_ms, "anti-entropy running");
    for round in 0u64.. {
        run_round(&node, round).await;
        tokio::time::sleep(interval).await;
    }
}

/// One exchange per range, with the next replica of that range in turn,
/// at most `--aae-concurrency` at a time; first follows a ring change.
pub async fn run_round(node: &Arc<Node>, round: u64) {
    follow_ring(node).await;
    let ranges = node.anti_entropy().index().peers_by_range();
    let exchanges = ranges.into_iter().filter(|(_, peers)| !peers.is_empty()).map(|(range, peers)| {
        let peer = AntiEntropy::partner(round, &range, &peers).expect("filtered: peers is not empty");
        exchange_with(Arc::clone(node), range, peer)
    });
    futures::future::join_all(exchanges).await;
}

/// Rebuilds the trees from storage when membership changed the ring (a
/// join or leave moves ranges): off the async threads for a disk engine,
/// inline for memory (`Node::storage_work`).
async fn follow_ring(node: &Arc<Node>) {
    let ring = node.ring();
    let sorted = |mut members: Vec<crate::placement::ring::RingMember>| {
        members.sort_by(|a, b| a.id.cmp(&b.id));
        members
    };
    if sorted(ring.members().to_vec()) == sorted(node.anti_entropy().index().ring_members()) {
        return;
    }
    info!(members = ring.members().len(), "ring changed; rebuilding merkle trees");
    let worker = Arc::clone(node);
    let rebuild = node.local().storage_work(move || {
        let mode = worker.config().resolution;
        worker
            .anti_entropy()
            .index()
            .set_ring(Ring::clone(&ring), worker.local().storage(), mode)
            .map_err(AaeError::from)
    });
    if let Err(error) = rebuild.await {
        warn!(%error, "merkle rebuild failed");
    }
}

/// One exchange of `range` with `peer`, under a concurrency permit.
async fn exchange_with(node: Arc<Node>, range: String, peer: NodeId) {
    let aae = node.anti_entropy();
    let Some(_permit) = aae.permit().await else {
        return;
    };
    let _initiating = aae.initiate(&range);
    let started = tokio::time::Instant::now();
    let result = match transport_peer(&node, &peer) {
        Ok(partner) => exchange(node.aae_replica(), &partner, &range).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(report) => {
            if report.buckets_differing > 0 {
                info!(%range, %peer, ?report, elapsed_ms = started.elapsed().as_millis() as u64, "anti-entropy exchange repaired");
            } else {
                debug!(%range, %peer, "anti-entropy exchange: in sync");
            }
            aae.record_exchange(range, node.now_ms());
        }
        Err(AaeError::Busy(_)) => {
            debug!(%range, %peer, "peer busy with this range; skipping a turn")
        }
        Err(error) => {
            node.metrics().aae_exchange_failures.inc();
            debug!(%range, %peer, %error, "anti-entropy exchange failed");
        }
    }
}

/// The exchange partner `peer`, over the node's transport; a peer with no
/// known address fails here, before the exchange starts.
fn transport_peer(node: &Node, peer: &NodeId) -> Result<TransportPeer, AaeError> {
    let c = node.config();
    if node.transport().address(peer).is_none() {
        let reason = TransportError::UnknownPeer(peer.clone()).to_string();
        return Err(AaeError::Peer { peer: peer.clone(), reason });
    }
    Ok(TransportPeer {
        transport: Arc::clone(node.transport()),
        peer: peer.clone(),
        from: c.id.to_string(),
        buckets: node.anti_entropy().index().buckets() as u32,
        timeout: Duration::from_millis(c.request_timeout_ms.saturating_mul(4).max(MIN_RPC_TIMEOUT_MS)),
    })
}
