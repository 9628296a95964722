//! [`GrpcTransport`]: the [`Transport`] a node runs with, over tonic.
//!
//! Every call takes its channel from the one cache ([`PeerClients`]).
//! Replica Stores and Fetches ride the per-replica batcher and its
//! `ReplicateStream` when `--replica-batching` is on (the default), or go
//! out as unary calls bounded by the request timeout when it is off; every
//! other RPC is a unary call bounded by the timeout its caller gives.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::batcher::Batcher;
use super::peers::{PeerClients, PeerError};
use super::replicate::{self, KindCounts, ReplicaAnswer, ReplicaCall};
use super::{Transport, TransportError};
use crate::node_id::NodeId;

/// The tonic transport: the channel cache, and the replica batcher on top.
#[derive(Debug)]
pub struct GrpcTransport {
    /// The one channel cache (addresses from membership).
    peers: PeerClients,
    /// Coalesces Stores and Fetches per replica into round trips on its
    /// `ReplicateStream`.
    batcher: Batcher<ReplicaCall, ReplicaAnswer>,
    /// What the batcher's round trips carried, by kind.
    trips: Arc<KindCounts>,
    /// Whether replica calls are batched (`--replica-batching`).
    batching: bool,
    /// The bound of one replica call (`--request-timeout-ms`).
    request_timeout: Duration,
}

impl GrpcTransport {
    /// A transport over `peers`, whose replica calls take at most
    /// `request_timeout` and are batched when `batching`.
    pub fn new(peers: PeerClients, request_timeout: Duration, batching: bool) -> Self {
        let trips = Arc::new(KindCounts::default());
        let batcher = Batcher::new(replicate::sender(Arc::clone(&trips)), request_timeout);
        GrpcTransport { peers, batcher, trips, batching, request_timeout }
    }

    /// The channel cache (for status: how many peers are dialled).
    pub fn peers(&self) -> &PeerClients {
        &self.peers
    }
}

impl From<PeerError> for TransportError {
    fn from(error: PeerError) -> Self {
        match error {
            PeerError::Unknown(node) => TransportError::UnknownPeer(node),
            PeerError::BadAddress { node, source } => TransportError::BadAddress { node, reason: source.to_string() },
            PeerError::Poisoned => TransportError::Poisoned("peer channel cache"),
        }
    }
}

/// One unary RPC to `peer`, bounded by `timeout`; an error status is
/// typed by [`TransportError::from_status`].
async fn unary<T>(
    peer: &NodeId,
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, TransportError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(TransportError::from_status(peer, &status)),
        Err(_) => Err(TransportError::TimedOut { after_ms: timeout.as_millis() as u64 }),
    }
}

#[async_trait::async_trait]
impl Transport for GrpcTransport {
    async fn store(&self, target: &NodeId, request: proto::StoreRequest) -> Result<u64, TransportError> {
        let mut client = self.peers.client(target)?;
        if self.batching {
            return self.batcher.call(target, client, ReplicaCall::Store(request)).await?.stored();
        }
        unary(target, self.request_timeout, client.store(request)).await.map(|r| r.applied_at_us)
    }

    async fn fetch(
        &self,
        target: &NodeId,
        request: proto::FetchRequest,
    ) -> Result<proto::FetchResponse, TransportError> {
        let mut client = self.peers.client(target)?;
        if self.batching {
            return self.batcher.call(target, client, ReplicaCall::Fetch(request)).await?.fetched();
        }
        unary(target, self.request_timeout, client.fetch(request)).await
    }

    async fn gossip(
        &self,
        target: &NodeId,
        message: proto::GossipMessage,
        timeout: Duration,
    ) -> Result<proto::GossipMessage, TransportError> {
        let mut client = self.peers.client(target)?;
        unary(target, timeout, client.gossip(message)).await
    }

    async fn store_batch(
        &self,
        target: &NodeId,
        request: proto::StoreBatchRequest,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let mut client = self.peers.client(target)?;
        unary(target, timeout, client.store_batch(request)).await.map(|_| ())
    }

    async fn stream_range(
        &self,
        target: &NodeId,
        request: proto::StreamRangeRequest,
        timeout: Duration,
    ) -> Result<proto::StreamRangeResponse, TransportError> {
        let mut client = self.peers.client(target)?;
        unary(target, timeout, client.stream_range(request)).await
    }

    async fn tree_nodes(
        &self,
        target: &NodeId,
        request: proto::TreeNodesRequest,
        timeout: Duration,
    ) -> Result<proto::TreeNodesResponse, TransportError> {
        let mut client = self.peers.anti_entropy(target)?;
        unary(target, timeout, client.tree_nodes(request)).await
    }

    async fn bucket_digests(
        &self,
        target: &NodeId,
        request: proto::BucketDigestsRequest,
        timeout: Duration,
    ) -> Result<proto::BucketDigestsResponse, TransportError> {
        let mut client = self.peers.anti_entropy(target)?;
        unary(target, timeout, client.bucket_digests(request)).await
    }

    async fn sync_keys(
        &self,
        target: &NodeId,
        request: proto::SyncKeysRequest,
        timeout: Duration,
    ) -> Result<proto::SyncKeysResponse, TransportError> {
        let mut client = self.peers.anti_entropy(target)?;
        unary(target, timeout, client.sync_keys(request)).await
    }

    fn address(&self, node: &NodeId) -> Option<String> {
        self.peers.address(node)
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        let (store_trips, stores, fetch_trips, fetches) = self.trips.snapshot();
        BTreeMap::from([
            ("replica_round_trips".to_string(), self.batcher.sent().0),
            ("replica_store_round_trips".to_string(), store_trips),
            ("replica_stores_sent".to_string(), stores),
            ("replica_fetch_round_trips".to_string(), fetch_trips),
            ("replica_fetches_sent".to_string(), fetches),
        ])
    }
}
