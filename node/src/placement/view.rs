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
//! ring, which stores the write as a hint naming the home node; across
//! datacenters the stand-in is the next healthy node of the home replica's
//! own DC when there is one, so a hint does not cross a WAN it need not.
//!
//! A quorum word (`placement/quorum.rs`) becomes the plan's [`Requirement`]:
//! one count over every target, or a majority group for the coordinator's
//! DC (`local`) or for each DC (`each`), a target counting in the DC of the
//! home replica it stands for. Every target is contacted whatever the word
//! (writes reach every DC), except that a `local` read asks only its own
//! DC's replicas, and every plan lists its own DC's targets first.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use std::collections::BTreeMap;

use crate::membership::gossip::{Change, Gossip, Liveness, RingStatus};
use crate::node_id::NodeId;
use crate::placement::quorum::{majority, Group, Quorum, Requirement, DEFAULT_DC};
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
    /// Successful answers needed, by group.
    pub need: Requirement,
}

impl Plan {
    /// Successful answers needed in all.
    pub fn required(&self) -> usize {
        self.need.total()
    }

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
    /// How many replicas, where, and whether quorums are sloppy.
    pub rules: Rules,
    /// Every known member's datacenter.
    pub dcs: BTreeMap<NodeId, String>,
    /// This node's datacenter (the `local` of a quorum).
    pub home_dc: String,
}

/// What the configuration asks of placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Replicas per key (the sum of `per_dc` when that is set).
    pub n: usize,
    /// Replicas per datacenter; `None`: N over the whole ring.
    pub per_dc: Option<Arc<BTreeMap<String, usize>>>,
    /// Whether down home replicas are replaced by stand-ins.
    pub sloppy: bool,
}

impl Rules {
    /// N replicas over the whole ring.
    pub fn simple(n: usize, sloppy: bool) -> Rules {
        Rules { n, per_dc: None, sloppy }
    }
}

impl View {
    /// The view gossip describes.
    pub fn from_gossip(gossip: &Gossip, rules: &Rules) -> View {
        let ring = |keep: fn(crate::membership::gossip::RingStatus) -> bool| {
            let members: Vec<RingMember> = gossip
                .members()
                .iter()
                .filter(|(_, m)| keep(m.ring_status))
                .map(|(id, m)| RingMember { id: id.clone(), vnodes: m.vnodes.max(1), dc: m.dc.clone() })
                .collect();
            Ring::new(members).ok().map(|r| Arc::new(r.with_replicas_per_dc(rules.per_dc.clone())))
        };
        let dcs: BTreeMap<NodeId, String> = gossip.members().iter().map(|(id, m)| (id.clone(), m.dc.clone())).collect();
        let home_dc = dcs.get(gossip.me()).cloned().unwrap_or_else(|| DEFAULT_DC.to_string());
        let down =
            gossip.members().iter().filter(|(_, m)| m.liveness == Liveness::Down).map(|(id, _)| id.clone()).collect();
        let current = ring(|s| s.in_current_ring());
        let future = ring(|s| s.in_future_ring());
        // Outside a membership change both rings are one (one walk per request).
        let future = if Self::ring_ids(&current) == Self::ring_ids(&future) { current.clone() } else { future };
        View { current, future, down, rules: rules.clone(), dcs, home_dc }
    }

    /// The datacenter of a member (the default for a stranger).
    pub fn dc_of(&self, id: &NodeId) -> &str {
        self.dcs.get(id).map_or(DEFAULT_DC, String::as_str)
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
        let (current, future) = self.home_lists(key);
        let homes = union(&current, &future);
        let extra = homes.len().saturating_sub(current.len().max(future.len()));
        (homes, extra)
    }

    /// The key's preference lists on the current and the future ring.
    fn home_lists(&self, key: &[u8]) -> (Vec<NodeId>, Vec<NodeId>) {
        let n = self.rules.n;
        let list = |ring: &Option<Arc<Ring>>| ring.as_ref().map(|r| r.preference_list(key, n)).unwrap_or_default();
        let current = list(&self.current);
        let same = matches!((&self.current, &self.future), (Some(c), Some(f)) if Arc::ptr_eq(c, f));
        let future = if same { current.clone() } else { list(&self.future) };
        (current, future)
    }

    /// Whom a write of `key` contacts, needing `w` acks on a stable ring.
    pub fn write_plan(&self, key: &[u8], w: usize) -> Plan {
        self.plan(key, Quorum::Count(w), false)
    }

    /// Whom a read of `key` contacts, needing `r` replies on a stable ring.
    pub fn read_plan(&self, key: &[u8], r: usize) -> Plan {
        self.plan(key, Quorum::Count(r), true)
    }

    /// Whom a write of `key` contacts, and the acks `w` comes to.
    pub fn write_plan_for(&self, key: &[u8], w: Quorum) -> Plan {
        self.plan(key, w, false)
    }

    /// Whom a read of `key` contacts, and the replies `r` comes to.
    pub fn read_plan_for(&self, key: &[u8], r: Quorum) -> Plan {
        self.plan(key, r, true)
    }

    fn plan(&self, key: &[u8], quorum: Quorum, reading: bool) -> Plan {
        let (current, future) = self.home_lists(key);
        let homes = union(&current, &future);
        let mut targets: Vec<Target> = homes.iter().map(|h| Target { node: h.clone(), hint_for: None }).collect();
        if self.rules.sloppy {
            self.substitute_down(key, &homes, &mut targets);
        }
        if reading && quorum == Quorum::Local {
            targets.retain(|t| self.home_of(t) == self.home_dc);
        }
        // Own DC first: the order requests are sent in.
        targets.sort_by_key(|t| self.home_of(t) != self.home_dc);
        let need = self.requirement(quorum, &targets, &current, &future);
        debug_assert!(targets.iter().map(|t| &t.node).collect::<BTreeSet<_>>().len() == targets.len());
        Plan { targets, need }
    }

    /// The DC a target counts in: its home replica's.
    fn home_of(&self, target: &Target) -> &str {
        self.dc_of(target.hint_for.as_ref().unwrap_or(&target.node))
    }

    /// What `quorum` comes to over `targets`. Every home only on one of the
    /// two rings adds one to the count it is part of (see the module essay).
    fn requirement(&self, quorum: Quorum, targets: &[Target], current: &[NodeId], future: &[NodeId]) -> Requirement {
        let everyone: Vec<NodeId> = targets.iter().map(|t| t.node.clone()).collect();
        let extra = union(current, future).len().saturating_sub(current.len().max(future.len()));
        let count = |q: usize| Requirement::count(everyone.clone(), (q + extra).min(targets.len()).max(1));
        match quorum {
            Quorum::Count(q) => count(q),
            Quorum::One => count(1),
            Quorum::All => count(targets.len()),
            Quorum::Local => Requirement { groups: vec![self.dc_group(&self.home_dc, targets, current, future)] },
            Quorum::Each => {
                let dcs = self.key_dcs(current, future);
                Requirement { groups: dcs.iter().map(|dc| self.dc_group(dc, targets, current, future)).collect() }
            }
        }
    }

    /// A majority of `dc`'s replicas of the key, plus one per replica of
    /// that DC only one ring has.
    fn dc_group(&self, dc: &str, targets: &[Target], current: &[NodeId], future: &[NodeId]) -> Group {
        let in_dc = |list: &[NodeId]| list.iter().filter(|n| self.dc_of(n) == dc).count();
        let (now, then) = (in_dc(current), in_dc(future));
        let extra = in_dc(&union(current, future)).saturating_sub(now.max(then));
        let members: Vec<NodeId> = targets.iter().filter(|t| self.home_of(t) == dc).map(|t| t.node.clone()).collect();
        Group { members, required: majority(now.max(then)) + extra }
    }

    /// The DCs that hold replicas of the key (each quorum's groups).
    fn key_dcs(&self, current: &[NodeId], future: &[NodeId]) -> BTreeSet<String> {
        union(current, future).iter().map(|n| self.dc_of(n).to_string()).collect()
    }

    /// Replaces each down home replica by the next healthy node clockwise
    /// that is neither a home replica nor already a stand-in, one of the
    /// home replica's own DC when there is one.
    fn substitute_down(&self, key: &[u8], homes: &[NodeId], targets: &mut [Target]) {
        let Some(ring) = &self.current else { return };
        let mut spare: Vec<NodeId> =
            ring.walk(key).into_iter().filter(|n| !homes.contains(n) && !self.down.contains(n)).collect();
        for target in targets.iter_mut().filter(|t| self.down.contains(&t.node)) {
            let dc = self.dc_of(&target.node);
            let Some(at) = spare.iter().position(|s| self.dc_of(s) == dc).or((!spare.is_empty()).then_some(0)) else {
                break;
            };
            let stand_in = spare.remove(at);
            target.hint_for = Some(std::mem::replace(&mut target.node, stand_in));
        }
    }
}

/// `a`, then what `b` adds, in order.
fn union(a: &[NodeId], b: &[NodeId]) -> Vec<NodeId> {
    let mut all = a.to_vec();
    all.extend(b.iter().filter(|n| !a.contains(n)).cloned());
    all
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
    /// Replicas per key, where, and the sloppy quorum switch.
    rules: Rules,
    /// The ring the configuration names: what [`Membership::ring`] shows
    /// before gossip has placed anyone.
    configured: Arc<Ring>,
}

impl Membership {
    /// Wraps a gossip list; `configured` is the ring of the configured members.
    pub fn new(gossip: Gossip, rules: Rules, configured: Ring) -> Membership {
        let view = Arc::new(View::from_gossip(&gossip, &rules));
        let configured = Arc::new(configured.with_replicas_per_dc(rules.per_dc.clone()));
        Membership { gossip: Mutex::new(gossip), view: RwLock::new(view), rules, configured }
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
            let view = Arc::new(View::from_gossip(&gossip, &self.rules));
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
        Ring::new(ids.iter().map(|i| RingMember::new(id(*i), vnodes)).collect()).ok().map(Arc::new)
    }

    fn view(current: &[usize], future: &[usize], down: &[usize], sloppy: bool) -> View {
        View {
            current: ring(current, 64),
            future: ring(future, 64),
            down: down.iter().map(|i| id(*i)).collect(),
            rules: Rules::simple(3, sloppy),
            dcs: BTreeMap::new(),
            home_dc: DEFAULT_DC.to_string(),
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
            assert_eq!(plan.required(), 2);
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
            assert_eq!(plan.required(), 2);
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
                assert_eq!(plan.required(), 3, "W + 1 pending");
            } else {
                assert_eq!((plan.targets.len(), plan.required()), (3, 2));
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
        write.required().saturating_sub(w_only) + read.required().saturating_sub(r_only) <= common
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
            dc: "dc1".into(),
            suspected: false,
        };
        let config = GossipConfig { fanout: 1, fail_after_ms: 1_000 };
        let mut g = Gossip::new(digest(1, RingStatus::Normal), config, 1, 0);
        g.receive(
            &id(2),
            &[digest(2, RingStatus::Leaving), digest(3, RingStatus::Joining), digest(4, RingStatus::Left)],
            0,
        );
        let v = View::from_gossip(&g, &Rules::simple(3, false));
        assert_eq!(View::ring_ids(&v.current), vec![id(1), id(2)]);
        assert_eq!(View::ring_ids(&v.future), vec![id(1), id(3)]);
    }
    /// Six nodes, n1-n3 in dc1 and n4-n6 in dc2, two replicas per DC,
    /// planned by a coordinator in dc1.
    fn two_dcs(down: &[usize], sloppy: bool) -> View {
        let dc = |i: usize| if i <= 3 { "dc1" } else { "dc2" }.to_string();
        let members = (1..=6).map(|i| RingMember { id: id(i), vnodes: 64, dc: dc(i) }).collect();
        let per_dc = Some(Arc::new([("dc1".to_string(), 2), ("dc2".to_string(), 2)].into()));
        let ring = Some(Arc::new(Ring::new(members).unwrap().with_replicas_per_dc(per_dc.clone())));
        View {
            current: ring.clone(),
            future: ring,
            down: down.iter().map(|i| id(*i)).collect(),
            rules: Rules { n: 4, per_dc, sloppy },
            dcs: (1..=6).map(|i| (id(i), dc(i))).collect(),
            home_dc: "dc1".into(),
        }
    }

    #[test]
    fn local_and_each_quorums_count_by_datacenter() {
        let v = two_dcs(&[], false);
        for key in keys(200) {
            let local = v.write_plan_for(&key, Quorum::Local);
            assert_eq!(local.targets.len(), 4, "a write reaches every DC");
            assert!(local.targets[..2].iter().all(|t| v.dc_of(&t.node) == "dc1"), "own DC first");
            assert_eq!(local.need.groups.len(), 1);
            assert_eq!(local.need.groups[0].required, 2);
            assert!(local.need.groups[0].members.iter().all(|m| v.dc_of(m) == "dc1"));
            let each = v.write_plan_for(&key, Quorum::Each);
            let dcs: Vec<(usize, usize)> = each.need.groups.iter().map(|g| (g.members.len(), g.required)).collect();
            assert_eq!(dcs, vec![(2, 2), (2, 2)]);
            let read = v.read_plan_for(&key, Quorum::Local);
            assert!(
                read.targets.len() == 2 && read.targets.iter().all(|t| v.dc_of(&t.node) == "dc1"),
                "local reads stay home"
            );
            assert_eq!(v.write_plan_for(&key, Quorum::All).required(), 4);
            assert_eq!(v.write_plan_for(&key, Quorum::One).required(), 1);
        }
    }

    #[test]
    fn a_stand_in_stays_in_its_home_replicas_datacenter() {
        let v = two_dcs(&[5], true);
        let mut substituted = 0;
        for key in keys(300) {
            let plan = v.write_plan_for(&key, Quorum::Each);
            for t in plan.targets.iter().filter(|t| t.hint_for.is_some()) {
                substituted += 1;
                assert_eq!(t.hint_for, Some(id(5)));
                assert_eq!(v.dc_of(&t.node), "dc2", "{key:?}: {plan:?}");
            }
            let group = plan.need.groups.iter().find(|g| g.members.iter().any(|m| v.dc_of(m) == "dc2")).unwrap();
            assert_eq!(group.members.len(), 2, "the stand-in counts for dc2");
        }
        assert!(substituted > 50, "n5 is a home replica of about 2/3 of keys");
    }
}
