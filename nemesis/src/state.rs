//! What the nemeses have done and not yet undone, shared by the schedules
//! running side by side.
//!
//! Two reasons to keep it. Composition: a pause must not target a node a
//! kill already took down (SIGSTOP to a dead container fails), so each
//! action acts on the nodes the state allows and records exactly those. And
//! the final heal: it restarts what is still killed, resumes what is still
//! paused, resets skewed clocks and removes qdiscs and rules, whatever the
//! schedules managed to do before an error or the end of the phase.
//!
//! Membership changes are not faults (nothing undoes them) but they are
//! state too: a node that left (or is leaving) is no target for a kill,
//! pause, clock or partition drawn from the initial nodes, and the heal
//! records the final members.

use std::collections::{BTreeMap, BTreeSet};

/// Faults currently in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultState {
    /// Nodes SIGKILLed and not restarted.
    pub killed: BTreeSet<String>,
    /// Nodes SIGSTOPped and not resumed.
    pub paused: BTreeSet<String>,
    /// Nodes whose clock offset is not zero.
    pub skewed: BTreeSet<String>,
    /// Whether partition rules may be installed.
    pub partitioned: bool,
    /// Whether netem qdiscs may be installed.
    pub latency: bool,
    /// Nodes that joined during the run (and may have left since).
    pub joined: BTreeSet<String>,
    /// Nodes being decommissioned right now.
    pub leaving: BTreeSet<String>,
    /// Nodes that left the cluster (their containers or processes are gone).
    pub left: BTreeSet<String>,
    /// `"<f> <key>"` (e.g. `"kill k3"`) -> the primaries that start action
    /// hit, so the matching restart or resume undoes exactly those.
    pub aimed: BTreeMap<String, Vec<String>>,
}

impl FaultState {
    /// Of `wanted`, the nodes that are up and running (neither killed nor
    /// paused) and still members.
    pub fn running<'a>(&self, wanted: &'a [String]) -> Vec<&'a String> {
        wanted.iter().filter(|n| !self.killed.contains(*n) && !self.paused.contains(*n) && !self.gone(n)).collect()
    }

    /// Whether `node` left the cluster or is leaving it.
    pub fn gone(&self, node: &str) -> bool {
        self.left.contains(node) || self.leaving.contains(node)
    }

    /// Whether nothing is left to heal.
    pub fn is_healed(&self) -> bool {
        self.killed.is_empty() && self.paused.is_empty() && self.skewed.is_empty() && !self.partitioned && !self.latency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_excludes_killed_and_paused() {
        let mut s = FaultState::default();
        s.killed.insert("n1".into());
        s.paused.insert("n2".into());
        s.left.insert("n4".into());
        s.leaving.insert("n5".into());
        let nodes: Vec<String> = ["n1", "n2", "n3", "n4", "n5"].iter().map(|n| n.to_string()).collect();
        assert_eq!(s.running(&nodes), vec![&"n3".to_string()]);
        assert!(!s.is_healed());
    }
}
