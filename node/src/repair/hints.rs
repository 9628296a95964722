//! Hints: writes a stand-in holds for a home replica that was down.
//!
//! Under a sloppy quorum a write meant for a down home replica goes to the
//! next healthy node on the ring, which keeps it as a *hint* naming the home
//! node; with a strict quorum the coordinator keeps a hint for a home
//! replica whose store failed. Hints must survive the stand-in's own
//! restart, so they live in a second [`Storage`] instance (under
//! `<data-dir>/hints`, built like the main one: durable with a disk engine,
//! lost with the memory engine), one entry per (home node, key): the sibling
//! set merged under the same rule as the replica, prefixed by the time the
//! hint was first stored.
//!
//! An in-memory index (storage key -> first-stored time), rebuilt by a scan
//! at startup, answers the counters (`hints_pending`,
//! `hints_oldest_pending_age_ms`) and the per-home batches for handoff
//! without touching the engine. Delivery is compare-and-delete: a hint is
//! removed after the home node acknowledged it only if nothing was merged
//! into it meanwhile, so a write arriving during delivery is never lost.
//! Read-merge-write and compare-and-delete of one hint are atomic under a
//! striped lock (as in `replica.rs`), not one global lock, so deletes of a
//! delivered batch can run on several threads and share the disk engine's
//! group-commit fsyncs ([`HintStore::delivered_parallel`]).
//! Hints older than the window (`--hint-window-ms`, Cassandra's 3 h
//! `max_hint_window`) are dropped and counted; anti-entropy repairs those.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::metrics::Counter;
use crate::node_id::NodeId;
use crate::storage::{Storage, StorageError};
use crate::versioning::vclock::{Resolution, SiblingSet};
use crate::wire::{self, WireError};

/// Most entries scanned per page when rebuilding the index.
const SCAN_PAGE: usize = 1_024;

/// Most pages scanned when rebuilding the index (a billion hints).
const MAX_SCAN_PAGES: usize = 1 << 20;

/// Lock stripes guarding per-hint read-modify-write.
const LOCK_STRIPES: usize = 64;

/// A hint store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum HintError {
    /// The engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored hint does not decode.
    #[error("stored hint is corrupt: {0}")]
    Corrupt(String),
    /// The lock was poisoned by a panic.
    #[error("hint store lock poisoned")]
    Poisoned,
}

impl From<WireError> for HintError {
    fn from(error: WireError) -> Self {
        HintError::Corrupt(error.to_string())
    }
}

/// One hint, as read for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The home replica the write is for.
    pub home: NodeId,
    /// The key.
    pub key: Vec<u8>,
    /// The siblings to deliver.
    pub siblings: SiblingSet,
    /// When the hint was first stored (ms, wall clock).
    pub stored_ms: u64,
    /// The exact stored bytes, for compare-and-delete.
    raw: Vec<u8>,
}

/// The hint counters, by their names in `Admin.Status`.
#[derive(Debug, Default)]
pub struct HintCounters {
    /// Hints written (each store of a hinted write, merged or new).
    pub stored: Counter,
    /// Hints acknowledged by their home node and deleted.
    pub delivered: Counter,
    /// Hints dropped for being older than the window.
    pub dropped: Counter,
}

/// Persistent hints plus the index over them.
#[derive(Debug)]
pub struct HintStore {
    /// Where hints live.
    storage: Arc<dyn Storage>,
    /// How siblings of one (home, key) merge.
    mode: Resolution,
    /// Hints older than this are dropped.
    window_ms: u64,
    /// Storage key -> first-stored time (held only for map updates).
    index: Mutex<BTreeMap<Vec<u8>, u64>>,
    /// Serializes read-modify-write and compare-and-delete per key stripe.
    stripes: Vec<Mutex<()>>,
    /// Stored, delivered, dropped.
    counters: HintCounters,
}

/// The storage key of a hint: u16 length of the home id, the id, the key.
fn storage_key(home: &NodeId, key: &[u8]) -> Vec<u8> {
    let id = home.as_str().as_bytes();
    let len = u16::try_from(id.len()).expect("node ids are short");
    let mut out = Vec::with_capacity(2 + id.len() + key.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(key);
    out
}

/// Splits a storage key back into (home, key).
fn split_key(stored: &[u8]) -> Option<(NodeId, Vec<u8>)> {
    let len = usize::from(u16::from_be_bytes(stored.get(..2)?.try_into().ok()?));
    let id = std::str::from_utf8(stored.get(2..2 + len)?).ok()?;
    (!id.is_empty()).then(|| (NodeId::from(id), stored[2 + len..].to_vec()))
}

/// The stored value: first-stored time (u64 big-endian), then the set.
fn encode_value(stored_ms: u64, set: &SiblingSet) -> Vec<u8> {
    let mut out = stored_ms.to_be_bytes().to_vec();
    out.extend_from_slice(&wire::encode_set(set));
    out
}

fn decode_value(bytes: &[u8], mode: Resolution) -> Result<(u64, SiblingSet), HintError> {
    let head: [u8; 8] = bytes
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| HintError::Corrupt("shorter than its timestamp".into()))?;
    Ok((u64::from_be_bytes(head), wire::decode_set(&bytes[8..], mode)?))
}

impl HintStore {
    /// Opens the hints in `storage`, rebuilding the index by a full scan.
    pub fn open(storage: Arc<dyn Storage>, mode: Resolution, window_ms: u64) -> Result<HintStore, HintError> {
        assert!(window_ms >= 1, "a hint window of 0 would drop every hint");
        let mut index = BTreeMap::new();
        let mut from = Vec::new();
        for _ in 0..MAX_SCAN_PAGES {
            let page = storage.scan(&from, SCAN_PAGE)?;
            for (key, value) in &page {
                let (stored_ms, _) = decode_value(value, mode)?;
                index.insert(key.clone(), stored_ms);
            }
            match page.last() {
                Some((last, _)) if page.len() == SCAN_PAGE => from = successor(last),
                _ => break,
            }
        }
        Ok(HintStore {
            storage,
            mode,
            window_ms,
            index: Mutex::new(index),
            stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            counters: HintCounters::default(),
        })
    }

    /// The counters.
    pub fn counters(&self) -> &HintCounters {
        &self.counters
    }

    /// Keeps `set` for `home`, merged into any hint already held for the key.
    pub fn store(&self, home: &NodeId, key: &[u8], set: SiblingSet, now_ms: u64) -> Result<(), HintError> {
        let skey = storage_key(home, key);
        let _guard = self.stripe(&skey).lock().map_err(|_| HintError::Poisoned)?;
        let (stored_ms, mut merged) = match self.storage.get(&skey)? {
            Some(bytes) => decode_value(&bytes, self.mode)?,
            None => (now_ms, SiblingSet::new()),
        };
        merged.merge(set, self.mode);
        self.storage.put(&skey, encode_value(stored_ms, &merged))?;
        self.index.lock().map_err(|_| HintError::Poisoned)?.insert(skey, stored_ms);
        self.counters.stored.inc();
        Ok(())
    }

    fn stripe(&self, skey: &[u8]) -> &Mutex<()> {
        let hash = xxhash_rust::xxh3::xxh3_64(skey);
        &self.stripes[(hash % LOCK_STRIPES as u64) as usize]
    }

    /// The siblings held for (home, key); empty if none (a sloppy read).
    pub fn get(&self, home: &NodeId, key: &[u8]) -> Result<SiblingSet, HintError> {
        match self.storage.get(&storage_key(home, key))? {
            Some(bytes) => Ok(decode_value(&bytes, self.mode)?.1),
            None => Ok(SiblingSet::new()),
        }
    }

    /// Home nodes with at least one pending hint.
    pub fn homes(&self) -> Result<BTreeSet<NodeId>, HintError> {
        let index = self.index.lock().map_err(|_| HintError::Poisoned)?;
        Ok(index.keys().filter_map(|k| split_key(k).map(|(home, _)| home)).collect())
    }

    /// Hints pending.
    pub fn pending(&self) -> u64 {
        self.index.lock().map_or(0, |i| i.len() as u64)
    }

    /// Age of the oldest pending hint (0 when none).
    pub fn oldest_age_ms(&self, now_ms: u64) -> u64 {
        self.index.lock().ok().and_then(|i| i.values().min().copied()).map_or(0, |oldest| now_ms.saturating_sub(oldest))
    }

    /// Drops every hint older than the window; returns how many.
    pub fn expire(&self, now_ms: u64) -> Result<u64, HintError> {
        let old: Vec<Vec<u8>> = {
            let index = self.index.lock().map_err(|_| HintError::Poisoned)?;
            index
                .iter()
                .filter(|(_, stored)| now_ms.saturating_sub(**stored) > self.window_ms)
                .map(|(k, _)| k.clone())
                .collect()
        };
        for key in &old {
            // The first-stored time never changes while a hint exists, so an
            // old hint is still old under its stripe lock.
            let _guard = self.stripe(key).lock().map_err(|_| HintError::Poisoned)?;
            self.storage.delete(key)?;
            self.index.lock().map_err(|_| HintError::Poisoned)?.remove(key);
        }
        self.counters.dropped.add(old.len() as u64);
        Ok(old.len() as u64)
    }

    /// Up to `limit` hints for `home`, in key order (after expiring old ones).
    pub fn batch(&self, home: &NodeId, limit: usize, now_ms: u64) -> Result<Vec<Hint>, HintError> {
        self.batch_after(home, None, limit, now_ms)
    }

    /// [`HintStore::batch`] starting after key `after` (exclusive).
    pub fn batch_after(
        &self,
        home: &NodeId,
        after: Option<&[u8]>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<Hint>, HintError> {
        self.expire(now_ms)?;
        let prefix = storage_key(home, b"");
        let start = after.map_or_else(|| prefix.clone(), |key| successor(&storage_key(home, key)));
        let keys: Vec<Vec<u8>> = {
            let index = self.index.lock().map_err(|_| HintError::Poisoned)?;
            index
                .range(start..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .take(limit)
                .map(|(k, _)| k.clone())
                .collect()
        };
        let mut hints = Vec::with_capacity(keys.len());
        for skey in keys {
            let Some(raw) = self.storage.get(&skey)? else { continue };
            let (stored_ms, siblings) = decode_value(&raw, self.mode)?;
            let key = skey[prefix.len()..].to_vec();
            hints.push(Hint { home: home.clone(), key, siblings, stored_ms, raw });
        }
        Ok(hints)
    }

    /// The home node acknowledged `hints`: delete each one that nothing was
    /// merged into since it was read. Returns how many were deleted.
    pub fn delivered(&self, hints: &[Hint]) -> Result<u64, HintError> {
        let mut deleted = 0;
        for hint in hints {
            let skey = storage_key(&hint.home, &hint.key);
            let _guard = self.stripe(&skey).lock().map_err(|_| HintError::Poisoned)?;
            if self.storage.get(&skey)?.as_deref() == Some(hint.raw.as_slice()) {
                self.storage.delete(&skey)?;
                self.index.lock().map_err(|_| HintError::Poisoned)?.remove(&skey);
                deleted += 1;
            }
        }
        self.counters.delivered.add(deleted);
        Ok(deleted)
    }

    /// [`HintStore::delivered`] on up to `threads` threads (blocking), so
    /// a disk engine's group commit shares fsyncs between the deletes.
    pub fn delivered_parallel(&self, hints: &[Hint], threads: usize) -> Result<u64, HintError> {
        let chunk = hints.len().div_ceil(threads.max(1)).max(1);
        std::thread::scope(|scope| {
            let parts: Vec<_> = hints.chunks(chunk).map(|part| scope.spawn(move || self.delivered(part))).collect();
            parts.into_iter().map(|p| p.join().unwrap_or(Err(HintError::Poisoned))).sum()
        })
    }

    /// Every hint counter by its `Admin.Status` name.
    pub fn snapshot(&self, now_ms: u64) -> BTreeMap<String, u64> {
        BTreeMap::from([
            ("hints_stored".to_string(), self.counters.stored.get()),
            ("hints_delivered".to_string(), self.counters.delivered.get()),
            ("hints_dropped".to_string(), self.counters.dropped.get()),
            ("hints_pending".to_string(), self.pending()),
            ("hints_oldest_pending_age_ms".to_string(), self.oldest_age_ms(now_ms)),
        ])
    }
}

/// The smallest key greater than `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;
    use crate::versioning::vclock::{Sibling, VClock, Version};

    fn set(value: &str, counter: u64) -> SiblingSet {
        let clock = VClock::from_entries([(NodeId::from("c"), counter, 0)]);
        SiblingSet::from_siblings(
            vec![Sibling {
                value: Some(value.as_bytes().to_vec()),
                version: Version { clock, ts_ms: counter, dot: None },
            }],
            Resolution::Siblings,
        )
    }

    fn store(window_ms: u64) -> (Arc<MemoryStorage>, HintStore) {
        let storage = Arc::new(MemoryStorage::new());
        let hints = HintStore::open(storage.clone(), Resolution::Siblings, window_ms).unwrap();
        (storage, hints)
    }

    #[test]
    fn keys_round_trip() {
        let home = NodeId::from("n12");
        assert_eq!(split_key(&storage_key(&home, b"k\0x")), Some((home, b"k\0x".to_vec())));
    }

    #[test]
    fn hints_merge_survive_reopen_and_deliver() {
        let (storage, hints) = store(10_000);
        let n2 = NodeId::from("n2");
        hints.store(&n2, b"a", set("1", 1), 100).unwrap();
        hints.store(&n2, b"a", set("2", 2), 150).unwrap();
        hints.store(&NodeId::from("n3"), b"b", set("x", 1), 200).unwrap();
        assert_eq!(hints.get(&n2, b"a").unwrap(), set("2", 2), "newer version replaced older");
        assert_eq!(hints.pending(), 2);
        assert_eq!(hints.oldest_age_ms(300), 200, "first-stored time kept across merges");
        let reopened = HintStore::open(storage, Resolution::Siblings, 10_000).unwrap();
        assert_eq!(reopened.pending(), 2, "hints survive a restart");
        assert_eq!(reopened.homes().unwrap().len(), 2);
        let batch = reopened.batch(&n2, 10, 300).unwrap();
        assert_eq!(batch.len(), 1);
        assert!(reopened.batch_after(&n2, Some(b"a"), 10, 300).unwrap().is_empty(), "nothing after the last key");
        assert_eq!(batch[0].key, b"a");
        assert_eq!(reopened.delivered(&batch).unwrap(), 1);
        assert_eq!(reopened.pending(), 1);
        assert_eq!(reopened.snapshot(300)["hints_delivered"], 1);
    }

    #[test]
    fn parallel_delivery_deletes_every_acknowledged_hint() {
        let (_, hints) = store(10_000);
        let n2 = NodeId::from("n2");
        for i in 0..100u64 {
            hints.store(&n2, format!("k{i}").as_bytes(), set("v", i + 1), 0).unwrap();
        }
        let batch = hints.batch(&n2, 1_000, 1).unwrap();
        assert_eq!(hints.delivered_parallel(&batch, 8).unwrap(), 100);
        assert_eq!(hints.pending(), 0);
        assert_eq!(hints.counters().delivered.get(), 100);
    }

    #[test]
    fn a_write_merged_during_delivery_is_kept() {
        let (_, hints) = store(10_000);
        let n2 = NodeId::from("n2");
        hints.store(&n2, b"a", set("1", 1), 0).unwrap();
        let batch = hints.batch(&n2, 10, 1).unwrap();
        hints.store(&n2, b"a", set("2", 2), 2).unwrap();
        assert_eq!(hints.delivered(&batch).unwrap(), 0);
        assert_eq!(hints.pending(), 1);
        assert_eq!(hints.get(&n2, b"a").unwrap(), set("2", 2));
    }

    #[test]
    fn hints_past_the_window_are_dropped_and_counted() {
        let (_, hints) = store(1_000);
        let n2 = NodeId::from("n2");
        hints.store(&n2, b"old", set("1", 1), 0).unwrap();
        hints.store(&n2, b"new", set("1", 1), 900).unwrap();
        assert_eq!(hints.expire(1_000).unwrap(), 0, "exactly the window is still kept");
        let batch = hints.batch(&n2, 10, 1_500).unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].key, b"new");
        let snap = hints.snapshot(1_500);
        assert_eq!((snap["hints_dropped"], snap["hints_pending"], snap["hints_stored"]), (1, 1, 2));
        assert_eq!(snap["hints_oldest_pending_age_ms"], 600);
    }
}
