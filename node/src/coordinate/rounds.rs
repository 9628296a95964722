//! The coordinator's side of one request, as pure state machines.
//!
//! Any node coordinates any request (leaderless): it sends the request to the
//! N replicas of the key's preference list and answers the client once W of
//! them acknowledged a write ([`WriteRound`]) or R of them replied to a read
//! ([`ReadRound`]). These types hold no sockets and no timers: replies,
//! errors and the deadline are fed in as messages, and `decision()` says
//! whether to keep waiting, answer, or give up. A round fails as soon as
//! success became impossible (too many errors), not only at the deadline.
//! Across datacenters the answers needed come in groups (a majority of the
//! local DC, or of every DC: `placement/quorum.rs`); a round is done when
//! every group is met and fails as soon as one no longer can be.
//! `node.rs` drives them; tests drive them by hand. New versions are
//! minted in `mint.rs`.

use std::collections::{BTreeMap, BTreeSet};

use super::error::CallError;
use crate::node_id::NodeId;
use crate::placement::quorum::Requirement;
use crate::versioning::vclock::{Resolution, SiblingSet};

/// What the coordinator should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not enough answers yet, and success is still possible.
    Pending,
    /// Enough replicas answered; `answers` of them so far.
    Done {
        /// Successful answers gathered (>= required).
        answers: usize,
    },
    /// Success is impossible: too many replicas failed or timed out.
    Failed {
        /// Successful answers gathered (< required).
        answers: usize,
        /// How many were required (W or R).
        required: usize,
    },
}

/// What the glue needs from any round: feed results and the deadline in,
/// read the decision out.
pub trait Round {
    /// What a successful replica answer carries.
    type Reply;

    /// A replica answered (or failed). Returns false if the answer was
    /// ignored (not a replica, or already answered).
    fn on_result(&mut self, node: &NodeId, result: Result<Self::Reply, CallError>) -> bool;

    /// The request deadline passed.
    fn on_deadline(&mut self);

    /// Whether to wait, answer or fail.
    fn decision(&self) -> Decision;
}

/// Who of the replicas answered, and how.
#[derive(Debug)]
struct Tally {
    /// The preference list the request went to.
    replicas: Vec<NodeId>,
    /// Which successful answers are needed (W or R, per DC group).
    need: Requirement,
    /// Replicas that answered successfully.
    succeeded: BTreeSet<NodeId>,
    /// Replicas that failed, with the reason (for logs).
    failed: BTreeMap<NodeId, CallError>,
}

impl Tally {
    fn new(replicas: Vec<NodeId>, need: Requirement) -> Self {
        assert!(!need.groups.is_empty() && need.total() >= 1, "a quorum of 0 is meaningless");
        let distinct: BTreeSet<_> = replicas.iter().collect();
        assert_eq!(distinct.len(), replicas.len(), "replicas must be distinct");
        for group in &need.groups {
            assert!(group.members.iter().all(|m| distinct.contains(m)), "a quorum group counts replicas only");
        }
        Tally { replicas, need, succeeded: BTreeSet::new(), failed: BTreeMap::new() }
    }

    /// A single count over every replica (the classic W or R).
    fn counting(replicas: Vec<NodeId>, required: usize) -> Self {
        assert!(required <= replicas.len(), "quorum {required} > {} replicas", replicas.len());
        let need = Requirement::count(replicas.clone(), required);
        Tally::new(replicas, need)
    }

    /// True when `node` is a replica that has not answered yet.
    fn awaiting(&self, node: &NodeId) -> bool {
        self.replicas.contains(node) && !self.succeeded.contains(node) && !self.failed.contains_key(node)
    }

    fn on_success(&mut self, node: &NodeId) -> bool {
        self.awaiting(node) && self.succeeded.insert(node.clone())
    }

    fn on_error(&mut self, node: &NodeId, error: CallError) -> bool {
        let fresh = self.awaiting(node);
        if fresh {
            self.failed.insert(node.clone(), error);
        }
        fresh
    }

    fn on_deadline(&mut self) {
        let late: Vec<NodeId> = self.replicas.iter().filter(|n| self.awaiting(n)).cloned().collect();
        for node in late {
            self.failed.insert(node, CallError::Deadline);
        }
    }

    fn outstanding(&self) -> usize {
        self.replicas.len() - self.succeeded.len() - self.failed.len()
    }

    fn decision(&self) -> Decision {
        let answers = self.succeeded.len();
        let required = self.need.total();
        let mut all_met = true;
        for group in &self.need.groups {
            let got = group.members.iter().filter(|m| self.succeeded.contains(*m)).count();
            let open = group.members.iter().filter(|m| self.awaiting(m)).count();
            if got + open < group.required {
                return Decision::Failed { answers, required };
            }
            all_met &= got >= group.required;
        }
        if all_met {
            Decision::Done { answers }
        } else {
            Decision::Pending
        }
    }
}

/// One write: waiting for W acknowledgements out of N.
#[derive(Debug)]
pub struct WriteRound {
    /// Acks and failures so far.
    tally: Tally,
}

impl WriteRound {
    /// A write sent to `replicas` that needs `w` acks.
    pub fn new(replicas: Vec<NodeId>, w: usize) -> Self {
        WriteRound { tally: Tally::counting(replicas, w) }
    }

    /// A write sent to `replicas` that needs the acks `need` names.
    pub fn needing(replicas: Vec<NodeId>, need: Requirement) -> Self {
        WriteRound { tally: Tally::new(replicas, need) }
    }

    /// A replica stored the version. Returns false (and changes nothing)
    /// for a node that is not a replica or already answered.
    pub fn on_ack(&mut self, node: &NodeId) -> bool {
        self.tally.on_success(node)
    }

    /// A replica failed to store (RPC error, timeout, storage error).
    pub fn on_error(&mut self, node: &NodeId, error: CallError) -> bool {
        self.tally.on_error(node, error)
    }

    /// The request deadline passed: every silent replica counts as failed.
    pub fn on_deadline(&mut self) {
        self.tally.on_deadline();
    }

    /// Whether to wait, answer or fail.
    pub fn decision(&self) -> Decision {
        self.tally.decision()
    }

    /// The replicas that failed, with reasons.
    pub fn failures(&self) -> &BTreeMap<NodeId, CallError> {
        &self.tally.failed
    }
}

impl Round for WriteRound {
    type Reply = ();

    fn on_result(&mut self, node: &NodeId, result: Result<(), CallError>) -> bool {
        match result {
            Ok(()) => self.on_ack(node),
            Err(error) => self.on_error(node, error),
        }
    }

    fn on_deadline(&mut self) {
        WriteRound::on_deadline(self);
    }

    fn decision(&self) -> Decision {
        WriteRound::decision(self)
    }
}

/// One read: waiting for R replies out of N, merging what they return.
#[derive(Debug)]
pub struct ReadRound {
    /// Replies and failures so far.
    tally: Tally,
    /// How replies are merged.
    mode: Resolution,
    /// The merge of every reply so far: what the client gets.
    merged: SiblingSet,
    /// Each replica's own reply, kept so that read repair can later tell
    /// which replicas are stale.
    replies: BTreeMap<NodeId, SiblingSet>,
}

impl ReadRound {
    /// A read sent to `replicas` that needs `r` replies.
    pub fn new(replicas: Vec<NodeId>, r: usize, mode: Resolution) -> Self {
        ReadRound::needing(replicas, Requirement::count(Vec::new(), r), mode)
    }

    /// A read sent to `replicas` that needs the replies `need` names (a
    /// group without members counts every replica).
    pub fn needing(replicas: Vec<NodeId>, mut need: Requirement, mode: Resolution) -> Self {
        if let [group] = need.groups.as_mut_slice() {
            if group.members.is_empty() {
                assert!(group.required <= replicas.len(), "quorum {} > {} replicas", group.required, replicas.len());
                group.members.clone_from(&replicas);
            }
        }
        ReadRound { tally: Tally::new(replicas, need), mode, merged: SiblingSet::new(), replies: BTreeMap::new() }
    }

    /// A replica returned its siblings. Returns false (and changes nothing)
    /// for a node that is not a replica or already answered.
    pub fn on_reply(&mut self, node: &NodeId, siblings: SiblingSet) -> bool {
        if !self.tally.on_success(node) {
            return false;
        }
        self.merged.merge(siblings.clone(), self.mode);
        self.replies.insert(node.clone(), siblings);
        true
    }

    /// A replica failed to answer.
    pub fn on_error(&mut self, node: &NodeId, error: CallError) -> bool {
        self.tally.on_error(node, error)
    }

    /// The request deadline passed: every silent replica counts as failed.
    pub fn on_deadline(&mut self) {
        self.tally.on_deadline();
    }

    /// Whether to wait, answer or fail.
    pub fn decision(&self) -> Decision {
        self.tally.decision()
    }

    /// The merged siblings of all replies so far.
    pub fn merged(&self) -> &SiblingSet {
        &self.merged
    }

    /// Each replica's reply so far.
    pub fn replies(&self) -> &BTreeMap<NodeId, SiblingSet> {
        &self.replies
    }

    /// The replicas whose replies were merged so far, in node-id order: the
    /// trace a Get reports, so a client can name whom a stale read met.
    /// A failed replica is not among them.
    pub fn answered_by(&self) -> Vec<NodeId> {
        self.replies.keys().cloned().collect()
    }

    /// Replicas that have neither replied nor failed yet (read repair keeps
    /// listening for them after the quorum is met).
    pub fn outstanding(&self) -> usize {
        self.tally.outstanding()
    }
}

impl Round for ReadRound {
    type Reply = SiblingSet;

    fn on_result(&mut self, node: &NodeId, result: Result<SiblingSet, CallError>) -> bool {
        match result {
            Ok(siblings) => self.on_reply(node, siblings),
            Err(error) => self.on_error(node, error),
        }
    }

    fn on_deadline(&mut self) {
        ReadRound::on_deadline(self);
    }

    fn decision(&self) -> Decision {
        ReadRound::decision(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versioning::vclock::{Sibling, VClock, Version};

    /// A remote replica's refusal, as a failed call.
    pub(crate) fn refused(reason: &str) -> CallError {
        CallError::Remote(crate::transport::TransportError::Refused(reason.to_string()))
    }

    fn ids(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|n| NodeId::from(*n)).collect()
    }

    fn one(value: &str, node: &str, counter: u64) -> SiblingSet {
        let clock = VClock::from_entries([(NodeId::from(node), counter, 0)]);
        SiblingSet::from_siblings(
            vec![Sibling { value: Some(value.as_bytes().to_vec()), version: Version { clock, ts_ms: 1, dot: None } }],
            Resolution::Siblings,
        )
    }

    #[test]
    fn write_done_after_w_acks() {
        let [a, b, c] = [NodeId::from("a"), NodeId::from("b"), NodeId::from("c")];
        let mut round = WriteRound::new(ids(&["a", "b", "c"]), 2);
        assert_eq!(round.decision(), Decision::Pending);
        assert!(round.on_ack(&a));
        assert!(!round.on_ack(&a), "duplicate ack ignored");
        assert_eq!(round.decision(), Decision::Pending);
        assert!(round.on_error(&c, refused("boom")));
        assert_eq!(round.decision(), Decision::Pending);
        assert!(round.on_ack(&b));
        assert_eq!(round.decision(), Decision::Done { answers: 2 });
    }

    #[test]
    fn write_fails_early_when_quorum_is_impossible() {
        let mut round = WriteRound::new(ids(&["a", "b", "c"]), 2);
        round.on_ack(&NodeId::from("a"));
        round.on_error(&NodeId::from("b"), refused("refused"));
        round.on_error(&NodeId::from("c"), refused("refused"));
        assert_eq!(round.decision(), Decision::Failed { answers: 1, required: 2 });
        assert_eq!(round.failures().len(), 2);
    }

    #[test]
    fn write_fails_at_deadline() {
        let mut round = WriteRound::new(ids(&["a", "b", "c"]), 3);
        round.on_ack(&NodeId::from("a"));
        round.on_ack(&NodeId::from("b"));
        assert_eq!(round.decision(), Decision::Pending);
        round.on_deadline();
        assert_eq!(round.decision(), Decision::Failed { answers: 2, required: 3 });
        assert!(matches!(round.failures()[&NodeId::from("c")], CallError::Deadline));
        assert!(!round.on_ack(&NodeId::from("c")), "late ack after deadline ignored");
    }

    #[test]
    fn strangers_are_ignored() {
        let mut round = WriteRound::new(ids(&["a"]), 1);
        assert!(!round.on_ack(&NodeId::from("z")));
        assert!(!round.on_error(&NodeId::from("z"), refused("x")));
        assert_eq!(round.decision(), Decision::Pending);
    }

    #[test]
    #[should_panic(expected = "quorum")]
    fn quorum_larger_than_replicas_panics() {
        WriteRound::new(ids(&["a", "b"]), 3);
    }

    #[test]
    fn grouped_quorums_need_every_group_and_fail_on_any() {
        use crate::placement::quorum::Group;
        let group = |names: &[&str], required| Group { members: ids(names), required };
        // EACH_QUORUM over dc1 = {a, b, c} and dc2 = {d, e}: 2 of each.
        let each = Requirement { groups: vec![group(&["a", "b", "c"], 2), group(&["d", "e"], 2)] };
        let mut round = WriteRound::needing(ids(&["a", "b", "c", "d", "e"]), each.clone());
        for n in ["a", "b", "c"] {
            round.on_ack(&NodeId::from(n));
        }
        assert_eq!(round.decision(), Decision::Pending, "three acks, all in dc1: dc2 is not met");
        round.on_ack(&NodeId::from("d"));
        assert_eq!(round.decision(), Decision::Pending);
        round.on_ack(&NodeId::from("e"));
        assert_eq!(round.decision(), Decision::Done { answers: 5 });
        let mut cut = WriteRound::needing(ids(&["a", "b", "c", "d", "e"]), each);
        cut.on_ack(&NodeId::from("a"));
        cut.on_error(&NodeId::from("d"), refused("partitioned"));
        assert_eq!(cut.decision(), Decision::Failed { answers: 1, required: 4 }, "dc2 can no longer answer");
        // LOCAL_QUORUM in dc2 ignores dc1 altogether.
        let local = Requirement { groups: vec![group(&["d", "e"], 2)] };
        let mut round = WriteRound::needing(ids(&["a", "b", "c", "d", "e"]), local);
        for n in ["a", "b", "c"] {
            round.on_error(&NodeId::from(n), refused("cut"));
        }
        round.on_ack(&NodeId::from("d"));
        round.on_ack(&NodeId::from("e"));
        assert_eq!(round.decision(), Decision::Done { answers: 2 });
        // A DC without replicas of the key cannot answer a quorum asked of it.
        let nobody = Requirement { groups: vec![group(&[], 1)] };
        assert!(matches!(WriteRound::needing(ids(&["a"]), nobody).decision(), Decision::Failed { .. }));
    }

    #[test]
    fn read_merges_replies() {
        let mut round = ReadRound::new(ids(&["a", "b", "c"]), 2, Resolution::Siblings);
        assert!(round.on_reply(&NodeId::from("a"), one("x", "a", 1)));
        assert_eq!(round.decision(), Decision::Pending);
        assert!(round.on_reply(&NodeId::from("b"), one("y", "b", 1)));
        assert_eq!(round.decision(), Decision::Done { answers: 2 });
        assert_eq!(round.merged().len(), 2);
        assert_eq!(round.replies().len(), 2);
        assert_eq!(round.answered_by(), ids(&["a", "b"]), "the replicas merged, not the silent one");
    }

    #[test]
    fn read_keeps_newest_and_fails_without_quorum() {
        let mut round = ReadRound::new(ids(&["a", "b", "c"]), 3, Resolution::Siblings);
        round.on_reply(&NodeId::from("a"), one("old", "a", 1));
        round.on_reply(&NodeId::from("b"), one("new", "a", 2));
        assert_eq!(round.merged().len(), 1);
        assert_eq!(round.merged().siblings()[0].value.as_deref(), Some(&b"new"[..]));
        round.on_error(&NodeId::from("c"), refused("down"));
        assert_eq!(round.answered_by(), ids(&["a", "b"]), "a failed replica did not answer");
        assert_eq!(round.decision(), Decision::Failed { answers: 2, required: 3 });
    }
}
