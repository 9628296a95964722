//! WARS timings: how long each leg of a coordinated replica request took,
//! for predicting staleness (Bailis et al., *Probabilistically Bounded
//! Staleness*, VLDB 2012).
//!
//! PBS models a quorum write and read by four latencies per replica: **W**,
//! the coordinator's send of a store to the replica's apply of it (the
//! moment a read there would see it: the merge, not the fsync that the ack
//! waits for); **A**, the apply to the ack's arrival back at the
//! coordinator (durability included); **R**, the send
//! of a fetch to the replica's read; **S**, the read to the reply's
//! arrival. Drawn from their distributions, they say how soon after a write
//! is acknowledged a read quorum sees it, which the workbench's
//! t-visibility checker then holds against what the history measured.
//!
//! The coordinator knows its own send and receive times; the replica
//! reports when it applied or read (`applied_at_us`, `read_at_us`, on its
//! steady clock: wall clock at start plus monotonic time since). The split
//! point therefore compares two nodes' clocks: exact in the simulator (one
//! clock), close on one host (Docker containers share the host's clock,
//! unless libfaketime skews a node), and wrong by the skew otherwise. A
//! replica time outside the coordinator's [send, receive] window is clamped
//! to the nearer end and counted, so a skew shows up as a number instead
//! of as negative latencies.
//!
//! Samples are kept per leg and per class: *local* when the replica is the
//! coordinator itself (a direct call, no network), *remote* otherwise, since
//! the model must not mix a local apply's microseconds into a remote
//! replica's draw. Each class keeps the latest [`CAPACITY`] samples in a
//! ring, so memory is bounded however long the node runs, and recording
//! draws no randomness (a simulated run stays byte-identical).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Samples kept per leg and class.
pub const CAPACITY: usize = 4_096;

/// The four legs, in the order [`Wars::snapshot`] reports them.
pub const LEGS: [&str; 4] = ["w", "a", "r", "s"];

/// The latest samples of one leg and class, oldest overwritten first.
#[derive(Debug, Default)]
struct Ring {
    /// At most [`CAPACITY`] samples, us.
    samples_us: Vec<u32>,
    /// Where the next sample goes once full.
    next: usize,
}

impl Ring {
    fn push(&mut self, sample_us: u32) {
        if self.samples_us.len() < CAPACITY {
            self.samples_us.push(sample_us);
        } else {
            self.samples_us[self.next] = sample_us;
        }
        self.next = (self.next + 1) % CAPACITY;
        debug_assert!(self.samples_us.len() <= CAPACITY);
    }

    /// The samples, oldest first.
    fn in_order(&self) -> Vec<u32> {
        if self.samples_us.len() < CAPACITY {
            return self.samples_us.clone();
        }
        let (newer, older) = self.samples_us.split_at(self.next);
        older.iter().chain(newer).copied().collect()
    }
}

/// One request's three times, us: the coordinator's send, the replica's
/// apply or read (its clock), the coordinator's receipt of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// When the coordinator sent the request.
    pub sent_us: u64,
    /// When the replica applied (store) or read (fetch); 0: not reported.
    pub replica_us: u64,
    /// When the answer reached the coordinator.
    pub received_us: u64,
}

impl Timing {
    /// The two legs (to the replica, back), and whether the replica's time
    /// had to be clamped into the window; None when it was not reported.
    fn split(self) -> Option<(u32, u32, bool)> {
        if self.replica_us == 0 || self.received_us < self.sent_us {
            return None;
        }
        let at = self.replica_us.clamp(self.sent_us, self.received_us);
        let to_us = u32::try_from(at - self.sent_us).unwrap_or(u32::MAX);
        let back_us = u32::try_from(self.received_us - at).unwrap_or(u32::MAX);
        Some((to_us, back_us, at != self.replica_us))
    }
}

/// Which request a timing belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Store: its legs are W and A.
    Store,
    /// A Fetch: its legs are R and S.
    Fetch,
}

/// The node's WARS samples (see the module docs).
#[derive(Debug, Default)]
pub struct Wars {
    /// Index: leg (0 w, 1 a, 2 r, 3 s) * 2 + local.
    rings: Mutex<[Ring; 8]>,
    /// Replica times clamped into the coordinator's window.
    clamped: AtomicU64,
    /// Stores timed.
    stores: AtomicU64,
    /// Fetches timed.
    fetches: AtomicU64,
}

impl Wars {
    /// Records one replica request; a timing without the replica's time
    /// (an older replica) is not a sample.
    pub fn record(&self, kind: Kind, local: bool, timing: Timing) {
        let Some((to_us, back_us, clamped)) = timing.split() else { return };
        let (first_leg, counter) = match kind {
            Kind::Store => (0, &self.stores),
            Kind::Fetch => (2, &self.fetches),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if clamped {
            self.clamped.fetch_add(1, Ordering::Relaxed);
        }
        let class = usize::from(local);
        if let Ok(mut rings) = self.rings.lock() {
            rings[first_leg * 2 + class].push(to_us);
            rings[(first_leg + 1) * 2 + class].push(back_us);
        }
    }

    /// Every leg and class with its samples, for `Admin.Wars`.
    pub fn snapshot(&self) -> proto::WarsResponse {
        let rings = self.rings.lock().map(|r| r.each_ref().map(Ring::in_order)).unwrap_or_default();
        let legs = rings
            .into_iter()
            .enumerate()
            .map(|(i, samples_us)| proto::WarsLeg { leg: LEGS[i / 2].to_string(), local: i % 2 == 1, samples_us })
            .collect();
        proto::WarsResponse {
            legs,
            clamped: self.clamped.load(Ordering::Relaxed),
            stores: self.stores.load(Ordering::Relaxed),
            fetches: self.fetches.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg<'a>(snapshot: &'a proto::WarsResponse, name: &str, local: bool) -> &'a [u32] {
        &snapshot.legs.iter().find(|l| l.leg == name && l.local == local).unwrap().samples_us
    }

    #[test]
    fn a_store_splits_into_w_and_a_and_a_fetch_into_r_and_s() {
        let wars = Wars::default();
        wars.record(Kind::Store, false, Timing { sent_us: 1_000, replica_us: 1_300, received_us: 1_500 });
        wars.record(Kind::Fetch, true, Timing { sent_us: 2_000, replica_us: 2_010, received_us: 2_011 });
        let s = wars.snapshot();
        assert_eq!((leg(&s, "w", false), leg(&s, "a", false)), (&[300][..], &[200][..]));
        assert_eq!((leg(&s, "r", true), leg(&s, "s", true)), (&[10][..], &[1][..]));
        assert!(leg(&s, "w", true).is_empty() && leg(&s, "r", false).is_empty());
        assert_eq!((s.stores, s.fetches, s.clamped), (1, 1, 0));
    }

    #[test]
    fn a_replica_clock_outside_the_window_is_clamped_and_counted() {
        let wars = Wars::default();
        // The replica's clock runs 1 s ahead: its apply seems to follow the ack.
        wars.record(Kind::Store, false, Timing { sent_us: 1_000, replica_us: 1_001_000, received_us: 1_400 });
        // Not reported (an older replica): no sample at all.
        wars.record(Kind::Store, false, Timing { sent_us: 1_000, replica_us: 0, received_us: 1_400 });
        let s = wars.snapshot();
        assert_eq!((leg(&s, "w", false), leg(&s, "a", false)), (&[400][..], &[0][..]));
        assert_eq!((s.stores, s.clamped), (1, 1));
    }

    #[test]
    fn the_ring_keeps_the_latest_capacity_samples_oldest_first() {
        let wars = Wars::default();
        for i in 0..(CAPACITY as u64 + 10) {
            wars.record(Kind::Fetch, false, Timing { sent_us: 0, replica_us: i + 1, received_us: i + 1 });
        }
        let s = wars.snapshot();
        let r = leg(&s, "r", false);
        assert_eq!(r.len(), CAPACITY);
        assert_eq!((r[0], r[CAPACITY - 1]), (11, CAPACITY as u32 + 10));
    }
}
