//! The campaign's matrix: N x (W, R) x resolution x switches x workloads x
//! nemeses x `--test-count`, expanded into run specs in a fixed order.
//!
//! Order is nemesis-major, then workload, so each summary table's rows are
//! adjacent and a resumed campaign finds its runs by name. A (W, R) pair
//! that fits no `--n` (W or R above every N) is refused; one that fits some
//! N but not another is skipped for that N, and the campaign says which rows
//! it skipped ([`Matrix::skipped`]), so `--n 3,5 --quorums "1,1 4,4"` does
//! what it says and `--quorums "2,2 4,4"` with N=3 is an error, not a
//! silently shorter table. Repetition `i` of a
//! configuration runs with seed `seed + i`: the same campaign twice gives the
//! same runs; repetitions differ from each other.

use anyhow::{bail, Result};
use history::{Arrival, Fsync, Knobs, Resolution, StorageEngine};
use nemesis::Composition;

use crate::datacenters::Layout;
use crate::flag_values::Word;
use crate::spec::{RunSpec, Switches, WorkloadKind};
use crate::store::Store;

/// Every dimension of the matrix, and the knobs every run shares.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Cluster size (at least the largest N).
    pub node_count: usize,
    /// Stores under test (ours and/or peers); peers get one row each.
    pub stores: Vec<Store>,
    /// Replication factors.
    pub ns: Vec<u32>,
    /// (W, R) pairs: numbers, or words (`local`, `each`, `one`, `all`).
    pub quorums: Vec<(Word, Word)>,
    /// The datacenters the nodes are split into (one by default).
    pub layout: Layout,
    /// Conflict resolutions.
    pub resolutions: Vec<Resolution>,
    /// Switch combinations (each a full setting of the four switches).
    pub switches: Vec<Switches>,
    /// `--storage` for every node (None: node default).
    pub storage: Option<StorageEngine>,
    /// `--fsync` for every node (None: node default).
    pub fsync: Option<Fsync>,
    /// Workloads.
    pub workloads: Vec<WorkloadKind>,
    /// Nemesis compositions.
    pub nemeses: Vec<Composition>,
    /// Repetitions of every configuration.
    pub test_count: u32,
    /// The campaign's seed.
    pub seed: u64,
    /// The knobs every run shares, handed to each as they are.
    pub knobs: Knobs,
    /// Nemesis schedules to run instead of the seeded ones (`--schedule`,
    /// e.g. what `explore --shrink` found); a matrix of one run only.
    pub schedule_override: Option<Vec<nemesis::Schedule>>,
}

/// Every combination of the four switches' value lists.
pub fn switch_combinations(
    sloppy: &[Option<bool>],
    hinted: &[Option<bool>],
    repair: &[Option<bool>],
    entropy: &[Option<bool>],
) -> Vec<Switches> {
    let mut out = Vec::new();
    for s in sloppy {
        for h in hinted {
            for r in repair {
                for a in entropy {
                    out.push(Switches { sloppy_quorum: *s, hinted_handoff: *h, read_repair: *r, anti_entropy: *a });
                }
            }
        }
    }
    out
}

impl Matrix {
    /// Rejects a matrix that is empty or cannot run, naming the flags at fault.
    pub fn validate(&self) -> Result<()> {
        if self.ns.is_empty() || self.quorums.is_empty() || self.resolutions.is_empty() || self.switches.is_empty() {
            bail!("the matrix is empty: give at least one --n, --quorums pair, --resolution and switch setting");
        }
        if self.stores.is_empty() || self.workloads.is_empty() || self.nemeses.is_empty() || self.test_count == 0 {
            bail!("the matrix is empty: give at least one --stores, --workload and --nemesis, and --test-count >= 1");
        }
        if let Some(n) = self.ns.iter().find(|n| **n as usize > self.node_count || **n == 0) {
            bail!("--n {n} needs 1..={} (--nodes is {})", self.node_count, self.node_count);
        }
        self.refuse_unfit_pairs()?;
        if let Some(kind) = self.nemeses.iter().flat_map(|c| &c.kinds).find(|k| k.needs_datacenters()) {
            if !self.layout.is_multi_dc() {
                bail!("--nemesis {} acts on datacenters: give --dcs 2 or more", kind.as_str());
            }
        }
        if self.workloads.contains(&WorkloadKind::Prefix) && workload::prefix::pairs(self.knobs.keys) == 0 {
            bail!("--workload prefix needs --keys 2 or more: each pair is a question key and an answer key");
        }
        if self.knobs.arrival == Arrival::Open && !(self.knobs.rate > 0.0 && self.knobs.rate.is_finite()) {
            bail!("--arrival open needs a positive --rate (ops/s offered over all clients)");
        }
        if let Some(schedules) = &self.schedule_override {
            self.validate_schedules(schedules)?;
        }
        if self.runs().is_empty() {
            if !self.stores.contains(&Store::Dynamo) && !self.workloads.contains(&WorkloadKind::Register) {
                bail!("nothing to run: peer stores (--stores) take only --workload register");
            }
            bail!("no --quorums pair fits any --n: W and R must be in 1..=N");
        }
        Ok(())
    }

    /// Refuses a (W, R) pair that fits none of the N (our store only: peers
    /// take no quorum flags).
    fn refuse_unfit_pairs(&self) -> Result<()> {
        if !self.stores.contains(&Store::Dynamo) {
            return Ok(());
        }
        if let Some((w, r)) = self.quorums.iter().find(|q| !self.ns.iter().any(|n| fits(*n, **q))) {
            let ns: Vec<String> = self.ns.iter().map(u32::to_string).collect();
            bail!(
                "--quorums pair {w},{r} (W={w} R={r}) fits no --n ({}): W and R must be in 1..=N; drop the pair or add an --n of at least {}",
                ns.join(","),
                w.count().max(r.count()).unwrap_or(1)
            );
        }
        Ok(())
    }

    /// The rows skipped because their pair does not fit that N, as
    /// `N3 W4 R4` (empty when every pair fits every N).
    pub fn skipped(&self) -> Vec<String> {
        if !self.stores.contains(&Store::Dynamo) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for n in &self.ns {
            for (w, r) in &self.quorums {
                if !fits(*n, (*w, *r)) {
                    out.push(format!("N{n} W{w} R{r}"));
                }
            }
        }
        out
    }

    /// A `--schedule` fits only a matrix of one run, of the nemeses it
    /// schedules, with every action inside the fault phase.
    fn validate_schedules(&self, schedules: &[nemesis::Schedule]) -> Result<()> {
        let runs = self.runs();
        if runs.len() != 1 {
            bail!("--schedule replaces one run's nemesis schedules, but these flags make {} runs: give one --n, --quorums pair, --resolution, --workload, --nemesis and --test-count 1", runs.len());
        }
        let kinds = &runs[0].nemesis.kinds;
        // A window clipped at the end of the phase heals exactly at its end: in it.
        let limit_ms = self.knobs.time_limit_s * 1_000;
        for schedule in schedules {
            if let Some(kind) = schedule.kind.filter(|k| !kinds.contains(k)) {
                bail!("--schedule has a {} schedule, but --nemesis is {}", kind.as_str(), runs[0].nemesis.label());
            }
            if let Some(late) = schedule.actions.iter().find(|a| a.at_ms > limit_ms) {
                bail!(
                    "--schedule: a {} at {} ms is past the fault phase (--time-limit {} s)",
                    late.action.name(),
                    late.at_ms,
                    self.knobs.time_limit_s
                );
            }
        }
        Ok(())
    }

    /// Every run, nemesis-major.
    pub fn runs(&self) -> Vec<RunSpec> {
        let mut out = Vec::new();
        for nemesis in &self.nemeses {
            for workload in &self.workloads {
                for store in &self.stores {
                    // Peer stores hold one value per key: the register workload only.
                    if *store != Store::Dynamo && *workload != WorkloadKind::Register {
                        continue;
                    }
                    for config in self.configurations(*store) {
                        for t in 0..self.test_count {
                            out.push(self.run_spec(*store, nemesis, *workload, config, t));
                        }
                    }
                }
            }
        }
        out
    }

    /// (N, W, R, resolution, switches) rows, valid pairs only.
    fn configurations(&self, store: Store) -> Vec<(u32, Word, Word, Resolution, Switches)> {
        let members = self.node_count as u32;
        if let Some((w, r)) = store.promised_quorum(members) {
            let (w, r) = (Word::Count(w as usize), Word::Count(r as usize));
            return vec![(members, w, r, Resolution::Siblings, Switches::default())];
        }
        let mut out = Vec::new();
        for n in &self.ns {
            for resolution in &self.resolutions {
                for switches in &self.switches {
                    for (w, r) in &self.quorums {
                        if fits(*n, (*w, *r)) {
                            out.push((*n, *w, *r, *resolution, *switches));
                        }
                    }
                }
            }
        }
        out
    }

    fn run_spec(
        &self,
        store: Store,
        nemesis: &Composition,
        workload: WorkloadKind,
        (n, w_word, r_word, resolution, switches): (u32, Word, Word, Resolution, Switches),
        test_index: u32,
    ) -> RunSpec {
        // Peer stores place their own replicas: the layout is ours alone.
        let layout = match store {
            Store::Dynamo => Layout { replicas_per_dc: n / self.layout.dcs.max(1) as u32, ..self.layout },
            _ => Layout::default(),
        };
        let (w, r) = (layout.answers(w_word, n), layout.answers(r_word, n));
        let mut name = match store {
            Store::Dynamo => {
                format!("{}-{}-n{n}-w{w_word}-r{r_word}-{}", nemesis.label(), workload.as_str(), resolution.as_str())
            }
            peer => format!("{}-{}-{}", nemesis.label(), workload.as_str(), peer.as_str()),
        };
        let label = switches.label().replace([' ', ':'], "-");
        if !label.is_empty() {
            name.push('-');
            name.push_str(&label);
        }
        if self.test_count > 1 {
            name.push_str(&format!("-t{test_index}"));
        }
        RunSpec {
            name,
            store,
            node_count: self.node_count,
            n,
            w,
            r,
            w_word,
            r_word,
            layout,
            resolution,
            switches,
            storage: self.storage,
            fsync: self.fsync,
            workload,
            nemesis: nemesis.clone(),
            test_index,
            seed: self.seed.wrapping_add(u64::from(test_index)),
            knobs: self.knobs.clone(),
            schedule_override: self.schedule_override.clone(),
        }
    }
}

/// Whether a pair's numbers fit N (a word fits any N).
fn fits(n: u32, (w, r): (Word, Word)) -> bool {
    let fit = |q: Word| q.count().is_none_or(|k| (1..=n as usize).contains(&k));
    fit(w) && fit(r)
}

/// `(W, R)` pairs of numbers, as the matrix holds them.
#[cfg(test)]
pub fn count_pairs(pairs: &[(u32, u32)]) -> Vec<(Word, Word)> {
    pairs.iter().map(|(w, r)| (Word::Count(*w as usize), Word::Count(*r as usize))).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use history::{KeyShape, NodeChoice};

    pub fn matrix() -> Matrix {
        Matrix {
            node_count: 5,
            stores: vec![Store::Dynamo],
            ns: vec![3, 5],
            quorums: count_pairs(&[(1, 1), (2, 2), (4, 1)]),
            layout: Layout::default(),
            resolutions: vec![Resolution::Siblings, Resolution::Lww],
            switches: switch_combinations(&[None], &[None, Some(false)], &[None], &[None]),
            storage: None,
            fsync: None,
            workloads: vec![WorkloadKind::Register, WorkloadKind::Set],
            nemeses: vec!["none".parse().unwrap(), "kill+clock".parse().unwrap()],
            test_count: 2,
            seed: 42,
            knobs: Knobs {
                warmup_s: 0,
                time_limit_s: 10,
                quiet_s: 2,
                concurrency: 4,
                rate: 100.0,
                arrival: Arrival::Closed,
                keys: 3,
                key_distribution: KeyShape::Uniform,
                node_choice: NodeChoice::Random,
                read_fraction: 0.5,
                rmw_fraction: 0.5,
                request_timeout_ms: 500,
                client_timeout_ms: 2000,
                replica_batching: None,
                memtable_bytes: None,
                refused_backoff_ms: 20,
            },
            schedule_override: None,
        }
    }

    #[test]
    fn expands_every_dimension_and_skips_invalid_pairs() {
        let m = matrix();
        m.validate().unwrap();
        let runs = m.runs();
        // N=3: 2 valid pairs, N=5: 3 -> 5 x 2 resolutions x 2 switch settings x 2 workloads x 2 nemeses x 2 tests.
        assert_eq!(runs.len(), 5 * 2 * 2 * 2 * 2 * 2);
        let names: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.len(), runs.len(), "run names are unique");
        assert!(runs.iter().all(|r| r.w <= r.n && r.r <= r.n));
        assert!(
            runs.iter().any(|r| r.name == "clock+kill-set-n3-w1-r1-lww-hh-off-t1")
                || runs.iter().any(|r| r.name.starts_with("kill+clock-set-n3-w1-r1-lww-hh-off"))
        );
    }

    #[test]
    fn a_pair_that_fits_no_n_is_refused_and_one_that_fits_another_n_is_skipped_by_name() {
        let mut m = matrix();
        m.ns = vec![3];
        m.quorums = count_pairs(&[(2, 2), (4, 4)]);
        let refused = m.validate().unwrap_err().to_string();
        assert!(refused.contains("--quorums pair 4,4") && refused.contains("fits no --n (3)"), "{refused}");
        m.ns = vec![3, 5];
        m.validate().unwrap();
        assert_eq!(m.skipped(), ["N3 W4 R4"]);
        assert!(m.runs().iter().all(|r| (r.w, r.r) != (4, 4) || r.n == 5));
    }

    #[test]
    fn the_prefix_workload_needs_a_question_and_an_answer_key() {
        let mut m = matrix();
        m.workloads = vec![WorkloadKind::Prefix];
        m.knobs.keys = 2;
        m.validate().unwrap();
        m.knobs.keys = 1;
        let refused = m.validate().unwrap_err().to_string();
        assert!(refused.contains("--workload prefix needs --keys 2"), "{refused}");
    }

    #[test]
    fn repetitions_differ_by_seed_only() {
        let runs = matrix().runs();
        assert_eq!(runs[0].seed, 42);
        assert_eq!(runs[1].seed, 43);
        assert_eq!(runs[0].name.replace("-t0", ""), runs[1].name.replace("-t1", ""));
    }
}

#[cfg(test)]
mod store_tests {
    use super::tests::matrix;
    use super::*;

    #[test]
    fn peer_stores_get_one_register_row_each_with_their_promise() {
        let mut m = matrix();
        m.node_count = 3;
        m.ns = vec![3];
        m.test_count = 1;
        m.stores = vec![Store::Dynamo, "etcd-serializable".parse().unwrap(), "redis-replica".parse().unwrap()];
        let runs = m.runs();
        let peers: Vec<&RunSpec> = runs.iter().filter(|r| r.store != Store::Dynamo).collect();
        // 2 peers x 1 row x register only x 2 nemeses.
        assert_eq!(peers.len(), 2 * 2);
        assert!(peers.iter().all(|r| r.workload == WorkloadKind::Register && r.n == 3));
        let etcd = peers.iter().find(|r| r.name.ends_with("etcd-serializable")).expect("an etcd run");
        assert_eq!((etcd.w, etcd.r), (2, 1));
        let names: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.len(), runs.len(), "run names are unique");
    }
}
