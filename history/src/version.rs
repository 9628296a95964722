//! A version as the history records it: the store's vector clock and the
//! coordinator's wall-clock timestamp. Checkers use [`Version::covers`] to
//! decide whether a read "saw" a write.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Resolution;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Version {
    /// Vector clock: node id -> counter. Absent entries are 0.
    #[serde(default)]
    pub clock: BTreeMap<String, u64>,
    /// Coordinator wall-clock milliseconds; orders versions under `lww`.
    #[serde(default)]
    pub ts: u64,
}

impl Version {
    /// True when every entry of `self.clock` is >= the same entry of `other`.
    pub fn descends(&self, other: &Version) -> bool {
        other
            .clock
            .iter()
            .all(|(node, counter)| self.clock.get(node).copied().unwrap_or(0) >= *counter)
    }

    /// Whether a read that returned `self` has seen (or superseded) the write
    /// that produced `write`, under the run's resolution mode.
    pub fn covers(&self, write: &Version, resolution: Resolution) -> bool {
        match resolution {
            Resolution::Siblings => self.descends(write),
            Resolution::Lww => self.lww_cmp(write) != Ordering::Less,
        }
    }

    /// LWW order: timestamp first, then the sum of the clock's counters,
    /// then the clock's map order. Lexicographic over a tuple, so a total
    /// (transitive) order; a strict descendant has a strictly larger sum, so
    /// among equal timestamps the descendant wins. `dynamo-node` uses the
    /// same order to pick the lww survivor.
    pub fn lww_cmp(&self, other: &Version) -> Ordering {
        let sum = |v: &Version| v.clock.values().map(|c| u128::from(*c)).sum::<u128>();
        self.ts
            .cmp(&other.ts)
            .then_with(|| sum(self).cmp(&sum(other)))
            .then_with(|| self.clock.cmp(&other.clock))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(pairs: &[(&str, u64)], ts: u64) -> Version {
        Version { clock: pairs.iter().map(|(k, c)| (k.to_string(), *c)).collect(), ts }
    }

    #[test]
    fn descends_and_covers() {
        let a = v(&[("n1", 1)], 10);
        let b = v(&[("n1", 2), ("n2", 1)], 5);
        assert!(b.descends(&a));
        assert!(!a.descends(&b));
        assert!(b.covers(&a, Resolution::Siblings));
        // Under lww the older timestamp wins nothing: b.ts < a.ts.
        assert!(!b.covers(&a, Resolution::Lww));
        assert!(a.covers(&b, Resolution::Lww));
    }

    #[test]
    fn lww_order_is_transitive_on_equal_timestamps() {
        let a = v(&[("x", 1)], 5);
        let b = v(&[("w", 1), ("x", 1)], 5);
        let c = v(&[("wz", 1)], 5);
        assert_eq!(b.lww_cmp(&a), Ordering::Greater, "a descendant wins a tie");
        assert_eq!(b.lww_cmp(&c), Ordering::Greater);
        assert_eq!(a.lww_cmp(&c), Ordering::Greater, "equal sums: map order");
    }

    #[test]
    fn concurrent_clocks_do_not_cover() {
        let a = v(&[("n1", 1)], 1);
        let b = v(&[("n2", 1)], 1);
        assert!(!a.covers(&b, Resolution::Siblings));
        assert!(!b.covers(&a, Resolution::Siblings));
    }
}
