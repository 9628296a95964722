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

use history::Knobs;

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
}

impl WorkloadConfig {
    /// The config of a run with `knobs` and `seed`; panics on no clients or no keys.
    pub fn new(knobs: Knobs, seed: u64) -> WorkloadConfig {
        assert!(knobs.concurrency > 0, "a workload needs at least one client (--concurrency >= 1)");
        assert!(knobs.keys > 0, "a workload needs at least one key (--keys >= 1)");
        let key_dist = KeyDist::new(knobs.key_distribution, knobs.keys);
        WorkloadConfig { knobs, seed, key_dist }
    }

    /// Which key each op touches.
    pub fn key_dist(&self) -> &KeyDist {
        &self.key_dist
    }
}
