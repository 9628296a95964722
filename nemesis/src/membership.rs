//! The membership nemesis's schedule: nodes join and leave while the
//! workload runs.
//!
//! Each window is a pair: at its start a fresh node joins (named past every
//! name the run has used, `n4`, `n5`, ... for a cluster of `n1..n3`, so a
//! name never comes back and the history can tell nodes apart), at its end
//! one member leaves. The leaver is drawn from the schedule's stream,
//! preferring a node that joined ([`PREFER_JOINED`] of the time; otherwise
//! any member, so the initial nodes' decommissioning is exercised too). The
//! cluster therefore moves between its initial size and one more: it never
//! shrinks below the size it started with, and never loses its only node.
//!
//! Pure, like every schedule: the [`Roster`] tracks who would be a member if
//! every action so far succeeded. The executor records what really
//! happened (a leave whose node another nemesis holds down is skipped).

use rand::Rng;

use crate::schedule::{Action, ScheduledAction};

/// How often the leaver is drawn among the nodes that joined (when any did)
/// rather than among all members.
pub const PREFER_JOINED: f64 = 0.75;

/// The members as the schedule so far leaves them.
#[derive(Debug, Clone)]
pub struct Roster {
    /// How many nodes the cluster started with: the floor.
    initial: usize,
    /// Current members, in order of arrival.
    members: Vec<String>,
    /// Members that joined during the run, in order of arrival.
    joined: Vec<String>,
    /// The number the next fresh name gets (`n{next_index}`).
    next_index: u64,
}

impl Roster {
    /// The roster of a cluster that starts with `nodes`.
    pub fn new(nodes: &[String]) -> Roster {
        let highest = nodes.iter().filter_map(|n| n.strip_prefix('n')?.parse::<u64>().ok()).max().unwrap_or(0);
        Roster { initial: nodes.len(), members: nodes.to_vec(), joined: Vec::new(), next_index: highest + 1 }
    }

    /// The current members.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// One window: a join at `start_ms`, a leave at `end_ms`.
    pub fn window(&mut self, start_ms: u64, end_ms: u64, rng: &mut impl Rng) -> Vec<ScheduledAction> {
        debug_assert!(end_ms > start_ms);
        let joiner = self.join();
        let leaver = self.leave(rng);
        vec![
            ScheduledAction { at_ms: start_ms, action: Action::Join { node: joiner } },
            ScheduledAction { at_ms: end_ms, action: Action::Leave { node: leaver } },
        ]
    }

    /// Adds a fresh node and returns its name.
    fn join(&mut self) -> String {
        let name = format!("n{}", self.next_index);
        self.next_index += 1;
        assert!(!self.members.contains(&name), "{name} is already a member");
        self.members.push(name.clone());
        self.joined.push(name.clone());
        name
    }

    /// Removes a member drawn from `rng` and returns it.
    fn leave(&mut self, rng: &mut impl Rng) -> String {
        assert!(self.members.len() > self.initial.max(1), "a leave would shrink the cluster below its start");
        let prefer_joined = rng.random_bool(PREFER_JOINED);
        let pool = if prefer_joined && !self.joined.is_empty() { &self.joined } else { &self.members };
        let leaver = pool[rng.random_range(0..pool.len())].clone();
        self.members.retain(|n| *n != leaver);
        self.joined.retain(|n| *n != leaver);
        leaver
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{plan, Rhythm, Schedule, Scope};
    use crate::NemesisKind;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::BTreeSet;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn schedule(n: usize, seed: u64) -> Schedule {
        let nodes = nodes(n);
        let scope = Scope { nodes: &nodes, keys: &[] };
        plan(NemesisKind::Membership, scope, 60_000, Rhythm::default(), &mut ChaCha8Rng::seed_from_u64(seed))
    }

    #[test]
    fn same_seed_same_joins_and_leaves() {
        assert_eq!(schedule(3, 5), schedule(3, 5));
        assert_ne!(schedule(3, 5), schedule(3, 6));
    }

    /// Replays the schedule: joins are fresh names, leaves are members, and
    /// the cluster never goes below its initial size.
    #[test]
    fn never_below_the_initial_size_and_names_are_fresh() {
        for (n, seed) in (1..=5).flat_map(|n| (0..40).map(move |seed| (n, seed))) {
            let s = schedule(n, seed);
            let mut members: BTreeSet<String> = nodes(n).into_iter().collect();
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
                        initial_left += usize::from(nodes(n).contains(node));
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

    #[test]
    fn leavers_are_mostly_nodes_that_joined() {
        // First window of 400 seeds: the joiner n4 leaves with probability
        // 0.75 + 0.25 * 1/4 = 0.8125 (expected 325), an initial node otherwise.
        let joiner_left = (0..400)
            .filter(|seed| {
                let w = Roster::new(&nodes(3)).window(10, 20, &mut ChaCha8Rng::seed_from_u64(*seed));
                matches!(&w[1].action, Action::Leave { node } if node == "n4")
            })
            .count();
        assert!((280..=370).contains(&joiner_left), "{joiner_left} of 400");
    }
}
