//! Swarm testing (Groce, Zhang, Eide, Chen, Regehr, ISSTA 2012) for
//! `workbench explore --swarm`: each seed runs its own random
//! configuration instead of every seed running the same one.
//!
//! Why: a run that turns every feature on at once is not the run most
//! likely to find a bug. Some features suppress others (a kill clears the
//! in-flight writes a partition would have made stale; 20 keys spread the
//! contention one key would have concentrated), so a sweep in which each
//! seed *omits* a random subset of the features covers more behaviour than
//! one in which every seed has all of them.
//!
//! What a seed draws, all from its own stream of the run's seed
//! (`workload::seeded_rng(seed, "swarm", 0)`), in a fixed order so that
//! one draw never moves another:
//! - fault kinds: every kind of [`POOL`] not already in the run's
//!   `--nemesis` is added with probability 1/2 (`--nemesis` is the base
//!   every seed keeps: `--nemesis none --swarm` is pure swarm);
//! - their parameters: each kind of the run gets, with probability 1/2, its
//!   own rhythm (calm and fault-hold ranges from [`CALM_MENU_MS`] and
//!   [`HOLD_MENU_MS`]) instead of [`nemesis::Rhythm::default`];
//! - workload knobs: each of rate, keys, read fraction and concurrency is,
//!   with probability 1/2, replaced by a value from its menu.
//!
//! The run then is an ordinary run of the chosen configuration: its
//! `run.json` holds the knobs and nemeses it ran with, plus what swarm
//! chose (`swarm`, an added field: [`Swarm::to_json`]); its replay command
//! ([`crate::replay`]) pins the chosen nemesis and knobs, and, when a
//! rhythm was drawn, replays the schedules from the run's `schedule.json`
//! (`--schedule`), so the seed's history replays byte for byte.

use std::collections::BTreeMap;

use nemesis::{Composition, NemesisKind, Rhythm};
use rand::Rng;
use serde_json::{json, Value};

use crate::spec::{RunSpec, WorkloadKind};

/// The field of `run.json`'s extras that records what swarm chose.
pub const RUN_JSON_FIELD: &str = "swarm";

/// The fault kinds swarm adds from: those the simulator performs on our
/// store under any configuration (`partition-hold` is `partition`'s
/// schedule with another delivery, and `corrupt` needs the LSM engine).
pub const POOL: [NemesisKind; 6] = [
    NemesisKind::Partition,
    NemesisKind::Kill,
    NemesisKind::Pause,
    NemesisKind::Clock,
    NemesisKind::Latency,
    NemesisKind::Membership,
];

/// Quiet time before each fault (ms, drawn uniformly from the range): often, as default, rarely.
pub const CALM_MENU_MS: [(u64, u64); 3] = [(200, 1_000), (1_000, 3_000), (3_000, 6_000)];
/// How long each fault is held (ms): short, medium, the default's long holds.
pub const HOLD_MENU_MS: [(u64, u64); 3] = [(300, 1_500), (1_500, 4_000), (4_000, 8_000)];
/// Offered rates (ops/s over all clients).
pub const RATE_MENU: [f64; 3] = [100.0, 200.0, 400.0];
/// Key counts (the prefix workload takes only those of 2 or more).
pub const KEYS_MENU: [u32; 4] = [1, 2, 5, 20];
/// Fractions of ops that are reads.
pub const READ_FRACTION_MENU: [f64; 3] = [0.1, 0.5, 0.9];
/// Client processes.
pub const CONCURRENCY_MENU: [u32; 3] = [2, 6, 12];

/// What swarm chose for one run: the kinds it added, the rhythms it drew
/// and the knobs it replaced (each only if it did).
#[derive(Debug, Clone, PartialEq)]
pub struct Swarm {
    /// The run's `--nemesis` composition, before anything was added.
    pub base: Composition,
    /// The kinds added to it from [`POOL`].
    pub added: Vec<NemesisKind>,
    /// The kinds of the run given their own rhythm, and that rhythm.
    pub rhythms: BTreeMap<NemesisKind, Rhythm>,
    /// Offered rate, ops/s, if drawn.
    pub rate: Option<f64>,
    /// Key count, if drawn.
    pub keys: Option<u32>,
    /// Read fraction, if drawn.
    pub read_fraction: Option<f64>,
    /// Client processes, if drawn.
    pub concurrency: Option<u32>,
}

/// A uniform pick from a non-empty menu.
fn pick<T: Copy>(menu: &[T], rng: &mut impl Rng) -> T {
    assert!(!menu.is_empty(), "a swarm menu is never empty");
    menu[rng.random_range(0..menu.len())]
}

/// `Some(pick)` with probability 1/2; the coin and the pick are always
/// both drawn, so whether one knob varies never shifts the next one's draw.
fn maybe<T: Copy>(menu: &[T], rng: &mut impl Rng) -> Option<T> {
    let vary = rng.random_bool(0.5);
    let value = pick(menu, rng);
    vary.then_some(value)
}

impl Swarm {
    /// What the seed of `spec` draws for it (`spec` as the matrix made it).
    pub fn draw(spec: &RunSpec) -> Swarm {
        let mut rng = workload::seeded_rng(spec.seed, "swarm", 0);
        let base = spec.nemesis.clone();
        // One coin per pool kind, drawn whether or not the base has it.
        let added: Vec<NemesisKind> = POOL.iter().copied().filter(|k| rng.random_bool(0.5) && !base.has(*k)).collect();
        let mut rhythms = BTreeMap::new();
        for kind in POOL {
            let vary = rng.random_bool(0.5);
            let rhythm = Rhythm { calm_ms: pick(&CALM_MENU_MS, &mut rng), fault_ms: pick(&HOLD_MENU_MS, &mut rng) };
            if vary && (base.has(kind) || added.contains(&kind)) {
                rhythms.insert(kind, rhythm);
            }
        }
        let keys_menu: Vec<u32> = match spec.workload {
            // Each prefix pair is a question key and an answer key.
            WorkloadKind::Prefix => KEYS_MENU.iter().copied().filter(|k| *k >= 2).collect(),
            _ => KEYS_MENU.to_vec(),
        };
        Swarm {
            base,
            added,
            rhythms,
            rate: maybe(&RATE_MENU, &mut rng),
            keys: maybe(&keys_menu, &mut rng),
            read_fraction: maybe(&READ_FRACTION_MENU, &mut rng),
            concurrency: maybe(&CONCURRENCY_MENU, &mut rng),
        }
    }

    /// The composition the run performs: the base and what was added.
    pub fn nemesis(&self) -> Composition {
        let mut kinds = self.base.kinds.clone();
        kinds.extend(&self.added);
        kinds.sort();
        kinds.dedup();
        Composition { kinds }
    }

    /// The rhythm of `kind` in this run.
    pub fn rhythm(&self, kind: NemesisKind) -> Rhythm {
        self.rhythms.get(&kind).copied().unwrap_or_default()
    }

    /// `spec` as swarm configures it: the nemesis and knobs chosen, the
    /// run named after its nemesis, and, when a rhythm was drawn, the
    /// schedules drawn with it (so its replay takes `--schedule`).
    pub fn apply(&self, spec: &RunSpec) -> RunSpec {
        assert_eq!(self.base, spec.nemesis, "a swarm is applied to the run it was drawn for");
        let mut out = spec.clone();
        out.nemesis = self.nemesis();
        let base_label = spec.nemesis.label();
        let rest = spec.name.strip_prefix(base_label.as_str()).expect("a run's name starts with its nemesis");
        out.name = format!("{}{rest}", out.nemesis.label());
        let k = &mut out.knobs;
        k.rate = self.rate.unwrap_or(k.rate);
        k.keys = self.keys.unwrap_or(k.keys);
        k.read_fraction = self.read_fraction.unwrap_or(k.read_fraction);
        k.concurrency = self.concurrency.unwrap_or(k.concurrency);
        if !self.rhythms.is_empty() && spec.schedule_override.is_none() {
            out.schedule_override = Some(crate::run::schedules_with(&out, |kind| self.rhythm(kind)));
        }
        out
    }

    /// What `run.json` records under `swarm`: the base, the kinds added,
    /// each drawn rhythm (`calm_ms` and `fault_ms` as `[low, high]`) and
    /// each drawn knob, under the knob's own `run.json` name.
    pub fn to_json(&self) -> Value {
        let rhythms: serde_json::Map<String, Value> = self
            .rhythms
            .iter()
            .map(|(k, r)| {
                (
                    k.as_str().to_string(),
                    json!({"calm_ms": [r.calm_ms.0, r.calm_ms.1], "fault_ms": [r.fault_ms.0, r.fault_ms.1]}),
                )
            })
            .collect();
        let mut knobs = serde_json::Map::new();
        if let Some(v) = self.rate {
            knobs.insert("rate".into(), json!(v));
        }
        if let Some(v) = self.keys {
            knobs.insert("keys".into(), json!(v));
        }
        if let Some(v) = self.read_fraction {
            knobs.insert("read_fraction".into(), json!(v));
        }
        if let Some(v) = self.concurrency {
            knobs.insert("concurrency".into(), json!(v));
        }
        json!({
            "base_nemesis": self.base.label(),
            "added": self.added.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "rhythms": rhythms,
            "knobs": knobs,
        })
    }
}

/// Per fault kind: in how many flagged seeds it was present, and in how
/// many seeds of all, as a table (the kinds of `rows`, in [`nemesis::ALL_KINDS`] order).
///
/// `rows` are `(seed, kinds of a run of it, flagged)`; a seed counts for a
/// kind when any of its runs had it, and as flagged when any run was.
pub fn presence_table(rows: &[(u64, Vec<NemesisKind>, bool)]) -> String {
    let mut by_seed: BTreeMap<u64, (Vec<NemesisKind>, bool)> = BTreeMap::new();
    for (seed, kinds, flagged) in rows {
        let entry = by_seed.entry(*seed).or_default();
        entry.0.extend(kinds);
        entry.1 |= *flagged;
    }
    let flagged_seeds = by_seed.values().filter(|(_, f)| *f).count();
    let mut text = String::from(
        "| fault kind | in flagged seeds | in all seeds | flagged when present |\n| --- | --- | --- | --- |\n",
    );
    for kind in nemesis::ALL_KINDS {
        let with: Vec<bool> = by_seed.values().filter(|(ks, _)| ks.contains(&kind)).map(|(_, f)| *f).collect();
        if with.is_empty() {
            continue;
        }
        let flagged_with = with.iter().filter(|f| **f).count();
        text.push_str(&format!(
            "| {} | {flagged_with} of {flagged_seeds} | {} of {} | {} |\n",
            kind.as_str(),
            with.len(),
            by_seed.len(),
            percent(flagged_with, with.len()),
        ));
    }
    text
}

fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "-".into();
    }
    format!("{:.0}%", 100.0 * part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64, nemesis: &str) -> RunSpec {
        let mut m = crate::matrix::tests::matrix();
        m.ns = vec![3];
        m.quorums = crate::matrix::count_pairs(&[(2, 2)]);
        m.resolutions = vec![history::Resolution::Siblings];
        m.switches = crate::matrix::switch_combinations(&[None], &[None], &[None], &[None]);
        m.workloads = vec![WorkloadKind::Register];
        m.nemeses = vec![nemesis.parse().unwrap()];
        m.test_count = 1;
        m.seed = seed;
        m.runs().remove(0)
    }

    #[test]
    fn the_same_seed_draws_the_same_swarm_and_seeds_differ() {
        let draws: Vec<Swarm> = (0..40).map(|s| Swarm::draw(&spec(s, "partition"))).collect();
        for (s, d) in draws.iter().enumerate() {
            assert_eq!(*d, Swarm::draw(&spec(s as u64, "partition")), "seed {s}");
            assert!(d.nemesis().has(NemesisKind::Partition), "the base stays: {d:?}");
            assert!(!d.added.contains(&NemesisKind::Partition), "nothing is added twice: {d:?}");
        }
        let distinct: std::collections::BTreeSet<String> = draws.iter().map(|d| d.to_json().to_string()).collect();
        assert!(distinct.len() > 30, "40 seeds draw mostly different swarms: {}", distinct.len());
        // Every kind of the pool is left out by some seed and present in another.
        for kind in POOL.iter().filter(|k| **k != NemesisKind::Partition) {
            let present = draws.iter().filter(|d| d.nemesis().has(*kind)).count();
            assert!((5..=35).contains(&present), "{kind:?} in {present} of 40");
        }
    }

    #[test]
    fn applied_the_run_has_what_was_drawn_and_records_it() {
        for seed in 0..20 {
            let base = spec(seed, "none");
            let swarm = Swarm::draw(&base);
            let run = swarm.apply(&base);
            assert_eq!(run.nemesis, swarm.nemesis());
            assert!(run.name.starts_with(&run.nemesis.label()), "{}", run.name);
            assert_eq!(run.knobs.rate, swarm.rate.unwrap_or(base.knobs.rate));
            assert_eq!(run.knobs.keys, swarm.keys.unwrap_or(base.knobs.keys));
            assert_eq!(run.seed, base.seed, "the seed stays the run's");
            assert_eq!(run.schedule_override.is_some(), !swarm.rhythms.is_empty());
            if let Some(schedules) = &run.schedule_override {
                assert_eq!(schedules.len(), run.nemesis.kinds.len());
                assert!(schedules.iter().flat_map(|s| &s.actions).all(|a| a.at_ms <= run.knobs.time_limit_s * 1_000));
            }
            let recorded = swarm.to_json();
            assert_eq!(recorded["base_nemesis"], "none");
            assert_eq!(recorded["added"].as_array().unwrap().len(), swarm.added.len());
            assert_eq!(recorded["knobs"].get("rate").and_then(Value::as_f64), swarm.rate);
        }
    }

    #[test]
    fn the_prefix_workload_gets_at_least_two_keys() {
        for seed in 0..60 {
            let mut s = spec(seed, "none");
            s.workload = WorkloadKind::Prefix;
            assert_ne!(Swarm::draw(&s).keys, Some(1));
        }
    }

    #[test]
    fn the_presence_table_counts_seeds_not_runs() {
        let (partition, kill) = (NemesisKind::Partition, NemesisKind::Kill);
        let rows = vec![(1, vec![partition], true), (1, vec![partition, kill], false), (2, vec![kill], false)];
        let table = presence_table(&rows);
        assert!(table.contains("| partition | 1 of 1 | 1 of 2 | 100% |"), "{table}");
        assert!(table.contains("| kill | 1 of 1 | 2 of 2 | 50% |"), "{table}");
        assert!(!table.contains("| pause"), "{table}");
    }
}
