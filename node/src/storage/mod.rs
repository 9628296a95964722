//! The storage engine seam: where a replica keeps its bytes.
//!
//! The node stores one value per key: the serialized sibling set (see
//! `wire::encode_set`). Engines know nothing of versions or merging; the
//! replica layer (`replica.rs`) does read-merge-write under a per-key lock,
//! so an engine only needs to be a thread-safe ordered map of byte strings.
//! Keeping the trait this small is deliberate: the in-memory engine here
//! and the LSM engine (`lsm/`: commit log, memtable, SSTables) both
//! implement it (and, for the simulator, `power_loss.rs`: memory whose
//! unsynced writes a simulated crash drops), and later features (Merkle
//! trees, streaming ranges to new owners) need only ordered scans on top of
//! point reads and writes.
//!
//! Methods are synchronous and short, except a `put` that waits for an
//! fsync: [`Storage::put_deferred`] returns before it with a
//! [`Durability`] to await (see `durability.rs`), and
//! [`Storage::put_may_block`] tells async callers when a put syncs inline
//! and belongs on a blocking thread.

pub mod durability;
pub mod lsm;
pub mod memory;
pub mod power_loss;

pub use durability::{Durability, DurableMark};

pub use lsm::LsmStorage;
pub use memory::MemoryStorage;
pub use power_loss::{PowerLoss, PowerLossStorage};

/// A failure of the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The engine's lock was poisoned by a panic in another thread.
    #[error("storage lock poisoned")]
    Poisoned,
    /// An I/O error of a disk-backed engine.
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A failure of the LSM engine (I/O, corruption, limits), with context.
    #[error("LSM storage: {0}")]
    Lsm(#[from] lsm::LsmError),
}

/// One stored entry: (key, value).
pub type Entry = (Vec<u8>, Vec<u8>);

/// A thread-safe ordered map from key bytes to value bytes.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The engine's name, reported by `Admin.Status` (e.g. `"memory"`).
    fn name(&self) -> &'static str;

    /// The value stored under `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Stores `value` under `key`, replacing any previous value.
    fn put(&self, key: &[u8], value: Vec<u8>) -> Result<(), StorageError>;

    /// Stores like [`Storage::put`] but returns as soon as the write is
    /// applied (readable), with when it will be durable; the caller awaits
    /// that before acknowledging. By default the put is already durable.
    fn put_deferred(&self, key: &[u8], value: Vec<u8>) -> Result<Durability, StorageError> {
        self.put(key, value).map(|()| Durability::Now)
    }

    /// When everything applied so far will be durable (for an
    /// acknowledgement that wrote nothing new but must not overtake earlier
    /// deferred writes).
    fn sync_barrier(&self) -> Result<Durability, StorageError> {
        Ok(Durability::Now)
    }

    /// True when `put_deferred` itself may wait on the disk (an fsync per
    /// write): async callers then run it on a blocking thread.
    fn put_may_block(&self) -> bool {
        false
    }

    /// True when every call is a short in-memory operation that never
    /// waits on a disk: the node then does storage work inline on its
    /// async tasks instead of on blocking threads (no thread a simulator
    /// cannot see). Engines that touch a disk keep the default, false.
    fn is_in_memory(&self) -> bool {
        false
    }

    /// Removes `key` (no error if absent). Only for purging: deletes by
    /// clients are tombstone siblings written with `put`.
    fn delete(&self, key: &[u8]) -> Result<(), StorageError>;

    /// Up to `limit` entries with keys `>= from`, in key order.
    fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StorageError>;

    /// Number of keys stored.
    fn len(&self) -> Result<u64, StorageError>;

    /// True when no key is stored.
    fn is_empty(&self) -> Result<bool, StorageError> {
        Ok(self.len()? == 0)
    }

    /// Engine counters for `Admin.Status` (names prefixed by the engine,
    /// e.g. `lsm_flushes`); none by default.
    fn stats(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}
