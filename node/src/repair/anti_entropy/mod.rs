//! Active anti-entropy: replicas of a key range compare Merkle trees in the
//! background and exchange only the keys that differ.
//!
//! Read repair only fixes keys someone reads, and hinted handoff only
//! covers writes a stand-in saw; anti-entropy is the backstop that makes
//! every replica converge eventually, for keys nobody touches again.
//!
//! **Ranges.** A range is the set of ring arcs that share one replica set
//! (`Ring::replica_sets`): all their keys live on exactly the same N nodes,
//! so those N can compare them as one unit. We chose this over one tree per
//! arc (vnode range) because a 3-node ring with 64 vnodes each has 192 arcs
//! but a single replica set: one tree and one exchange per interval instead
//! of 192. A range is named by its sorted replica set, `"n1+n2+n3"`, which
//! every replica computes identically from the same ring, so the Merkle
//! roots that `Admin.Status` reports can be compared across nodes.
//!
//! The work is split four ways: [`index`] keeps the Merkle trees of this
//! node's ranges up to date, [`exchange`] is the comparison protocol between
//! two replicas (written against the [`AaePeer`] trait, so tests run it
//! between two in-memory replicas without sockets), [`schedule`] keeps the
//! rounds' state and picks the partner, and [`peer`] is the initiator's
//! side on the network (the trait over the node's transport). The responder's side is a tonic service
//! (`net::anti_entropy`) and the loop that runs the rounds a driver
//! (`drivers::anti_entropy`): both take the node, so neither lives here.

pub mod exchange;
pub mod index;
pub mod peer;
pub mod schedule;

use crate::node_id::NodeId;
use crate::replica::ReplicaError;
use crate::storage::StorageError;
use crate::wire;

pub use exchange::{directions, exchange, lacks, AaePeer, ExchangeReport, Replica, SyncReply};
pub use index::{range_name, AaeIndex};
pub use peer::TransportPeer;
pub use schedule::AntiEntropy;

/// Most tree nodes or buckets asked for in one RPC.
pub(crate) const MAX_IDS_PER_CALL: usize = 8_192;
/// Most keys pushed or wanted in one `SyncKeys` call.
pub(crate) const MAX_KEYS_PER_SYNC: usize = 1_024;
/// Soft cap on the encoded bytes pushed in one `SyncKeys` call (below
/// tonic's 4 MiB default message limit even with one max-size value over).
pub(crate) const MAX_SYNC_BYTES: usize = 1 << 20;
/// Entries read per page when rebuilding the index from storage.
pub(crate) const SCAN_PAGE: usize = 1_024;
/// Shortest timeout of one anti-entropy RPC.
pub(crate) const MIN_RPC_TIMEOUT_MS: u64 = 2_000;

/// Why an exchange (or a part of it) failed.
#[derive(Debug, thiserror::Error)]
pub enum AaeError {
    /// The peer could not be reached or refused.
    #[error("peer {peer}: {reason}")]
    Peer {
        /// The other replica.
        peer: NodeId,
        /// What went wrong.
        reason: String,
    },
    /// The peer's tree has another shape (different `--merkle-buckets`).
    #[error("range {0} is unknown here or has another bucket count")]
    Mismatch(String),
    /// The peer is itself exchanging this range right now; skip this turn.
    #[error("peer {0} is busy with this range")]
    Busy(NodeId),
    /// The local replica failed.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The storage scan failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The storage task it ran in did not return.
    #[error(transparent)]
    Task(#[from] crate::replica::local::TaskFailed),
    /// The peer sent siblings that do not decode.
    #[error("bad siblings from peer: {0}")]
    Wire(#[from] wire::WireError),
}
