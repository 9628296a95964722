//! A simulated node's storage as the node sees it: the power-loss disk,
//! declared in-memory so the node never hands its work to a blocking thread.
//!
//! Why the wrapper: a node runs storage work inline only on engines that say
//! they never wait on a disk (`Storage::is_in_memory`); other work goes to
//! tokio's blocking pool, real OS threads whose finishing time the simulator
//! does not control, which would make a replay differ. The power-loss engine
//! is memory (its "disk" is a second map), so inline is the truth; this
//! wrapper says so and forwards everything else unchanged.

use std::sync::Arc;

use dynamo_node::storage::{Durability, Entry, Storage, StorageError};

/// `inner`, reported as in-memory.
#[derive(Debug)]
pub struct SimStorage {
    /// The engine (a `PowerLoss` disk's).
    inner: Arc<dyn Storage>,
}

impl SimStorage {
    /// Wraps `inner`, and returns it as the trait object the node's config takes.
    #[allow(clippy::new_ret_no_self, reason = "every caller wants the Arc<dyn Storage> the node takes")]
    pub fn new(inner: Arc<dyn Storage>) -> Arc<dyn Storage> {
        Arc::new(SimStorage { inner })
    }
}

impl Storage for SimStorage {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(key)
    }

    fn put(&self, key: &[u8], value: Vec<u8>) -> Result<(), StorageError> {
        self.inner.put(key, value)
    }

    fn put_deferred(&self, key: &[u8], value: Vec<u8>) -> Result<Durability, StorageError> {
        self.inner.put_deferred(key, value)
    }

    fn sync_barrier(&self) -> Result<Durability, StorageError> {
        self.inner.sync_barrier()
    }

    fn put_may_block(&self) -> bool {
        false
    }

    fn is_in_memory(&self) -> bool {
        true
    }

    fn delete(&self, key: &[u8]) -> Result<(), StorageError> {
        self.inner.delete(key)
    }

    fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StorageError> {
        self.inner.scan(from, limit)
    }

    fn len(&self) -> Result<u64, StorageError> {
        self.inner.len()
    }

    fn is_empty(&self) -> Result<bool, StorageError> {
        self.inner.is_empty()
    }

    fn stats(&self) -> Vec<(String, u64)> {
        self.inner.stats()
    }
}
