//! Conversions between the node's domain types and the `proto` messages.
//!
//! The wire format is the contract in `proto/dynamo.proto`; inside the node
//! we work with [`VClock`], [`Version`], [`Sibling`] and [`SiblingSet`],
//! which enforce their invariants (no zero clock entries, antichains). Every
//! crossing of that boundary goes through this file, so a malformed message
//! is rejected in exactly one place. The serialized form of a stored sibling
//! set is a prost-encoded `proto::FetchResponse`: the same message a replica
//! returns, so storage needs no second format.
//!
//! A version's dot travels (and is stored) as `Version.dot`, next to its
//! context in `Version.clock`. A dot must name a node and lie outside its
//! own context (`counter > clock[node]`, hence `>= 1`): anything else is not
//! a version any node mints, and is rejected rather than guessed at, since a
//! misread dot could drop or resurrect siblings.

use prost::Message;

use crate::node_id::NodeId;
use crate::versioning::vclock::{Dot, Resolution, Sibling, SiblingSet, VClock, Version};

/// A message from the wire (or from storage) that does not describe a valid
/// sibling.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A sibling came without its version.
    #[error("sibling has no version")]
    MissingVersion,
    /// A tombstone also carried value bytes.
    #[error("tombstone sibling carries a value of {0} bytes")]
    TombstoneWithValue(usize),
    /// A dot without a node id.
    #[error("dot has an empty node id")]
    DotWithoutNode,
    /// A dot inside its own context (or with counter 0): not a minted event.
    #[error("dot ({node}, {counter}) is not above its context's entry {context}")]
    DotInContext {
        /// The dot's node.
        node: String,
        /// The dot's counter.
        counter: u64,
        /// The context's entry for that node.
        context: u64,
    },
    /// The bytes are not a prost-encoded message.
    #[error("cannot decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// The clock as the wire carries it (two maps keyed by node id, no dot).
pub fn clock_to_proto(clock: &VClock) -> proto::Version {
    proto::Version {
        dot: None,
        clock: clock.counters().iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        ts_ms: 0,
        entry_ts_ms: clock.counters().keys().map(|n| (n.to_string(), clock.entry_ts_ms(n))).collect(),
    }
}

/// The clock of a wire version (its `ts_ms` and `dot` are ignored); zero
/// entries drop.
pub fn clock_from_proto(version: &proto::Version) -> VClock {
    VClock::from_entries(version.clock.iter().map(|(node, counter)| {
        let ts_ms = version.entry_ts_ms.get(node).copied().unwrap_or(0);
        (NodeId::from(node.as_str()), *counter, ts_ms)
    }))
}

/// A version on the wire.
pub fn version_to_proto(version: &Version) -> proto::Version {
    proto::Version {
        ts_ms: version.ts_ms,
        dot: version.dot.as_ref().map(|d| proto::version::Dot { node: d.node.to_string(), counter: d.counter }),
        ..clock_to_proto(&version.clock)
    }
}

/// A version from the wire, its dot checked against its context.
pub fn version_from_proto(version: &proto::Version) -> Result<Version, WireError> {
    let clock = clock_from_proto(version);
    let dot = version.dot.as_ref().map(|d| dot_from_proto(d, &clock)).transpose()?;
    Ok(Version { clock, ts_ms: version.ts_ms, dot })
}

/// A dot from the wire: named, and above its context's entry.
fn dot_from_proto(dot: &proto::version::Dot, context: &VClock) -> Result<Dot, WireError> {
    if dot.node.is_empty() {
        return Err(WireError::DotWithoutNode);
    }
    let node = NodeId::from(dot.node.as_str());
    let below = context.get(&node);
    if dot.counter <= below {
        return Err(WireError::DotInContext { node: dot.node.clone(), counter: dot.counter, context: below });
    }
    Ok(Dot { node, counter: dot.counter })
}

/// A sibling on the wire.
pub fn sibling_to_proto(sibling: &Sibling) -> proto::Sibling {
    proto::Sibling {
        value: sibling.value.clone().unwrap_or_default(),
        tombstone: sibling.is_tombstone(),
        version: Some(version_to_proto(&sibling.version)),
    }
}

/// A sibling from the wire, checked.
pub fn sibling_from_proto(sibling: proto::Sibling) -> Result<Sibling, WireError> {
    let version = sibling.version.as_ref().ok_or(WireError::MissingVersion)?;
    if sibling.tombstone && !sibling.value.is_empty() {
        return Err(WireError::TombstoneWithValue(sibling.value.len()));
    }
    let value = (!sibling.tombstone).then_some(sibling.value);
    Ok(Sibling { value, version: version_from_proto(version)? })
}

/// A sibling set on the wire.
pub fn set_to_proto(set: &SiblingSet) -> Vec<proto::Sibling> {
    set.siblings().iter().map(sibling_to_proto).collect()
}

/// A sibling set from the wire, resolved under `mode`.
pub fn set_from_proto(siblings: Vec<proto::Sibling>, mode: Resolution) -> Result<SiblingSet, WireError> {
    Ok(SiblingSet::from_siblings(siblings_from_proto(siblings)?, mode))
}

/// Every sibling of a message, or the first that is malformed.
fn siblings_from_proto(siblings: Vec<proto::Sibling>) -> Result<Vec<Sibling>, WireError> {
    siblings.into_iter().map(sibling_from_proto).collect()
}

/// The stored form of a sibling set: an encoded `proto::FetchResponse`.
pub fn encode_set(set: &SiblingSet) -> Vec<u8> {
    // read_at_us stays 0, which proto3 does not encode: the stored bytes
    // are what they were before the field existed.
    proto::FetchResponse { siblings: set_to_proto(set), read_at_us: 0 }.encode_to_vec()
}

/// Reads back what [`encode_set`] wrote.
pub fn decode_set(bytes: &[u8], mode: Resolution) -> Result<SiblingSet, WireError> {
    let message = proto::FetchResponse::decode(bytes)?;
    Ok(SiblingSet::from_stored(siblings_from_proto(message.siblings)?, mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_set_round_trips_through_bytes() {
        let clock = VClock::from_entries([(NodeId::from("n1"), 3, 11), (NodeId::from("n2"), 1, 12)]);
        let set = SiblingSet::from_siblings(
            vec![
                Sibling {
                    value: Some(b"v".to_vec()),
                    version: Version {
                        clock: clock.clone(),
                        ts_ms: 5,
                        dot: Some(Dot { node: NodeId::from("n3"), counter: 9 }),
                    },
                },
                Sibling {
                    value: None,
                    version: Version { clock: VClock::from_entries([(NodeId::from("n3"), 1, 1)]), ts_ms: 6, dot: None },
                },
            ],
            Resolution::Siblings,
        );
        let back = decode_set(&encode_set(&set), Resolution::Siblings).unwrap();
        assert_eq!(back, set);
        assert!(back.siblings().iter().any(|s| s.is_tombstone()));
    }

    #[test]
    fn rejects_bad_siblings() {
        let no_version = proto::Sibling { value: vec![], tombstone: false, version: None };
        assert!(matches!(sibling_from_proto(no_version), Err(WireError::MissingVersion)));
        let bad_tomb = proto::Sibling { value: vec![1], tombstone: true, version: Some(proto::Version::default()) };
        assert!(matches!(sibling_from_proto(bad_tomb), Err(WireError::TombstoneWithValue(1))));
    }

    fn with_dot(clock: &[(&str, u64)], node: &str, counter: u64) -> proto::Sibling {
        proto::Sibling {
            value: vec![1],
            tombstone: false,
            version: Some(proto::Version {
                clock: clock.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
                ts_ms: 1,
                entry_ts_ms: Default::default(),
                dot: Some(proto::version::Dot { node: node.to_string(), counter }),
            }),
        }
    }

    #[test]
    fn rejects_bad_dots() {
        assert!(matches!(sibling_from_proto(with_dot(&[], "", 3)), Err(WireError::DotWithoutNode)));
        assert!(matches!(sibling_from_proto(with_dot(&[], "n1", 0)), Err(WireError::DotInContext { counter: 0, .. })));
        assert!(matches!(
            sibling_from_proto(with_dot(&[("n1", 5)], "n1", 5)),
            Err(WireError::DotInContext { context: 5, .. })
        ));
        let ok = sibling_from_proto(with_dot(&[("n1", 5)], "n1", 6)).unwrap();
        assert_eq!(ok.version.dot.unwrap().counter, 6);
        // A stored set with a bad dot fails to decode instead of guessing.
        let bytes =
            proto::FetchResponse { siblings: vec![with_dot(&[("n2", 2)], "n2", 1)], read_at_us: 0 }.encode_to_vec();
        assert!(decode_set(&bytes, Resolution::Siblings).is_err());
        assert!(decode_set(&[0xff, 0xff, 0xff], Resolution::Siblings).is_err());
    }
}
