//! Anti-entropy on the network, the initiator's side: [`GrpcPeer`] is the
//! [`AaePeer`] trait over an `AntiEntropy` client from the node's one
//! channel cache, every RPC under a timeout. The responder's side, which
//! answers from the node's own index and replica, is
//! `net::anti_entropy::AntiEntropyService`.

use std::future::Future;
use std::time::Duration;

use proto::anti_entropy_client::AntiEntropyClient;
use tonic::transport::Channel;
use tonic::{Response, Status};

use super::{AaeError, AaePeer, SyncReply};
use crate::node_id::NodeId;

/// An exchange partner reached over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcPeer {
    /// The peer's id (for errors).
    pub(crate) peer: NodeId,
    /// This node's id (sent as `from`).
    pub(crate) from: String,
    /// Leaves per tree (sent so a mismatched peer refuses).
    pub(crate) buckets: u32,
    /// Client over the cached channel.
    pub(crate) client: AntiEntropyClient<Channel>,
    /// Timeout of each RPC.
    pub(crate) timeout: Duration,
}

impl GrpcPeer {
    fn fail(&self, reason: impl Into<String>) -> AaeError {
        AaeError::Peer { peer: self.peer.clone(), reason: reason.into() }
    }

    async fn call<T, Fut>(&self, rpc: Fut) -> Result<T, AaeError>
    where
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        match tokio::time::timeout(self.timeout, rpc).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) if status.code() == tonic::Code::FailedPrecondition => {
                Err(AaeError::Mismatch(status.message().to_string()))
            }
            Ok(Err(status)) if status.code() == tonic::Code::Aborted => Err(AaeError::Busy(self.peer.clone())),
            Ok(Err(status)) => Err(self.fail(format!("{:?}: {}", status.code(), status.message()))),
            Err(_) => Err(self.fail("timed out")),
        }
    }
}

impl AaePeer for GrpcPeer {
    async fn tree_nodes(&self, range: &str, nodes: Vec<u32>) -> Result<Vec<u64>, AaeError> {
        let request =
            proto::TreeNodesRequest { range: range.to_string(), buckets: self.buckets, nodes, from: self.from.clone() };
        let mut client = self.client.clone();
        Ok(self.call(client.tree_nodes(request)).await?.hashes)
    }

    async fn bucket_digests(&self, range: &str, buckets: Vec<u32>) -> Result<Vec<(Vec<u8>, u64)>, AaeError> {
        let request = proto::BucketDigestsRequest {
            range: range.to_string(),
            buckets: self.buckets,
            bucket_ids: buckets,
            from: self.from.clone(),
        };
        let mut client = self.client.clone();
        let response = self.call(client.bucket_digests(request)).await?;
        Ok(response.digests.into_iter().map(|d| (d.key, d.hash)).collect())
    }

    async fn sync_keys(
        &self,
        range: &str,
        push: Vec<proto::KeyEntry>,
        want: Vec<Vec<u8>>,
        offer: Vec<proto::KeyVersions>,
    ) -> Result<SyncReply, AaeError> {
        let request = proto::SyncKeysRequest { range: range.to_string(), push, want, from: self.from.clone(), offer };
        let mut client = self.client.clone();
        let response = self.call(client.sync_keys(request)).await?;
        Ok(SyncReply { entries: response.entries, need: response.need })
    }
}
