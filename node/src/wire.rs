//! Conversions between the node's domain types and the `proto` messages.
//!
//! The wire format is the contract in `proto/dynamo.proto`; inside the node
//! we work with [`VClock`], [`Version`], [`Sibling`] and [`SiblingSet`],
//! which enforce their invariants (no zero clock entries, antichains). Every
//! crossing of that boundary goes through this file, so a malformed message
//! is rejected in exactly one place. The serialized form of a stored sibling
//! set is a prost-encoded `proto::FetchResponse`: the same message a replica
//! returns, so storage needs no second format.

use prost::Message;

use crate::node_id::NodeId;
use crate::vclock::{Resolution, Sibling, SiblingSet, VClock, Version};

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
    /// The bytes are not a prost-encoded message.
    #[error("cannot decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// The clock as the wire carries it (two maps keyed by node id).
pub fn clock_to_proto(clock: &VClock) -> proto::Version {
    proto::Version {
        clock: clock
            .counters()
            .iter()
            .map(|(n, c)| (n.to_string(), *c))
            .collect(),
        ts_ms: 0,
        entry_ts_ms: clock
            .counters()
            .keys()
            .map(|n| (n.to_string(), clock.entry_ts_ms(n)))
            .collect(),
    }
}

/// The clock of a wire version (its `ts_ms` is ignored); zero entries drop.
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
        ..clock_to_proto(&version.clock)
    }
}

/// A version from the wire.
pub fn version_from_proto(version: &proto::Version) -> Version {
    Version {
        clock: clock_from_proto(version),
        ts_ms: version.ts_ms,
    }
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
    Ok(Sibling {
        value,
        version: version_from_proto(version),
    })
}

/// A sibling set on the wire.
pub fn set_to_proto(set: &SiblingSet) -> Vec<proto::Sibling> {
    set.siblings().iter().map(sibling_to_proto).collect()
}

/// A sibling set from the wire, resolved under `mode`.
pub fn set_from_proto(
    siblings: Vec<proto::Sibling>,
    mode: Resolution,
) -> Result<SiblingSet, WireError> {
    let siblings = siblings
        .into_iter()
        .map(sibling_from_proto)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SiblingSet::from_siblings(siblings, mode))
}

/// The stored form of a sibling set: an encoded `proto::FetchResponse`.
pub fn encode_set(set: &SiblingSet) -> Vec<u8> {
    proto::FetchResponse {
        siblings: set_to_proto(set),
    }
    .encode_to_vec()
}

/// Reads back what [`encode_set`] wrote.
pub fn decode_set(bytes: &[u8], mode: Resolution) -> Result<SiblingSet, WireError> {
    let message = proto::FetchResponse::decode(bytes)?;
    set_from_proto(message.siblings, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_set_round_trips_through_bytes() {
        let clock =
            VClock::from_entries([(NodeId::from("n1"), 3, 11), (NodeId::from("n2"), 1, 12)]);
        let set = SiblingSet::from_siblings(
            vec![
                Sibling {
                    value: Some(b"v".to_vec()),
                    version: Version {
                        clock: clock.clone(),
                        ts_ms: 5,
                    },
                },
                Sibling {
                    value: None,
                    version: Version {
                        clock: VClock::from_entries([(NodeId::from("n3"), 1, 1)]),
                        ts_ms: 6,
                    },
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
        let no_version = proto::Sibling {
            value: vec![],
            tombstone: false,
            version: None,
        };
        assert!(matches!(
            sibling_from_proto(no_version),
            Err(WireError::MissingVersion)
        ));
        let bad_tomb = proto::Sibling {
            value: vec![1],
            tombstone: true,
            version: Some(proto::Version::default()),
        };
        assert!(matches!(
            sibling_from_proto(bad_tomb),
            Err(WireError::TombstoneWithValue(1))
        ));
    }
}
