//! `Clock`: the only door through which wall-clock time enters the node.
//!
//! Versions carry the coordinator's wall-clock timestamp (LWW orders by it),
//! clock entries remember when they were last bumped (pruning drops the
//! oldest), and the node-wide version counter is seeded from the time at
//! startup. Logic files never call `SystemTime::now()` themselves: they take a
//! `Clock`, so tests (and, later, a simulator) can drive time by hand.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time since the Unix epoch.
pub trait Clock: Send + Sync + Debug {
    /// Microseconds since the Unix epoch.
    fn now_us(&self) -> u64;

    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64 {
        self.now_us() / 1_000
    }
}

/// The real wall clock of the machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> u64 {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when told to; for deterministic tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    /// The current time in microseconds since the epoch.
    now_us: AtomicU64,
}

impl ManualClock {
    /// A clock frozen at `now_ms` milliseconds.
    pub fn at_ms(now_ms: u64) -> Self {
        ManualClock { now_us: AtomicU64::new(now_ms * 1_000) }
    }

    /// Moves the clock forward by `delta_ms` milliseconds.
    pub fn advance_ms(&self, delta_ms: u64) {
        self.now_us.fetch_add(delta_ms * 1_000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> u64 {
        self.now_us.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::at_ms(5);
        assert_eq!(clock.now_ms(), 5);
        clock.advance_ms(3);
        assert_eq!(clock.now_ms(), 8);
        assert_eq!(clock.now_us(), 8_000);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
