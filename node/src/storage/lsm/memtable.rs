//! The memtable: the newest writes, sorted, in memory.
//!
//! Every write lands here after its WAL record is appended. A `BTreeMap` is
//! the sorted structure: ordered iteration is what a flush (which writes an
//! SSTable in key order) and a scan need, and lookups are `O(log n)`.
//! Deletes are recorded as tombstones rather than removals because older
//! SSTables may still hold the key: the tombstone must shadow them until a
//! compaction that reaches the oldest data drops both.
//!
//! The table tracks an approximate byte size (keys + values + a fixed
//! per-entry overhead); the engine freezes it when that passes
//! `memtable_bytes`, hands it to the background flusher as an immutable
//! [`Frozen`] table, and starts a fresh one. The number of frozen tables
//! waiting for a flush is bounded by the engine, which back-pressures
//! writers when the flusher falls behind.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// What a key maps to inside the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// A live value.
    Value(Vec<u8>),
    /// A deletion, kept to shadow older tables until compaction drops it.
    Tombstone {
        /// Wall-clock time of the delete, for the tombstone grace period.
        deleted_at_ms: u64,
    },
}

impl Slot {
    /// The value, or `None` for a tombstone.
    pub fn value(&self) -> Option<&Vec<u8>> {
        match self {
            Slot::Value(v) => Some(v),
            Slot::Tombstone { .. } => None,
        }
    }

    /// Approximate heap bytes of the slot's payload.
    fn payload_bytes(&self) -> usize {
        match self {
            Slot::Value(v) => v.len(),
            Slot::Tombstone { .. } => 8,
        }
    }
}

/// Bookkeeping bytes charged per entry on top of key and value.
const ENTRY_OVERHEAD_BYTES: usize = 48;

/// A sorted in-memory table of the newest writes.
#[derive(Debug, Default, Clone)]
pub struct Memtable {
    /// The entries, in key order.
    map: BTreeMap<Vec<u8>, Slot>,
    /// Approximate memory held, to decide when to freeze.
    approx_bytes: usize,
}

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Self {
        Memtable::default()
    }

    /// Records `slot` under `key`, replacing what was there.
    pub fn insert(&mut self, key: &[u8], slot: Slot) {
        let added = slot.payload_bytes();
        match self.map.get_mut(key) {
            Some(old) => {
                self.approx_bytes = self.approx_bytes - old.payload_bytes() + added;
                *old = slot;
            }
            None => {
                self.approx_bytes += key.len() + added + ENTRY_OVERHEAD_BYTES;
                self.map.insert(key.to_vec(), slot);
            }
        }
    }

    /// The slot of `key`, if the memtable has one.
    pub fn get(&self, key: &[u8]) -> Option<&Slot> {
        self.map.get(key)
    }

    /// Entries with keys `>= from`, in order.
    pub fn range_from<'a>(&'a self, from: &[u8]) -> impl Iterator<Item = (&'a Vec<u8>, &'a Slot)> {
        self.map.range::<[u8], _>((Bound::Included(from), Bound::Unbounded))
    }

    /// The first entry with a key strictly greater than `after` (or `>=
    /// from` when `after` is `None`).
    pub fn next_after(&self, from: &[u8], after: Option<&[u8]>) -> Option<(&Vec<u8>, &Slot)> {
        let lower = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Included(from),
        };
        self.map.range::<[u8], _>((lower, Bound::Unbounded)).next()
    }

    /// All entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Slot)> {
        self.map.iter()
    }

    /// Number of entries (tombstones included).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the memtable holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Approximate bytes held.
    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes
    }
}

/// A memtable that no longer takes writes, waiting to be flushed.
#[derive(Debug)]
pub struct Frozen {
    /// The entries.
    pub table: Memtable,
    /// The newest WAL segment holding its records: once it is flushed,
    /// segments up to this one are no longer needed.
    pub last_wal_seq: u64,
}

/// An owning cursor over a frozen memtable, so scans need no lock.
#[derive(Debug)]
pub struct FrozenCursor {
    /// The table being walked.
    frozen: Arc<Frozen>,
    /// Where the walk starts.
    from: Vec<u8>,
    /// The last key returned, to resume after it.
    last: Option<Vec<u8>>,
}

impl FrozenCursor {
    /// A cursor at the first key `>= from`.
    pub fn new(frozen: Arc<Frozen>, from: &[u8]) -> Self {
        FrozenCursor { frozen, from: from.to_vec(), last: None }
    }
}

impl Iterator for FrozenCursor {
    type Item = (Vec<u8>, Slot);

    fn next(&mut self) -> Option<Self::Item> {
        let (k, s) = self.frozen.table.next_after(&self.from, self.last.as_deref())?;
        let item = (k.clone(), s.clone());
        self.last = Some(item.0.clone());
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_tracks_replacements_and_order_is_sorted() {
        let mut m = Memtable::new();
        m.insert(b"b", Slot::Value(vec![0; 10]));
        let one = m.approx_bytes();
        m.insert(b"b", Slot::Value(vec![0; 20]));
        assert_eq!(m.approx_bytes(), one + 10);
        m.insert(b"a", Slot::Tombstone { deleted_at_ms: 5 });
        let keys: Vec<_> = m.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
        let frozen = Arc::new(Frozen { table: m, last_wal_seq: 1 });
        let walked: Vec<_> = FrozenCursor::new(frozen, b"a").map(|(k, _)| k).collect();
        assert_eq!(walked.len(), 2);
    }
}
