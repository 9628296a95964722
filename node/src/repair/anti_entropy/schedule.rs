//! When and with whom this node runs anti-entropy exchanges.
//!
//! Every `--aae-interval-ms` each replica initiates one exchange per range
//! it replicates, with the next other replica of that range in turn (the
//! turn rotates round by round, so every pair of replicas meets). The first
//! round waits a per-node offset within the interval so nodes do not all
//! start at once, and a round first follows a ring change (rebuilding the
//! trees). Two replicas initiating the same range at the same moment would
//! each send the same repairs; the responder refuses (see `grpc.rs`) and
//! the refused initiator simply skips its turn. A semaphore
//! (`--aae-concurrency`) bounds concurrent exchanges, so the background
//! work cannot starve client traffic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tracing::{debug, info, warn};
use xxhash_rust::xxh3::xxh3_64;

use super::{exchange, AaeError, AaeIndex, GrpcPeer, MIN_RPC_TIMEOUT_MS};
use crate::node::Node;
use crate::node_id::NodeId;
use crate::placement::ring::Ring;

/// The node's anti-entropy: index, schedule state and limits.
#[derive(Debug)]
pub struct AntiEntropy {
    /// The trees (also the replica's store observer).
    index: Arc<AaeIndex>,
    /// Bounds concurrent exchanges (`--aae-concurrency`).
    permits: Semaphore,
    /// Range name -> wall-clock ms of its last completed exchange.
    last_exchange_ms: Mutex<BTreeMap<String, u64>>,
    /// Ranges this node is initiating an exchange of right now.
    initiating: Mutex<BTreeSet<String>>,
}

impl AntiEntropy {
    /// Anti-entropy over `index` with at most `concurrency` exchanges at once.
    pub fn new(index: Arc<AaeIndex>, concurrency: usize) -> Self {
        assert!(concurrency >= 1, "aae concurrency must be at least 1");
        AntiEntropy {
            index,
            permits: Semaphore::new(concurrency),
            last_exchange_ms: Mutex::new(BTreeMap::new()),
            initiating: Mutex::new(BTreeSet::new()),
        }
    }

    /// True while this node runs its own exchange of `range`.
    pub fn is_initiating(&self, range: &str) -> bool {
        self.initiating
            .lock()
            .map(|r| r.contains(range))
            .unwrap_or(false)
    }

    /// Marks `range` as being exchanged by this node until the guard drops.
    fn initiate(&self, range: &str) -> InitiatingGuard<'_> {
        if let Ok(mut ranges) = self.initiating.lock() {
            ranges.insert(range.to_string());
        }
        InitiatingGuard {
            aae: self,
            range: range.to_string(),
        }
    }

    /// The index.
    pub fn index(&self) -> &Arc<AaeIndex> {
        &self.index
    }

    /// Range name -> wall-clock ms of its last completed exchange.
    pub fn last_exchange_ms(&self) -> BTreeMap<String, u64> {
        self.last_exchange_ms
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    fn peer(&self, node: &Node, peer: &NodeId) -> Result<GrpcPeer, AaeError> {
        let c = node.config();
        Ok(GrpcPeer {
            peer: peer.clone(),
            from: c.id.to_string(),
            buckets: self.index.buckets() as u32,
            // The node's one channel cache, addresses from membership.
            client: node.peers().anti_entropy(peer).map_err(|e| AaeError::Peer {
                peer: peer.clone(),
                reason: e.to_string(),
            })?,
            timeout: Duration::from_millis(
                c.request_timeout_ms
                    .saturating_mul(4)
                    .max(MIN_RPC_TIMEOUT_MS),
            ),
        })
    }
}

/// Clears a range's "initiating" mark when its exchange ends.
struct InitiatingGuard<'a> {
    /// Whose mark.
    aae: &'a AntiEntropy,
    /// Which range.
    range: String,
}

impl Drop for InitiatingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut ranges) = self.aae.initiating.lock() {
            ranges.remove(&self.range);
        }
    }
}

/// Runs anti-entropy rounds every `--aae-interval-ms` until the task is
/// aborted (the server aborts it on shutdown). The first round waits a
/// per-node offset within the interval so nodes do not all start at once.
pub async fn run(node: Arc<Node>) {
    let interval = Duration::from_millis(node.config().aae_interval_ms);
    let offset_ms =
        xxh3_64(node.config().id.to_string().as_bytes()) % node.config().aae_interval_ms.max(1);
    tokio::time::sleep(Duration::from_millis(offset_ms)).await;
    info!(
        interval_ms = node.config().aae_interval_ms,
        "anti-entropy running"
    );
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
    let exchanges = ranges
        .into_iter()
        .filter(|(_, peers)| !peers.is_empty())
        .map(|(range, peers)| {
            let turn = (round + xxh3_64(range.as_bytes())) % peers.len() as u64;
            let peer = peers[turn as usize].clone();
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
    info!(
        members = ring.members().len(),
        "ring changed; rebuilding merkle trees"
    );
    let worker = Arc::clone(node);
    let rebuild = node.storage_work(move || {
        let mode = worker.config().resolution;
        worker
            .anti_entropy()
            .index()
            .set_ring(Ring::clone(&ring), worker.storage(), mode)
            .map_err(|e| e.to_string())
    });
    if let Err(error) = rebuild.await {
        warn!(%error, "merkle rebuild failed");
    }
}

/// One exchange of `range` with `peer`, under a concurrency permit.
async fn exchange_with(node: Arc<Node>, range: String, peer: NodeId) {
    let aae = node.anti_entropy();
    let Ok(_permit) = aae.permits.acquire().await else {
        return;
    };
    let _initiating = aae.initiate(&range);
    let started = tokio::time::Instant::now();
    let result = match aae.peer(&node, &peer) {
        Ok(grpc) => exchange(node.aae_replica(), &grpc, &range).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(report) => {
            if report.buckets_differing > 0 {
                info!(%range, %peer, ?report, elapsed_ms = started.elapsed().as_millis() as u64, "anti-entropy exchange repaired");
            } else {
                debug!(%range, %peer, "anti-entropy exchange: in sync");
            }
            if let Ok(mut last) = aae.last_exchange_ms.lock() {
                last.insert(range, node.now_ms());
            }
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
