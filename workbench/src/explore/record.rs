//! `explore.json`: what one sweep (or one shard of it) leaves in its
//! results directory, so that `explore --merge` can put shards together
//! without re-running anything. A shard writes
//! `explore-shard-<K>-of-<N>.json` instead ([`file_name`]), so shards that
//! share a results directory (several on one machine, or copied into one)
//! keep their records apart.
//!
//! It holds the sweep's [`Identity`] (everything that decides what a seed's
//! run is: equal for every shard of one sweep), which shard this was, the
//! seeds it ran, one row per run (verdict, anomalies, replay command, the
//! fault kinds it had) and what it cost. Like `run.json` it is only ever
//! added to: a field is never renamed or removed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use checker::Validity;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::shard::Shard;
use super::SeedRow;
use crate::matrix::Matrix;
use crate::replay::{replay_args, ReplayContext};

/// The record's file name inside the sweep's results directory: `explore.json`
/// for a whole sweep, `explore-shard-<K>-of-<N>.json` for a shard.
pub fn file_name(shard: Shard) -> String {
    if shard == Shard::WHOLE {
        "explore.json".into()
    } else {
        format!("explore-shard-{}-of-{}.json", shard.index, shard.count)
    }
}

/// Whether `name` is a record's file name.
fn is_record(name: &str) -> bool {
    name == "explore.json" || (name.starts_with("explore-shard-") && name.ends_with(".json"))
}

/// What decides every seed's runs; shards of one sweep have equal ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The whole sweep's seeds: the first, and one past the last.
    pub seeds: (u64, u64),
    /// How many shards the sweep was cut into (1: not sharded).
    pub shards: u32,
    /// Each run of the matrix as the flags that replay it at seed 0 (every
    /// dimension and knob written out; `--name` and `--results-dir`, which
    /// do not change a run, left at placeholders).
    pub runs: Vec<String>,
    /// `--flag-measured`.
    pub flag_measured: bool,
    /// `--swarm`.
    pub swarm: bool,
    /// The planted bugs of the workbench that ran it (empty for a clean one).
    pub planted_bugs: Vec<String>,
}

impl Identity {
    /// The identity of a sweep of `matrix` over `seeds` cut into `shards`.
    pub fn of(matrix: &Matrix, seeds: &[u64], shards: u32, flag_measured: bool, swarm: bool) -> Identity {
        assert!(!seeds.is_empty(), "a sweep has seeds");
        let mut at_zero = matrix.clone();
        at_zero.seed = 0;
        let cx = ReplayContext {
            backend: "sim",
            backend_args: &[],
            results_dir: Path::new("results"),
            name: "-",
            expect_anomalies: false,
            schedule_file: Path::new("-"),
        };
        Identity {
            seeds: (seeds[0], seeds[seeds.len() - 1] + 1),
            shards,
            runs: at_zero.runs().iter().map(|spec| replay_args(spec, &cx).join(" ")).collect(),
            flag_measured,
            swarm,
            planted_bugs: crate::planted::bugs().iter().map(|b| b.to_string()).collect(),
        }
    }

    /// The seeds of the whole sweep.
    pub fn all_seeds(&self) -> Vec<u64> {
        (self.seeds.0..self.seeds.1).collect()
    }

    /// The first field in which `other` differs from this one, named as
    /// its flag, with both values; None when they are equal.
    pub fn difference(&self, other: &Identity) -> Option<String> {
        fn show(a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug) -> String {
            format!("{a:?} vs {b:?}")
        }
        if self.seeds != other.seeds {
            return Some(format!("--seeds: {}", show(&self.seeds, &other.seeds)));
        }
        if self.shards != other.shards {
            return Some(format!("--shard K/N with another N: {}", show(&self.shards, &other.shards)));
        }
        if self.flag_measured != other.flag_measured {
            return Some(format!("--flag-measured: {}", show(&self.flag_measured, &other.flag_measured)));
        }
        if self.swarm != other.swarm {
            return Some(format!("--swarm: {}", show(&self.swarm, &other.swarm)));
        }
        if self.planted_bugs != other.planted_bugs {
            return Some(format!("planted bugs of the build: {}", show(&self.planted_bugs, &other.planted_bugs)));
        }
        if self.runs != other.runs {
            let first = self.runs.iter().zip(&other.runs).find(|(a, b)| a != b);
            return Some(match first {
                Some((a, b)) => format!("the runs' flags: {a:?} vs {b:?}"),
                None => format!("the number of runs per seed: {} vs {}", self.runs.len(), other.runs.len()),
            });
        }
        None
    }
}

/// One run's row, as `explore.json` keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowRecord {
    /// The seed.
    pub seed: u64,
    /// The run's directory name.
    pub run: String,
    /// `true`, `false` or `unknown`.
    pub valid: String,
    /// Anomalies its configuration promises away, and invalid checkers.
    pub anomalies: Vec<String>,
    /// Anomalies it does not promise away.
    pub measured: Vec<String>,
    /// The command that replays the run.
    pub replay: String,
    /// Why the run did not finish, if it did not.
    pub error: Option<String>,
    /// The fault kinds the run performed (swarm draws them per seed).
    pub nemesis: Vec<nemesis::NemesisKind>,
    /// Simulated seconds per wall second (the only field that differs between two sweeps of the seed).
    pub speedup: f64,
}

fn validity_name(v: Validity) -> &'static str {
    match v {
        Validity::True => "true",
        Validity::False => "false",
        Validity::Unknown => "unknown",
    }
}

fn validity_of(name: &str) -> Validity {
    match name {
        "true" => Validity::True,
        "false" => Validity::False,
        _ => Validity::Unknown,
    }
}

impl RowRecord {
    /// The record of `row`.
    pub fn of(row: &SeedRow) -> RowRecord {
        RowRecord {
            seed: row.seed,
            run: row.run.clone(),
            valid: validity_name(row.valid).into(),
            anomalies: row.anomalies.clone(),
            measured: row.measured.clone(),
            replay: row.replay.clone(),
            error: row.error.clone(),
            nemesis: row.nemesis.clone(),
            speedup: row.speedup,
        }
    }

    /// The row again, flagged as the sweep flagged it.
    pub fn row(&self, flag_measured: bool) -> SeedRow {
        SeedRow {
            seed: self.seed,
            run: self.run.clone(),
            valid: validity_of(&self.valid),
            anomalies: self.anomalies.clone(),
            measured: self.measured.clone(),
            flag_measured,
            replay: self.replay.clone(),
            speedup: self.speedup,
            error: self.error.clone(),
            nemesis: self.nemesis.clone(),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRecord {
    /// What was swept.
    pub identity: Identity,
    /// Which shard of it this was (1/1: the whole sweep).
    pub shard: Shard,
    /// The seeds this shard ran, in order.
    pub seeds: Vec<u64>,
    /// One per run, in (seed, run) order.
    pub rows: Vec<RowRecord>,
    /// Wall time of the sweep, seconds.
    pub wall_seconds: f64,
    /// Parallel simulations it ran (workers, one per core by default).
    pub jobs: usize,
    /// The workbench that wrote it (as `run.json`'s `written_by`).
    pub written_by: Value,
}

impl SweepRecord {
    /// Reads every record in `dir` (with its path), in file-name order,
    /// saying what is wrong if there is none or one cannot be read.
    pub fn read_all(dir: &Path) -> Result<Vec<(PathBuf, SweepRecord)>> {
        let entries = std::fs::read_dir(dir).with_context(|| {
            format!("cannot read {}: not the results directory of an explore run (results/<name>)", dir.display())
        })?;
        let mut paths: Vec<PathBuf> =
            entries.flatten().filter(|e| is_record(&e.file_name().to_string_lossy())).map(|e| e.path()).collect();
        paths.sort();
        if paths.is_empty() {
            bail!(
                "{} holds no explore.json nor explore-shard-<K>-of-<N>.json: not the results directory of an explore run",
                dir.display()
            );
        }
        paths.into_iter().map(|p| read(&p).map(|r| (p, r))).collect()
    }
}

fn read(path: &Path) -> Result<SweepRecord> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not an explore record", path.display()))
}
