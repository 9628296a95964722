//! Versions as rows of small integers: a table that holds each distinct
//! version once, and answers [`Version`]'s questions on it.
//!
//! A [`Version`] parsed from JSON is a `BTreeMap<String, u64>` clock, a
//! timestamp and maybe a dot: an allocation per node name, and a string
//! compare per clock entry whenever two versions are compared. A history
//! holds the same version many times (on its write's ack, and on every
//! sibling of every read that returned it), and checkers compare versions
//! millions of times.
//!
//! Here a version is a [`VersionId`]. The table keeps per version its
//! timestamp, its dot and a run of `(node, counter)` entries, node names
//! interned. Equal versions get equal ids, so "the same version" is an
//! integer compare. When the table is finished ([`VersionTable::finish`]),
//! node ids are renumbered in name order, so that comparing two node ids
//! is comparing their names: [`Versions::includes`] and
//! [`Versions::lww_cmp`] then walk two sorted runs of integers and give
//! exactly what [`Version::includes`] and [`Version::lww_cmp`] give (a test
//! holds them to it on every small version).

use std::cmp::Ordering;

use rustc_hash::FxHashMap;
use serde::{Serialize, Serializer};

use super::interner::{Id, Interner};
use super::parse::VersionShape;
use crate::{Dot, Resolution, Version};

/// A version's number in its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionId(pub u32);

/// A node's number among the nodes the table's versions name; after
/// [`VersionTable::finish`], in the order of the nodes' names.
pub type NodeId = Id;

/// The `dot_node` of a version without a dot.
const NO_DOT: u32 = u32::MAX;

/// One version's fixed part, and where its clock entries are.
#[derive(Debug, Clone, Copy)]
struct Row {
    /// Coordinator wall-clock milliseconds.
    ts_ms: u64,
    /// The dot's counter (0 without a dot).
    dot_counter: u64,
    /// The dot's node id, or [`NO_DOT`].
    dot_node: u32,
    /// The first of its clock entries in the table's entry arrays.
    start: u32,
    /// How many clock entries it has.
    len: u32,
}

/// Versions being collected: each distinct one once, node ids in order of
/// first mention.
#[derive(Debug, Default)]
pub struct VersionTable {
    /// The versions, by id.
    versions: Versions,
    /// A version's encoding (see [`encode`]) -> its id.
    ids: FxHashMap<Box<[u64]>, VersionId>,
    /// Scratch for [`encode`], reused.
    key: Vec<u64>,
}

/// Every distinct version of a history, finished: node ids in name order.
#[derive(Debug, Default, Clone)]
pub struct Versions {
    /// Per version, by id.
    rows: Vec<Row>,
    /// Clock entries' node ids, per version in node order.
    entry_nodes: Vec<u32>,
    /// Clock entries' counters, beside `entry_nodes`.
    entry_counters: Vec<u64>,
    /// Node names.
    nodes: Interner,
}

/// The key a version is deduplicated by: timestamp, dot and entries (in
/// node name order, as a `BTreeMap` clock holds them). Node names are
/// interned in that order too: the dot's, then the clock's.
fn encode<'n>(
    ts_ms: u64,
    dot: Option<(&str, u64)>,
    clock: impl Iterator<Item = (&'n str, u64)>,
    nodes: &mut Interner,
    key: &mut Vec<u64>,
) {
    key.clear();
    key.push(ts_ms);
    match dot {
        Some((node, counter)) => key.extend([u64::from(nodes.intern(node).0), counter]),
        None => key.extend([u64::from(NO_DOT), 0]),
    }
    for (node, counter) in clock {
        key.extend([u64::from(nodes.intern(node).0), counter]);
    }
}

impl VersionTable {
    /// The id of `version`, adding it if it is new.
    pub fn intern(&mut self, version: &Version) -> VersionId {
        let dot = version.dot.as_ref().map(|d| (d.node.as_str(), d.counter));
        let clock = version.clock.iter().map(|(node, counter)| (node.as_str(), *counter));
        encode(version.ts, dot, clock, &mut self.versions.nodes, &mut self.key);
        self.intern_key()
    }

    /// [`VersionTable::intern`] of a version borrowed from a line, without
    /// building a [`Version`]: the same key, so the same id.
    pub(crate) fn intern_shape(&mut self, version: &VersionShape<'_>) -> VersionId {
        let dot = version.dot.as_ref().map(|d| (d.node.as_ref(), d.counter));
        encode(version.ts, dot, version.clock.entries(), &mut self.versions.nodes, &mut self.key);
        self.intern_key()
    }

    /// The id of the version encoded in `key`, adding it if it is new.
    fn intern_key(&mut self) -> VersionId {
        if let Some(&id) = self.ids.get(self.key.as_slice()) {
            return id;
        }
        let versions = &mut self.versions;
        let id = VersionId(u32::try_from(versions.rows.len()).expect("fewer than 2^32 distinct versions"));
        let start = u32::try_from(versions.entry_nodes.len()).expect("fewer than 2^32 clock entries");
        let entries = &self.key[3..];
        assert!(entries.len().is_multiple_of(2), "entries are (node, counter) pairs");
        for pair in entries.chunks_exact(2) {
            versions.entry_nodes.push(pair[0] as u32);
            versions.entry_counters.push(pair[1]);
        }
        versions.rows.push(Row {
            ts_ms: self.key[0],
            dot_node: self.key[1] as u32,
            dot_counter: self.key[2],
            start,
            len: (entries.len() / 2) as u32,
        });
        self.ids.insert(self.key.as_slice().into(), id);
        id
    }

    /// How many distinct versions are held.
    pub fn len(&self) -> usize {
        self.versions.rows.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.versions.rows.is_empty()
    }

    /// The table, node ids renumbered in name order; version ids unchanged.
    pub fn finish(self) -> Versions {
        let mut versions = self.versions;
        let mut by_name: Vec<(Id, &str)> = versions.nodes.iter().collect();
        by_name.sort_by(|a, b| a.1.cmp(b.1));
        let mut renumbered = vec![0u32; by_name.len()];
        let mut sorted = Interner::default();
        for (new, (old, name)) in by_name.into_iter().enumerate() {
            renumbered[old.index()] = new as u32;
            assert_eq!(sorted.intern(name).index(), new);
        }
        for node in &mut versions.entry_nodes {
            *node = renumbered[*node as usize];
        }
        for row in &mut versions.rows {
            if row.dot_node != NO_DOT {
                row.dot_node = renumbered[row.dot_node as usize];
            }
        }
        versions.nodes = sorted;
        debug_assert!(versions.rows.iter().all(|r| versions.entries(*r).is_sorted_by(|a, b| a.0 < b.0)));
        versions
    }
}

impl Versions {
    /// How many distinct versions the history holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// How many nodes the versions name (node ids run `0..node_count`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// A node's name.
    pub fn node_name(&self, node: NodeId) -> &str {
        self.nodes.text(node)
    }

    /// `id` with the table, to ask it questions.
    pub fn get(&self, id: VersionId) -> VersionRef<'_> {
        assert!((id.0 as usize) < self.rows.len(), "a version id of this table");
        VersionRef { versions: self, id }
    }

    fn row(&self, id: VersionId) -> Row {
        self.rows[id.0 as usize]
    }

    /// A row's clock entries, `(node, counter)` in node order.
    fn entries(&self, row: Row) -> impl Iterator<Item = (u32, u64)> + Clone + '_ {
        let range = row.start as usize..(row.start + row.len) as usize;
        self.entry_nodes[range.clone()].iter().copied().zip(self.entry_counters[range].iter().copied())
    }

    /// The clock entry of `node`, 0 when absent.
    fn entry(&self, row: Row, node: u32) -> u64 {
        self.entries(row).find(|(n, _)| *n == node).map_or(0, |(_, c)| c)
    }

    /// Whether event `(node, counter)` is in the causal history of `row`.
    fn has_event(&self, row: Row, node: u32, counter: u64) -> bool {
        counter <= self.entry(row, node) || (row.dot_node == node && row.dot_counter == counter)
    }

    /// [`Version::includes`]: whether `b`'s causal history is in `a`'s.
    pub fn includes(&self, a: VersionId, b: VersionId) -> bool {
        let (a, b) = (self.row(a), self.row(b));
        let dot_seen = b.dot_node == NO_DOT || self.has_event(a, b.dot_node, b.dot_counter);
        dot_seen
            && self.entries(b).all(|(node, c)| {
                let below = self.entry(a, node);
                c <= below || (c == below + 1 && self.has_event(a, node, c))
            })
    }

    /// [`Version::full_counters`]: the context with the dot maxed in, in
    /// node order.
    fn full_counters(&self, row: Row) -> impl Iterator<Item = (u32, u64)> + '_ {
        let dot = (row.dot_node != NO_DOT).then_some((row.dot_node, row.dot_counter));
        crate::version::with_dot(self.entries(row), dot)
    }

    /// [`Version::lww_cmp`]: timestamp, sum of the full clock, the full
    /// clocks in node order, then the dots (absent first).
    pub fn lww_cmp(&self, a: VersionId, b: VersionId) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        let (ra, rb) = (self.row(a), self.row(b));
        let sum = |r: Row| self.full_counters(r).map(|(_, c)| u128::from(c)).sum::<u128>();
        let dot = |r: Row| (r.dot_node != NO_DOT).then_some((r.dot_node, r.dot_counter));
        ra.ts_ms
            .cmp(&rb.ts_ms)
            .then_with(|| sum(ra).cmp(&sum(rb)))
            .then_with(|| self.full_counters(ra).cmp(self.full_counters(rb)))
            .then_with(|| dot(ra).cmp(&dot(rb)))
    }

    /// [`Version::covers`]: whether a read that returned `read` has seen
    /// the write that produced `write`, under `resolution`.
    pub fn covers(&self, read: VersionId, write: VersionId, resolution: Resolution) -> bool {
        match resolution {
            Resolution::Siblings => self.includes(read, write),
            Resolution::Lww => self.lww_cmp(read, write) != Ordering::Less,
        }
    }

    /// The version as the history wrote it.
    pub fn to_version(&self, id: VersionId) -> Version {
        let row = self.row(id);
        let name = |n: u32| self.nodes.text(Id(n)).to_string();
        Version {
            clock: self.entries(row).map(|(n, c)| (name(n), c)).collect(),
            ts: row.ts_ms,
            dot: (row.dot_node != NO_DOT).then(|| Dot { node: name(row.dot_node), counter: row.dot_counter }),
        }
    }
}

/// A version with its table: what a checker holds and compares.
#[derive(Clone, Copy)]
pub struct VersionRef<'c> {
    /// The table it is in.
    versions: &'c Versions,
    /// Its id there.
    id: VersionId,
}

impl<'c> VersionRef<'c> {
    /// Its id in its table.
    pub fn id(self) -> VersionId {
        self.id
    }

    /// The table it is in.
    pub fn table(self) -> &'c Versions {
        self.versions
    }

    /// Coordinator wall-clock milliseconds.
    pub fn ts_ms(self) -> u64 {
        self.versions.row(self.id).ts_ms
    }

    /// The dot, if the version has one: `(node, counter)`.
    pub fn dot(self) -> Option<(NodeId, u64)> {
        let row = self.versions.row(self.id);
        (row.dot_node != NO_DOT).then_some((Id(row.dot_node), row.dot_counter))
    }

    /// The clock's entries (with a dot, the context's), in node order.
    pub fn clock(self) -> impl Iterator<Item = (NodeId, u64)> + 'c {
        self.versions.entries(self.versions.row(self.id)).map(|(n, c)| (Id(n), c))
    }

    /// [`Version::includes`].
    pub fn includes(self, other: VersionRef<'_>) -> bool {
        self.same_table(other);
        self.versions.includes(self.id, other.id)
    }

    /// [`Version::covers`].
    pub fn covers(self, write: VersionRef<'_>, resolution: Resolution) -> bool {
        self.same_table(write);
        self.versions.covers(self.id, write.id, resolution)
    }

    /// [`Version::lww_cmp`].
    pub fn lww_cmp(self, other: VersionRef<'_>) -> Ordering {
        self.same_table(other);
        self.versions.lww_cmp(self.id, other.id)
    }

    /// The version as the history wrote it.
    pub fn to_version(self) -> Version {
        self.versions.to_version(self.id)
    }

    fn same_table(self, other: VersionRef<'_>) {
        debug_assert!(std::ptr::eq(self.versions, other.versions), "versions of one table");
    }
}

impl PartialEq for VersionRef<'_> {
    /// Equal versions have equal ids in one table.
    fn eq(&self, other: &Self) -> bool {
        self.same_table(*other);
        self.id == other.id
    }
}

impl Eq for VersionRef<'_> {}

impl std::fmt::Debug for VersionRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_version())
    }
}

impl Serialize for VersionRef<'_> {
    /// As [`Version`] serializes: the same JSON the history holds.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_version().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(context: &[(&str, u64)], dot: Option<(&str, u64)>, ts: u64) -> Version {
        Version {
            clock: context.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
            ts,
            dot: dot.map(|(node, counter)| Dot { node: node.to_string(), counter }),
        }
    }

    /// Every small version over three nodes, named so that they arrive out
    /// of name order: contexts of counters 0..=2 (a 0 kept as an entry on
    /// one node), no dot or a dot of 1..=3, two timestamps.
    fn small_versions() -> Vec<Version> {
        let nodes = ["n3", "n1", "n2"];
        let mut out = Vec::new();
        for mask in 0..27u32 {
            let mut context: Vec<(&str, u64)> = nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, u64::from(mask / 3u32.pow(i as u32) % 3)))
                .filter(|(n, c)| *c > 0 || (*n == "n2" && mask % 2 == 0))
                .collect();
            context.sort();
            for ts in [1, 2] {
                out.push(version(&context, None, ts));
                for node in nodes {
                    for counter in 1..=3 {
                        out.push(version(&context, Some((node, counter)), ts));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_rows_answer_exactly_what_versions_answer() {
        let versions = small_versions();
        let mut table = VersionTable::default();
        let ids: Vec<VersionId> = versions.iter().map(|v| table.intern(v)).collect();
        let table = table.finish();
        assert_eq!(table.node_name(Id(0)), "n1", "node ids in name order");
        for (a, &ia) in versions.iter().zip(&ids) {
            assert_eq!(&table.to_version(ia), a);
            for (b, &ib) in versions.iter().zip(&ids) {
                assert_eq!(table.includes(ia, ib), a.includes(b), "{a:?} includes {b:?}");
                assert_eq!(table.lww_cmp(ia, ib), a.lww_cmp(b), "{a:?} lww {b:?}");
                assert_eq!(ia == ib, a == b, "{a:?} == {b:?}");
                for resolution in [Resolution::Lww, Resolution::Siblings] {
                    assert_eq!(table.get(ia).covers(table.get(ib), resolution), a.covers(b, resolution));
                }
            }
        }
    }

    #[test]
    fn a_version_is_held_once_and_serializes_as_the_history_wrote_it() {
        let v = version(&[("n2", 3)], Some(("n1", 9)), 2);
        let mut table = VersionTable::default();
        let first = table.intern(&v);
        assert_eq!(table.intern(&v.clone()), first);
        assert_eq!(table.len(), 1);
        let table = table.finish();
        let json = serde_json::to_string(&table.get(first)).unwrap();
        assert_eq!(json, serde_json::to_string(&v).unwrap());
    }
}
