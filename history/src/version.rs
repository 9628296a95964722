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

    /// LWW order: timestamp first, then the clock (descends wins), then the
    /// clock's serialized form as a deterministic tiebreak.
    pub fn lww_cmp(&self, other: &Version) -> Ordering {
        self.ts.cmp(&other.ts).then_with(|| {
            match (self.descends(other), other.descends(self)) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.clock.cmp(&other.clock),
            }
        })
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
    fn concurrent_clocks_do_not_cover() {
        let a = v(&[("n1", 1)], 1);
        let b = v(&[("n2", 1)], 1);
        assert!(!a.covers(&b, Resolution::Siblings));
        assert!(!b.covers(&a, Resolution::Siblings));
    }
}
