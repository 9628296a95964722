//! Where a request goes, given who is in the ring and who is alive.
//!
//! Gossip (`membership/gossip.rs`) says which members exist, their ring status and
//! their liveness; this file turns that into a [`View`] (two rings and a set
//! of down nodes) and the [`View::write_plan`] / [`View::read_plan`] of one
//! key: which nodes to contact, for whom each one stands in, and how many
//! answers are required.
//!
//! Membership changes use two rings, as Cassandra's pending ranges do. The
//! *current* ring holds the normal and leaving members, the *future* ring
//! the normal and joining ones. A key's home replicas are the union of its
//! preference lists on both rings, and every replica that is only in one of
//! them adds one to the quorum: with W + R > N, any write quorum and any
//! read quorum still intersect whichever ring a coordinator believed in, so
//! an acknowledged write stays readable while ranges move. Outside a change
//! both rings are equal and the plan is the plain N/W/R one.
//!
//! Strict quorum contacts the home replicas only, down or not (a down one
//! simply fails). Sloppy quorum replaces every down home replica with the
//! next healthy node clockwise (beyond the home replicas) on the current
//! ring, which stores the write as a hint naming the home node.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use crate::membership::gossip::{Change, Gossip, Liveness, RingStatus};
use crate::node_id::NodeId;
use crate::placement::ring::{Ring, RingMember};

/// One node to contact for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The node to send to.
    pub node: NodeId,
    /// `Some(home)` when the node stands in for a down home replica.
    pub hint_for: Option<NodeId>,
}

/// Whom one request contacts and how many must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Distinct nodes to contact.
    pub targets: Vec<Target>,
    /// Successful answers needed.
    pub required: usize,
}

impl Plan {
    /// The target nodes, in order.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.targets.iter().map(|t| t.node.clone()).collect()
    }

    /// For whom `node` stands in, if it does.
    pub fn hint_for(&self, node: &NodeId) -> Option<NodeId> {
        self.targets.iter().find(|t| &t.node == node).and_then(|t| t.hint_for.clone())
    }
}

/// A snapshot of the cluster as one node sees it.
#[derive(Debug, Clone)]
pub struct View {
    /// Normal and leaving members; `None` when there are none.
    pub current: Option<Arc<Ring>>,
    /// Normal and joining members.
    pub future: Option<Arc<Ring>>,
    /// Members gossip marked down.
    pub down: BTreeSet<NodeId>,
    /// Replicas per key.
    pub n: usize,
    /// Whether down home replicas are replaced by stand-ins.
    pub sloppy: bool,
}

impl View {
    /// The view gossip describes.
    pub fn from_gossip(gossip: &Gossip, n: usize, sloppy: bool) -> View {
        let ring = |keep: fn(crate::membership::gossip::RingStatus) -> bool| {
            let members: Vec<RingMember> = gossip
                .members()
                .iter()
                .filter(|(_, m)| keep(m.ring_status))
                .map(|(id, m)| RingMember { id: id.clone(), vnodes: m.vnodes.max(1) })
                .collect();
            Ring::new(members).ok().map(Arc::new)
        };
        let down =
            gossip.members().iter().filter(|(_, m)| m.liveness == Liveness::Down).map(|(id, _)| id.clone()).collect();
        let current = ring(|s| s.in_current_ring());
        let future = ring(|s| s.in_future_ring());
        // Outside a membership change both rings are one (one walk per request).
        let future = if Self::ring_ids(&current) == Self::ring_ids(&future) { current.clone() } else { future };
        View { current, future, down, n, sloppy }
    }

    /// Members of a ring, or none.
    fn ring_ids(ring: &Option<Arc<Ring>>) -> Vec<NodeId> {
        ring.as_ref().map(|r| r.members().iter().map(|m| m.id.clone()).collect()).unwrap_or_default()
    }

    /// Whether a membership change is in progress.
    pub fn in_transition(&self) -> bool {
        Self::ring_ids(&self.current) != Self::ring_ids(&self.future)
    }

    /// The key's home replicas on both rings (current first) and how many
    /// of them are extra (only on the future ring, or only on the current).
    pub fn homes(&self, key: &[u8]) -> (Vec<NodeId>, usize) {
        let list = |ring: &Option<Arc<Ring>>| ring.as_ref().map(|r| r.preference_list(key, self.n)).unwrap_or_default();
        let current = list(&self.current);
        let same = matches!((&self.current, &self.future), (Some(c), Some(f)) if Arc::ptr_eq(c, f));
        let future = if same { current.clone() } else { list(&self.future) };
        let mut homes = current.clone();
        homes.extend(future.iter().filter(|f| !current.contains(f)).cloned());
        let extra = homes.len().saturating_sub(current.len().max(future.len()));
        (homes, extra)
    }

    /// Whom a write of `key` contacts, needing `w` acks on a stable ring.
    pub fn write_plan(&self, key: &[u8], w: usize) -> Plan {
        self.plan(key, w)
    }

    /// Whom a read of `key` contacts, needing `r` replies on a stable ring.
    pub fn read_plan(&self, key: &[u8], r: usize) -> Plan {
        self.plan(key, r)
    }

    fn plan(&self, key: &[u8], quorum: usize) -> Plan {
        let (homes, extra) = self.homes(key);
        let mut targets: Vec<Target> = homes.iter().map(|h| Target { node: h.clone(), hint_for: None }).collect();
        if self.sloppy {
            self.substitute_down(key, &homes, &mut targets);
        }
        let required = (quorum + extra).min(targets.len()).max(1);
        debug_assert!(targets.iter().map(|t| &t.node).collect::<BTreeSet<_>>().len() == targets.len());
        Plan { targets, required }
    }

    /// Replaces each down home replica by the next healthy node clockwise
    /// that is neither a home replica nor already a stand-in.
    fn substitute_down(&self, key: &[u8], homes: &[NodeId], targets: &mut [Target]) {
        let Some(ring) = &self.current else { return };
        let walk = ring.preference_list(key, ring.members().len());
        let mut spare = walk.into_iter().filter(|n| !homes.contains(n) && !self.down.contains(n));
        for target in targets.iter_mut().filter(|t| self.down.contains(&t.node)) {
            let Some(stand_in) = spare.next() else { break };
            target.hint_for = Some(std::mem::replace(&mut target.node, stand_in));
        }
    }
}

/// The gossip state of a running node and the view derived from it.
///
/// Gossip is mutated under a mutex by the gossip loop and the Gossip RPC;
/// the derived [`View`] is swapped atomically whenever liveness or ring
/// membership changes, so a coordinator takes one `Arc` and plans a whole
/// request against one consistent snapshot.
#[derive(Debug)]
pub struct Membership {
    /// The membership list and failure detector.
    gossip: Mutex<Gossip>,
    /// The snapshot coordinators plan against.
    view: RwLock<Arc<View>>,
    /// Replicas per key.
    n: usize,
    /// Sloppy quorum switch.
    sloppy: bool,
    /// The ring the configuration names: what [`Membership::ring`] shows
    /// before gossip has placed anyone.
    configured: Arc<Ring>,
}

impl Membership {
    /// Wraps a gossip list; `configured` is the ring of the configured members.
    pub fn new(gossip: Gossip, n: usize, sloppy: bool, configured: Ring) -> Membership {
        let view = Arc::new(View::from_gossip(&gossip, n, sloppy));
        Membership { gossip: Mutex::new(gossip), view: RwLock::new(view), n, sloppy, configured: Arc::new(configured) }
    }

    /// The current ring (normal and leaving members) as gossip sees it; the
    /// future ring while only joiners are known; else the configured one.
    pub fn ring(&self) -> Arc<Ring> {
        let view = self.view();
        view.current.clone().or_else(|| view.future.clone()).unwrap_or_else(|| Arc::clone(&self.configured))
    }

    /// The current snapshot.
    pub fn view(&self) -> Arc<View> {
        Arc::clone(&self.view.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs `f` on the gossip state; rebuilds the view when `f` reports
    /// changes (or `force`).
    pub fn update<T>(&self, force: bool, f: impl FnOnce(&mut Gossip) -> (T, Vec<Change>)) -> (T, Vec<Change>) {
        let mut gossip = self.gossip.lock().unwrap_or_else(|e| e.into_inner());
        let (out, changes) = f(&mut gossip);
        if force || !changes.is_empty() {
            let view = Arc::new(View::from_gossip(&gossip, self.n, self.sloppy));
            *self.view.write().unwrap_or_else(|e| e.into_inner()) = view;
        }
        (out, changes)
    }

    /// Reads the gossip state.
    pub fn read<T>(&self, f: impl FnOnce(&Gossip) -> T) -> T {
        f(&self.gossip.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Sets this node's ring status and republishes the view.
    pub fn set_ring_status(&self, status: RingStatus) {
        self.update(true, |g| {
            g.set_ring_status(status);
            ((), Vec::new())
        });
    }

    /// Whether gossip currently sees `node` up.
    pub fn is_up(&self, node: &NodeId) -> bool {
        self.read(|g| g.liveness(node) == Liveness::Up)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::gossip::{Digest, GossipConfig, RingStatus};

    fn id(i: usize) -> NodeId {
        NodeId::new(format!("n{i}"))
    }

    fn ring(ids: &[usize], vnodes: u32) -> Option<Arc<Ring>> {
        Ring::new(ids.iter().map(|i| RingMember { id: id(*i), vnodes }).collect()).ok().map(Arc::new)
    }

    fn view(current: &[usize], future: &[usize], down: &[usize], sloppy: bool) -> View {
        View {
            current: ring(current, 64),
            future: ring(future, 64),
            down: down.iter().map(|i| id(*i)).collect(),
            n: 3,
            sloppy,
        }
    }

    fn keys(count: usize) -> impl Iterator<Item = Vec<u8>> {
        (0..count).map(|i| format!("key-{i}").into_bytes())
    }

    #[test]
    fn stable_ring_is_plain_nwr() {
        let v = view(&[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5], &[], false);
        for key in keys(200) {
            let plan = v.write_plan(&key, 2);
            assert_eq!(plan.targets.len(), 3);
            assert_eq!(plan.required, 2);
            assert!(plan.targets.iter().all(|t| t.hint_for.is_none()));
        }
    }

    #[test]
    fn strict_keeps_down_homes_sloppy_replaces_them() {
        let strict = view(&[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5], &[2], false);
        let sloppy = view(&[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5], &[2], true);
        let mut substituted = 0;
        for key in keys(500) {
            let homes = strict.homes(&key).0;
            assert_eq!(strict.write_plan(&key, 2).nodes(), homes, "strict: homes only");
            let plan = sloppy.write_plan(&key, 2);
            assert_eq!(plan.required, 2);
            assert_eq!(plan.targets.len(), 3);
            assert!(!plan.nodes().contains(&id(2)), "never the down node");
            if homes.contains(&id(2)) {
                substituted += 1;
                let stand_in = plan.targets.iter().find(|t| t.hint_for.is_some()).unwrap();
                assert_eq!(stand_in.hint_for, Some(id(2)));
                assert!(!homes.contains(&stand_in.node));
            }
        }
        assert!(substituted > 100, "n2 is a home replica of ~3/5 of keys");
    }

    #[test]
    fn sloppy_with_too_few_healthy_nodes_keeps_the_home() {
        let v = view(&[1, 2, 3], &[1, 2, 3], &[2], true);
        let plan = v.write_plan(b"k", 2);
        assert!(plan.nodes().contains(&id(2)), "no spare node: the down home stays a target");
    }

    #[test]
    fn a_joining_node_is_an_extra_replica_and_raises_the_quorum() {
        let v = view(&[1, 2, 3, 4], &[1, 2, 3, 4, 5], &[], false);
        assert!(v.in_transition());
        let mut moved = 0;
        for key in keys(1_000) {
            let plan = v.write_plan(&key, 2);
            if plan.nodes().contains(&id(5)) {
                moved += 1;
                assert_eq!(plan.targets.len(), 4);
                assert_eq!(plan.required, 3, "W + 1 pending");
            } else {
                assert_eq!((plan.targets.len(), plan.required), (3, 2));
            }
        }
        eprintln!("joining 5th node is a pending replica for {moved} of 1000 keys");
    }

    /// Any write quorum and any read quorum intersect across the rings that
    /// coordinators may believe during a join: W + R > N keeps reads fresh.
    #[test]
    fn quorums_intersect_across_a_transition() {
        let before = view(&[1, 2, 3], &[1, 2, 3], &[], false);
        let during = view(&[1, 2, 3], &[1, 2, 3, 4], &[], false);
        let after = view(&[1, 2, 3, 4], &[1, 2, 3, 4], &[], false);
        let views = [&before, &during, &after];
        for key in keys(300) {
            for (i, wv) in views.iter().enumerate() {
                // Coordinators differ by at most one step of the change.
                for rv in &views[i.saturating_sub(1)..(i + 2).min(views.len())] {
                    let (wp, rp) = (wv.write_plan(&key, 2), rv.read_plan(&key, 2));
                    assert!(!can_miss(&wp, &rp), "{key:?}: write {wp:?} read {rp:?}");
                }
            }
        }
    }

    /// Whether some W acks and some R replies can be disjoint.
    fn can_miss(write: &Plan, read: &Plan) -> bool {
        let w: BTreeSet<_> = write.nodes().into_iter().collect();
        let r: BTreeSet<_> = read.nodes().into_iter().collect();
        let common = w.intersection(&r).count();
        let w_only = w.len() - common;
        let r_only = r.len() - common;
        write.required.saturating_sub(w_only) + read.required.saturating_sub(r_only) <= common
    }

    /// Adding one node to n moves about 1/(n+1) of the (key, replica) pairs,
    /// and only onto the new node.
    #[test]
    fn rebalancing_moves_about_one_nth_of_the_data() {
        for n_nodes in [3usize, 5, 8] {
            let before = ring(&(1..=n_nodes).collect::<Vec<_>>(), 64).unwrap();
            let after = ring(&(1..=n_nodes + 1).collect::<Vec<_>>(), 64).unwrap();
            let new_node = id(n_nodes + 1);
            let total = 20_000;
            let mut moved = 0;
            for key in keys(total) {
                let old: BTreeSet<_> = before.preference_list(&key, 3).into_iter().collect();
                let new: BTreeSet<_> = after.preference_list(&key, 3).into_iter().collect();
                let gained: Vec<_> = new.difference(&old).collect();
                assert!(gained.iter().all(|g| **g == new_node), "replicas only move to the new node");
                moved += gained.len();
            }
            let fraction = moved as f64 / (total * 3) as f64;
            let ideal = 1.0 / (n_nodes + 1) as f64;
            eprintln!("{n_nodes} -> {} nodes: moved {fraction:.3} of replicas (ideal {ideal:.3})", n_nodes + 1);
            assert!((fraction - ideal).abs() < 0.35 * ideal, "moved {fraction}, ideal {ideal}");
        }
    }

    #[test]
    fn view_from_gossip_splits_rings_by_status() {
        let digest = |i: usize, status| Digest {
            id: id(i),
            address: String::new(),
            generation: 1,
            heartbeat: 1,
            ring_status: status,
            vnodes: 8,
            suspected: false,
        };
        let config = GossipConfig { fanout: 1, fail_after_ms: 1_000 };
        let mut g = Gossip::new(digest(1, RingStatus::Normal), config, 1, 0);
        g.receive(
            &id(2),
            &[digest(2, RingStatus::Leaving), digest(3, RingStatus::Joining), digest(4, RingStatus::Left)],
            0,
        );
        let v = View::from_gossip(&g, 3, false);
        assert_eq!(View::ring_ids(&v.current), vec![id(1), id(2)]);
        assert_eq!(View::ring_ids(&v.future), vec![id(1), id(3)]);
    }
}
