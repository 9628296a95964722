//! Whether a replica request arrived after its coordinator gave up on it.
//!
//! Found in the simulator (`--nemesis partition-hold`): a partition that
//! holds messages instead of dropping them (what TCP does with segments an
//! iptables DROP swallowed: it retransmits them once the rule goes) delivers
//! Stores at the heal whose coordinator timed out seconds earlier, answered
//! the client, and kept a hint. Applying them is not what the coordinator
//! counted on, and it muddles every measurement of what the partition left
//! behind (the anti-entropy test saw the "missed" writes arrive on their own).
//!
//! Each Store carries when its coordinator made it (`sent_at_ms`, on the
//! coordinator's steady clock: its wall clock at start plus monotonic time
//! since, so a clock bump never moves it) and how long the coordinator waits
//! (`budget_ms`). Clocks of two nodes differ by an unknown offset, so the
//! replica does not compare `sent_at_ms` with its own clock directly: it
//! keeps, per sender, the smallest lag (its steady clock minus `sent_at_ms`)
//! seen recently, which is that offset plus the quickest delivery. A request
//! whose lag exceeds it by more than `budget_ms` waited in the network (or a
//! queue) longer than its coordinator did: late. The baseline is the minimum
//! of the current and the previous window of samples (a window rotates when
//! a sample comes [`WINDOW_MS`] after the current one began), so it follows
//! a restarted sender's new offset within two windows and is never emptied
//! by silence: the burst a heal delivers is judged against the lag seen
//! before the partition. Gossip carries the same stamp and feeds the same
//! baseline: a partition right after start (the Docker anti-entropy test
//! cuts n3 off before any Store reached it) otherwise left no baseline, and
//! every held Store was applied at the heal. A sender never heard from
//! cannot be judged (in time).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Length of one window of lag samples, ms.
pub const WINDOW_MS: u64 = 2_000;

/// The smallest lags of one sender, in the current and previous window.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    /// Receiver's steady ms when the current window began.
    window_start_ms: u64,
    /// Smallest lag in the current window.
    current_min_lag_ms: i64,
    /// Smallest lag in the previous window (none before the first rotation).
    previous_min_lag_ms: Option<i64>,
}

impl Baseline {
    fn lag_floor_ms(&self) -> i64 {
        self.previous_min_lag_ms.map_or(self.current_min_lag_ms, |p| p.min(self.current_min_lag_ms))
    }
}

/// Per-sender lag baselines of one replica.
#[derive(Debug, Default)]
pub struct Lateness {
    senders: Mutex<BTreeMap<String, Baseline>>,
}

impl Lateness {
    /// Records a request from `from` made at `sent_at_ms` (sender's steady
    /// clock) with `budget_ms` to live, received at `now_ms` (this node's
    /// steady clock); returns by how many ms it is late, None if in time or
    /// undecidable (no baseline for the sender yet, or no deadline given:
    /// an older coordinator sends zeros).
    pub fn late_by_ms(&self, from: &str, sent_at_ms: u64, budget_ms: u64, now_ms: u64) -> Option<u64> {
        if budget_ms == 0 {
            return None;
        }
        let waited_ms = self.waited_ms(from, sent_at_ms, now_ms)?;
        (waited_ms > budget_ms).then(|| waited_ms - budget_ms)
    }

    /// Records any stamped message from `from` (Stores, and gossip, which
    /// keeps the baseline fresh before any Store came); returns how long it
    /// waited beyond the quickest recent delivery from that sender, None
    /// when unstamped (`sent_at_ms` 0) or the first from this sender.
    pub fn waited_ms(&self, from: &str, sent_at_ms: u64, now_ms: u64) -> Option<u64> {
        if sent_at_ms == 0 {
            return None;
        }
        let lag_ms = now_ms as i64 - sent_at_ms as i64;
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        let Some(baseline) = senders.get_mut(from) else {
            senders.insert(
                from.to_string(),
                Baseline { window_start_ms: now_ms, current_min_lag_ms: lag_ms, previous_min_lag_ms: None },
            );
            return None;
        };
        if now_ms.saturating_sub(baseline.window_start_ms) >= WINDOW_MS {
            baseline.previous_min_lag_ms = Some(baseline.current_min_lag_ms);
            baseline.window_start_ms = now_ms;
            baseline.current_min_lag_ms = lag_ms;
        } else {
            baseline.current_min_lag_ms = baseline.current_min_lag_ms.min(lag_ms);
        }
        Some((lag_ms - baseline.lag_floor_ms()).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_clock_offset_is_never_late() {
        let l = Lateness::default();
        // The sender's clock runs 60 s behind: every lag is ~60 s.
        for t in (0..20_000).step_by(100) {
            assert_eq!(l.late_by_ms("n1", 1_000_000 + t, 500, 1_060_000 + t + 2), None);
        }
        // ... and 60 s ahead: lags are negative.
        for t in (0..20_000).step_by(100) {
            assert_eq!(l.late_by_ms("n2", 1_060_000 + t, 500, 1_000_000 + t + 1), None);
        }
    }

    #[test]
    fn a_request_held_past_its_budget_is_late_and_a_fresh_one_is_not() {
        let l = Lateness::default();
        for t in (0..3_000).step_by(10) {
            assert_eq!(l.late_by_ms("n1", 5_000 + t, 500, 5_001 + t), None);
        }
        // Held for 6 s (a partition), delivered at the heal: 5.5 s late.
        assert_eq!(l.late_by_ms("n1", 8_000, 500, 14_001), Some(5_500));
        // Sent 300 ms before the heal: its coordinator still waits.
        assert_eq!(l.late_by_ms("n1", 13_700, 500, 14_001), None);
        // The next window still knows the old floor, then fresh samples keep it.
        assert_eq!(l.late_by_ms("n1", 16_100, 500, 16_101), None);
        assert_eq!(l.late_by_ms("n1", 9_000, 500, 16_102), Some(6_601));
    }

    #[test]
    fn an_unknown_sender_or_an_old_coordinator_is_in_time() {
        let l = Lateness::default();
        assert_eq!(l.late_by_ms("n1", 1_000, 500, 90_000), None, "no baseline yet");
        assert_eq!(l.late_by_ms("n1", 0, 500, 90_000), None, "no sent_at_ms");
        assert_eq!(l.late_by_ms("n1", 1_000, 0, 90_000), None, "no budget_ms");
    }

    #[test]
    fn gossip_gives_the_baseline_the_first_store_is_judged_by() {
        let l = Lateness::default();
        // Gossip before the partition; the first Store ever from n1 comes held.
        for t in (0..1_000).step_by(200) {
            assert_eq!(l.waited_ms("n1", 5_000 + t, 5_001 + t), if t == 0 { None } else { Some(0) });
        }
        assert_eq!(l.late_by_ms("n1", 6_000, 500, 12_001), Some(5_500));
    }

    #[test]
    fn a_restarted_sender_with_a_new_offset_is_followed_within_two_windows() {
        let l = Lateness::default();
        for t in (0..4_000).step_by(100) {
            l.late_by_ms("n1", 10_000 + t, 500, 10_000 + t);
        }
        // Restarted with its clock 3 s behind: lags grow by 3 s, late at first...
        assert!(l.late_by_ms("n1", 11_000, 500, 14_000).is_some());
        // ... and in time once two windows have passed.
        for t in (0..2 * WINDOW_MS + 200).step_by(100) {
            l.late_by_ms("n1", 11_000 + t, 500, 14_000 + t);
        }
        assert_eq!(l.late_by_ms("n1", 16_000, 500, 19_000), None);
    }
}
