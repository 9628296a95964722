//! The gossip loop and the Gossip RPC: `gossip.rs` put on the network.
//!
//! Every `--gossip-interval-ms` the loop ticks the membership list (own
//! heartbeat, liveness rules), sends the list to the peers the tick picked
//! and merges each reply (push-pull). The `Gossip` RPC handler does the
//! mirror image: merge the sender's list, answer with ours. Both feed the
//! changes back into the view coordinators use, log them, and wake the hint
//! delivery when a member comes back up; the peer clients take every
//! member's address from the same list (`net/peers.rs`). Each exchange is bounded by the request timeout,
//! so a dead peer costs one timed-out RPC per round, never a stuck loop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tracing::{debug, info};

use crate::clock::Clock;
use crate::membership::gossip::{Change, Digest, Liveness, RingStatus};
use crate::node_id::NodeId;
use crate::placement::view::Membership;
use crate::replica::local::LocalReplica;
use crate::transport::{Transport, TransportError};

/// What the gossip loop and the Gossip RPC use of a node.
#[derive(Debug, Clone)]
pub struct Gossiper {
    /// This node's id: the sender of every message.
    pub id: NodeId,
    /// Time between rounds (`--gossip-interval-ms`).
    pub interval_ms: u64,
    /// Bound on one exchange (the request timeout).
    pub timeout: Duration,
    /// The membership list, and the ring view derived from it.
    pub membership: Arc<Membership>,
    /// Where exchanges go.
    pub transport: Arc<dyn Transport>,
    /// This node's replica: its steady clock stamps each message and judges
    /// each sender's lag.
    pub local: Arc<LocalReplica>,
    /// Wall clock: liveness is judged in its ms.
    pub clock: Arc<dyn Clock>,
    /// Wakes hint delivery when a member comes back up.
    pub wake_handoff: Arc<Notify>,
}

/// A gossip message on the wire, stamped `sent_at_ms` on the sender's steady clock.
pub fn to_proto(from: &NodeId, digests: &[Digest], sent_at_ms: u64) -> proto::GossipMessage {
    proto::GossipMessage {
        from: from.to_string(),
        sent_at_ms,
        members: digests
            .iter()
            .map(|d| proto::GossipMember {
                node_id: d.id.to_string(),
                address: d.address.clone(),
                generation: d.generation,
                heartbeat: d.heartbeat,
                ring_status: d.ring_status.as_str().to_string(),
                vnodes: d.vnodes,
                dc: d.dc.clone(),
                suspected: d.suspected,
            })
            .collect(),
    }
}

/// The digests of a wire message (members with an empty id are skipped).
pub fn from_proto(message: &proto::GossipMessage) -> Vec<Digest> {
    message
        .members
        .iter()
        .filter(|m| !m.node_id.is_empty())
        .map(|m| Digest {
            id: NodeId::from(m.node_id.as_str()),
            address: m.address.clone(),
            generation: m.generation,
            heartbeat: m.heartbeat,
            ring_status: RingStatus::parse(&m.ring_status),
            vnodes: m.vnodes,
            // An older node names no DC: it is in the default one.
            dc: if m.dc.is_empty() { crate::placement::quorum::DEFAULT_DC.to_string() } else { m.dc.clone() },
            suspected: m.suspected,
        })
        .collect()
}

impl Gossiper {
    /// Handles an incoming Gossip RPC: merge, then answer with our list.
    pub fn on_message(&self, message: &proto::GossipMessage) -> proto::GossipMessage {
        let from = NodeId::from(message.from.as_str());
        // Only the lag sample is wanted: it keeps this sender's baseline fresh.
        let _ = self.local.lateness().waited_ms(&message.from, message.sent_at_ms, self.local.steady_ms());
        let digests = from_proto(message);
        let now_ms = self.clock.now_ms();
        let (reply, changes) = self.membership.update(false, |g| {
            let changes = g.receive(&from, &digests, now_ms);
            (g.digests(), changes)
        });
        self.apply_changes(&changes, &digests);
        to_proto(&self.id, &reply, self.local.steady_ms())
    }

    /// Logs changes and wakes hint delivery when a member comes back up. (The
    /// peer clients read members' addresses from the gossip list itself.)
    fn apply_changes(&self, changes: &[Change], digests: &[Digest]) {
        for change in changes {
            match change {
                Change::Discovered(id) => {
                    let address = digests.iter().find(|d| &d.id == id).map(|d| d.address.as_str());
                    info!(member = %id, address = address.unwrap_or(""), "member discovered");
                }
                Change::Liveness(id, from, to) => {
                    info!(member = %id, from = from.as_str(), to = to.as_str(), "member liveness changed");
                    if *to == Liveness::Up {
                        self.wake_handoff.notify_one();
                    }
                }
                Change::Ring(id, status) => info!(member = %id, status = status.as_str(), "member ring status changed"),
            }
        }
    }

    /// One round: tick, then exchange with the picked peers concurrently.
    async fn round(&self) {
        let now_ms = self.clock.now_ms();
        let ((peers, digests), changes) = self.membership.update(false, |g| {
            let (peers, changes) = g.tick(now_ms);
            ((peers, g.digests()), changes)
        });
        self.apply_changes(&changes, &digests);
        let message = to_proto(&self.id, &digests, self.local.steady_ms());
        let exchanges = peers.into_iter().map(|peer| self.exchange(peer, message.clone()));
        futures::future::join_all(exchanges).await;
    }

    /// Sends our list to one peer and merges its answer.
    async fn exchange(&self, peer: NodeId, message: proto::GossipMessage) {
        match self.transport.gossip(&peer, message, self.timeout).await {
            Ok(reply) => {
                self.on_message(&reply);
            }
            Err(error @ (TransportError::UnknownPeer(_) | TransportError::BadAddress { .. })) => {
                debug!(%peer, %error, "no address for gossip peer")
            }
            Err(TransportError::TimedOut { .. }) => debug!(%peer, "gossip timed out"),
            Err(error) => debug!(%peer, %error, "gossip failed"),
        }
    }

    /// Runs gossip rounds until `stopping` turns true.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        assert!(self.interval_ms > 0, "a gossip interval of 0 would spin");
        let mut ticker = tokio::time::interval(Duration::from_millis(self.interval_ms));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.round().await,
                _ = stopping.changed() => break,
            }
            if *stopping.borrow() {
                break;
            }
        }
        debug!("gossip loop stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_round_trip_through_the_wire() {
        let digests = vec![
            Digest {
                id: NodeId::from("n1"),
                address: "10.0.0.1:7000".into(),
                generation: 7,
                heartbeat: 42,
                ring_status: RingStatus::Leaving,
                vnodes: 64,
                dc: "dc1".into(),
                suspected: true,
            },
            Digest {
                id: NodeId::from("n2"),
                address: "10.0.0.2:7000".into(),
                generation: 1,
                heartbeat: 0,
                ring_status: RingStatus::Joining,
                vnodes: 128,
                dc: "east".into(),
                suspected: false,
            },
        ];
        let mut message = to_proto(&NodeId::from("n9"), &digests, 0);
        assert_eq!(message.from, "n9");
        message.members.push(proto::GossipMember::default());
        assert_eq!(from_proto(&message), digests, "members without an id are dropped");
    }
}
