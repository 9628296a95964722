//! A version as the history records it: the store's vector clock, the
//! coordinator's wall-clock timestamp and, for our store's dotted versions,
//! the dot. Checkers use [`Version::covers`] to decide whether a read "saw"
//! a write.
//!
//! Two shapes, told apart by `dot` (an addition to the contract, see
//! `results/README.md`):
//! - without `dot` (every history written before it, and other stores):
//!   `clock` is the version's whole vector clock and its causal history is
//!   `{(n, k) : k <= clock[n]}`;
//! - with `dot` (a dotted version vector, as `dynamo-node` mints them):
//!   `clock` is the causal *context*, what the writer had seen, and does not
//!   include the write itself; the history is the context's events plus the
//!   dot. [`Version::full_clock`] folds the dot in.
//!
//! In both shapes "`b` covers `a`" under `siblings` is inclusion of causal
//! histories ([`Version::includes`]), which is exactly the rule the node
//! drops obsolete siblings by, so the checkers judge it by its own rule; for
//! two undotted versions it is plain clock descent, as it always was.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Resolution;

/// The event that created a version: the coordinator and the value of its
/// counter it took (unique per node).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// Node id of the coordinator that minted the version.
    pub node: String,
    /// The counter value it issued for it.
    pub counter: u64,
}

/// The version a store assigned to a write, as the history records it on
/// the write's `ok` and on every sibling a read returned:
/// `{"clock": {"n1": 3}, "ts": <ms>, "dot": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Version {
    /// Vector clock: node id -> counter. Absent entries are 0. With a `dot`,
    /// the causal context (the dot excluded); without, the whole clock.
    #[serde(default)]
    pub clock: BTreeMap<String, u64>,
    /// Coordinator wall-clock milliseconds; orders versions under `lww`.
    #[serde(default)]
    pub ts: u64,
    /// The event that created this version, for stores that mint dotted
    /// versions; absent (and not serialized) otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dot: Option<Dot>,
}

impl Version {
    /// True when every entry of `self.clock` is >= the same entry of
    /// `other` (clocks only; see [`Version::includes`] for causality).
    pub fn descends(&self, other: &Version) -> bool {
        other.clock.iter().all(|(node, counter)| self.entry(node) >= *counter)
    }

    /// `clock[node]`, 0 when absent.
    fn entry(&self, node: &str) -> u64 {
        self.clock.get(node).copied().unwrap_or(0)
    }

    /// Whether event `(node, counter)` is in this version's causal history.
    pub fn has_event(&self, node: &str, counter: u64) -> bool {
        counter <= self.entry(node) || self.dot.as_ref().is_some_and(|d| d.node == node && d.counter == counter)
    }

    /// Whether `other`'s causal history is contained in `self`'s (equal
    /// histories include each other): `other`'s dot is in it (the same dot,
    /// or `self.clock[dot.node] >= dot.counter`) and so is `other`'s clock.
    /// For two undotted versions this is [`Version::descends`].
    pub fn includes(&self, other: &Version) -> bool {
        let dot_seen = other.dot.as_ref().is_none_or(|d| self.has_event(&d.node, d.counter));
        let upto = |node: &str, c: u64| {
            let below = self.entry(node);
            c <= below || (c == below + 1 && self.has_event(node, c))
        };
        dot_seen && other.clock.iter().all(|(node, c)| upto(node, *c))
    }

    /// The whole vector clock: `clock` with the dot (if any) folded in as a
    /// max. What a reader's context is made of, and what lww compares.
    pub fn full_clock(&self) -> BTreeMap<String, u64> {
        let mut clock = self.clock.clone();
        if let Some(d) = &self.dot {
            let entry = clock.entry(d.node.clone()).or_insert(0);
            *entry = (*entry).max(d.counter);
        }
        clock
    }

    /// Whether a read that returned `self` has seen (or superseded) the write
    /// that produced `write`, under the run's resolution mode.
    pub fn covers(&self, write: &Version, resolution: Resolution) -> bool {
        match resolution {
            Resolution::Siblings => self.includes(write),
            Resolution::Lww => self.lww_cmp(write) != Ordering::Less,
        }
    }

    /// LWW order: timestamp first, then the sum of the full clock's counters,
    /// then the full clocks' map order, then the dots (absent first).
    /// Lexicographic over a tuple, so a total (transitive) order; a strict
    /// descendant has a strictly larger sum, so among equal timestamps a
    /// descendant wins; two different dots never compare equal. For undotted
    /// versions it is the order it always was. `dynamo-node` uses the same
    /// order to pick the lww survivor (its copy in `versioning/vclock.rs`;
    /// `sim/tests/mirrors.rs` checks the two agree on every pair).
    ///
    /// It walks the full clocks ([`Version::full_counters`]) without
    /// building them: checkers compare versions once per (read, write) pair,
    /// and cloning two maps per comparison was most of their time.
    pub fn lww_cmp(&self, other: &Version) -> Ordering {
        let sum = |v: &Version| v.full_counters().map(|(_, c)| u128::from(c)).sum::<u128>();
        self.ts
            .cmp(&other.ts)
            .then_with(|| sum(self).cmp(&sum(other)))
            .then_with(|| self.full_counters().cmp(other.full_counters()))
            .then_with(|| self.dot.cmp(&other.dot))
    }

    /// The entries of [`Version::full_clock`] in node order, without
    /// building it: the context's entries, the dot's node maxed in (or
    /// placed in order when the context lacks it).
    pub fn full_counters(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        let dot = self.dot.as_ref().map(|d| (d.node.as_str(), d.counter));
        with_dot(self.clock.iter().map(|(n, c)| (n.as_str(), *c)), dot)
    }
}

/// A clock's `context` entries (in node order) with `dot` maxed in: its
/// node's counter raised to the dot's, or the dot placed in order when the
/// context lacks its node. One merge for [`Version::full_counters`] and the
/// compact form's integer rows, whatever names the nodes.
pub(crate) fn with_dot<N: Ord + Copy>(
    context: impl Iterator<Item = (N, u64)>,
    dot: Option<(N, u64)>,
) -> impl Iterator<Item = (N, u64)> {
    let mut context = context
        .map(move |(n, c)| match dot {
            Some((node, d)) if node == n => (n, d.max(c)),
            _ => (n, c),
        })
        .peekable();
    let mut extra = dot;
    std::iter::from_fn(move || {
        let Some(e) = extra else { return context.next() };
        match context.peek() {
            Some((n, _)) if *n < e.0 => context.next(),
            Some((n, _)) if *n == e.0 => {
                extra = None;
                context.next()
            }
            _ => {
                extra = None;
                Some(e)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(pairs: &[(&str, u64)], ts: u64) -> Version {
        Version { clock: pairs.iter().map(|(k, c)| (k.to_string(), *c)).collect(), ts, dot: None }
    }

    fn dotted(context: &[(&str, u64)], node: &str, counter: u64, ts: u64) -> Version {
        Version { dot: Some(Dot { node: node.to_string(), counter }), ..v(context, ts) }
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

    #[test]
    fn same_coordinator_dots_with_the_same_context_do_not_cover() {
        let s = Resolution::Siblings;
        let a = dotted(&[], "n1", 101, 1);
        let b = dotted(&[], "n1", 102, 2);
        assert!(!b.covers(&a, s) && !a.covers(&b, s));
        assert!(a.covers(&a.clone(), s));
        // A write from a reader of both covers both.
        let c = dotted(&[("n1", 102)], "n2", 7, 3);
        assert!(c.covers(&a, s) && c.covers(&b, s) && !a.covers(&c, s));
        // The dot seen but not the context: not covered (as in the node).
        let d = dotted(&[("n3", 4)], "n1", 103, 3);
        assert!(!c.covers(&d, s));
        // Undotted versions keep their meaning, also against dotted ones.
        assert!(v(&[("n1", 101)], 1).covers(&a, s));
        assert!(!v(&[("n1", 100)], 1).covers(&a, s));
        assert!(!a.covers(&v(&[("n1", 100)], 1), s));
        assert!(dotted(&[("n1", 100)], "n1", 101, 1).covers(&v(&[("n1", 101)], 1), s));
    }

    #[test]
    fn lww_on_dots_uses_the_full_clock_and_never_ties() {
        let a = dotted(&[], "n1", 101, 5);
        let b = dotted(&[], "n1", 102, 5);
        assert_eq!(b.lww_cmp(&a), v(&[("n1", 102)], 5).lww_cmp(&v(&[("n1", 101)], 5)));
        let c = dotted(&[("n1", 2)], "n2", 1, 5);
        let d = dotted(&[("n2", 1)], "n1", 2, 5);
        assert_eq!(c.full_clock(), d.full_clock());
        assert_ne!(c.lww_cmp(&d), Ordering::Equal);
    }

    /// The order as it was first written, building both full clocks: the
    /// oracle the allocation-free [`Version::lww_cmp`] must agree with.
    fn lww_cmp_by_full_clocks(a: &Version, b: &Version) -> Ordering {
        let (mine, theirs) = (a.full_clock(), b.full_clock());
        let sum = |c: &BTreeMap<String, u64>| c.values().map(|c| u128::from(*c)).sum::<u128>();
        a.ts.cmp(&b.ts)
            .then_with(|| sum(&mine).cmp(&sum(&theirs)))
            .then_with(|| mine.cmp(&theirs))
            .then_with(|| a.dot.cmp(&b.dot))
    }

    #[test]
    fn lww_cmp_agrees_with_comparing_built_full_clocks() {
        // Every small version over three nodes: contexts of counters 0..=2,
        // no dot or a dot of counter 1..=3 on any node, two timestamps.
        let nodes = ["n1", "n2", "n3"];
        let mut versions = Vec::new();
        for mask in 0..27u32 {
            let context: Vec<(&str, u64)> = nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, u64::from(mask / 3u32.pow(i as u32) % 3)))
                .filter(|(_, c)| *c > 0)
                .collect();
            for ts in [1, 2] {
                versions.push(v(&context, ts));
                for node in nodes {
                    for counter in 1..=3 {
                        if counter > context.iter().find(|(n, _)| *n == node).map_or(0, |(_, c)| *c) {
                            versions.push(dotted(&context, node, counter, ts));
                        }
                    }
                }
            }
        }
        for a in &versions {
            let full: Vec<(String, u64)> = a.full_clock().into_iter().collect();
            let walked: Vec<(String, u64)> = a.full_counters().map(|(n, c)| (n.to_string(), c)).collect();
            assert_eq!(walked, full, "{a:?}");
            for b in &versions {
                assert_eq!(a.lww_cmp(b), lww_cmp_by_full_clocks(a, b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn the_dot_is_serialized_only_when_present() {
        let plain = serde_json::to_string(&v(&[("n1", 1)], 2)).unwrap();
        assert_eq!(plain, r#"{"clock":{"n1":1},"ts":2}"#);
        let d = dotted(&[("n2", 3)], "n1", 9, 2);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, r#"{"clock":{"n2":3},"ts":2,"dot":{"node":"n1","counter":9}}"#);
        assert_eq!(serde_json::from_str::<Version>(&json).unwrap(), d);
        assert_eq!(serde_json::from_str::<Version>(&plain).unwrap().dot, None);
    }
}
