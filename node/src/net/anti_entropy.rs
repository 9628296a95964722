//! The `AntiEntropy` gRPC service: the responder's side of anti-entropy
//! exchanges (the initiator's is `repair::anti_entropy::GrpcPeer`).
//!
//! It answers from this node's own index and replica, and refuses
//! (`ABORTED`) an exchange of a range it is itself initiating, so two
//! replicas starting the same range at once do not both send the same
//! repairs. Requests asking for more ids or keys than one call may carry
//! are rejected, so a peer cannot make this node do unbounded work.

use std::sync::Arc;

use prost::Message;
use proto::anti_entropy_server::AntiEntropy as AntiEntropyRpc;
use tonic::{Request, Response, Status};

use crate::metrics::Metrics;
use crate::repair::anti_entropy::{AaeError, AntiEntropy, Replica, MAX_IDS_PER_CALL, MAX_KEYS_PER_SYNC};
use crate::replica::local::LocalReplica;
use crate::versioning::vclock::Resolution;

/// The `AntiEntropy` gRPC service: the responder side of exchanges.
#[derive(Debug)]
pub struct AntiEntropyService {
    /// The trees, and the ranges this node is initiating itself.
    pub anti_entropy: Arc<AntiEntropy>,
    /// The replica the trees summarize: what is read and repaired.
    pub local: Arc<LocalReplica>,
    /// Exchange counters.
    pub metrics: Arc<Metrics>,
    /// How stored siblings decode and merge.
    pub resolution: Resolution,
}

impl AntiEntropyService {
    /// Refuses a request built for another tree shape.
    fn check_buckets(&self, buckets: u32) -> Result<(), Status> {
        let mine = self.anti_entropy.index().buckets();
        if buckets as usize != mine {
            return Err(Status::failed_precondition(format!("peer has {buckets} merkle buckets, this node {mine}")));
        }
        Ok(())
    }
}

fn status_of(error: AaeError) -> Status {
    match error {
        AaeError::Mismatch(range) => Status::failed_precondition(format!("range {range} not replicated here")),
        AaeError::Wire(e) => Status::invalid_argument(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

/// Rejects requests asking for more ids than one call may carry.
fn check_len(len: usize) -> Result<(), Status> {
    if len > MAX_IDS_PER_CALL {
        return Err(Status::invalid_argument(format!("at most {MAX_IDS_PER_CALL} ids per call, got {len}")));
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
        if starting && self.anti_entropy.is_initiating(&request.range) {
            return Err(Status::aborted(format!("exchanging {} myself", request.range)));
        }
        let hashes = self.anti_entropy.index().tree_nodes(&request.range, &request.nodes).map_err(status_of)?;
        self.metrics.aae_tree_bytes_sent.add(8 * hashes.len() as u64);
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
            .anti_entropy
            .index()
            .bucket_digests(&request.range, &request.bucket_ids)
            .map_err(status_of)?
            .into_iter()
            .map(|(key, hash)| proto::KeyDigest { key, hash })
            .collect();
        let response = proto::BucketDigestsResponse { digests };
        self.metrics.aae_tree_bytes_sent.add(response.encoded_len() as u64);
        Ok(Response::new(response))
    }

    async fn sync_keys(
        &self,
        request: Request<proto::SyncKeysRequest>,
    ) -> Result<Response<proto::SyncKeysResponse>, Status> {
        let request = request.into_inner();
        let sizes = [request.push.len(), request.want.len(), request.offer.len()];
        if sizes.iter().any(|len| *len > MAX_KEYS_PER_SYNC) {
            return Err(Status::invalid_argument(format!("at most {MAX_KEYS_PER_SYNC} keys per sync")));
        }
        let (aae, local, metrics, mode) =
            (Arc::clone(&self.anti_entropy), Arc::clone(&self.local), Arc::clone(&self.metrics), self.resolution);
        let sync = move || {
            let replica = Replica::of(&aae, local.store(), &metrics, mode);
            replica.sync_keys(request.push, &request.want, request.offer)
        };
        let reply = self.local.storage_work(sync).await.map_err(status_of)?;
        Ok(Response::new(proto::SyncKeysResponse { entries: reply.entries, need: reply.need }))
    }
}
