//! `explore --merge <dirs...>`: the shards of one sweep, put together.
//!
//! Each directory is a results directory (`results/<name>/`) holding the
//! record of one shard or more ([`super::record::file_name`]: shards run
//! on one machine, or copied into one directory, share it). The merge
//! refuses, naming the records at fault:
//! - shards of different sweeps: another `--seeds`, another N in
//!   `--shard K/N`, another `--swarm` or `--flag-measured`, a build with
//!   other planted bugs, or any flag that changes a run (see
//!   [`Identity::difference`]);
//! - a shard given twice (seeds run twice), and shards missing (seeds not
//!   run), listing them;
//! - a record whose seeds are not its shard's.
//!
//! What it returns are the rows of every shard in seed order: the table
//! printed from them is the one a single sweep of the whole range prints,
//! seed for seed, with the same replay commands when the shards ran with
//! the same `--name` and `--results-dir` (each shard's rows keep the
//! commands that replay them where they ran).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::record::{Identity, SweepRecord};
use super::shard::Shard;
use super::SeedRow;

/// The shards of one sweep, checked and put together.
#[derive(Debug)]
pub struct Merged {
    /// What every shard swept.
    pub identity: Identity,
    /// Each shard's record, in shard order.
    pub shards: Vec<SweepRecord>,
    /// Every run's row, in (seed, run) order.
    pub rows: Vec<SeedRow>,
}

/// Reads and checks the shards in `dirs`.
pub fn merge(dirs: &[PathBuf]) -> Result<Merged> {
    assert!(!dirs.is_empty(), "clap requires at least one directory");
    let mut records: Vec<(PathBuf, SweepRecord)> = Vec::new();
    for dir in dirs {
        records.extend(SweepRecord::read_all(dir)?);
    }
    let (first_dir, first) = &records[0];
    let identity = first.identity.clone();
    for (dir, record) in &records[1..] {
        if let Some(why) = identity.difference(&record.identity) {
            bail!("--merge: {} and {} are not shards of one sweep: {why}", first_dir.display(), dir.display());
        }
    }
    let range = identity.all_seeds();
    let mut by_shard: BTreeMap<u32, (&Path, &SweepRecord)> = BTreeMap::new();
    for (dir, record) in &records {
        check_seeds(dir, record, &range)?;
        if let Some((other, _)) = by_shard.insert(record.shard.index, (dir.as_path(), record)) {
            bail!(
                "--merge: shard {} is given twice ({} and {}): its seeds would count twice",
                record.shard,
                other.display(),
                dir.display()
            );
        }
    }
    let missing: Vec<String> = (1..=identity.shards)
        .filter(|k| !by_shard.contains_key(k))
        .map(|index| {
            let shard = Shard { index, count: identity.shards };
            let seeds = shard.seeds_of(&range).map(|s| seed_list(&s)).unwrap_or_default();
            format!("{shard} (seeds {seeds})")
        })
        .collect();
    if !missing.is_empty() {
        bail!("--merge: shards missing, their seeds were not run: {}", missing.join("; "));
    }
    let shards: Vec<SweepRecord> = by_shard.into_values().map(|(_, r)| r.clone()).collect();
    let mut rows: Vec<SeedRow> =
        shards.iter().flat_map(|s| s.rows.iter().map(|r| r.row(identity.flag_measured))).collect();
    rows.sort_by(|a, b| (a.seed, &a.run).cmp(&(b.seed, &b.run)));
    Ok(Merged { identity, shards, rows })
}

/// Refuses a record whose seeds (or rows) are not those of its shard.
fn check_seeds(dir: &Path, record: &SweepRecord, range: &[u64]) -> Result<()> {
    let expected = record.shard.seeds_of(range)?;
    if record.seeds != expected {
        bail!(
            "--merge: {} ran seeds {} as shard {}, which holds seeds {}",
            dir.display(),
            seed_list(&record.seeds),
            record.shard,
            seed_list(&expected)
        );
    }
    if let Some(stray) = record.rows.iter().find(|r| !expected.contains(&r.seed)) {
        bail!("--merge: {} has a row for seed {}, which is not shard {}'s", dir.display(), stray.seed, record.shard);
    }
    Ok(())
}

/// `1, 4, 7` (the first 10, then how many more).
fn seed_list(seeds: &[u64]) -> String {
    let mut text = seeds.iter().take(10).map(u64::to_string).collect::<Vec<_>>().join(", ");
    if seeds.len() > 10 {
        text.push_str(&format!(" and {} more", seeds.len() - 10));
    }
    text
}
