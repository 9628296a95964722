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

use crate::action::{Action, ScheduledAction};

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

// Whole membership schedules (`schedule::plan`) are tested in schedule.rs,
// which imports this module; these tests need only the roster.
#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
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
