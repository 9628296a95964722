//! The replica's side of the protocol: merge incoming siblings into the
//! stored set for a key, and read it back.
//!
//! A `Store` must never lose a concurrent sibling, so read-merge-write of one
//! key has to be atomic: two coordinators storing concurrent versions of
//! the same key at the same time must both survive. A lock per key would be
//! unbounded; one global lock would serialize unrelated keys. We stripe: a
//! fixed array of mutexes, a key's stripe chosen by its hash. Keys sharing a
//! stripe wait for each other briefly, which is harmless.
//!
//! Later, hinted handoff, read repair and anti-entropy all write through
//! [`ReplicaStore::store`] too: there is one merge path into storage. An
//! optional [`StoreObserver`] (the anti-entropy index) hears of every
//! change under the key's lock, so the Merkle trees follow every write.
//!
//! [`local`] is the replica as the rest of the node reaches it
//! ([`local::LocalReplica`]: the store, the hints, the steady clock, and
//! the judgement of incoming Stores), and [`lateness`] decides whether a
//! Store arrived after its coordinator stopped waiting.

pub mod lateness;
pub mod local;

use std::sync::{Arc, Mutex};

use xxhash_rust::xxh3::xxh3_64;

use crate::storage::{Durability, Storage, StorageError};
use crate::versioning::vclock::{Resolution, SiblingSet};
use crate::wire::{self, WireError};

/// Told about every change to a replica's stored set. The replica defines
/// what it tells; anti-entropy's index is the one listener (so the import
/// goes from `repair/` to here, never back).
pub trait StoreObserver: Send + Sync + std::fmt::Debug {
    /// `key` now holds `merged` (called under the key's lock, so calls for
    /// one key arrive in the order of the changes).
    fn stored(&self, key: &[u8], merged: &SiblingSet);
}

/// How many lock stripes guard read-merge-write.
pub const LOCK_STRIPES: usize = 64;

/// A replica operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Stored bytes do not decode: corruption, never served as data.
    #[error("stored value is corrupt: {0}")]
    Corrupt(#[from] WireError),
    /// A stripe lock was poisoned by a panic.
    #[error("replica lock poisoned")]
    Poisoned,
}

/// Storage plus the merge rule and the per-key locking.
#[derive(Debug)]
pub struct ReplicaStore {
    /// Where the serialized sibling sets live.
    storage: Arc<dyn Storage>,
    /// How stored and incoming siblings are merged.
    mode: Resolution,
    /// Serializes read-merge-write of keys hashing to the same stripe.
    stripes: Vec<Mutex<()>>,
    /// Told of every change, under the key's lock (anti-entropy's index).
    observer: Option<Arc<dyn StoreObserver>>,
}

/// What a store did to the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOutcome {
    /// The key's sibling set after the merge.
    pub merged: SiblingSet,
    /// Whether anything changed (false: the incoming versions were known).
    pub changed: bool,
}

impl ReplicaStore {
    /// A replica over `storage`, merging under `mode`.
    pub fn new(storage: Arc<dyn Storage>, mode: Resolution) -> Self {
        let stripes = (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect();
        ReplicaStore { storage, mode, stripes, observer: None }
    }

    /// The same store, telling `observer` of every change.
    pub fn observed_by(mut self, observer: Arc<dyn StoreObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The storage engine (for status: name, key count).
    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// Merges `incoming` into the key's stored set, atomically per key;
    /// returns once the merge is durable.
    pub fn store(&self, key: &[u8], incoming: SiblingSet) -> Result<StoreOutcome, ReplicaError> {
        self.merge_with(key, incoming, |k, v| self.storage.put(k, v)).map(|(outcome, _)| outcome)
    }

    /// Merges like [`ReplicaStore::store`] but returns before the engine's
    /// fsync, with the [`Durability`] to await before acknowledging. The
    /// key's lock is not held while waiting, so writes to other keys of the
    /// stripe share the same group commit instead of queueing behind it.
    pub fn store_deferred(&self, key: &[u8], incoming: SiblingSet) -> Result<(StoreOutcome, Durability), ReplicaError> {
        let (outcome, durability) = self.merge_with(key, incoming, |k, v| self.storage.put_deferred(k, v))?;
        // Nothing changed: what is stored may still be waiting for its
        // fsync (a concurrent deferred store of the same version), and an
        // acknowledgement must not overtake it.
        let durability = match durability {
            Some(d) => d,
            None => self.storage.sync_barrier()?,
        };
        Ok((outcome, durability))
    }

    /// Read-merge-write under the key's stripe lock; `write` stores the
    /// merged bytes when anything changed (its result is `None` otherwise).
    fn merge_with<T>(
        &self,
        key: &[u8],
        incoming: SiblingSet,
        write: impl FnOnce(&[u8], Vec<u8>) -> Result<T, StorageError>,
    ) -> Result<(StoreOutcome, Option<T>), ReplicaError> {
        let _guard = self.stripe(key).lock().map_err(|_| ReplicaError::Poisoned)?;
        let mut merged = self.read(key)?;
        let changed = merged.merge_changed(incoming, self.mode);
        let mut written = None;
        if changed {
            written = Some(write(key, wire::encode_set(&merged))?);
            if let Some(observer) = &self.observer {
                observer.stored(key, &merged);
            }
        }
        Ok((StoreOutcome { merged, changed }, written))
    }

    /// The key's stored set (empty if never written).
    pub fn fetch(&self, key: &[u8]) -> Result<SiblingSet, ReplicaError> {
        self.read(key)
    }

    fn read(&self, key: &[u8]) -> Result<SiblingSet, ReplicaError> {
        match self.storage.get(key)? {
            Some(bytes) => Ok(wire::decode_set(&bytes, self.mode)?),
            None => Ok(SiblingSet::new()),
        }
    }

    fn stripe(&self, key: &[u8]) -> &Mutex<()> {
        let index = (xxh3_64(key) % LOCK_STRIPES as u64) as usize;
        &self.stripes[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_id::NodeId;
    use crate::storage::MemoryStorage;
    use crate::versioning::vclock::{Sibling, VClock, Version};

    fn one(value: &str, node: &str, counter: u64) -> SiblingSet {
        let clock = VClock::from_entries([(NodeId::from(node), counter, 0)]);
        SiblingSet::from_siblings(
            vec![Sibling {
                value: Some(value.as_bytes().to_vec()),
                version: Version { clock, ts_ms: counter, dot: None },
            }],
            Resolution::Siblings,
        )
    }

    #[test]
    fn store_merges_and_fetch_reads() {
        let replica = ReplicaStore::new(Arc::new(MemoryStorage::new()), Resolution::Siblings);
        assert!(replica.fetch(b"k").unwrap().is_empty());
        assert!(replica.store(b"k", one("a", "n1", 1)).unwrap().changed);
        assert!(replica.store(b"k", one("b", "n2", 1)).unwrap().changed);
        assert!(!replica.store(b"k", one("a", "n1", 1)).unwrap().changed, "idempotent");
        assert_eq!(replica.fetch(b"k").unwrap().len(), 2);
    }

    #[test]
    fn concurrent_stores_of_one_key_lose_nothing() {
        let replica = Arc::new(ReplicaStore::new(Arc::new(MemoryStorage::new()), Resolution::Siblings));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let replica = Arc::clone(&replica);
                std::thread::spawn(move || {
                    replica.store(b"hot", one("v", &format!("n{t}"), 1)).unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(replica.fetch(b"hot").unwrap().len(), 8);
    }

    #[test]
    fn corrupt_bytes_are_an_error() {
        let storage = Arc::new(MemoryStorage::new());
        storage.put(b"k", vec![0xff, 0xff]).unwrap();
        let replica = ReplicaStore::new(storage, Resolution::Siblings);
        assert!(matches!(replica.fetch(b"k"), Err(ReplicaError::Corrupt(_))));
    }
}
