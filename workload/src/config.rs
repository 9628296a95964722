//! What a register or set run is given: the campaign's [`Knobs`] as they
//! are, the run's seed, and the key distribution the knobs describe (built
//! once here, so the zipfian table is not rebuilt per worker).
//!
//! One struct for both workloads, holding the knobs rather than copies of
//! their fields: a knob added to [`Knobs`] reaches the workers without a
//! second list to extend. The constructor checks what the workers assume
//! (at least one client and one key), so a bad value fails where it was
//! made, not inside a worker task after the cluster is up; the campaign's
//! flag parser refuses such values before that.
//!
//! Across datacenters every client belongs to one DC (client `i` to DC
//! `i mod D`) and talks only to that DC's nodes, as an application server
//! talks to its local replicas: [`WorkloadConfig::pick_target`] maps the
//! node a worker drew onto its own DC's nodes. With one DC it is the
//! identity, so single-DC runs draw exactly what they drew before.

use history::{Knobs, NodeChoice};

use crate::KeyDist;

/// The knobs and seed of one workload run.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Clients, rate, arrival, keys, node choice, fractions: as the campaign set them.
    pub knobs: Knobs,
    /// The run's seed; every decision of every worker comes from it.
    pub seed: u64,
    /// `knobs.key_distribution` over `knobs.keys` keys.
    key_dist: KeyDist,
    /// The targets (indexes into the node list) of each datacenter; empty:
    /// one DC of every target.
    datacenters: Vec<Vec<usize>>,
}

impl WorkloadConfig {
    /// The config of a run with `knobs` and `seed`; panics on no clients or no keys.
    pub fn new(knobs: Knobs, seed: u64) -> WorkloadConfig {
        assert!(knobs.concurrency > 0, "a workload needs at least one client (--concurrency >= 1)");
        assert!(knobs.keys > 0, "a workload needs at least one key (--keys >= 1)");
        let key_dist = KeyDist::new(knobs.key_distribution, knobs.keys);
        WorkloadConfig { knobs, seed, key_dist, datacenters: Vec::new() }
    }

    /// The same config with clients spread over `datacenters` (each a
    /// non-empty list of target indexes).
    pub fn with_datacenters(mut self, datacenters: Vec<Vec<usize>>) -> WorkloadConfig {
        assert!(datacenters.iter().all(|dc| !dc.is_empty()), "every datacenter has a node");
        self.datacenters = datacenters;
        self
    }

    /// The datacenter (index) client `index` belongs to, and its targets.
    fn home(&self, index: u32) -> Option<&[usize]> {
        let count = self.datacenters.len();
        (count > 0).then(|| self.datacenters[index as usize % count].as_slice())
    }

    /// The target client `index` sends an op to, given its draw `random`
    /// (in `0..targets`): the drawn target, or with [`NodeChoice::Fixed`]
    /// the client's own; mapped onto the client's DC when there are several.
    pub fn pick_target(&self, random: usize, index: u32, targets: usize) -> usize {
        assert!(random < targets, "a draw is one of the targets");
        let Some(home) = self.home(index) else {
            return match self.knobs.node_choice {
                NodeChoice::Fixed => index as usize % targets,
                NodeChoice::Random => random,
            };
        };
        let per_dc_index = index as usize / self.datacenters.len();
        let at = match self.knobs.node_choice {
            NodeChoice::Fixed => per_dc_index % home.len(),
            NodeChoice::Random => random % home.len(),
        };
        home[at]
    }

    /// Which key each op touches.
    pub fn key_dist(&self) -> &KeyDist {
        &self.key_dist
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_stay_in_their_datacenter_and_one_dc_changes_nothing() {
        let mut knobs = Knobs { concurrency: 4, keys: 3, ..Knobs::default() };
        let plain = WorkloadConfig::new(knobs.clone(), 1);
        assert_eq!((0..6).map(|r| plain.pick_target(r, 2, 6)).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
        let dcs = plain.clone().with_datacenters(vec![vec![0, 1, 2], vec![3, 4, 5]]);
        for random in 0..6 {
            assert!(dcs.pick_target(random, 0, 6) < 3, "client 0 is in dc1");
            assert!(dcs.pick_target(random, 1, 6) >= 3, "client 1 is in dc2");
        }
        knobs.node_choice = NodeChoice::Fixed;
        let fixed = WorkloadConfig::new(knobs, 1).with_datacenters(vec![vec![0, 1, 2], vec![3, 4, 5]]);
        let homes: Vec<usize> = (0..6).map(|i| fixed.pick_target(0, i, 6)).collect();
        assert_eq!(homes, vec![0, 3, 1, 4, 2, 5]);
    }
}
