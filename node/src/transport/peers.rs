//! The one connection cache: a channel per peer, for every peer RPC.
//!
//! Replica stores and fetches, gossip, hint handoff, range streaming and
//! anti-entropy all reach a peer through [`PeerClients`]: one tonic
//! `Channel` per peer id, made by the node's [`Dialer`] on first use and
//! shared by every service's client (a channel multiplexes concurrent RPCs
//! over one HTTP/2 connection, so there is nothing to pool).
//!
//! Addresses come from membership, the one place that knows them: the
//! gossip list starts with the configured peers and seeds and learns every
//! other member (a node that joined later, a member that restarted on a new
//! address) from gossip. The cache remembers which address each channel was
//! dialled to and dials again when membership reports another one. Before
//! this, anti-entropy kept its own cache resolved from the static `--peers`
//! list, so the members started before a join could never reach the joiner.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use proto::anti_entropy_client::AntiEntropyClient;
use proto::replica_client::ReplicaClient;
use tonic::transport::Channel;

use super::dialer::Dialer;
use crate::node_id::NodeId;
use crate::placement::view::Membership;

/// Largest message a peer client decodes: streamed ranges, hint batches
/// and anti-entropy syncs carry hundreds of values.
pub const MAX_PEER_MESSAGE_BYTES: usize = 64 << 20;

/// Why no client could be made for a peer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Membership knows no address for the node.
    #[error("unknown peer {0}")]
    Unknown(NodeId),
    /// The dialer refused the member's address.
    #[error("bad address for peer {node}: {source}")]
    BadAddress {
        /// The peer.
        node: NodeId,
        /// What tonic said.
        source: tonic::transport::Error,
    },
    /// The cache lock was poisoned.
    #[error("peer channel cache poisoned")]
    Poisoned,
}

/// A channel and the address it was dialled to.
#[derive(Debug, Clone)]
struct Dialled {
    /// The `host:port` membership gave when the channel was made.
    address: String,
    /// The (lazy) channel.
    channel: Channel,
}

/// Lazily dialled, cached channels to the other members, by id.
pub struct PeerClients {
    /// Where addresses come from (the gossip list).
    membership: Arc<Membership>,
    /// Makes a channel from an address (TCP, or a simulator's sockets).
    dialer: Dialer,
    /// Channels made so far, by peer id (ordered: nothing here depends on
    /// a hash order).
    channels: Mutex<BTreeMap<NodeId, Dialled>>,
}

impl std::fmt::Debug for PeerClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let peers: Vec<NodeId> = self.channels.lock().map(|c| c.keys().cloned().collect()).unwrap_or_default();
        f.debug_struct("PeerClients").field("dialled", &peers).finish_non_exhaustive()
    }
}

impl PeerClients {
    /// Channels to the members `membership` knows, made by `dialer`.
    pub fn new(membership: Arc<Membership>, dialer: Dialer) -> Self {
        PeerClients { membership, dialer, channels: Mutex::new(BTreeMap::new()) }
    }

    /// The channel to `node` at the address membership knows now, dialled
    /// (lazily, no socket yet) on first use or when the address changed.
    /// Must be called inside a tokio runtime.
    pub fn channel(&self, node: &NodeId) -> Result<Channel, PeerError> {
        let address = self.address(node).ok_or_else(|| PeerError::Unknown(node.clone()))?;
        let mut channels = self.channels.lock().map_err(|_| PeerError::Poisoned)?;
        if let Some(dialled) = channels.get(node).filter(|d| d.address == address) {
            return Ok(dialled.channel.clone());
        }
        let channel = (self.dialer)(&address).map_err(|source| PeerError::BadAddress { node: node.clone(), source })?;
        channels.insert(node.clone(), Dialled { address, channel: channel.clone() });
        Ok(channel)
    }

    /// A Replica client (stores, fetches, gossip, hints, streaming) to `node`.
    pub fn client(&self, node: &NodeId) -> Result<ReplicaClient<Channel>, PeerError> {
        Ok(ReplicaClient::new(self.channel(node)?).max_decoding_message_size(MAX_PEER_MESSAGE_BYTES))
    }

    /// An AntiEntropy client to `node`, over the same channel.
    pub fn anti_entropy(&self, node: &NodeId) -> Result<AntiEntropyClient<Channel>, PeerError> {
        Ok(AntiEntropyClient::new(self.channel(node)?).max_decoding_message_size(MAX_PEER_MESSAGE_BYTES))
    }

    /// The address membership knows for `node` (`None` if unknown or empty).
    pub fn address(&self, node: &NodeId) -> Option<String> {
        let address = self.membership.read(|g| g.member(node).map(|m| m.address.clone()))?;
        (!address.is_empty()).then_some(address)
    }

    /// How many peers have a channel (for tests and status).
    pub fn dialled(&self) -> usize {
        self.channels.lock().map(|c| c.len()).unwrap_or(0)
    }
}
