//! The pure half of a nemesis: what to do, when, and to whom.
//!
//! A schedule alternates fault and heal windows across the run's fault phase:
//! wait a seeded interval, start a fault, hold it for a seeded duration, heal,
//! repeat until the time limit; the executor heals everything at the end
//! whatever the schedule says. Times are offsets from the start of the fault
//! phase, in milliseconds, so two runs with the same seed have the same
//! schedule exactly (and, executed, the same actions within scheduling noise).
//!
//! Several nemeses compose: each kind gets its own schedule drawn from its
//! own random stream ([`plan_all`]), so adding `clock` to `kill` does not move
//! a single kill. The executor runs the schedules side by side.
//!
//! The steps a schedule is made of, [`Action`] and [`ScheduledAction`], are
//! defined in [`crate::action`], below every module that draws them (the
//! per-nemesis `window`s here call into), so those modules need nothing of
//! this one.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::action::{Action, ScheduledAction};
use crate::kind::NemesisKind;
use crate::{clock, corrupt, datacenter, membership, netem, partition_plan, targets};

/// The whole plan of one nemesis kind for one run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schedule {
    /// Which nemesis drew this schedule.
    #[serde(default)]
    pub kind: Option<NemesisKind>,
    /// In time order.
    pub actions: Vec<ScheduledAction>,
}

/// Knobs of the fault rhythm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rhythm {
    /// Quiet time before a fault, drawn uniformly from this range (ms).
    pub calm_ms: (u64, u64),
    /// How long a fault is held, drawn uniformly from this range (ms).
    pub fault_ms: (u64, u64),
}

impl Default for Rhythm {
    fn default() -> Self {
        Rhythm { calm_ms: (1_000, 3_000), fault_ms: (4_000, 8_000) }
    }
}

/// A uniform draw from an inclusive range; the low end if it is empty.
pub fn draw_ms(range: (u64, u64), rng: &mut impl Rng) -> u64 {
    if range.1 <= range.0 {
        return range.0;
    }
    rng.random_range(range.0..=range.1)
}

/// What a schedule is drawn over: the initial nodes and the run's keys.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The nodes the cluster starts with.
    pub nodes: &'a [String],
    /// The workload's key space (targets of "primaries of a key"); empty: none.
    pub keys: &'a [String],
    /// The nodes of each datacenter; empty for one DC (the DC nemeses then
    /// schedule nothing).
    pub dcs: &'a [Vec<String>],
}

/// The actions of one fault window starting at `start_ms` and held until
/// `end_ms` (`end_ms > start_ms`), for `kind` (not membership: see
/// [`membership::Roster`], which remembers who joined).
fn window(kind: NemesisKind, scope: Scope<'_>, start_ms: u64, end_ms: u64, rng: &mut impl Rng) -> Vec<ScheduledAction> {
    debug_assert!(end_ms > start_ms);
    let at = |at_ms, action| ScheduledAction { at_ms, action };
    let nodes = scope.nodes;
    match kind {
        NemesisKind::None | NemesisKind::Membership => vec![],
        NemesisKind::Partition | NemesisKind::PartitionHold => {
            let (scheme, grudge) = partition_plan::draw(nodes, rng);
            let hold = kind == NemesisKind::PartitionHold;
            vec![at(start_ms, Action::StartPartition { scheme, grudge, hold }), at(end_ms, Action::StopPartition)]
        }
        NemesisKind::Kill => {
            let (nodes, primaries_of) = targets::draw_target(nodes, scope.keys, rng);
            let restart = Action::Restart { nodes: nodes.clone(), primaries_of: primaries_of.clone() };
            vec![at(start_ms, Action::Kill { nodes, primaries_of }), at(end_ms, restart)]
        }
        NemesisKind::PowerLoss => {
            let (nodes, primaries_of) = targets::draw_target(nodes, scope.keys, rng);
            let restart = Action::Restart { nodes: nodes.clone(), primaries_of: primaries_of.clone() };
            vec![at(start_ms, Action::PowerLoss { nodes, primaries_of }), at(end_ms, restart)]
        }
        NemesisKind::Pause => {
            let (nodes, primaries_of) = targets::draw_target(nodes, scope.keys, rng);
            let resume = Action::Resume { nodes: nodes.clone(), primaries_of: primaries_of.clone() };
            vec![at(start_ms, Action::Pause { nodes, primaries_of }), at(end_ms, resume)]
        }
        NemesisKind::Clock => clock::window(nodes, start_ms, end_ms, rng),
        NemesisKind::Latency => netem::window(nodes, start_ms, end_ms, rng),
        NemesisKind::Corrupt => corrupt::window(nodes, start_ms, end_ms, rng),
        NemesisKind::DcPartition => datacenter::partition_window(scope.dcs, start_ms, end_ms, rng),
        NemesisKind::WanLatency => datacenter::wan_window(scope.dcs, start_ms, end_ms, rng),
        NemesisKind::DcOutage => datacenter::outage_window(scope.dcs, start_ms, end_ms, rng),
    }
}

/// The schedule of `kind` over `fault_phase_ms` for `scope`, from `rng`.
pub fn plan(kind: NemesisKind, scope: Scope<'_>, fault_phase_ms: u64, rhythm: Rhythm, rng: &mut impl Rng) -> Schedule {
    let mut actions = Vec::new();
    if kind == NemesisKind::None || scope.nodes.len() < 2 {
        return Schedule { kind: Some(kind), actions };
    }
    let mut roster = membership::Roster::new(scope.nodes);
    let mut t = 0;
    // Bounded: every iteration advances t by at least 2 ms.
    while actions.len() < 10_000 {
        t += draw_ms(rhythm.calm_ms, rng).max(1);
        if t >= fault_phase_ms {
            break;
        }
        let end = (t + draw_ms(rhythm.fault_ms, rng).max(1)).min(fault_phase_ms);
        if kind == NemesisKind::Membership {
            actions.extend(roster.window(t, end, rng));
        } else {
            actions.extend(window(kind, scope, t, end, rng));
        }
        t = end;
    }
    Schedule { kind: Some(kind), actions }
}

/// One schedule per kind, each from its own stream (`rng_for(kind)`), so
/// composing nemeses leaves each one's schedule exactly as it was alone.
pub fn plan_all<R: Rng>(
    kinds: &[NemesisKind],
    scope: Scope<'_>,
    fault_phase_ms: u64,
    rhythm: Rhythm,
    mut rng_for: impl FnMut(NemesisKind) -> R,
) -> Vec<Schedule> {
    kinds
        .iter()
        .filter(|k| **k != NemesisKind::None)
        .map(|k| plan(*k, scope, fault_phase_ms, rhythm, &mut rng_for(*k)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::BTreeSet;

    fn nodes() -> Vec<String> {
        nodes_n(3)
    }

    fn nodes_n(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// Three nodes in two DCs, so the DC nemeses have something to do.
    fn dcs() -> Vec<Vec<String>> {
        vec![vec!["n1".into()], vec!["n2".into(), "n3".into()]]
    }

    fn keys() -> Vec<String> {
        (0..10).map(|i| format!("k{i}")).collect()
    }

    /// `plan` over three nodes and ten keys.
    fn plan3(kind: NemesisKind, fault_phase_ms: u64, seed: u64) -> Schedule {
        let (nodes, keys) = (nodes(), keys());
        let scope = Scope { nodes: &nodes, keys: &keys, dcs: &dcs() };
        plan(kind, scope, fault_phase_ms, Rhythm::default(), &mut ChaCha8Rng::seed_from_u64(seed))
    }

    /// Every kind that schedules something.
    fn faulty_kinds() -> impl Iterator<Item = NemesisKind> {
        crate::ALL_KINDS.into_iter().filter(|k| *k != NemesisKind::None)
    }

    #[test]
    fn same_seed_same_schedule_different_seed_differs() {
        for kind in faulty_kinds() {
            let a = plan3(kind, 30_000, 9);
            let b = plan3(kind, 30_000, 9);
            let c = plan3(kind, 30_000, 10);
            assert_eq!(a, b, "{kind:?}");
            assert_ne!(a, c, "{kind:?}");
            assert!(!a.actions.is_empty());
        }
    }

    #[test]
    fn windows_start_and_end_within_the_phase_in_time_order() {
        for kind in faulty_kinds() {
            let s = plan3(kind, 20_000, 1);
            assert!(s.actions.iter().all(|a| a.at_ms <= 20_000), "{s:?}");
            assert!(s.actions.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "{s:?}");
            assert!(s.actions.first().is_some_and(|a| a.action.starts_fault()), "{s:?}");
            assert!(s.actions.last().is_some_and(|a| !a.action.starts_fault()), "{s:?}");
        }
    }

    #[test]
    fn partitions_alternate_start_and_stop() {
        let s = plan3(NemesisKind::Partition, 20_000, 1);
        for (i, a) in s.actions.iter().enumerate() {
            let is_start = matches!(a.action, Action::StartPartition { .. });
            assert_eq!(is_start, i % 2 == 0, "action {i} out of order: {s:?}");
        }
        assert_eq!(s.actions.len() % 2, 0, "every start has its stop");
    }

    #[test]
    fn composition_keeps_each_schedule_as_it_was_alone() {
        let rng = |k: NemesisKind| ChaCha8Rng::seed_from_u64(7 ^ k.as_str().len() as u64);
        let (nodes, keys) = (nodes(), keys());
        let scope = Scope { nodes: &nodes, keys: &keys, dcs: &dcs() };
        let alone = plan_all(&[NemesisKind::Kill], scope, 20_000, Rhythm::default(), rng);
        let both = plan_all(&[NemesisKind::Clock, NemesisKind::Kill], scope, 20_000, Rhythm::default(), rng);
        assert_eq!(both.len(), 2);
        assert_eq!(alone[0], both[1]);
    }

    #[test]
    fn no_nemesis_no_actions() {
        let s = plan3(NemesisKind::None, 20_000, 1);
        assert!(s.actions.is_empty());
    }

    /// The membership schedule over `n` nodes and no keys.
    fn membership(n: usize, seed: u64) -> Schedule {
        let nodes = nodes_n(n);
        let scope = Scope { nodes: &nodes, keys: &[], dcs: &[] };
        plan(NemesisKind::Membership, scope, 60_000, Rhythm::default(), &mut ChaCha8Rng::seed_from_u64(seed))
    }

    #[test]
    fn membership_same_seed_same_joins_and_leaves() {
        assert_eq!(membership(3, 5), membership(3, 5));
        assert_ne!(membership(3, 5), membership(3, 6));
    }

    /// Replays a membership schedule: joins are fresh names, leaves are members, and
    /// the cluster never goes below its initial size.
    #[test]
    fn membership_never_below_the_initial_size_and_names_are_fresh() {
        for (n, seed) in (1..=5).flat_map(|n| (0..40).map(move |seed| (n, seed))) {
            let s = membership(n, seed);
            let mut members: BTreeSet<String> = nodes_n(n).into_iter().collect();
            let mut used = members.clone();
            let (mut joins, mut initial_left) = (0, 0);
            for step in &s.actions {
                match &step.action {
                    Action::Join { node } => {
                        assert!(used.insert(node.clone()), "{node} reused: {s:?}");
                        members.insert(node.clone());
                        joins += 1;
                    }
                    Action::Leave { node } => {
                        assert!(members.remove(node), "{node} left without being a member: {s:?}");
                        assert!(members.len() >= n && !members.is_empty(), "below {n}: {s:?}");
                        initial_left += usize::from(nodes_n(n).contains(node));
                    }
                    other => panic!("membership scheduled {other:?}"),
                }
            }
            if n >= 2 {
                assert!(joins > 0, "60 s and no join: {s:?}");
            }
            assert!(initial_left <= joins);
        }
    }
}
