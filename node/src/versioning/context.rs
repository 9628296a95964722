//! The causal context: the opaque bytes a client carries from a Get to its
//! next Put or Delete of the same key.
//!
//! A context says "I have seen these versions": it is the merge of the
//! clocks of the siblings the client read. The coordinator starts the new
//! version's clock from it, so the write descends (and replaces) exactly
//! what the client saw, and stays concurrent with what it did not.
//!
//! Format: one format-tag byte ([`FORMAT_V1`]) followed by a prost-encoded
//! `proto::Version` of which only the clock maps are meaningful. The tag lets
//! the format change later without misreading old contexts. Empty bytes mean
//! "no context" (a blind write). Anything else that does not decode is
//! rejected, and the client gets `INVALID_ARGUMENT`: guessing at a damaged
//! context could silently drop or resurrect siblings.

use prost::Message;

use crate::versioning::vclock::VClock;
use crate::wire;

/// The first byte of every context this node issues.
pub const FORMAT_V1: u8 = 1;

/// Why a context could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The first byte is not a format this node knows.
    #[error("unknown context format tag {0:#04x} (expected {FORMAT_V1:#04x})")]
    UnknownFormat(u8),
    /// The body is not a prost-encoded version.
    #[error("cannot decode context body: {0}")]
    Body(#[from] prost::DecodeError),
}

/// Encodes a clock as context bytes; the empty clock is the empty context.
pub fn encode(clock: &VClock) -> Vec<u8> {
    if clock.is_empty() {
        return Vec::new();
    }
    let body = wire::clock_to_proto(clock).encode_to_vec();
    let mut bytes = Vec::with_capacity(1 + body.len());
    bytes.push(FORMAT_V1);
    bytes.extend_from_slice(&body);
    bytes
}

/// Decodes context bytes; empty bytes give the empty clock.
pub fn decode(bytes: &[u8]) -> Result<VClock, ContextError> {
    let Some((&tag, body)) = bytes.split_first() else {
        return Ok(VClock::new());
    };
    if tag != FORMAT_V1 {
        return Err(ContextError::UnknownFormat(tag));
    }
    let version = proto::Version::decode(body)?;
    Ok(wire::clock_from_proto(&version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_id::NodeId;

    #[test]
    fn round_trips() {
        let clock = VClock::from_entries([(NodeId::from("n1"), 7, 100), (NodeId::from("n2"), 2, 50)]);
        assert_eq!(decode(&encode(&clock)).unwrap(), clock);
    }

    #[test]
    fn empty_means_no_context() {
        assert!(encode(&VClock::new()).is_empty());
        assert!(decode(&[]).unwrap().is_empty());
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(matches!(decode(b"garbage"), Err(ContextError::UnknownFormat(b'g'))));
        assert!(matches!(decode(&[FORMAT_V1, 0xff, 0xff, 0xff]), Err(ContextError::Body(_))));
    }
}
