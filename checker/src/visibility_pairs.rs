//! The (acknowledged write, later read) pairs of t-visibility, counted
//! without visiting every pair.
//!
//! t-visibility ([`crate::t_visibility`]) pairs every `ok` read with every
//! acknowledged write of its key that was acked before the read began: a
//! read's `k` counts those it does not cover, and the pairs within
//! [`HORIZON_MS`] fill the `t` bins, up to [`MAX_PAIRS`] of them. Visiting
//! each pair costs the product of a key's writes and reads: a million ops
//! on a hundred keys is 2.5 billion version comparisons.
//!
//! Under `lww` "covers" is a total order: a read covers a write when its
//! greatest sibling is not older ([`history::Version::lww_cmp`]). So per key
//! the acks are sorted twice, by ack time and by version; a read is a
//! prefix of the first (acked before it began) and a prefix of the second
//! (not newer than what it returned), and:
//! - its `k` is the prefix's size minus the acks in both prefixes, counted
//!   for all reads of a key in one sweep over ack time with a Fenwick tree;
//! - its binned pairs are the acks of the time prefix within the horizon, a
//!   contiguous range, each covered when its version rank is in the second
//!   prefix. Visiting them stops at [`MAX_PAIRS`]; past it a read's range
//!   only adds its length to the pairs not examined.
//!
//! The figures are exactly those of visiting every pair: the pairs examined
//! are the same (the first [`MAX_PAIRS`] in read order, and within the read
//! that reaches the cap, in the acks' invocation order, as the pairwise
//! visit took them), so are the sums.
//!
//! Under `siblings` covering is a partial order (inclusion of causal
//! histories, [`history::Version::includes`]) and no sort ranks it. A
//! read's `k` is then counted on a tree over the key's acks in invocation
//! order ([`crate::clock_rows`]) that decides whole ranges of them by clock
//! bounds, and only the pairs within the horizon are visited one by one,
//! up to the cap; past it they are counted by binary search on ack times.
//! The figures are those of visiting every pair with `covers`, which a
//! test checks on random dotted histories.
//!
//! The bins ([`Bin`], [`BIN_EDGES_MS`], [`bin_of`]) and the limits
//! ([`HORIZON_MS`], [`MAX_PAIRS`]) are defined here, where pairs are counted
//! into them; t-visibility imports them (and re-exports the public ones)
//! and this module imports nothing of it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use history::compact::{Sibling, VersionRef};
use history::Resolution;

use crate::clock_rows::{Bounds, KeyClocks, Nodes};
use crate::observe::{Ack, Read};

/// Reads later than this after an ack are not paired with it, ms.
pub const HORIZON_MS: u64 = 10_000;

/// Upper edges of the `t` bins, ms; the last bin is `[5000, HORIZON_MS]`.
pub const BIN_EDGES_MS: [u64; 11] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 5_000];

/// At most this many (write, read) pairs are examined; more are counted, not checked.
pub const MAX_PAIRS: usize = 5_000_000;

/// Covered and total pairs in one bin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bin {
    /// Pairs whose read covered the write.
    pub covered: u64,
    /// All pairs.
    pub total: u64,
    /// Sum of the pairs' `t`, us (for the bin's mean `t`).
    pub t_sum_us: u64,
}

impl Bin {
    /// The mean `t` of the bin's pairs, ms.
    pub fn t_mean_ms(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.t_sum_us as f64 / self.total as f64 / 1_000.0
    }
}

/// The bin of a pair `t_ms` after its ack.
pub(crate) fn bin_of(t_ms: u64) -> usize {
    BIN_EDGES_MS.iter().position(|edge| t_ms < *edge).unwrap_or(BIN_EDGES_MS.len())
}

/// What the pairs add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairs {
    /// Covered and total pairs per `t` bin.
    pub bins: Vec<Bin>,
    /// Reads by their `k` (reads with no earlier ack are not counted).
    pub k_hist: BTreeMap<u64, u64>,
    /// Pairs within the horizon that were examined.
    pub examined: usize,
    /// Pairs within the horizon past the cap.
    pub skipped: usize,
    /// At most this many pairs are examined ([`MAX_PAIRS`]; tests set less).
    cap: usize,
}

impl Pairs {
    fn new(cap: usize) -> Pairs {
        Pairs {
            bins: vec![Bin::default(); BIN_EDGES_MS.len() + 1],
            k_hist: BTreeMap::new(),
            examined: 0,
            skipped: 0,
            cap,
        }
    }

    /// Counts the pairs of `reads` with `acks` (both in invocation order).
    pub fn of(acks: &[Ack<'_>], reads: &[Read<'_>], resolution: Resolution) -> Pairs {
        match resolution {
            Resolution::Lww => Pairs::lww(acks, reads, MAX_PAIRS),
            Resolution::Siblings => Pairs::siblings(acks, reads, MAX_PAIRS),
        }
    }

    /// Bins one examined pair: `t_ns` after the ack, covered or not.
    fn examine(&mut self, t_ns: u64, covered: bool) {
        self.examined += 1;
        let bin = &mut self.bins[bin_of(t_ns / 1_000_000)];
        bin.total += 1;
        bin.t_sum_us += t_ns / 1_000;
        bin.covered += u64::from(covered);
    }

    /// Every pair visited, one `covers` each: any resolution. The
    /// definition the sweeps are tested against.
    #[cfg(test)]
    pub fn visit(acks: &[Ack<'_>], reads: &[Read<'_>], resolution: Resolution, cap: usize) -> Pairs {
        let mut by_key: HashMap<&str, Vec<&Ack<'_>>> = HashMap::new();
        for ack in acks {
            by_key.entry(ack.key).or_default().push(ack);
        }
        let mut out = Pairs::new(cap);
        for read in reads {
            let Some(key_acks) = by_key.get(read.key) else {
                continue;
            };
            let (mut k, mut any) = (0u64, false);
            for ack in key_acks.iter().filter(|a| a.ack_time < read.invoke_time) {
                any = true;
                let covered = read.siblings.iter().any(|s| s.version.covers(ack.version, resolution));
                k += u64::from(!covered);
                let t_ns = read.invoke_time - ack.ack_time;
                if t_ns / 1_000_000 > HORIZON_MS {
                    continue;
                }
                if out.examined >= out.cap {
                    out.skipped += 1;
                    continue;
                }
                out.examine(t_ns, covered);
            }
            if any {
                *out.k_hist.entry(k).or_default() += 1;
            }
        }
        out
    }

    /// [`Pairs::visit`] under `siblings`: each read's `k` counted on the
    /// key's clock tree ([`KeyClocks`]), its pairs within the horizon
    /// visited in invocation order while the cap allows, counted after.
    fn siblings(acks: &[Ack<'_>], reads: &[Read<'_>], cap: usize) -> Pairs {
        let nodes = Nodes::of(acks);
        let mut grouped: HashMap<&str, Vec<&Ack<'_>>> = HashMap::new();
        for ack in acks {
            grouped.entry(ack.key).or_default().push(ack);
        }
        let by_key: HashMap<&str, KeyClocks<'_, '_>> =
            grouped.into_iter().map(|(key, acks)| (key, KeyClocks::new(acks, &nodes))).collect();
        let mut out = Pairs::new(cap);
        let mut bounds: Vec<Bounds<'_>> = Vec::new();
        for read in reads {
            let Some(key) = by_key.get(read.key) else {
                continue;
            };
            bounds.clear();
            bounds.extend(read.siblings.iter().map(|s| Bounds::of(s.version, &nodes)));
            let before = key.acked_before(read.invoke_time);
            if before == 0 {
                continue;
            }
            let k = before - covered_before(key, read.invoke_time, &bounds);
            *out.k_hist.entry(k as u64).or_default() += 1;
            out.bin_siblings(key, read.invoke_time, before, &bounds);
        }
        out
    }

    /// Bins the pairs of a read begun at `t_ns` with the acks of `key`
    /// within the horizon, in invocation order as `visit` takes them;
    /// once the cap is reached, only counts them.
    /// `before`: how many of the key's acks came before `t_ns`.
    fn bin_siblings(&mut self, key: &KeyClocks<'_, '_>, t_ns: u64, before: usize, bounds: &[Bounds<'_>]) {
        // A pair is within the horizon when t_ms <= HORIZON_MS, that is
        // when its ack came after `oldest` (strictly).
        let oldest = t_ns.checked_sub((HORIZON_MS + 1) * 1_000_000);
        if self.examined >= self.cap {
            let within = before - oldest.map_or(0, |o| key.acked_before(o + 1));
            self.skipped += within;
            return;
        }
        let first = oldest.map_or(0, |o| key.invoked_from(o.saturating_sub(key.max_latency_ns)));
        for i in first..key.invoked_from(t_ns) {
            let ack_time = key.acks[i].ack_time;
            if ack_time >= t_ns || oldest.is_some_and(|o| ack_time <= o) {
                continue;
            }
            if self.examined >= self.cap {
                self.skipped += 1;
                continue;
            }
            self.examine(t_ns - ack_time, key.covered(i, bounds));
        }
    }

    /// The sorted sweep of the module documentation: `lww` only.
    fn lww(acks: &[Ack<'_>], reads: &[Read<'_>], cap: usize) -> Pairs {
        let mut keys: HashMap<&str, KeyAcks<'_, '_>> = HashMap::new();
        let mut grouped: HashMap<&str, Vec<(usize, &Ack<'_>)>> = HashMap::new();
        for (position, ack) in acks.iter().enumerate() {
            grouped.entry(ack.key).or_default().push((position, ack));
        }
        for (key, key_acks) in grouped {
            keys.insert(key, KeyAcks::new(key_acks));
        }
        let mut out = Pairs::new(cap);
        // Per key: (time prefix, version prefix) of each of its reads.
        let mut queries: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
        for read in reads {
            let Some(key) = keys.get(read.key) else {
                continue;
            };
            let before = key.acked_before(read.invoke_time);
            let not_newer = key.not_newer_than(&read.siblings);
            queries.entry(read.key).or_default().push((before, not_newer));
            out.bin_range(key, read, before, not_newer);
        }
        for (key, mut queries) in queries {
            keys[key].count_k(&mut queries, &mut out.k_hist);
        }
        out
    }

    /// Bins the pairs of `read` with the acks of `key` within the horizon.
    fn bin_range(&mut self, key: &KeyAcks<'_, '_>, read: &Read<'_>, before: usize, not_newer: usize) {
        let first = key.acked_within_horizon(read.invoke_time).min(before);
        let room = self.cap - self.examined.min(self.cap);
        let pairs = before - first;
        if pairs <= room {
            for i in first..before {
                self.examine(read.invoke_time - key.by_time[i].ack_time, key.rank[i] < not_newer);
            }
            return;
        }
        // The read that reaches the cap (or one past it): the pairwise visit
        // took its acks in their order in `acks`, so the same ones are examined.
        self.skipped += pairs - room;
        if room == 0 {
            return;
        }
        let mut taken: Vec<usize> = (first..before).collect();
        taken.sort_by_key(|&i| key.position[i]);
        for i in taken.into_iter().take(room) {
            self.examine(read.invoke_time - key.by_time[i].ack_time, key.rank[i] < not_newer);
        }
    }
}

/// How many of `key`'s acks acknowledged before `t_ns` the siblings cover:
/// those covered among the acks invoked before `t_ns`, less the covered
/// ones still in flight at `t_ns` (acked at or after it, so invoked no
/// earlier than `t_ns` less the longest latency: a short scan).
fn covered_before(key: &KeyClocks<'_, '_>, t_ns: u64, bounds: &[Bounds<'_>]) -> usize {
    let invoked = key.invoked_from(t_ns);
    let covered = key.count_covered(invoked, bounds);
    let in_flight_from = key.invoked_from(t_ns.saturating_sub(key.max_latency_ns));
    let in_flight =
        (in_flight_from..invoked).filter(|&i| key.acks[i].ack_time >= t_ns && key.covered(i, bounds)).count();
    debug_assert!(in_flight <= covered);
    covered - in_flight
}

/// One key's acks, sorted by ack time and ranked by version.
struct KeyAcks<'o, 'a> {
    /// The acks by ack time (then their order in the input).
    by_time: Vec<&'o Ack<'a>>,
    /// Per entry of `by_time`: its position in the input.
    position: Vec<usize>,
    /// Ack times of `by_time`, for the binary searches.
    times: Vec<u64>,
    /// Per entry of `by_time`: its position in `by_version`.
    rank: Vec<usize>,
    /// The acks' versions, oldest first under lww.
    by_version: Vec<VersionRef<'a>>,
}

impl<'o, 'a> KeyAcks<'o, 'a> {
    fn new(mut acks: Vec<(usize, &'o Ack<'a>)>) -> KeyAcks<'o, 'a> {
        acks.sort_by_key(|(position, a)| (a.ack_time, *position));
        let (position, by_time): (Vec<usize>, Vec<&'o Ack<'a>>) = acks.into_iter().unzip();
        let times = by_time.iter().map(|a| a.ack_time).collect();
        let mut order: Vec<usize> = (0..by_time.len()).collect();
        order.sort_by(|&a, &b| by_time[a].version.lww_cmp(by_time[b].version));
        let mut rank = vec![0; by_time.len()];
        for (place, &i) in order.iter().enumerate() {
            rank[i] = place;
        }
        let by_version = order.iter().map(|&i| by_time[i].version).collect();
        KeyAcks { by_time, position, times, rank, by_version }
    }

    /// How many acks were acknowledged strictly before `t_ns`.
    fn acked_before(&self, t_ns: u64) -> usize {
        self.times.partition_point(|&t| t < t_ns)
    }

    /// The first ack at most [`HORIZON_MS`] (in whole ms) before `t_ns`.
    fn acked_within_horizon(&self, t_ns: u64) -> usize {
        // t_ms <= HORIZON_MS exactly when t_ns - ack < (HORIZON_MS + 1) ms.
        match t_ns.checked_sub((HORIZON_MS + 1) * 1_000_000) {
            Some(too_old) => self.times.partition_point(|&t| t <= too_old),
            None => 0,
        }
    }

    /// How many acks' versions a read of `siblings` covers: those not newer
    /// than its greatest sibling (a prefix of `by_version`).
    fn not_newer_than(&self, siblings: &[Sibling<'_>]) -> usize {
        let Some(newest) = siblings.iter().map(|s| s.version).max_by(|a, b| a.lww_cmp(*b)) else {
            return 0;
        };
        self.by_version.partition_point(|v| v.lww_cmp(newest) != Ordering::Greater)
    }

    /// Each read's `k` from its (time prefix, version prefix): one sweep
    /// over ack time, a Fenwick tree over version ranks.
    fn count_k(&self, queries: &mut [(usize, usize)], k_hist: &mut BTreeMap<u64, u64>) {
        queries.sort_unstable();
        let mut tree = Fenwick::new(self.rank.len());
        let mut inserted = 0usize;
        for &(before, not_newer) in queries.iter() {
            while inserted < before {
                tree.add(self.rank[inserted]);
                inserted += 1;
            }
            if before > 0 {
                let covered = tree.count_below(not_newer);
                *k_hist.entry((before - covered) as u64).or_default() += 1;
            }
        }
    }
}

/// Counts of positions `0..n`, with prefix sums in `O(log n)`.
struct Fenwick {
    /// The implicit tree, 1-based.
    sums: Vec<usize>,
}

impl Fenwick {
    fn new(n: usize) -> Fenwick {
        Fenwick { sums: vec![0; n + 1] }
    }

    /// Counts position `i` once more.
    fn add(&mut self, i: usize) {
        let mut i = i + 1;
        while i < self.sums.len() {
            self.sums[i] += 1;
            i += i & i.wrapping_neg();
        }
    }

    /// How many counted positions are below `end`.
    fn count_below(&self, end: usize) -> usize {
        let mut i = end.min(self.sums.len() - 1);
        let mut total = 0;
        while i > 0 {
            total += self.sums[i];
            i -= i & i.wrapping_neg();
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::compact::{Id, Interner, ValueRef, VersionTable, Versions};
    use history::{Dot, Version};
    use rand::{Rng, SeedableRng};

    const KEYS: [&str; 3] = ["k0", "k1", "k2"];
    const NODES: [&str; 3] = ["n1", "n2", "n3"];

    /// A version with few distinct timestamps and clocks, so lww ties on
    /// `ts` and on whole versions are common.
    fn version(rng: &mut rand_chacha::ChaCha8Rng) -> Version {
        let mut clock = std::collections::BTreeMap::new();
        for node in NODES {
            if rng.random_bool(0.4) {
                clock.insert(node.to_string(), rng.random_range(1..3));
            }
        }
        let dot = rng
            .random_bool(0.3)
            .then(|| Dot { node: NODES[rng.random_range(0..3)].to_string(), counter: rng.random_range(3..5) });
        Version { clock, ts: rng.random_range(0..4), dot }
    }

    /// `versions` in one table, leaked: a test's few hundred versions,
    /// borrowed as a compact history's would be.
    fn table_of(versions: &[Version]) -> (&'static Versions, Vec<history::compact::VersionId>) {
        let mut table = VersionTable::default();
        let ids = versions.iter().map(|v| table.intern(v)).collect();
        (Box::leak(Box::new(table.finish())), ids)
    }

    /// The tombstone, from a leaked table of one value.
    fn null() -> ValueRef<'static> {
        let mut values = Interner::default();
        values.intern("null");
        ValueRef::new(Box::leak(Box::new(values)), Id(0))
    }

    /// One drawn op: an ack of one version, or a read of a few.
    enum Drawn {
        Ack { index: u64, invoke_time: u64, ack_time: u64, key: &'static str, version: usize },
        Read { index: u64, invoke_time: u64, key: &'static str, versions: Vec<usize> },
    }

    /// Random acks and reads over a few keys, with times spread across the
    /// horizon so some pairs fall beyond it.
    fn history(seed: u64, ops: usize) -> (Vec<Ack<'static>>, Vec<Read<'static>>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (mut drawn, mut versions) = (Vec::new(), Vec::new());
        let ms = 1_000_000u64;
        for index in 0..ops as u64 {
            let invoke_time = rng.random_range(0..3 * HORIZON_MS * ms);
            let key = KEYS[rng.random_range(0..KEYS.len())];
            if rng.random_bool(0.5) {
                let ack_time = invoke_time + rng.random_range(0..5 * ms);
                versions.push(version(&mut rng));
                drawn.push(Drawn::Ack { index, invoke_time, ack_time, key, version: versions.len() - 1 });
            } else {
                let count = rng.random_range(0..3);
                let first = versions.len();
                versions.extend((0..count).map(|_| version(&mut rng)));
                drawn.push(Drawn::Read { index, invoke_time, key, versions: (first..versions.len()).collect() });
            }
        }
        let (table, ids) = table_of(&versions);
        let null = null();
        let (mut acks, mut reads) = (Vec::new(), Vec::new());
        for op in drawn {
            match op {
                Drawn::Ack { index, invoke_time, ack_time, key, version } => acks.push(Ack {
                    process: 0,
                    index,
                    invoke_time,
                    ack_time,
                    key,
                    node: None,
                    value: null,
                    version: table.get(ids[version]),
                }),
                Drawn::Read { index, invoke_time, key, versions } => reads.push(Read {
                    process: 0,
                    index,
                    invoke_time,
                    complete_time: invoke_time + ms,
                    key,
                    node: None,
                    siblings: versions.iter().map(|&v| Sibling { value: null, version: table.get(ids[v]) }).collect(),
                    answered_by: None,
                }),
            }
        }
        // Invocation order, as `Observed` holds them.
        acks.sort_by_key(|a| a.invoke_time);
        reads.sort_by_key(|r| r.invoke_time);
        (acks, reads)
    }

    #[test]
    fn the_lww_sweep_counts_exactly_what_visiting_every_pair_counts() {
        for seed in 0..20 {
            let (acks, reads) = history(seed, 600);
            let all = Pairs::visit(&acks, &reads, Resolution::Lww, usize::MAX);
            assert!(all.examined > 1_000 && all.k_hist.len() > 3, "the test history pairs enough: {all:?}");
            for cap in [usize::MAX, all.examined, all.examined / 2, 7, 0] {
                assert_eq!(
                    Pairs::lww(&acks, &reads, cap),
                    Pairs::visit(&acks, &reads, Resolution::Lww, cap),
                    "seed {seed} cap {cap}"
                );
            }
        }
    }

    #[test]
    fn the_siblings_bounds_count_exactly_what_visiting_every_pair_counts() {
        for seed in 0..20 {
            let (acks, reads) = history(seed, 600);
            let all = Pairs::visit(&acks, &reads, Resolution::Siblings, usize::MAX);
            assert!(all.examined > 1_000 && all.k_hist.len() > 3, "the test history pairs enough: {all:?}");
            for cap in [usize::MAX, all.examined / 2, 7, 0] {
                assert_eq!(
                    Pairs::siblings(&acks, &reads, cap),
                    Pairs::visit(&acks, &reads, Resolution::Siblings, cap),
                    "seed {seed} cap {cap}"
                );
            }
        }
    }

    #[test]
    fn the_bounds_agree_with_includes_on_every_small_version() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let versions: Vec<Version> = (0..400).map(|_| version(&mut rng)).collect();
        let (table, ids) = table_of(&versions);
        let acks: Vec<Ack<'_>> = ids
            .iter()
            .map(|&id| Ack {
                process: 0,
                index: 0,
                invoke_time: 0,
                ack_time: 0,
                key: "k",
                node: None,
                value: null(),
                version: table.get(id),
            })
            .collect();
        let nodes = Nodes::of(&acks);
        for (s, &sid) in versions.iter().zip(&ids) {
            let bounds = Bounds::of(table.get(sid), &nodes);
            for (a, &aid) in versions.iter().zip(&ids) {
                let ack = table.get(aid);
                assert_eq!(bounds.covers(&nodes.row(ack, true), ack), s.includes(a), "{s:?} over {a:?}");
            }
        }
    }

    #[test]
    fn the_fenwick_tree_counts_positions_below() {
        let mut tree = Fenwick::new(10);
        for i in [0, 3, 3, 9] {
            tree.add(i);
        }
        let counts: Vec<usize> = (0..=11).map(|end| tree.count_below(end)).collect();
        assert_eq!(counts, [0, 1, 1, 1, 3, 3, 3, 3, 3, 3, 4, 4]);
    }
}
