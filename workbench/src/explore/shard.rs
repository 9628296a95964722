//! `explore --shard K/N`: the K-th of N slices of a sweep's seeds, so one
//! sweep spreads over several machines (or pods, or processes).
//!
//! The split is round-robin: the seed at offset `i` of the range (seed
//! `start + i`) belongs to shard `i % N + 1`. Round-robin rather than
//! contiguous slices because a seed's cost does not depend on where it is
//! in the range, and so that every shard sees the whole range's spread of
//! seeds; either way the split is a pure function of the range and `K/N`,
//! so the N shards together run every seed exactly once, and
//! `explore --merge` ([`super::merge`]) can check that they did.
//!
//! A bad `K/N` (not two numbers, `N` = 0, `K` outside `1..=N`) is refused
//! by the flag's parser, and a shard left without seeds (N above the
//! range's length) by [`Shard::seeds_of`], both before anything runs.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// One slice of a sweep: shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which slice, in `1..=count`.
    pub index: u32,
    /// How many slices the sweep is cut into (at least 1).
    pub count: u32,
}

impl Shard {
    /// The whole sweep: shard 1 of 1.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Whether the seed at `offset` in the range belongs to this shard.
    pub fn owns(self, offset: usize) -> bool {
        assert!((1..=self.count).contains(&self.index), "a shard's index is in 1..=count: {self:?}");
        offset % self.count as usize + 1 == self.index as usize
    }

    /// The seeds of `range` (the whole sweep's, in order) this shard runs;
    /// refused when it gets none.
    pub fn seeds_of(self, range: &[u64]) -> Result<Vec<u64>> {
        let mine: Vec<u64> = range.iter().enumerate().filter(|(i, _)| self.owns(*i)).map(|(_, s)| *s).collect();
        if mine.is_empty() {
            bail!(
                "--shard {self}: the {} seeds of --seeds make only {} shards with a seed; use N <= {}",
                range.len(),
                range.len(),
                range.len()
            );
        }
        Ok(mine)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || format!("{text:?}: expected K/N, the K-th of N shards (1 <= K <= N), e.g. 2/8");
        let (k, n) = text.split_once('/').ok_or_else(usage)?;
        let (index, count): (u32, u32) = match (k.trim().parse(), n.trim().parse()) {
            (Ok(k), Ok(n)) => (k, n),
            _ => return Err(usage()),
        };
        if count == 0 || !(1..=count).contains(&index) {
            return Err(format!("{text:?}: K must be in 1..=N and N at least 1 (shards are numbered from 1)"));
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_bad_ones_say_why() {
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard { index: 2, count: 3 });
        assert_eq!(" 1 / 1 ".parse::<Shard>().unwrap(), Shard::WHOLE);
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "-1/3", "1/3/5"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad} is refused");
        }
        assert!("0/3".parse::<Shard>().unwrap_err().contains("1..=N"));
    }

    #[test]
    fn the_shards_run_every_seed_exactly_once() {
        let range: Vec<u64> = (10..27).collect();
        for count in 1..=17 {
            let mut all: Vec<u64> =
                (1..=count).flat_map(|index| Shard { index, count }.seeds_of(&range).unwrap()).collect();
            all.sort_unstable();
            assert_eq!(all, range, "{count} shards");
        }
        assert_eq!(Shard { index: 2, count: 3 }.seeds_of(&range).unwrap(), vec![11, 14, 17, 20, 23, 26]);
        assert!(Shard { index: 18, count: 18 }.seeds_of(&range).is_err(), "an empty shard is refused");
    }
}
