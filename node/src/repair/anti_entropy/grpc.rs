//! Anti-entropy on the network: the initiator's [`GrpcPeer`] (the
//! [`AaePeer`] trait over an `AntiEntropy` client from the node's one
//! channel cache, every RPC under a timeout) and the responder's
//! [`AntiEntropyService`], which answers from its own index and replica
//! and refuses (`ABORTED`) an exchange of a range it is itself initiating.
//! Requests asking for more ids or keys than one call may carry are
//! rejected, so a peer cannot make this node do unbounded work.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use proto::anti_entropy_client::AntiEntropyClient;
use proto::anti_entropy_server::AntiEntropy as AntiEntropyRpc;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::{AaeError, AaePeer, SyncReply, MAX_IDS_PER_CALL, MAX_KEYS_PER_SYNC};
use crate::node::Node;
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
        AaeError::Peer {
            peer: self.peer.clone(),
            reason: reason.into(),
        }
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
            Ok(Err(status)) if status.code() == tonic::Code::Aborted => {
                Err(AaeError::Busy(self.peer.clone()))
            }
            Ok(Err(status)) => Err(self.fail(format!("{:?}: {}", status.code(), status.message()))),
            Err(_) => Err(self.fail("timed out")),
        }
    }
}

impl AaePeer for GrpcPeer {
    async fn tree_nodes(&self, range: &str, nodes: Vec<u32>) -> Result<Vec<u64>, AaeError> {
        let request = proto::TreeNodesRequest {
            range: range.to_string(),
            buckets: self.buckets,
            nodes,
            from: self.from.clone(),
        };
        let mut client = self.client.clone();
        Ok(self.call(client.tree_nodes(request)).await?.hashes)
    }

    async fn bucket_digests(
        &self,
        range: &str,
        buckets: Vec<u32>,
    ) -> Result<Vec<(Vec<u8>, u64)>, AaeError> {
        let request = proto::BucketDigestsRequest {
            range: range.to_string(),
            buckets: self.buckets,
            bucket_ids: buckets,
            from: self.from.clone(),
        };
        let mut client = self.client.clone();
        let response = self.call(client.bucket_digests(request)).await?;
        Ok(response
            .digests
            .into_iter()
            .map(|d| (d.key, d.hash))
            .collect())
    }

    async fn sync_keys(
        &self,
        range: &str,
        push: Vec<proto::KeyEntry>,
        want: Vec<Vec<u8>>,
        offer: Vec<proto::KeyVersions>,
    ) -> Result<SyncReply, AaeError> {
        let request = proto::SyncKeysRequest {
            range: range.to_string(),
            push,
            want,
            from: self.from.clone(),
            offer,
        };
        let mut client = self.client.clone();
        let response = self.call(client.sync_keys(request)).await?;
        Ok(SyncReply {
            entries: response.entries,
            need: response.need,
        })
    }
}

/// The `AntiEntropy` gRPC service: the responder side of exchanges.
#[derive(Debug)]
pub struct AntiEntropyService {
    /// The node whose trees and replica answer.
    node: Arc<Node>,
}

impl AntiEntropyService {
    /// The service for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        AntiEntropyService { node }
    }

    /// Refuses a request built for another tree shape.
    fn check_buckets(&self, buckets: u32) -> Result<(), Status> {
        let mine = self.node.anti_entropy().index().buckets();
        if buckets as usize != mine {
            return Err(Status::failed_precondition(format!(
                "peer has {buckets} merkle buckets, this node {mine}"
            )));
        }
        Ok(())
    }
}

fn status_of(error: AaeError) -> Status {
    match error {
        AaeError::Mismatch(range) => {
            Status::failed_precondition(format!("range {range} not replicated here"))
        }
        AaeError::Wire(e) => Status::invalid_argument(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

/// Rejects requests asking for more ids than one call may carry.
fn check_len(len: usize) -> Result<(), Status> {
    if len > MAX_IDS_PER_CALL {
        return Err(Status::invalid_argument(format!(
            "at most {MAX_IDS_PER_CALL} ids per call, got {len}"
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl AntiEntropyRpc for AntiEntropyService {
    async fn tree_nodes(
        &self,
        request: Request<proto::TreeNodesRequest>,
    ) -> Result<Response<proto::TreeNodesResponse>, Status> {
        let request = request.into_inner();
        self.check_buckets(request.buckets)?;
        check_len(request.nodes.len())?;
        let starting = request.nodes == [1];
        if starting && self.node.anti_entropy().is_initiating(&request.range) {
            return Err(Status::aborted(format!(
                "exchanging {} myself",
                request.range
            )));
        }
        let hashes = self
            .node
            .anti_entropy()
            .index()
            .tree_nodes(&request.range, &request.nodes)
            .map_err(status_of)?;
        self.node
            .metrics()
            .aae_tree_bytes_sent
            .add(8 * hashes.len() as u64);
        Ok(Response::new(proto::TreeNodesResponse { hashes }))
    }

    async fn bucket_digests(
        &self,
        request: Request<proto::BucketDigestsRequest>,
    ) -> Result<Response<proto::BucketDigestsResponse>, Status> {
        let request = request.into_inner();
        self.check_buckets(request.buckets)?;
        check_len(request.bucket_ids.len())?;
        let digests: Vec<proto::KeyDigest> = self
            .node
            .anti_entropy()
            .index()
            .bucket_digests(&request.range, &request.bucket_ids)
            .map_err(status_of)?
            .into_iter()
            .map(|(key, hash)| proto::KeyDigest { key, hash })
            .collect();
        let response = proto::BucketDigestsResponse { digests };
        self.node
            .metrics()
            .aae_tree_bytes_sent
            .add(response.encoded_len() as u64);
        Ok(Response::new(response))
    }

    async fn sync_keys(
        &self,
        request: Request<proto::SyncKeysRequest>,
    ) -> Result<Response<proto::SyncKeysResponse>, Status> {
        let request = request.into_inner();
        let sizes = [request.push.len(), request.want.len(), request.offer.len()];
        if sizes.iter().any(|len| *len > MAX_KEYS_PER_SYNC) {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_KEYS_PER_SYNC} keys per sync"
            )));
        }
        let node = Arc::clone(&self.node);
        let reply = self
            .node
            .storage_work(move || {
                Ok(node
                    .aae_replica()
                    .sync_keys(request.push, &request.want, request.offer))
            })
            .await
            .map_err(Status::internal)?
            .map_err(status_of)?;
        Ok(Response::new(proto::SyncKeysResponse {
            entries: reply.entries,
            need: reply.need,
        }))
    }
}
