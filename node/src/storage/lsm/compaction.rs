//! Compaction: merging tables so reads touch few of them and dead data
//! leaves the disk.
//!
//! ## Strategy: size-tiered, as a base-`fanout` counter
//! Tables form a stack, newest first. A flush pushes a tier-0 table on top;
//! when `fanout` adjacent tables share a tier, they are merged into one
//! table of the next tier, in their place. The stack therefore stays sorted
//! by tier (newest, smallest on top), like the digits of a counter, and:
//! - every entry is rewritten about `log_fanout(data / memtable)` times
//!   (low write amplification, which matters on this workbench's shared,
//!   slow disks and for fsync-heavy runs), against roughly
//!   `fanout * levels` for leveled compaction;
//! - a merge always covers a run of tables adjacent in time, so "newer
//!   table wins" stays true without per-entry sequence numbers;
//! - the price is read amplification (up to `fanout - 1` tables per tier),
//!   which the per-table Bloom filters absorb for point reads. Scans pay
//!   it, and the node's scans (anti-entropy, streaming) are rare.
//!
//! Leveled compaction would bound space and scan cost better but rewrites
//! each entry `fanout` times per level; for a store whose values are small
//! sibling sets overwritten often by quorum writes, tiering fits better.
//!
//! ## What a merge drops
//! Of each key only the newest entry survives (shadowed values go). A
//! tombstone is dropped only when the merge includes the oldest table
//! (nothing older can hold the key) and it is older than the grace period:
//! the grace keeps a delete visible long enough for replicas to learn it.
//!
//! ## Bounds
//! One compaction at a time (one background thread), at most `fanout`
//! input tables each, and writes paced to `max_bytes_per_sec`, so
//! compaction cannot starve foreground I/O.

use std::ops::Range;
use std::time::{Duration, Instant};

use super::memtable::Slot;
use super::sstable::TableBuilder;
use super::LsmError;

/// One input of a merge: entries in key order.
pub type Source = Box<dyn Iterator<Item = Result<(Vec<u8>, Slot), LsmError>> + Send>;

/// The run of tables to merge next, if any: the oldest run of `fanout`
/// adjacent tables of one tier (`tiers` is newest first).
pub fn pick_window(tiers: &[u32], fanout: usize) -> Option<Range<usize>> {
    assert!(fanout >= 2, "fanout must be at least 2");
    let mut end = tiers.len();
    while end >= fanout {
        let start = end - fanout;
        let tier = tiers[end - 1];
        if tiers[start..end].iter().all(|t| *t == tier) {
            return Some(start..end);
        }
        end -= 1;
    }
    None
}

/// A k-way merge of sources ordered newest first: for each key, the entry
/// of the newest source that has it.
pub struct MergeIter {
    /// The inputs, newest first.
    sources: Vec<Source>,
    /// The next entry of each source (`None` once exhausted).
    heads: Vec<Option<(Vec<u8>, Slot)>>,
    /// Whether `heads` has been filled.
    primed: bool,
}

impl MergeIter {
    /// Merges `sources` (newest first).
    pub fn new(sources: Vec<Source>) -> Self {
        let heads = sources.iter().map(|_| None).collect();
        MergeIter { sources, heads, primed: false }
    }

    fn advance(&mut self, i: usize) -> Result<(), LsmError> {
        self.heads[i] = self.sources[i].next().transpose()?;
        Ok(())
    }

    fn step(&mut self) -> Result<Option<(Vec<u8>, Slot)>, LsmError> {
        if !self.primed {
            for i in 0..self.sources.len() {
                self.advance(i)?;
            }
            self.primed = true;
        }
        let mut best: Option<usize> = None;
        for (i, head) in self.heads.iter().enumerate() {
            let Some((k, _)) = head else { continue };
            let better = best.is_none_or(|b| self.heads[b].as_ref().is_some_and(|(bk, _)| k < bk));
            if better {
                best = Some(i);
            }
        }
        let Some(b) = best else { return Ok(None) };
        let winner = self.heads[b].take();
        self.advance(b)?;
        let key = winner.as_ref().map(|(k, _)| k.clone()).unwrap_or_default();
        for i in b + 1..self.heads.len() {
            while self.heads[i].as_ref().is_some_and(|(k, _)| *k == key) {
                self.advance(i)?;
            }
        }
        Ok(winner)
    }
}

impl Iterator for MergeIter {
    type Item = Result<(Vec<u8>, Slot), LsmError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

/// Paces writes to a byte rate.
#[derive(Debug)]
pub struct Throttle {
    /// When pacing started.
    started: Instant,
    /// Allowed rate; 0 = unlimited.
    max_bytes_per_sec: u64,
}

impl Throttle {
    /// A throttle at `max_bytes_per_sec` (0 = off).
    pub fn new(max_bytes_per_sec: u64) -> Self {
        Throttle { started: Instant::now(), max_bytes_per_sec }
    }

    /// Sleeps until `written_bytes` is within the allowed rate.
    pub fn pace(&self, written_bytes: u64) {
        if self.max_bytes_per_sec == 0 {
            return;
        }
        let due = Duration::from_secs_f64(written_bytes as f64 / self.max_bytes_per_sec as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            std::thread::sleep((due - elapsed).min(Duration::from_secs(1)));
        }
    }
}

/// What a merge wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MergeOutcome {
    /// Entries written.
    pub written: u64,
    /// Tombstones dropped.
    pub tombstones_dropped: u64,
}

/// Writes the merge of `sources` into `out`, dropping tombstones deleted at
/// or before `drop_tombstones_upto_ms` (when given).
pub fn merge_into(
    out: &mut TableBuilder,
    sources: Vec<Source>,
    drop_tombstones_upto_ms: Option<u64>,
    throttle: &Throttle,
) -> Result<MergeOutcome, LsmError> {
    let mut outcome = MergeOutcome::default();
    for item in MergeIter::new(sources) {
        let (key, slot) = item?;
        if let (Slot::Tombstone { deleted_at_ms }, Some(upto)) = (&slot, drop_tombstones_upto_ms) {
            if *deleted_at_ms <= upto {
                outcome.tombstones_dropped += 1;
                continue;
            }
        }
        out.add(&key, &slot)?;
        outcome.written += 1;
        if outcome.written % 64 == 0 {
            throttle.pace(out.bytes_written());
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(entries: &[(&str, Option<&str>)]) -> Source {
        let v: Vec<Result<(Vec<u8>, Slot), LsmError>> = entries
            .iter()
            .map(|(k, v)| {
                let slot = match v {
                    Some(v) => Slot::Value(v.as_bytes().to_vec()),
                    None => Slot::Tombstone { deleted_at_ms: 1 },
                };
                Ok((k.as_bytes().to_vec(), slot))
            })
            .collect();
        Box::new(v.into_iter())
    }

    #[test]
    fn windows_are_the_oldest_full_runs() {
        assert_eq!(pick_window(&[0, 0, 0], 4), None);
        assert_eq!(pick_window(&[0, 0, 0, 0], 4), Some(0..4));
        assert_eq!(pick_window(&[0, 0, 0, 0, 1, 1, 1, 1], 4), Some(4..8));
        assert_eq!(pick_window(&[0, 1, 1, 1, 1, 2], 4), Some(1..5));
    }

    #[test]
    fn newest_source_wins_and_keys_are_unique() {
        let m = MergeIter::new(vec![
            src(&[("a", Some("new")), ("c", None)]),
            src(&[("a", Some("old")), ("b", Some("b")), ("c", Some("old"))]),
        ]);
        let got: Vec<_> = m.map(|r| r.unwrap()).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].1, Slot::Value(b"new".to_vec()));
        assert_eq!(got[2].1, Slot::Tombstone { deleted_at_ms: 1 });
    }
}
