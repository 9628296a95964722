//! Gossip failure detection: who is in the cluster and who is alive.
//!
//! Each node keeps a membership list: for every member its address, a
//! heartbeat counter, the local time the heartbeat last grew, its liveness
//! and its ring status. Every `interval` the node bumps its own heartbeat
//! ([`Gossip::tick`]) and sends its whole list to `fanout` random peers;
//! the exchange is push-pull (the reply carries the receiver's list), so one
//! round informs both sides. Merging keeps, per member, the entry with the
//! larger `(generation, heartbeat)`: the generation is the member's start
//! time, so a restarted node's fresh heartbeat still counts as newer.
//!
//! Failure detection follows the seeds' rule that one observer is not
//! enough. A member whose heartbeat has not grown for `fail_after` is
//! *suspected* by this node; every gossip message carries the sender's
//! suspicions, and a member is marked *down* only when at least two nodes
//! (this one and another reporter, who saw the same or a newer heartbeat)
//! suspect it. In a two-node cluster the only possible reporter is this
//! node, so one suffices there. A heartbeat that grows again makes the
//! member *up* at once and clears every report.
//!
//! Ring status (joining, normal, leaving, left) is decided by each member
//! about itself and travels inside its own entry, so the newest entry always
//! carries the newest status; `left` entries stay as tombstones so that a
//! stale message cannot resurrect a departed member.
//!
//! This file has no sockets and no clock: time and messages are inputs, and
//! peer choice comes from a seeded generator, so tests drive whole clusters
//! deterministically. `node.rs` runs the loop and the RPCs.

use std::collections::{BTreeMap, BTreeSet};

use crate::node_id::NodeId;

/// Whether a member is believed to be running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Liveness {
    /// Its heartbeat grew within `fail_after`.
    Up,
    /// This node has not seen its heartbeat grow for `fail_after`.
    Suspect,
    /// Suspected by this node and by at least one other reporter.
    Down,
}

impl Liveness {
    /// The name used by the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Up => "up",
            Liveness::Suspect => "suspect",
            Liveness::Down => "down",
        }
    }
}

/// A member's place in the ring, chosen by the member itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RingStatus {
    /// Receiving its future ranges; gets writes for them, owns nothing yet.
    Joining,
    /// Owns its ranges.
    Normal,
    /// Streaming its ranges away; still owns them.
    Leaving,
    /// Gone from the ring (kept as a tombstone).
    Left,
}

impl RingStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RingStatus::Joining => "joining",
            RingStatus::Normal => "normal",
            RingStatus::Leaving => "leaving",
            RingStatus::Left => "left",
        }
    }

    /// Parses a wire name; unknown names are treated as normal.
    pub fn parse(name: &str) -> RingStatus {
        match name {
            "joining" => RingStatus::Joining,
            "leaving" => RingStatus::Leaving,
            "left" => RingStatus::Left,
            _ => RingStatus::Normal,
        }
    }

    /// Owns ranges on the current ring (reads and writes go to it).
    pub fn in_current_ring(self) -> bool {
        matches!(self, RingStatus::Normal | RingStatus::Leaving)
    }

    /// Owns ranges on the ring after the pending change completes.
    pub fn in_future_ring(self) -> bool {
        matches!(self, RingStatus::Normal | RingStatus::Joining)
    }
}

/// One member as carried in a gossip message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The member.
    pub id: NodeId,
    /// Its `host:port`.
    pub address: String,
    /// Its start time in ms (grows on every restart).
    pub generation: u64,
    /// Its heartbeat within the generation.
    pub heartbeat: u64,
    /// Its ring status.
    pub ring_status: RingStatus,
    /// Its vnodes on the ring.
    pub vnodes: u32,
    /// Its datacenter (`--dc`), chosen by the member itself.
    pub dc: String,
    /// Whether the sender suspects it.
    pub suspected: bool,
}

/// One member as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `host:port` of its gRPC server.
    pub address: String,
    /// Its start time in ms.
    pub generation: u64,
    /// Its heartbeat within the generation.
    pub heartbeat: u64,
    /// Local time (ms) the `(generation, heartbeat)` pair last grew.
    pub updated_ms: u64,
    /// What this node believes.
    pub liveness: Liveness,
    /// Its ring status.
    pub ring_status: RingStatus,
    /// Its vnodes on the ring.
    pub vnodes: u32,
    /// Its datacenter.
    pub dc: String,
    /// Other nodes reporting it suspected at the heartbeat known here.
    pub reporters: BTreeSet<NodeId>,
}

impl Member {
    /// The version that only grows: `(generation, heartbeat)`.
    pub fn version(&self) -> (u64, u64) {
        (self.generation, self.heartbeat)
    }
}

/// The detector's timing and fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GossipConfig {
    /// Peers each round sends to.
    pub fanout: usize,
    /// Silence after which a member is suspected.
    pub fail_after_ms: u64,
}

/// A change of a member's liveness or ring status, for logs and for
/// starting hinted handoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A member not known before.
    Discovered(NodeId),
    /// Liveness went from the first to the second value.
    Liveness(NodeId, Liveness, Liveness),
    /// Ring status changed.
    Ring(NodeId, RingStatus),
}

/// Upper bound on members, so a corrupt or hostile message cannot grow the
/// list without limit.
pub const MAX_MEMBERS: usize = 1024;

/// The membership list of one node and its failure detector.
#[derive(Debug, Clone)]
pub struct Gossip {
    /// This node.
    me: NodeId,
    /// Timing and fan-out.
    config: GossipConfig,
    /// Every member, this node included.
    members: BTreeMap<NodeId, Member>,
    /// State of the seeded peer picker (splitmix64).
    rng_state: u64,
}

impl Gossip {
    /// A list holding only this node, up, with the given ring status.
    pub fn new(me: Digest, config: GossipConfig, seed: u64, now_ms: u64) -> Gossip {
        assert!(config.fanout >= 1 && config.fail_after_ms >= 1);
        let id = me.id.clone();
        let mut gossip = Gossip { me: id.clone(), config, members: BTreeMap::new(), rng_state: seed };
        gossip.members.insert(id, member_from(&me, now_ms));
        gossip
    }

    /// This node's id.
    pub fn me(&self) -> &NodeId {
        &self.me
    }

    /// Adds a member known from configuration (static peers, seeds) as a
    /// normal ring member with an unknown heartbeat; no-op if known.
    pub fn add_known(&mut self, id: NodeId, address: String, vnodes: u32, dc: String, now_ms: u64) {
        if self.members.contains_key(&id) || self.members.len() >= MAX_MEMBERS {
            return;
        }
        let digest = Digest {
            id: id.clone(),
            address,
            generation: 0,
            heartbeat: 0,
            ring_status: RingStatus::Normal,
            vnodes,
            dc,
            suspected: false,
        };
        self.members.insert(id, member_from(&digest, now_ms));
    }

    /// Every member, this node included.
    pub fn members(&self) -> &BTreeMap<NodeId, Member> {
        &self.members
    }

    /// One member.
    pub fn member(&self, id: &NodeId) -> Option<&Member> {
        self.members.get(id)
    }

    /// This node's own entry.
    fn own(&mut self) -> &mut Member {
        self.members.get_mut(&self.me).expect("a gossip list always holds its own node")
    }

    /// Changes this node's ring status (and bumps its heartbeat so the
    /// change wins every merge).
    pub fn set_ring_status(&mut self, status: RingStatus) {
        let own = self.own();
        own.ring_status = status;
        own.heartbeat += 1;
    }

    /// One round: bump the own heartbeat, re-evaluate liveness, and pick the
    /// peers to send the list to.
    pub fn tick(&mut self, now_ms: u64) -> (Vec<NodeId>, Vec<Change>) {
        let own = self.own();
        own.heartbeat += 1;
        own.updated_ms = now_ms;
        let changes = self.evaluate(now_ms);
        (self.pick_peers(), changes)
    }

    /// The message to send: every member with this node's suspicion.
    pub fn digests(&self) -> Vec<Digest> {
        self.members
            .iter()
            .map(|(id, m)| Digest {
                id: id.clone(),
                address: m.address.clone(),
                generation: m.generation,
                heartbeat: m.heartbeat,
                ring_status: m.ring_status,
                vnodes: m.vnodes,
                dc: m.dc.clone(),
                suspected: m.liveness != Liveness::Up,
            })
            .collect()
    }

    /// Merges a message from `from`, then re-evaluates liveness.
    pub fn receive(&mut self, from: &NodeId, digests: &[Digest], now_ms: u64) -> Vec<Change> {
        let mut changes = Vec::new();
        for digest in digests.iter().take(MAX_MEMBERS) {
            if digest.id == self.me {
                continue;
            }
            self.merge_one(from, digest, now_ms, &mut changes);
        }
        changes.extend(self.evaluate(now_ms));
        changes
    }

    fn merge_one(&mut self, from: &NodeId, digest: &Digest, now_ms: u64, changes: &mut Vec<Change>) {
        if !self.members.contains_key(&digest.id) {
            if self.members.len() >= MAX_MEMBERS {
                return;
            }
            self.members.insert(digest.id.clone(), member_from(digest, now_ms));
            changes.push(Change::Discovered(digest.id.clone()));
        }
        let member = self.members.get_mut(&digest.id).expect("inserted above");
        let incoming = (digest.generation, digest.heartbeat);
        if incoming > member.version() {
            if member.ring_status != digest.ring_status {
                changes.push(Change::Ring(digest.id.clone(), digest.ring_status));
            }
            member.address.clone_from(&digest.address);
            member.generation = digest.generation;
            member.heartbeat = digest.heartbeat;
            member.ring_status = digest.ring_status;
            member.vnodes = digest.vnodes;
            member.dc.clone_from(&digest.dc);
            member.updated_ms = now_ms;
            member.reporters.clear();
            if member.liveness != Liveness::Up {
                changes.push(Change::Liveness(digest.id.clone(), member.liveness, Liveness::Up));
                member.liveness = Liveness::Up;
            }
        }
        // A member cannot report itself; a report about an older heartbeat
        // than ours is stale and says nothing.
        if *from == digest.id || from == &self.me {
            return;
        }
        if digest.suspected && incoming == member.version() {
            member.reporters.insert(from.clone());
        } else if !digest.suspected && incoming >= member.version() {
            member.reporters.remove(from);
        }
    }

    /// Reporters needed to mark `id` down: two (this node and one more),
    /// or one when no other live-able node exists to report.
    fn reporters_needed(&self, id: &NodeId) -> usize {
        let others =
            self.members.iter().filter(|(m, member)| *m != id && member.ring_status != RingStatus::Left).count();
        others.clamp(1, 2)
    }

    /// Applies the fail-after and two-reporter rules to every other member.
    fn evaluate(&mut self, now_ms: u64) -> Vec<Change> {
        let ids: Vec<NodeId> = self.members.keys().filter(|id| **id != self.me).cloned().collect();
        let mut changes = Vec::new();
        for id in ids {
            let needed = self.reporters_needed(&id);
            let fail_after = self.config.fail_after_ms;
            let member = self.members.get_mut(&id).expect("listed above");
            let next =
                if member.ring_status == RingStatus::Left || now_ms.saturating_sub(member.updated_ms) < fail_after {
                    Liveness::Up
                } else if 1 + member.reporters.len() >= needed {
                    Liveness::Down
                } else {
                    Liveness::Suspect
                };
            if next != member.liveness {
                changes.push(Change::Liveness(id.clone(), member.liveness, next));
                member.liveness = next;
            }
        }
        changes
    }

    /// `fanout` distinct random peers among the members that have not left.
    fn pick_peers(&mut self) -> Vec<NodeId> {
        let mut candidates: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(id, m)| **id != self.me && m.ring_status != RingStatus::Left)
            .map(|(id, _)| id.clone())
            .collect();
        let wanted = self.config.fanout.min(candidates.len());
        let mut picked = Vec::with_capacity(wanted);
        for _ in 0..wanted {
            let index = (self.next_random() % candidates.len() as u64) as usize;
            picked.push(candidates.swap_remove(index));
        }
        picked
    }

    /// splitmix64: small, seedable, good enough to spread peer choices.
    fn next_random(&mut self) -> u64 {
        self.rng_state = self.rng_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Liveness of a member (unknown members count as down).
    pub fn liveness(&self, id: &NodeId) -> Liveness {
        self.members.get(id).map_or(Liveness::Down, |m| m.liveness)
    }

    /// Members marked down.
    pub fn down(&self) -> BTreeSet<NodeId> {
        self.members.iter().filter(|(_, m)| m.liveness == Liveness::Down).map(|(id, _)| id.clone()).collect()
    }
}

fn member_from(digest: &Digest, now_ms: u64) -> Member {
    Member {
        address: digest.address.clone(),
        generation: digest.generation,
        heartbeat: digest.heartbeat,
        updated_ms: now_ms,
        liveness: Liveness::Up,
        ring_status: digest.ring_status,
        vnodes: digest.vnodes,
        dc: digest.dc.clone(),
        reporters: BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: GossipConfig = GossipConfig { fanout: 2, fail_after_ms: 1_000 };

    fn id(i: usize) -> NodeId {
        NodeId::new(format!("n{i}"))
    }

    fn me(i: usize) -> Digest {
        Digest {
            id: id(i),
            address: format!("10.0.0.{i}:7000"),
            generation: 1,
            heartbeat: 0,
            ring_status: RingStatus::Normal,
            vnodes: 8,
            dc: "dc1".into(),
            suspected: false,
        }
    }

    /// `count` nodes that know every other one from configuration.
    fn cluster(count: usize) -> Vec<Gossip> {
        (1..=count)
            .map(|i| {
                let mut g = Gossip::new(me(i), CONFIG, i as u64, 0);
                for j in (1..=count).filter(|j| *j != i) {
                    g.add_known(id(j), me(j).address, 8, "dc1".into(), 0);
                }
                g
            })
            .collect()
    }

    /// One round at `now_ms`: every live node ticks and exchanges
    /// push-pull with the peers it picked; `dead` nodes do nothing and
    /// receive nothing.
    fn round(nodes: &mut [Gossip], dead: &BTreeSet<usize>, now_ms: u64) {
        for i in 0..nodes.len() {
            if dead.contains(&i) {
                continue;
            }
            let (peers, _) = nodes[i].tick(now_ms);
            for peer in peers {
                let j = nodes.iter().position(|g| *g.me() == peer).unwrap();
                if dead.contains(&j) {
                    continue;
                }
                let from = nodes[i].me().clone();
                let push = nodes[i].digests();
                nodes[j].receive(&from, &push, now_ms);
                let back_from = nodes[j].me().clone();
                let pull = nodes[j].digests();
                nodes[i].receive(&back_from, &pull, now_ms);
            }
        }
    }

    #[test]
    fn a_dead_node_is_marked_down_everywhere_and_up_again() {
        let mut nodes = cluster(5);
        let mut dead = BTreeSet::new();
        for t in 1..=5 {
            round(&mut nodes, &dead, t * 200);
        }
        assert!(nodes.iter().all(|g| g.down().is_empty()));
        dead.insert(4); // n5
        let mut all_down_at = None;
        for t in 6..=40 {
            round(&mut nodes, &dead, t * 200);
            let marked = (0..4).all(|i| nodes[i].liveness(&id(5)) == Liveness::Down);
            if marked && all_down_at.is_none() {
                all_down_at = Some(t * 200);
            }
        }
        let at = all_down_at.expect("every live node marks n5 down");
        eprintln!("n5 died at 1000 ms, marked down everywhere at {at} ms");
        assert!(at >= 1000 + CONFIG.fail_after_ms, "not before fail_after");
        assert!(at <= 1000 + CONFIG.fail_after_ms + 1_000, "converged late: {at}");
        for g in &nodes[..4] {
            assert_eq!(g.down(), BTreeSet::from([id(5)]), "no false positives");
        }
        // n5 restarts with a new generation and its heartbeat grows again.
        nodes[4] = Gossip::new(Digest { generation: 2, ..me(5) }, CONFIG, 99, 8_000);
        nodes[4].add_known(id(1), me(1).address, 8, "dc1".into(), 8_000);
        dead.clear();
        for t in 41..=46 {
            round(&mut nodes, &dead, t * 200);
        }
        for g in &nodes {
            assert_eq!(g.liveness(&id(5)), Liveness::Up, "{} sees n5", g.me());
            assert_eq!(g.members().len(), 5, "the restarted node relearned everyone");
        }
    }

    #[test]
    fn one_reporter_only_suspects() {
        let mut nodes = cluster(3);
        let dead = BTreeSet::new();
        round(&mut nodes, &dead, 100);
        // n1 hears nothing for a long time, but n2 still sees n3 alive.
        let from_n2 = nodes[1].digests();
        let changes = nodes[0].receive(&id(2), &from_n2, 5_000);
        assert_eq!(nodes[0].liveness(&id(3)), Liveness::Suspect);
        assert!(changes.contains(&Change::Liveness(id(3), Liveness::Up, Liveness::Suspect)));
        // A second reporter at the same heartbeat makes it down.
        let mut report = nodes[1].digests();
        report.iter_mut().for_each(|d| d.suspected = d.id == id(3));
        nodes[0].receive(&id(2), &report, 5_001);
        assert_eq!(nodes[0].liveness(&id(3)), Liveness::Down);
        // The member reporting itself alive (newer heartbeat) revives it.
        let mut alive = me(3);
        alive.heartbeat = 100;
        nodes[0].receive(&id(3), &[alive], 5_002);
        assert_eq!(nodes[0].liveness(&id(3)), Liveness::Up);
        assert!(nodes[0].member(&id(3)).unwrap().reporters.is_empty());
    }

    #[test]
    fn stale_reports_do_not_count() {
        let mut nodes = cluster(3);
        round(&mut nodes, &BTreeSet::new(), 100);
        let mut report = nodes[1].digests();
        for d in &mut report {
            if d.id == id(3) {
                d.suspected = true;
                d.heartbeat = 0; // older than what n1 knows
                d.generation = 0;
            }
        }
        nodes[0].receive(&id(2), &report, 5_000);
        assert_eq!(nodes[0].liveness(&id(3)), Liveness::Suspect, "stale report ignored");
    }

    #[test]
    fn two_node_cluster_needs_one_reporter() {
        let mut nodes = cluster(2);
        round(&mut nodes, &BTreeSet::new(), 100);
        nodes[0].tick(5_000);
        assert_eq!(nodes[0].liveness(&id(2)), Liveness::Down);
    }

    #[test]
    fn membership_and_ring_status_converge_from_one_seed() {
        // n1..n4 know each other; n5 knows only n1 and announces itself joining.
        let mut nodes = cluster(4);
        let mut joiner = Gossip::new(Digest { ring_status: RingStatus::Joining, ..me(5) }, CONFIG, 5, 0);
        joiner.add_known(id(1), me(1).address, 8, "dc1".into(), 0);
        nodes.push(joiner);
        let dead = BTreeSet::new();
        let mut converged_at = None;
        for t in 1..=20 {
            round(&mut nodes, &dead, t * 200);
            let all = nodes
                .iter()
                .all(|g| g.members().len() == 5 && g.member(&id(5)).unwrap().ring_status == RingStatus::Joining);
            if all && converged_at.is_none() {
                converged_at = Some(t);
            }
        }
        let rounds = converged_at.expect("converges");
        eprintln!("a joiner known by one seed reached all 5 nodes in {rounds} rounds");
        assert!(rounds <= 5);
        nodes[4].set_ring_status(RingStatus::Normal);
        for t in 21..=26 {
            round(&mut nodes, &dead, t * 200);
        }
        assert!(nodes.iter().all(|g| g.member(&id(5)).unwrap().ring_status == RingStatus::Normal));
        assert!(nodes.iter().all(|g| g.down().is_empty()));
    }

    #[test]
    fn peer_choice_is_seeded_and_distinct() {
        let mut a = cluster(6);
        let mut b = cluster(6);
        for t in 1..10 {
            let (pa, _) = a[0].tick(t);
            let (pb, _) = b[0].tick(t);
            assert_eq!(pa, pb);
            assert_eq!(pa.len(), 2);
            assert_ne!(pa[0], pa[1]);
            assert!(!pa.contains(&id(1)));
        }
    }
}
