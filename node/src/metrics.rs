//! The node's counters: plain atomics, read by `Admin.Status`.
//!
//! Every counter is a named field (no string-keyed registry), so a typo is a
//! compile error and the set of counters is documented in one place. The
//! names in [`Metrics::snapshot`] are the contract with the workbench: they
//! only ever get added, never renamed. Later issues add hint, read-repair and
//! anti-entropy counters here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing event count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// All counters of one node.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Client Get requests received (valid or not).
    pub gets: Counter,
    /// Client Put requests received (valid or not).
    pub puts: Counter,
    /// Client Delete requests received (valid or not).
    pub deletes: Counter,
    /// Gets that failed for lack of R replies.
    pub unavailable_reads: Counter,
    /// Puts and Deletes that failed for lack of W acks.
    pub unavailable_writes: Counter,
    /// Client requests rejected with INVALID_ARGUMENT.
    pub invalid_requests: Counter,
    /// Clock entries dropped to respect `--max-clock-entries`.
    pub clock_prunings: Counter,
    /// Successful Gets that found no version at all.
    pub reads_not_found: Counter,
    /// Successful Gets that returned exactly one sibling.
    pub reads_single_version: Counter,
    /// Successful Gets that returned two or more siblings (conflicts).
    pub reads_multi_version: Counter,
    /// Replica Store operations applied here (local or via RPC).
    pub replica_stores: Counter,
    /// Replica Fetch operations served here (local or via RPC).
    pub replica_fetches: Counter,
}

impl Metrics {
    /// Counts a successful read by how many siblings it returned.
    pub fn record_read_siblings(&self, siblings: usize) {
        match siblings {
            0 => self.reads_not_found.inc(),
            1 => self.reads_single_version.inc(),
            _ => self.reads_multi_version.inc(),
        }
    }

    /// Every counter by its stable name.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let named: [(&str, &Counter); 12] = [
            ("gets", &self.gets),
            ("puts", &self.puts),
            ("deletes", &self.deletes),
            ("unavailable_reads", &self.unavailable_reads),
            ("unavailable_writes", &self.unavailable_writes),
            ("invalid_requests", &self.invalid_requests),
            ("clock_prunings", &self.clock_prunings),
            ("reads_not_found", &self.reads_not_found),
            ("reads_single_version", &self.reads_single_version),
            ("reads_multi_version", &self.reads_multi_version),
            ("replica_stores", &self.replica_stores),
            ("replica_fetches", &self.replica_fetches),
        ];
        named
            .iter()
            .map(|(name, c)| (name.to_string(), c.get()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_every_counter() {
        let m = Metrics::default();
        m.puts.inc();
        m.clock_prunings.add(3);
        m.record_read_siblings(2);
        let snap = m.snapshot();
        assert_eq!(snap.len(), 12);
        assert_eq!(snap["puts"], 1);
        assert_eq!(snap["clock_prunings"], 3);
        assert_eq!(snap["reads_multi_version"], 1);
    }
}
