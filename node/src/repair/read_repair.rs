//! Read repair: a read that saw replicas disagree writes the merged version
//! back to the ones that were behind.
//!
//! A read answers the client after R replies, but divergence is cheapest to
//! fix right there: the coordinator already holds every reply it got and
//! their merge. After the quorum is met it keeps listening to the remaining
//! replicas for at most `--read-repair-wait-ms` (so a dead replica costs a
//! bounded wait, not the request timeout), then sends the merge (a normal
//! `Replica.Store`, merged by the usual rule) to each replica whose own
//! reply differs from it. Since the merge of all replies includes every
//! reply, "differs" means exactly "is missing something the merge has".
//! Replicas that failed or stayed silent are not repaired: we do not know
//! what they hold, and anti-entropy or hinted handoff cover them.
//!
//! By default the repair runs in the background after the client has its
//! answer (`--read-repair-blocking false`); blocking mode finishes it first,
//! trading latency for a read that leaves its replicas converged.
//!
//! The decision ([`stale_replicas`]) is a pure function of the round;
//! [`finish_and_repair`] drives it with an injected store function, so both
//! are tested without sockets.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use crate::coordinate::error::CallError;
use crate::coordinate::rounds::{ReadRound, Round};
use crate::node_id::NodeId;
use crate::versioning::vclock::SiblingSet;

/// Whether a read needs no repair at all: every replica answered (no late
/// reply to wait for) and none lacks anything of the merge. The coordinator
/// then starts no repair task (for N=1 always the case).
pub fn settled(round: &ReadRound) -> bool {
    round.outstanding() == 0 && stale_replicas(round.merged(), round.replies()).is_empty()
}

/// The replicas whose reply lacks something `merged` has, in id order.
pub fn stale_replicas(merged: &SiblingSet, replies: &BTreeMap<NodeId, SiblingSet>) -> Vec<NodeId> {
    if merged.is_empty() {
        return Vec::new();
    }
    replies.iter().filter(|(_, reply)| *reply != merged).map(|(node, _)| node.clone()).collect()
}

/// What one read's repair did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Replicas found stale (repair attempted).
    pub targets: Vec<NodeId>,
    /// Of those, replicas whose store succeeded.
    pub repaired: usize,
    /// Of those, replicas whose store failed.
    pub failed: usize,
}

/// Feeds the round with replies that arrive within `wait` (or until every
/// replica answered), then stores the merge on every stale replica through
/// `store`, concurrently, and reports.
pub async fn finish_and_repair<F, Fut>(
    mut round: ReadRound,
    mut late: UnboundedReceiver<(NodeId, Result<SiblingSet, CallError>)>,
    wait: Duration,
    store: F,
) -> RepairReport
where
    F: Fn(NodeId, SiblingSet) -> Fut,
    Fut: Future<Output = Result<(), CallError>>,
{
    collect_late_replies(&mut round, &mut late, Instant::now() + wait).await;
    let merged = round.merged().clone();
    let targets = stale_replicas(&merged, round.replies());
    let stores = targets.iter().map(|t| store(t.clone(), merged.clone()));
    let results = futures::future::join_all(stores).await;
    let repaired = results.iter().filter(|r| r.is_ok()).count();
    RepairReport { failed: targets.len() - repaired, targets, repaired }
}

/// Adds replies to `round` until all replicas answered or `deadline`.
/// Bounded: each iteration consumes one reply and there are at most N.
async fn collect_late_replies(
    round: &mut ReadRound,
    late: &mut UnboundedReceiver<(NodeId, Result<SiblingSet, CallError>)>,
    deadline: Instant,
) {
    while round.outstanding() > 0 {
        match tokio::time::timeout_at(deadline, late.recv()).await {
            Ok(Some((node, result))) => {
                round.on_result(&node, result);
            }
            Ok(None) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use tokio::sync::mpsc::unbounded_channel;

    use crate::versioning::vclock::{Resolution, Sibling, VClock, Version};

    fn id(name: &str) -> NodeId {
        NodeId::from(name)
    }

    fn one(value: &str, node: &str, counter: u64) -> SiblingSet {
        let clock = VClock::from_entries([(id(node), counter, 0)]);
        SiblingSet::from_siblings(
            vec![Sibling { value: Some(value.as_bytes().to_vec()), version: Version { clock, ts_ms: 1, dot: None } }],
            Resolution::Siblings,
        )
    }

    #[test]
    fn settled_only_when_all_answered_and_none_is_stale() {
        let mut round = ReadRound::new(vec![id("a"), id("b")], 1, Resolution::Siblings);
        round.on_reply(&id("a"), one("v", "a", 1));
        assert!(!settled(&round), "b may still answer");
        round.on_reply(&id("b"), one("v", "a", 1));
        assert!(settled(&round), "both answered the same");
        let mut round = ReadRound::new(vec![id("a"), id("b")], 2, Resolution::Siblings);
        round.on_reply(&id("a"), one("new", "a", 2));
        round.on_reply(&id("b"), one("old", "a", 1));
        assert!(!settled(&round), "b is stale");
        let mut single = ReadRound::new(vec![id("a")], 1, Resolution::Siblings);
        single.on_reply(&id("a"), SiblingSet::new());
        assert!(settled(&single), "one replica, nothing to compare");
    }

    #[test]
    fn stale_are_those_missing_part_of_the_merge() {
        let mut round = ReadRound::new(vec![id("a"), id("b"), id("c")], 3, Resolution::Siblings);
        round.on_reply(&id("a"), one("new", "a", 2));
        round.on_reply(&id("b"), one("old", "a", 1));
        round.on_reply(&id("c"), one("other", "c", 1));
        // Merge = {new (a:2), other (c:1)}: a lacks c's, b lacks both, c lacks a's.
        let stale = stale_replicas(round.merged(), round.replies());
        assert_eq!(stale, vec![id("a"), id("b"), id("c")]);

        let mut round = ReadRound::new(vec![id("a"), id("b"), id("c")], 2, Resolution::Siblings);
        round.on_reply(&id("a"), one("new", "a", 2));
        round.on_reply(&id("b"), one("old", "a", 1));
        round.on_error(&id("c"), CallError::Deadline);
        assert_eq!(stale_replicas(round.merged(), round.replies()), vec![id("b")]);
    }

    #[test]
    fn agreeing_or_empty_replies_need_no_repair() {
        let mut round = ReadRound::new(vec![id("a"), id("b")], 2, Resolution::Siblings);
        round.on_reply(&id("a"), one("v", "a", 1));
        round.on_reply(&id("b"), one("v", "a", 1));
        assert!(stale_replicas(round.merged(), round.replies()).is_empty());
        let mut empty = ReadRound::new(vec![id("a"), id("b")], 2, Resolution::Siblings);
        empty.on_reply(&id("a"), SiblingSet::new());
        empty.on_reply(&id("b"), SiblingSet::new());
        assert!(stale_replicas(empty.merged(), empty.replies()).is_empty());
    }

    #[tokio::test]
    async fn late_replies_within_the_wait_are_repaired_too() {
        let mut round = ReadRound::new(vec![id("a"), id("b"), id("c")], 2, Resolution::Siblings);
        round.on_reply(&id("a"), one("new", "a", 2));
        round.on_reply(&id("b"), one("new", "a", 2));
        let (tx, rx) = unbounded_channel();
        tx.send((id("c"), Ok(one("old", "a", 1)))).unwrap();
        let stored = Mutex::new(Vec::new());
        let report = finish_and_repair(round, rx, Duration::from_millis(200), |node, set| {
            stored.lock().unwrap().push((node, set));
            async { Ok(()) }
        })
        .await;
        assert_eq!(report.targets, vec![id("c")]);
        assert_eq!((report.repaired, report.failed), (1, 0));
        let stored = stored.into_inner().unwrap();
        assert_eq!(stored[0].1, one("new", "a", 2), "the merge is what gets stored");
    }

    #[tokio::test]
    async fn silent_replicas_cost_at_most_the_wait() {
        let mut round = ReadRound::new(vec![id("a"), id("b"), id("c")], 2, Resolution::Siblings);
        round.on_reply(&id("a"), one("new", "a", 2));
        round.on_reply(&id("b"), one("old", "a", 1));
        let (_tx, rx) = unbounded_channel();
        let started = Instant::now();
        let report = finish_and_repair(round, rx, Duration::from_millis(200), |_, _| async {
            Err::<(), _>(CallError::Deadline)
        })
        .await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(2), "{waited:?}");
        assert_eq!(report.targets, vec![id("b")]);
        assert_eq!((report.repaired, report.failed), (0, 1));
    }
}
