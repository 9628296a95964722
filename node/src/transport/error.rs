//! Why a call to a peer failed, as one type for every peer RPC.
//!
//! The coordinator counts a failed replica call whatever the cause, but the
//! cause still matters to the callers that react to it (anti-entropy skips
//! a busy peer and reports a tree of another shape; the logs say whether a
//! replica was unreachable, slow, or refused), so it stays typed until the
//! one place that prints it. The texts are the ones the string errors had,
//! so logs read as before.

use crate::node_id::NodeId;

/// A peer RPC that failed, from the dial to the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Membership knows no address for the peer.
    #[error("unknown peer {0}")]
    UnknownPeer(NodeId),
    /// The dialer refused the member's address.
    #[error("bad address for peer {node}: {reason}")]
    BadAddress {
        /// The peer.
        node: NodeId,
        /// What the dialer said.
        reason: String,
    },
    /// No answer within the call's time budget.
    #[error("timed out after {after_ms} ms")]
    TimedOut {
        /// The budget that ran out.
        after_ms: u64,
    },
    /// The peer answered with an error status (its code and message).
    #[error("{code}: {message}")]
    Status {
        /// The status code's name (`Unavailable`, `Internal`, ...).
        code: String,
        /// What the peer said.
        message: String,
    },
    /// The peer refused an anti-entropy call: the range is unknown there
    /// or its tree has another bucket count.
    #[error("{0}")]
    Mismatch(String),
    /// The peer is exchanging this range itself right now.
    #[error("peer {0} is busy")]
    Busy(NodeId),
    /// The replica answered this call with an error inside a batch.
    #[error("{0}")]
    Refused(String),
    /// Too many calls already wait for this replica.
    #[error("{replica}: {capacity} requests already queued for this replica")]
    QueueFull {
        /// The replica.
        replica: NodeId,
        /// The queue's bound.
        capacity: usize,
    },
    /// The call was dropped unsent or unanswered: its batch went away, or
    /// its deadline passed while it waited for a round trip.
    #[error("{0}")]
    Dropped(String),
    /// The replica stream broke or answered out of turn.
    #[error("{0}")]
    Stream(String),
    /// A lock of the transport was poisoned by a panic.
    #[error("{0} lock poisoned")]
    Poisoned(&'static str),
}

impl TransportError {
    /// A peer's error status as a transport error, by its code's name and
    /// message.
    pub fn status(status: &tonic::Status) -> Self {
        TransportError::Status { code: format!("{:?}", status.code()), message: status.message().to_string() }
    }

    /// A peer's error status as a transport error: anti-entropy's two
    /// refusals by their meaning, any other by its code's name and message.
    pub fn from_status(peer: &NodeId, status: &tonic::Status) -> Self {
        match status.code() {
            tonic::Code::FailedPrecondition => TransportError::Mismatch(status.message().to_string()),
            tonic::Code::Aborted => TransportError::Busy(peer.clone()),
            _ => TransportError::status(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_read_as_the_string_errors_did() {
        let peer = NodeId::from("n2");
        let down = TransportError::from_status(&peer, &tonic::Status::unavailable("down"));
        assert_eq!(down.to_string(), "Unavailable: down");
        let busy = TransportError::from_status(&peer, &tonic::Status::aborted("exchanging"));
        assert_eq!(busy, TransportError::Busy(peer.clone()));
        assert_eq!(TransportError::TimedOut { after_ms: 500 }.to_string(), "timed out after 500 ms");
        let full = TransportError::QueueFull { replica: NodeId::from("n2"), capacity: 4 };
        assert_eq!(full.to_string(), "n2: 4 requests already queued for this replica");
    }
}
