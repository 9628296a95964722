//! Minting: a write's new version ([`mint_version`]) is a dotted version
//! vector (see `vclock`): the version's dot is `(me, n)` with `n` a fresh
//! value of the node-wide counter ([`NodeCounter`]) above the context's own
//! entry, and its clock is the client's context, unchanged but for pruning.
//! A write therefore obsoletes exactly what its client had seen: two writes
//! through the same coordinator with the same context get different dots
//! that neither context contains, so they stay siblings. (Bumping the
//! coordinator's entry of a plain clock instead, as Dynamo did, ordered them
//! and silently dropped the first, acknowledged write.)

use std::sync::atomic::{AtomicU64, Ordering};

use crate::node_id::NodeId;
use crate::versioning::vclock::{Dot, VClock, Version};

/// The node-wide counter behind the dots this node mints.
///
/// It only grows, and every version this node coordinates takes a fresh
/// value, so every dot is unique. It is seeded from the wall clock in microseconds at
/// startup (see `Node::new`): a node restarted with empty (memory) storage
/// has forgotten which counters it issued, but replicas may still hold
/// versions carrying them; reissuing one would mint a dot that an old
/// version already has (or whose context covers it), and replicas would
/// drop the new write as already seen. Starting above any past wall-clock microsecond avoids that
/// unless the machine's clock jumps backwards or the node wrote more than one
/// version per microsecond for its whole previous life.
#[derive(Debug)]
pub struct NodeCounter {
    /// The last value issued.
    last: AtomicU64,
}

impl NodeCounter {
    /// A counter whose first value will be `initial + 1`.
    pub fn starting_at(initial: u64) -> Self {
        NodeCounter { last: AtomicU64::new(initial) }
    }

    /// Issues `max(last, floor) + 1`, atomically.
    pub fn next_above(&self, floor: u64) -> u64 {
        let bump = |last: u64| Some(last.max(floor) + 1);
        let previous = self.last.fetch_update(Ordering::SeqCst, Ordering::SeqCst, bump).unwrap_or_else(|last| last);
        let issued = previous.max(floor) + 1;
        debug_assert!(issued > floor && issued > previous);
        issued
    }

    /// The last value issued (for status and tests).
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::SeqCst)
    }
}

/// A freshly minted version and how many clock entries were pruned for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedVersion {
    /// The new version to store.
    pub version: Version,
    /// Context entries dropped to stay within `max_clock_entries`.
    pub pruned: usize,
}

/// Mints the version of a write coordinated by `me`: dot
/// `(me, counter.next_above(context[me]))`, clock = the context, stamped
/// `now_ms`. The context is pruned so that the full clock (context with the
/// dot folded in, what readers will carry) has at most `max_clock_entries`
/// entries; `me`'s entry is never the one dropped.
pub fn mint_version(
    mut context: VClock,
    me: &NodeId,
    counter: &NodeCounter,
    now_ms: u64,
    max_clock_entries: usize,
) -> MintedVersion {
    let dot = Dot { node: me.clone(), counter: counter.next_above(context.get(me)) };
    let pruned = prune_context(&mut context, &dot, now_ms, max_clock_entries);
    let version = Version { clock: context, ts_ms: now_ms, dot: Some(dot) };
    debug_assert!(version.full_clock().len() <= max_clock_entries);
    MintedVersion { version, pruned }
}

/// Prunes `context` as the full clock `context + dot` would be pruned (the
/// oldest entries first, never the dot's node), and returns how many entries
/// went. Pruning only shrinks the history a version claims, so at worst it
/// makes a spurious sibling, never a lost write.
fn prune_context(context: &mut VClock, dot: &Dot, now_ms: u64, max_entries: usize) -> usize {
    let mut full = context.clone();
    full.fold(&dot.node, dot.counter, now_ms);
    let pruned = full.prune(max_entries, &dot.node);
    context.retain(|node| full.get(node) > 0);
    pruned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versioning::vclock::{Resolution, SiblingSet};

    #[test]
    fn blind_writes_through_one_coordinator_get_distinct_dots_and_stay_siblings() {
        let me = NodeId::from("n1");
        let counter = NodeCounter::starting_at(100);
        let first = mint_version(VClock::new(), &me, &counter, 5, 10);
        let second = mint_version(VClock::new(), &me, &counter, 5, 10);
        let dot = |m: &MintedVersion| m.version.dot.clone().unwrap();
        assert_eq!(dot(&first), Dot { node: me.clone(), counter: 101 });
        assert_eq!(dot(&second).counter, 102);
        assert!(first.version.clock.is_empty() && second.version.clock.is_empty());
        assert!(!second.version.includes(&first.version), "the lost-update bug");
        let sibling = |m: &MintedVersion, v: &str| crate::versioning::vclock::Sibling {
            value: Some(v.as_bytes().to_vec()),
            version: m.version.clone(),
        };
        let set = SiblingSet::from_siblings(vec![sibling(&first, "a"), sibling(&second, "b")], Resolution::Siblings);
        assert_eq!(set.len(), 2);
        // A write from a reader of both obsoletes both.
        let third = mint_version(set.merged_clock(), &NodeId::from("n2"), &counter, 6, 10);
        assert!(third.version.obsoletes(&first.version));
        assert!(third.version.obsoletes(&second.version));
    }

    #[test]
    fn the_dot_exceeds_the_context_and_the_context_is_kept() {
        let me = NodeId::from("n1");
        let counter = NodeCounter::starting_at(100);
        let ctx = VClock::from_entries([(me.clone(), 500, 1), (NodeId::from("n2"), 3, 1)]);
        let minted = mint_version(ctx.clone(), &me, &counter, 6, 10);
        assert_eq!(minted.version.dot.as_ref().unwrap().counter, 501);
        assert_eq!(minted.version.clock, ctx);
        assert_eq!(minted.version.full_clock().get(&me), 501);
        assert_eq!(minted.version.ts_ms, 6);
        assert_eq!(counter.last(), 501);
    }

    #[test]
    fn minting_prunes_oversized_contexts() {
        let me = NodeId::from("me");
        let ctx = VClock::from_entries((0..5).map(|i| (NodeId::new(format!("n{i}")), 1, i)));
        let minted = mint_version(ctx, &me, &NodeCounter::starting_at(0), 100, 3);
        assert_eq!(minted.pruned, 3);
        let full = minted.version.full_clock();
        assert_eq!(full.len(), 3);
        assert_eq!(full.get(&me), 1);
        assert_eq!(minted.version.clock.len(), 2, "the dot's entry is not in the context");
        assert_eq!(minted.version.clock.get(&NodeId::from("n4")), 1, "newest others survive");
        // With one entry allowed, only the dot remains.
        let ctx = VClock::from_entries([(NodeId::from("n1"), 4, 1)]);
        let minted = mint_version(ctx, &me, &NodeCounter::starting_at(0), 100, 1);
        assert!(minted.version.clock.is_empty());
        assert_eq!(minted.pruned, 1);
    }
}
