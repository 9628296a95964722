//! The coordinator's errors: one replica's part of a request that failed
//! ([`CallError`], which the quorum rounds keep per replica), and a request
//! that could not gather its quorum ([`QuorumError`], what the client sees,
//! mapped to a gRPC status in `net/status.rs`).

use crate::node_id::NodeId;
use crate::replica::local::ApplyError;
use crate::transport::TransportError;
use crate::wire::WireError;

/// Why one replica's Store or Fetch of a request failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// This node's own replica failed.
    #[error(transparent)]
    Local(#[from] ApplyError),
    /// The call to a remote replica failed (unreachable, refused, slow).
    #[error(transparent)]
    Remote(#[from] TransportError),
    /// A remote replica answered with siblings that do not decode.
    #[error("bad siblings from {from}: {source}")]
    BadSiblings {
        /// The replica.
        from: NodeId,
        /// Why they do not decode.
        source: WireError,
    },
    /// The request's deadline passed before the replica answered.
    #[error("timed out")]
    Deadline,
}

/// A request that could not gather its quorum in time.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuorumError {
    /// Fewer than W replicas acknowledged a write.
    #[error("only {acks} of {required} required replicas acknowledged the write (n={n})")]
    Write {
        /// Acks received.
        acks: usize,
        /// W.
        required: usize,
        /// N.
        n: usize,
    },
    /// Fewer than R replicas replied to a read.
    #[error("only {replies} of {required} required replicas replied (n={n})")]
    Read {
        /// Replies received.
        replies: usize,
        /// R.
        required: usize,
        /// N.
        n: usize,
    },
}
