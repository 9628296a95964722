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

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::node_id::NodeId;
use crate::placement::ring::{Ring, RingMember};
use crate::placement::view::Membership;
use crate::repair::anti_entropy::{
    exchange, AaeError, AntiEntropy, Replica as AaeReplica, TransportPeer, MIN_RPC_TIMEOUT_MS,
};
use crate::replica::local::LocalReplica;
use crate::transport::{Transport, TransportError};
use crate::versioning::vclock::Resolution;

/// What the anti-entropy rounds use of a node.
#[derive(Debug, Clone)]
pub struct AaeDriver {
    /// This node's id: the initiator of its exchanges, and its start offset.
    pub id: NodeId,
    /// Time between rounds (`--aae-interval-ms`).
    pub interval_ms: u64,
    /// The request timeout; an exchange's RPCs get four times it.
    pub request_timeout_ms: u64,
    /// How stored siblings decode and merge.
    pub resolution: Resolution,
    /// The trees, the schedule and the exchange permits.
    pub anti_entropy: Arc<AntiEntropy>,
    /// The ring the trees must follow.
    pub membership: Arc<Membership>,
    /// Where exchanges go.
    pub transport: Arc<dyn Transport>,
    /// This node's replica: what the trees summarize and repairs land in.
    pub local: Arc<LocalReplica>,
    /// Exchange counters.
    pub metrics: Arc<Metrics>,
    /// Wall clock: when a range was last exchanged.
    pub clock: Arc<dyn Clock>,
}

impl AaeDriver {
    /// Runs anti-entropy rounds every `--aae-interval-ms` until the node stops
    /// (`drivers::background` drops it at its stop signal). The first round waits a
    /// per-node offset within the interval so nodes do not all start at once.
    pub async fn run(self) {
        let interval = Duration::from_millis(self.interval_ms);
        let offset_ms = xxh3_64(self.id.to_string().as_bytes()) % self.interval_ms.max(1);
        tokio::time::sleep(Duration::from_millis(offset_ms)).await;
        info!(interval_ms = self.interval_ms, "anti-entropy running");
        for round in 0u64.. {
            self.run_round(round).await;
            tokio::time::sleep(interval).await;
        }
    }

    /// One exchange per range, with the next replica of that range in turn,
    /// at most `--aae-concurrency` at a time; first follows a ring change.
    pub async fn run_round(&self, round: u64) {
        self.follow_ring().await;
        let ranges = self.anti_entropy.index().peers_by_range();
        let exchanges = ranges.into_iter().filter(|(_, peers)| !peers.is_empty()).map(|(range, peers)| {
            let peer = AntiEntropy::partner(round, &range, &peers).expect("filtered: peers is not empty");
            self.exchange_with(range, peer)
        });
        futures::future::join_all(exchanges).await;
    }

    /// Rebuilds the trees from storage when membership changed the ring (a
    /// join or leave moves ranges): off the async threads for a disk engine,
    /// inline for memory (`LocalReplica::storage_work`).
    async fn follow_ring(&self) {
        let ring = self.membership.ring();
        let sorted = |mut members: Vec<RingMember>| {
            members.sort_by(|a, b| a.id.cmp(&b.id));
            members
        };
        if sorted(ring.members().to_vec()) == sorted(self.anti_entropy.index().ring_members()) {
            return;
        }
        info!(members = ring.members().len(), "ring changed; rebuilding merkle trees");
        let (aae, local, mode) = (Arc::clone(&self.anti_entropy), Arc::clone(&self.local), self.resolution);
        let rebuild = self.local.storage_work(move || {
            aae.index().set_ring(Ring::clone(&ring), local.storage(), mode).map_err(AaeError::from)
        });
        if let Err(error) = rebuild.await {
            warn!(%error, "merkle rebuild failed");
        }
    }

    /// One exchange of `range` with `peer`, under a concurrency permit.
    async fn exchange_with(&self, range: String, peer: NodeId) {
        let aae = &self.anti_entropy;
        let Some(_permit) = aae.permit().await else {
            return;
        };
        let _initiating = aae.initiate(&range);
        let started = tokio::time::Instant::now();
        let result = match self.transport_peer(&peer) {
            Ok(partner) => exchange(self.replica(), &partner, &range).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(report) => {
                if report.buckets_differing > 0 {
                    let elapsed_ms = started.elapsed().as_millis() as u64;
                    info!(%range, %peer, ?report, elapsed_ms, "anti-entropy exchange repaired");
                } else {
                    debug!(%range, %peer, "anti-entropy exchange: in sync");
                }
                aae.record_exchange(range, self.clock.now_ms());
            }
            Err(AaeError::Busy(_)) => {
                debug!(%range, %peer, "peer busy with this range; skipping a turn")
            }
            Err(error) => {
                self.metrics.aae_exchange_failures.inc();
                debug!(%range, %peer, %error, "anti-entropy exchange failed");
            }
        }
    }

    /// This node's replica as an exchange sees it.
    fn replica(&self) -> AaeReplica<'_> {
        AaeReplica::of(&self.anti_entropy, self.local.store(), &self.metrics, self.resolution)
    }

    /// The exchange partner `peer`, over the node's transport; a peer with no
    /// known address fails here, before the exchange starts.
    fn transport_peer(&self, peer: &NodeId) -> Result<TransportPeer, AaeError> {
        if self.transport.address(peer).is_none() {
            let reason = TransportError::UnknownPeer(peer.clone()).to_string();
            return Err(AaeError::Peer { peer: peer.clone(), reason });
        }
        Ok(TransportPeer {
            transport: Arc::clone(&self.transport),
            peer: peer.clone(),
            from: self.id.to_string(),
            buckets: self.anti_entropy.index().buckets() as u32,
            timeout: Duration::from_millis(self.request_timeout_ms.saturating_mul(4).max(MIN_RPC_TIMEOUT_MS)),
        })
    }
}
