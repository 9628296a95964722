//! When and with whom this node runs anti-entropy exchanges: the state the
//! rounds keep, and the choice of partner.
//!
//! Every `--aae-interval-ms` each replica initiates one exchange per range
//! it replicates, with the next other replica of that range in turn
//! ([`AntiEntropy::partner`]: the turn rotates round by round, so every
//! pair of replicas meets). Two replicas initiating the same range at the
//! same moment would each send the same repairs; the responder refuses
//! (see `net::anti_entropy`, which asks [`AntiEntropy::is_initiating`]) and
//! the refused initiator simply skips its turn. A semaphore
//! (`--aae-concurrency`) bounds concurrent exchanges, so the background
//! work cannot starve client traffic. The loop that runs the rounds is
//! `drivers::anti_entropy`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use xxhash_rust::xxh3::xxh3_64;

use super::AaeIndex;
use crate::node_id::NodeId;

/// The node's anti-entropy: index, schedule state and limits.
#[derive(Debug)]
pub struct AntiEntropy {
    /// The trees (also the replica's store observer).
    index: Arc<AaeIndex>,
    /// Bounds concurrent exchanges (`--aae-concurrency`).
    permits: Semaphore,
    /// Range name -> wall-clock ms of its last completed exchange.
    last_exchange_ms: Mutex<BTreeMap<String, u64>>,
    /// Ranges this node is initiating an exchange of right now.
    initiating: Mutex<BTreeSet<String>>,
}

impl AntiEntropy {
    /// Anti-entropy over `index` with at most `concurrency` exchanges at once.
    pub fn new(index: Arc<AaeIndex>, concurrency: usize) -> Self {
        assert!(concurrency >= 1, "aae concurrency must be at least 1");
        AntiEntropy {
            index,
            permits: Semaphore::new(concurrency),
            last_exchange_ms: Mutex::new(BTreeMap::new()),
            initiating: Mutex::new(BTreeSet::new()),
        }
    }

    /// True while this node runs its own exchange of `range`.
    pub fn is_initiating(&self, range: &str) -> bool {
        self.initiating.lock().map(|r| r.contains(range)).unwrap_or(false)
    }

    /// Marks `range` as being exchanged by this node until the guard drops.
    pub(crate) fn initiate(&self, range: &str) -> InitiatingGuard<'_> {
        if let Ok(mut ranges) = self.initiating.lock() {
            ranges.insert(range.to_string());
        }
        InitiatingGuard { aae: self, range: range.to_string() }
    }

    /// The index.
    pub fn index(&self) -> &Arc<AaeIndex> {
        &self.index
    }

    /// Range name -> wall-clock ms of its last completed exchange.
    pub fn last_exchange_ms(&self) -> BTreeMap<String, u64> {
        self.last_exchange_ms.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Waits for one of the `--aae-concurrency` exchange permits; None once closed.
    pub(crate) async fn permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.permits.acquire().await.ok()
    }

    /// Records that `range`'s exchange completed at `now_ms` (wall clock).
    pub(crate) fn record_exchange(&self, range: String, now_ms: u64) {
        if let Ok(mut last) = self.last_exchange_ms.lock() {
            last.insert(range, now_ms);
        }
    }

    /// Whom this node exchanges `range` with in `round`: the replicas take
    /// turns, offset per range so that not every range picks the same peer.
    pub fn partner(round: u64, range: &str, peers: &[NodeId]) -> Option<NodeId> {
        if peers.is_empty() {
            return None;
        }
        let turn = (round + xxh3_64(range.as_bytes())) % peers.len() as u64;
        Some(peers[turn as usize].clone())
    }
}

/// Clears a range's "initiating" mark when its exchange ends.
pub(crate) struct InitiatingGuard<'a> {
    /// Whose mark.
    aae: &'a AntiEntropy,
    /// Which range.
    range: String,
}

impl Drop for InitiatingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut ranges) = self.aae.initiating.lock() {
            ranges.remove(&self.range);
        }
    }
}
