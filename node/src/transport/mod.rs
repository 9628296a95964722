//! The transport: every RPC this node sends to a peer, behind one trait.
//!
//! The coordinator's replica Stores and Fetches, gossip, hint handoff,
//! range streaming and anti-entropy all reach another node through
//! [`Transport`], so nothing above this folder knows how a message travels.
//! Messages are the protocol's own (prost structs), and answers and
//! failures come back typed ([`TransportError`]).
//!
//! [`grpc::GrpcTransport`] is the implementation a node runs with, over
//! tonic: [`dialer`] makes a channel from a peer's address (TCP, or a
//! simulator's sockets), [`peers`] is the one cache of those channels keyed
//! by node id with addresses from membership, [`batcher`] coalesces the
//! Stores and Fetches queued for one replica into one round trip, and
//! [`replicate`] sends each round trip as one message on that replica's
//! open `ReplicateStream`. A deterministic simulator can put another
//! implementation in its place (messages handed over in memory, no HTTP/2
//! framing): the trait takes and returns plain messages for that reason.
//!
//! tonic lives here and in `net/` (the servers); the rest of the node never
//! names it.

pub mod batcher;
pub mod dialer;
pub mod error;
pub mod grpc;
pub mod peers;
pub mod replicate;

use std::collections::BTreeMap;
use std::time::Duration;

pub use error::TransportError;

use crate::node_id::NodeId;

/// Every RPC a node sends to its peers. Each call is bounded in time by the
/// implementation (replica calls by the request timeout, the others by the
/// `timeout` they are given) and fails with a [`TransportError`].
#[async_trait::async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Merges siblings into `target`'s replica (or its hint for another
    /// node); answers when durable there, with when the merge became
    /// visible, in us on the replica's steady clock (0: not reported).
    async fn store(&self, target: &NodeId, request: proto::StoreRequest) -> Result<u64, TransportError>;

    /// Reads `target`'s replica of a key (or its hint for another node).
    async fn fetch(
        &self,
        target: &NodeId,
        request: proto::FetchRequest,
    ) -> Result<proto::FetchResponse, TransportError>;

    /// One gossip exchange: sends this node's list, returns the peer's.
    async fn gossip(
        &self,
        target: &NodeId,
        message: proto::GossipMessage,
        timeout: Duration,
    ) -> Result<proto::GossipMessage, TransportError>;

    /// Applies many stores on `target` at once (hints handed off, keys
    /// pushed on leave); fails if any store fails there.
    async fn store_batch(
        &self,
        target: &NodeId,
        request: proto::StoreBatchRequest,
        timeout: Duration,
    ) -> Result<(), TransportError>;

    /// One page of the keys `target` holds in a range (a joiner's pull).
    async fn stream_range(
        &self,
        target: &NodeId,
        request: proto::StreamRangeRequest,
        timeout: Duration,
    ) -> Result<proto::StreamRangeResponse, TransportError>;

    /// Anti-entropy: hashes of tree nodes of a range on `target`.
    async fn tree_nodes(
        &self,
        target: &NodeId,
        request: proto::TreeNodesRequest,
        timeout: Duration,
    ) -> Result<proto::TreeNodesResponse, TransportError>;

    /// Anti-entropy: the key digests of some buckets of a range on `target`.
    async fn bucket_digests(
        &self,
        target: &NodeId,
        request: proto::BucketDigestsRequest,
        timeout: Duration,
    ) -> Result<proto::BucketDigestsResponse, TransportError>;

    /// Anti-entropy: pushes and pulls the keys that differ.
    async fn sync_keys(
        &self,
        target: &NodeId,
        request: proto::SyncKeysRequest,
        timeout: Duration,
    ) -> Result<proto::SyncKeysResponse, TransportError>;

    /// The address `node` is reached at now (`None`: unknown).
    fn address(&self, node: &NodeId) -> Option<String>;

    /// The transport's own counters (round trips and what they carried),
    /// named as `Admin.Status` and Prometheus report them.
    fn counters(&self) -> BTreeMap<String, u64>;
}
