//! The in-memory storage engine: a `BTreeMap` behind a read-write lock.
//!
//! It loses everything on restart, which is exactly what some experiments
//! want (a node that comes back empty and must be repaired by read repair or
//! anti-entropy), and it is the reference the LSM engine will be tested
//! against. Ordered (a `BTreeMap`, not a `HashMap`) so that `scan` works.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::{Entry, Storage, StorageError};

/// Keys and values in a locked ordered map.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    /// The data; a `RwLock` so concurrent reads of different keys do not
    /// serialize.
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStorage::default()
    }
}

impl Storage for MemoryStorage {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn is_in_memory(&self) -> bool {
        true
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let map = self.map.read().map_err(|_| StorageError::Poisoned)?;
        Ok(map.get(key).cloned())
    }

    fn put(&self, key: &[u8], value: Vec<u8>) -> Result<(), StorageError> {
        let mut map = self.map.write().map_err(|_| StorageError::Poisoned)?;
        map.insert(key.to_vec(), value);
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<(), StorageError> {
        let mut map = self.map.write().map_err(|_| StorageError::Poisoned)?;
        map.remove(key);
        Ok(())
    }

    fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StorageError> {
        let map = self.map.read().map_err(|_| StorageError::Poisoned)?;
        Ok(map.range(from.to_vec()..).take(limit).map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn len(&self) -> Result<u64, StorageError> {
        let map = self.map.read().map_err(|_| StorageError::Poisoned)?;
        Ok(map.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete_scan() {
        let s = MemoryStorage::new();
        assert!(s.is_empty().unwrap());
        s.put(b"b", b"2".to_vec()).unwrap();
        s.put(b"a", b"1".to_vec()).unwrap();
        s.put(b"c", b"3".to_vec()).unwrap();
        assert_eq!(s.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.len().unwrap(), 3);
        let scanned: Vec<Vec<u8>> = s.scan(b"b", 10).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(scanned, vec![b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(s.scan(b"", 1).unwrap().len(), 1);
        s.delete(b"a").unwrap();
        assert_eq!(s.get(b"a").unwrap(), None);
        assert_eq!(s.len().unwrap(), 2);
    }
}
