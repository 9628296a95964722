//! A node's wall clock under the simulator: simulated time plus an offset.
//!
//! Every host of a simulation reads the same simulated time
//! (`turmoil::since_epoch`: the run's fixed epoch plus the ticks elapsed), so
//! two runs of one seed read the same clocks. The clock nemesis skews one
//! node by setting its [`ClockOffset`], which the host keeps across crashes
//! and restarts, as libfaketime's offset file survives a container restart.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use dynamo_node::Clock;

/// One node's offset from the true (simulated) time, microseconds; shared
/// between the host's clock and the nemesis that sets it.
#[derive(Debug, Clone, Default)]
pub struct ClockOffset {
    /// Microseconds added to the simulated time (negative: behind).
    offset_us: Arc<AtomicI64>,
}

impl ClockOffset {
    /// Sets the offset in whole seconds (`0` resets).
    pub fn set_s(&self, offset_s: i64) {
        self.offset_us.store(offset_s.saturating_mul(1_000_000), Ordering::SeqCst);
    }

    /// The offset in whole seconds.
    pub fn get_s(&self) -> i64 {
        self.offset_us.load(Ordering::SeqCst) / 1_000_000
    }
}

/// The clock a simulated node reads: simulated time plus its offset.
#[derive(Debug, Clone)]
pub struct SimClock {
    /// This node's skew, set by the clock nemesis.
    offset: ClockOffset,
}

impl SimClock {
    /// A clock skewed by `offset`.
    pub fn new(offset: ClockOffset) -> Self {
        SimClock { offset }
    }
}

impl Clock for SimClock {
    fn now_us(&self) -> u64 {
        // Only ever read by code running inside its host, in the simulation.
        let since_epoch = turmoil::since_epoch().expect("a simulated node's clock is read outside the simulation");
        let true_us = i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX);
        u64::try_from(true_us.saturating_add(self.offset.offset_us.load(Ordering::SeqCst))).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_is_kept_in_whole_seconds_and_shared() {
        let offset = ClockOffset::default();
        let seen_by_clock = offset.clone();
        offset.set_s(-30);
        assert_eq!(seen_by_clock.get_s(), -30);
        offset.set_s(0);
        assert_eq!(seen_by_clock.get_s(), 0);
    }
}
