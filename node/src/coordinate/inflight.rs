//! A coordinator's own versions of a key that are still on their way to
//! the replicas, shipped again with every newer version it mints for the
//! key.
//!
//! Why: dots come from a node-wide counter, and a client's context is the
//! join of the clocks it read, so a context `{n2: 359}` claims every n2 dot
//! up to 359. Suppose n2 coordinates two adds to one key: dot 358, then dot
//! 359 while 358 is still in flight. A replica can receive 359 before 358
//! (separate round trips), a client that reads it there gets `{n2: 359}`,
//! and its next write obsoletes 358, which it never saw, just before 358
//! lands and is acknowledged: an acknowledged add lost. The workbench found
//! this (2 of 1,787 adds, strict quorums, no faults). Riak avoids it by
//! minting at a replica and replicating the replica's whole sibling set.
//! Here any node coordinates, so instead the coordinator remembers which of
//! its versions of each key are in flight and sends them along with every
//! newer one: whoever holds dot 359 then holds 358 too (or a version that
//! legitimately obsoletes it), and a context can only claim what its reader
//! could have seen. A version stays remembered until every replica of its
//! write answered (or the write's requests ended), which is exactly the
//! window in which it may be missing where a newer one is present.
//!
//! Bounded: entries live only while their writes are in flight, and at
//! most [`MAX_PER_KEY`] versions of one key ride along (the newest; an older
//! one beyond that still replicates on its own).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::versioning::vclock::{Resolution, Sibling, SiblingSet, Version};

/// Most earlier in-flight versions of one key shipped with a new one.
pub const MAX_PER_KEY: usize = 64;

/// The coordinator's in-flight versions, by key.
#[derive(Debug, Default)]
pub struct InFlight {
    /// Key -> this node's versions of it still replicating, oldest first.
    by_key: Mutex<BTreeMap<Vec<u8>, Vec<Sibling>>>,
}

/// Forgets its version when dropped (the write's requests all ended).
#[derive(Debug)]
pub struct Flight {
    /// Where the version is registered.
    table: Arc<InFlight>,
    /// The key written.
    key: Vec<u8>,
    /// The version to forget.
    version: Version,
}

impl InFlight {
    /// Registers `sibling` as in flight for `key` and returns the set to
    /// replicate: it merged with this node's earlier in-flight versions of
    /// the key (those it obsoletes drop out in the merge).
    pub fn begin(self: &Arc<Self>, key: &[u8], sibling: Sibling, mode: Resolution) -> (SiblingSet, Flight) {
        let flight = Flight { table: Arc::clone(self), key: key.to_vec(), version: sibling.version.clone() };
        let mut set = SiblingSet::from_siblings(vec![sibling.clone()], mode);
        let Ok(mut by_key) = self.by_key.lock() else { return (set, flight) };
        let earlier = by_key.entry(key.to_vec()).or_default();
        for older in earlier.iter().rev().take(MAX_PER_KEY) {
            set.merge(SiblingSet::from_siblings(vec![older.clone()], mode), mode);
        }
        earlier.push(sibling);
        (set, flight)
    }

    /// Versions of `key` in flight (for tests and status).
    pub fn count(&self, key: &[u8]) -> usize {
        self.by_key.lock().map(|m| m.get(key).map_or(0, Vec::len)).unwrap_or(0)
    }

    fn end(&self, key: &[u8], version: &Version) {
        let Ok(mut by_key) = self.by_key.lock() else { return };
        if let Some(versions) = by_key.get_mut(key) {
            versions.retain(|s| &s.version != version);
            if versions.is_empty() {
                by_key.remove(key);
            }
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.table.end(&self.key, &self.version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_id::NodeId;
    use crate::versioning::vclock::{Dot, VClock};

    fn add(counter: u64, context: VClock) -> Sibling {
        let version = Version { clock: context, ts_ms: counter, dot: Some(Dot { node: NodeId::from("n2"), counter }) };
        Sibling { value: Some(counter.to_be_bytes().to_vec()), version }
    }

    #[test]
    fn a_newer_version_carries_the_earlier_ones_still_in_flight() {
        let table = Arc::new(InFlight::default());
        let (first, flight_358) = table.begin(b"k", add(358, VClock::new()), Resolution::Siblings);
        assert_eq!(first.len(), 1);
        let (second, flight_359) = table.begin(b"k", add(359, VClock::new()), Resolution::Siblings);
        assert_eq!(second.len(), 2, "358 rides along with 359: a holder of 359 also holds 358");
        drop(flight_358);
        let (third, _flight_360) = table.begin(b"k", add(360, VClock::new()), Resolution::Siblings);
        assert_eq!(third.len(), 2, "358 landed everywhere and is no longer shipped; 359 still is");
        drop(flight_359);
        assert_eq!(table.count(b"k"), 1);
        assert_eq!(table.count(b"other"), 0);
    }

    #[test]
    fn versions_the_new_one_obsoletes_are_not_shipped() {
        let table = Arc::new(InFlight::default());
        let (_, _f1) = table.begin(b"k", add(10, VClock::new()), Resolution::Siblings);
        let seen = VClock::from_entries([(NodeId::from("n2"), 10, 0)]);
        let (set, _f2) = table.begin(b"k", add(11, seen), Resolution::Siblings);
        assert_eq!(set.len(), 1, "the writer saw 10: only 11 is shipped");
    }
}
