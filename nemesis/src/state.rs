//! What the nemeses have done and not yet undone, shared by the schedules
//! running side by side.
//!
//! Two reasons to keep it. Composition: a pause must not target a node a
//! kill already took down (SIGSTOP to a dead container fails), so each
//! action acts on the nodes the state allows and records exactly those. And
//! the final heal: it restarts what is still killed, resumes what is still
//! paused, resets skewed clocks and removes qdiscs and rules, whatever the
//! schedules managed to do before an error or the end of the phase.

use std::collections::BTreeSet;

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
}

impl FaultState {
    /// Of `wanted`, the nodes that are up and running (neither killed nor paused).
    pub fn running<'a>(&self, wanted: &'a [String]) -> Vec<&'a String> {
        wanted.iter().filter(|n| !self.killed.contains(*n) && !self.paused.contains(*n)).collect()
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
        let nodes = vec!["n1".to_string(), "n2".to_string(), "n3".to_string()];
        assert_eq!(s.running(&nodes), vec![&"n3".to_string()]);
        assert!(!s.is_healed());
    }
}
