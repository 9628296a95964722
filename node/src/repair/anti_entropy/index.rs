//! Anti-entropy's index: the Merkle trees of this node's ranges.
//!
//! [`AaeIndex`] holds one [`RangeIndex`] (key digests + tree, see
//! `repair/merkle.rs`) per range this node replicates. It observes every change to
//! the replica ([`StoreObserver`], called by `ReplicaStore::store` under the
//! key's lock), so trees are updated incrementally on write and never
//! rebuilt per exchange; [`AaeIndex::rebuild`] scans storage once at startup
//! (a disk engine may hold data) or when the ring changes
//! ([`AaeIndex::set_ring`]). The index lives in memory: about key + 40
//! bytes per key.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{AaeError, SCAN_PAGE};
use crate::node_id::NodeId;
use crate::placement::ring::Ring;
use crate::repair::merkle::{set_hash, RangeIndex};
use crate::replica::StoreObserver;
use crate::storage::{Storage, StorageError};
use crate::versioning::vclock::{Resolution, SiblingSet};
use crate::wire;

/// The name of a range: its sorted replica set joined by `+`.
pub fn range_name(replicas: &[NodeId]) -> String {
    let mut sorted: Vec<&NodeId> = replicas.iter().collect();
    sorted.sort();
    let names: Vec<String> = sorted.iter().map(|n| n.to_string()).collect();
    names.join("+")
}

/// One range this node replicates.
#[derive(Debug)]
struct RangeEntry {
    /// The range's replicas (sorted), this node included.
    replicas: Vec<NodeId>,
    /// Digests and tree.
    index: RangeIndex,
}

/// The ring and the ranges it gives this node.
#[derive(Debug)]
struct IndexState {
    /// The ring placement is computed on.
    ring: Ring,
    /// Range name -> its index, for every range that includes this node.
    ranges: BTreeMap<String, RangeEntry>,
}

/// Every range this node replicates, with its Merkle tree.
#[derive(Debug)]
pub struct AaeIndex {
    /// This node.
    me: NodeId,
    /// Replicas per key.
    n: usize,
    /// Leaves per tree.
    buckets: usize,
    /// Ring and ranges, under one lock (a write's update is O(log buckets)).
    state: Mutex<IndexState>,
}

impl AaeIndex {
    /// Empty trees for every range of `ring` that includes `me`.
    pub fn new(me: NodeId, n: usize, buckets: usize, ring: Ring) -> Self {
        let ranges = ranges_for(&ring, &me, n, buckets);
        AaeIndex { me, n, buckets, state: Mutex::new(IndexState { ring, ranges }) }
    }

    /// Leaves per tree.
    pub fn buckets(&self) -> usize {
        self.buckets
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IndexState> {
        // A panic while updating a tree leaves at worst a stale digest,
        // which the next exchange repairs; keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Recomputes every tree from `storage` (startup, ring change). Entries
    /// that do not decode as sibling sets are skipped and counted. Holds the
    /// lock throughout, so concurrent writes wait and none is lost.
    pub fn rebuild(&self, storage: &dyn Storage, mode: Resolution) -> Result<usize, StorageError> {
        let mut state = self.lock();
        state.ranges = ranges_for(&state.ring, &self.me, self.n, self.buckets);
        let (mut from, mut skipped) = (Vec::new(), 0usize);
        loop {
            let page = storage.scan(&from, SCAN_PAGE)?;
            for (key, bytes) in &page {
                match wire::decode_set(bytes, mode) {
                    Ok(set) => upsert(&mut state, &self.me, self.n, key, set_hash(&set)),
                    Err(_) => skipped += 1,
                }
            }
            match page.last() {
                Some((last, _)) if page.len() == SCAN_PAGE => from = successor(last),
                _ => break,
            }
        }
        Ok(skipped)
    }

    /// Switches to a new ring and rebuilds from storage (membership change).
    pub fn set_ring(&self, ring: Ring, storage: &dyn Storage, mode: Resolution) -> Result<usize, StorageError> {
        self.lock().ring = ring;
        self.rebuild(storage, mode)
    }

    /// The members of the ring the ranges are computed on.
    pub fn ring_members(&self) -> Vec<crate::placement::ring::RingMember> {
        self.lock().ring.members().to_vec()
    }

    /// Range name -> root hash (16 hex digits) of every range replicated here.
    pub fn roots(&self) -> BTreeMap<String, String> {
        self.lock()
            .ranges
            .iter()
            .map(|(name, entry)| (name.clone(), format!("{:016x}", entry.index.tree().root())))
            .collect()
    }

    /// Range name -> the other replicas of that range.
    pub fn peers_by_range(&self) -> BTreeMap<String, Vec<NodeId>> {
        self.lock()
            .ranges
            .iter()
            .map(|(name, entry)| {
                let others = entry.replicas.iter().filter(|r| **r != self.me).cloned().collect();
                (name.clone(), others)
            })
            .collect()
    }

    /// The hashes of the given tree nodes of `range`.
    pub fn tree_nodes(&self, range: &str, nodes: &[u32]) -> Result<Vec<u64>, AaeError> {
        let state = self.lock();
        let entry = state.ranges.get(range).ok_or_else(|| AaeError::Mismatch(range.to_string()))?;
        Ok(nodes.iter().map(|i| entry.index.tree().node(*i).unwrap_or(0)).collect())
    }

    /// Of `asked`, the nodes whose local hash differs from `theirs`.
    pub(crate) fn differing(&self, range: &str, asked: &[u32], theirs: &[u64]) -> Result<Vec<u32>, AaeError> {
        let state = self.lock();
        let entry = state.ranges.get(range).ok_or_else(|| AaeError::Mismatch(range.to_string()))?;
        Ok(entry.index.tree().differing(asked, theirs))
    }

    /// The (key, digest) pairs of the given buckets of `range`.
    pub fn bucket_digests(&self, range: &str, buckets: &[u32]) -> Result<Vec<(Vec<u8>, u64)>, AaeError> {
        let state = self.lock();
        let entry = state.ranges.get(range).ok_or_else(|| AaeError::Mismatch(range.to_string()))?;
        Ok(buckets.iter().flat_map(|b| entry.index.bucket_digests(*b)).collect())
    }
}

impl StoreObserver for AaeIndex {
    fn stored(&self, key: &[u8], merged: &SiblingSet) {
        let hash = set_hash(merged);
        let mut state = self.lock();
        upsert(&mut state, &self.me, self.n, key, hash);
    }
}

/// Records a key's new digest in its range, if this node replicates it.
fn upsert(state: &mut IndexState, me: &NodeId, n: usize, key: &[u8], set_hash: u64) {
    let replicas = state.ring.preference_list(key, n);
    if !replicas.contains(me) {
        return;
    }
    let name = range_name(&replicas);
    match state.ranges.get_mut(&name) {
        Some(entry) => entry.index.upsert(key, set_hash),
        None => debug_assert!(false, "range {name} missing from the ring's replica sets"),
    }
}

/// Empty indices for the ranges of `ring` that include `me`.
fn ranges_for(ring: &Ring, me: &NodeId, n: usize, buckets: usize) -> BTreeMap<String, RangeEntry> {
    ring.replica_sets(n)
        .into_iter()
        .filter(|set| set.contains(me))
        .map(|replicas| {
            let entry = RangeEntry { index: RangeIndex::new(buckets), replicas: replicas.clone() };
            (range_name(&replicas), entry)
        })
        .collect()
}

/// The smallest key greater than `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}
