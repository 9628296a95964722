//! Connections from this node to the other members' Replica services.
//!
//! One tonic `Channel` per peer, created on first use and cached: a channel
//! multiplexes concurrent RPCs over one HTTP/2 connection and reconnects by
//! itself after the peer restarts, so there is nothing to manage beyond
//! creating it. Channels are "lazy": creating one opens no socket, so a node
//! starts even while its peers are still down, and a dead peer costs a
//! failed (timed-out or refused) RPC rather than a failed startup.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use proto::replica_client::ReplicaClient;
use tonic::transport::{Channel, Endpoint};

use crate::node_id::NodeId;

/// Why no client could be made for a peer.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The node is not a member.
    #[error("unknown peer {0}")]
    Unknown(NodeId),
    /// The member's address is not a valid URI.
    #[error("bad address for peer {node}: {source}")]
    BadAddress {
        /// The peer.
        node: NodeId,
        /// What tonic said.
        source: tonic::transport::Error,
    },
    /// The cache lock was poisoned.
    #[error("peer client cache poisoned")]
    Poisoned,
}

/// Lazily connected, cached Replica clients, one per peer.
#[derive(Debug)]
pub struct PeerClients {
    /// Member id -> `host:port`; grows as gossip discovers members.
    addresses: RwLock<BTreeMap<NodeId, String>>,
    /// Timeout for establishing a connection.
    connect_timeout: Duration,
    /// Clients created so far (cloning a client is cheap: it shares the channel).
    clients: Mutex<HashMap<NodeId, ReplicaClient<Channel>>>,
}

impl PeerClients {
    /// Clients for the given members (`id -> host:port`).
    pub fn new(addresses: BTreeMap<NodeId, String>, connect_timeout: Duration) -> Self {
        PeerClients {
            addresses: RwLock::new(addresses),
            connect_timeout,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The cached client for `node`, created (without connecting) on first
    /// use. Must be called inside a tokio runtime.
    pub fn client(&self, node: &NodeId) -> Result<ReplicaClient<Channel>, PeerError> {
        let mut clients = self.clients.lock().map_err(|_| PeerError::Poisoned)?;
        if let Some(client) = clients.get(node) {
            return Ok(client.clone());
        }
        // Streamed ranges and hint batches carry hundreds of values.
        let client = ReplicaClient::new(self.channel(node)?).max_decoding_message_size(64 << 20);
        clients.insert(node.clone(), client.clone());
        Ok(client)
    }

    /// Records (or changes) a member's address, learned from gossip; a
    /// changed address drops the cached client so the next call reconnects.
    pub fn set_address(&self, node: &NodeId, address: &str) -> Result<(), PeerError> {
        let mut addresses = self.addresses.write().map_err(|_| PeerError::Poisoned)?;
        if addresses.get(node).map(String::as_str) == Some(address) {
            return Ok(());
        }
        addresses.insert(node.clone(), address.to_string());
        drop(addresses);
        self.clients.lock().map_err(|_| PeerError::Poisoned)?.remove(node);
        Ok(())
    }

    /// The address of a member, if known.
    pub fn address(&self, node: &NodeId) -> Option<String> {
        self.addresses.read().ok()?.get(node).cloned()
    }

    fn channel(&self, node: &NodeId) -> Result<Channel, PeerError> {
        let address = self
            .address(node)
            .ok_or_else(|| PeerError::Unknown(node.clone()))?;
        let endpoint = Endpoint::from_shared(format!("http://{address}")).map_err(|source| {
            PeerError::BadAddress {
                node: node.clone(),
                source,
            }
        })?;
        Ok(endpoint
            .connect_timeout(self.connect_timeout)
            // Small request/response RPCs: Nagle plus delayed ACKs would add
            // tens of milliseconds to every replica round trip.
            .tcp_nodelay(true)
            .connect_lazy())
    }
}
