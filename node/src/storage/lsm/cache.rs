//! A bounded cache of decompressed SSTable blocks, shared by an engine's
//! tables.
//!
//! A point read that passes a table's Bloom filter needs one data block;
//! without a cache it pays a `pread`, a checksum and a decompression every
//! time, even for hot keys. The cache keeps recently read blocks,
//! decompressed and already verified (a block enters the cache only after
//! its checksum passed, and cached bytes never go back to disk, so the
//! "every block read from disk is verified" rule still holds).
//!
//! Eviction is FIFO per shard: simpler than LRU, with no bookkeeping on the
//! hit path (a hit takes one shard lock and clones an `Arc`), and for
//! uniformly random reads it is as good. Shards (by key hash) keep
//! concurrent readers from contending on one lock. The byte bound is per
//! shard (`capacity_bytes / SHARDS`), so the total never exceeds the
//! configured capacity by more than one block per shard.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

/// Number of independently locked shards.
const SHARDS: usize = 16;

/// (table file id, block index).
type BlockKey = (u64, u32);

/// A multiply-rotate hasher for block keys: two integers need no SipHash
/// (which showed up in read profiles), and the keys are not attacker-chosen.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

/// One shard: blocks by key and their insertion order.
#[derive(Debug, Default)]
struct Shard {
    /// The cached blocks.
    map: HashMap<BlockKey, Arc<Vec<u8>>, BuildHasherDefault<KeyHasher>>,
    /// Keys in insertion order, for FIFO eviction.
    order: VecDeque<BlockKey>,
    /// Bytes held by `map`.
    bytes: usize,
}

/// Decompressed blocks of many tables, bounded in bytes.
#[derive(Debug)]
pub struct BlockCache {
    /// The shards.
    shards: Vec<Mutex<Shard>>,
    /// Byte bound of each shard.
    shard_capacity_bytes: usize,
}

impl BlockCache {
    /// A cache holding about `capacity_bytes` of blocks.
    pub fn new(capacity_bytes: usize) -> Self {
        BlockCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity_bytes: capacity_bytes / SHARDS,
        }
    }

    fn shard(&self, key: BlockKey) -> &Mutex<Shard> {
        let h = key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(key.1).wrapping_mul(0xff51_afd7_ed55_8ccd);
        &self.shards[(h >> 32) as usize % SHARDS]
    }

    /// The cached block, if present.
    pub fn get(&self, table_id: u64, block: u32) -> Option<Arc<Vec<u8>>> {
        let shard = self.shard((table_id, block)).lock().ok()?;
        shard.map.get(&(table_id, block)).cloned()
    }

    /// Caches a verified, decompressed block, evicting the oldest entries.
    pub fn insert(&self, table_id: u64, block: u32, plain: Arc<Vec<u8>>) {
        if plain.len() > self.shard_capacity_bytes {
            return;
        }
        let key = (table_id, block);
        let Ok(mut shard) = self.shard(key).lock() else {
            return;
        };
        if shard.map.contains_key(&key) {
            return;
        }
        shard.bytes += plain.len();
        shard.map.insert(key, plain);
        shard.order.push_back(key);
        while shard.bytes > self.shard_capacity_bytes {
            let Some(old) = shard.order.pop_front() else {
                break;
            };
            if let Some(b) = shard.map.remove(&old) {
                shard.bytes -= b.len();
            }
        }
        debug_assert_eq!(shard.map.len(), shard.order.len());
    }

    /// Bytes currently cached.
    pub fn bytes(&self) -> usize {
        self.shards.iter().filter_map(|s| s.lock().ok().map(|s| s.bytes)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_fifo() {
        let c = BlockCache::new(SHARDS * 100);
        for i in 0..1000u32 {
            c.insert(1, i, Arc::new(vec![0; 40]));
        }
        assert!(c.bytes() <= SHARDS * 100);
        assert!(c.get(1, 999).is_some(), "the newest block stays");
        assert!(c.get(1, 0).is_none(), "the oldest went");
        c.insert(2, 0, Arc::new(vec![0; 10_000]));
        assert!(c.get(2, 0).is_none(), "a block larger than a shard is not cached");
    }
}
