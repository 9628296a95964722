//! The initiator's side of an exchange on the network: [`TransportPeer`] is
//! the [`AaePeer`] trait over the node's [`Transport`], every call bounded
//! by a timeout. The responder's side, which answers from the node's own
//! index and replica, is `net::anti_entropy::AntiEntropyService`.

use std::sync::Arc;
use std::time::Duration;

use super::{AaeError, AaePeer, SyncReply};
use crate::node_id::NodeId;
use crate::transport::{Transport, TransportError};

/// An exchange partner reached through the transport.
#[derive(Debug, Clone)]
pub struct TransportPeer {
    /// Every peer RPC goes through it.
    pub transport: Arc<dyn Transport>,
    /// The peer's id.
    pub peer: NodeId,
    /// This node's id (sent as `from`).
    pub from: String,
    /// Leaves per tree (sent so a mismatched peer refuses).
    pub buckets: u32,
    /// Timeout of each RPC.
    pub timeout: Duration,
}

impl TransportPeer {
    /// The transport's failure as the exchange's: the peer's two refusals
    /// by their meaning, anything else as an unreachable or failing peer.
    fn fail(&self, error: TransportError) -> AaeError {
        match error {
            TransportError::Mismatch(range) => AaeError::Mismatch(range),
            TransportError::Busy(peer) => AaeError::Busy(peer),
            TransportError::TimedOut { .. } => AaeError::Peer { peer: self.peer.clone(), reason: "timed out".into() },
            other => AaeError::Peer { peer: self.peer.clone(), reason: other.to_string() },
        }
    }
}

impl AaePeer for TransportPeer {
    async fn tree_nodes(&self, range: &str, nodes: Vec<u32>) -> Result<Vec<u64>, AaeError> {
        let request =
            proto::TreeNodesRequest { range: range.to_string(), buckets: self.buckets, nodes, from: self.from.clone() };
        let response = self.transport.tree_nodes(&self.peer, request, self.timeout).await;
        Ok(response.map_err(|e| self.fail(e))?.hashes)
    }

    async fn bucket_digests(&self, range: &str, buckets: Vec<u32>) -> Result<Vec<(Vec<u8>, u64)>, AaeError> {
        let request = proto::BucketDigestsRequest {
            range: range.to_string(),
            buckets: self.buckets,
            bucket_ids: buckets,
            from: self.from.clone(),
        };
        let response = self.transport.bucket_digests(&self.peer, request, self.timeout).await;
        Ok(response.map_err(|e| self.fail(e))?.digests.into_iter().map(|d| (d.key, d.hash)).collect())
    }

    async fn sync_keys(
        &self,
        range: &str,
        push: Vec<proto::KeyEntry>,
        want: Vec<Vec<u8>>,
        offer: Vec<proto::KeyVersions>,
    ) -> Result<SyncReply, AaeError> {
        let request = proto::SyncKeysRequest { range: range.to_string(), push, want, from: self.from.clone(), offer };
        let response = self.transport.sync_keys(&self.peer, request, self.timeout).await.map_err(|e| self.fail(e))?;
        Ok(SyncReply { entries: response.entries, need: response.need })
    }
}
