//! One key's acknowledged writes as rows of integers, and a tree over them
//! that counts how many a read covers without visiting each.
//!
//! Under `siblings`, "a read covers a write" is inclusion of causal
//! histories ([`history::compact::VersionRef::includes`]), a partial order that no sort
//! ranks. Comparing a read with every earlier write of its key is quadratic:
//! an hour at 1,000 ops/s holds hundreds of thousands of writes per key.
//!
//! What makes it cheap is that covering is decided by bounds on clock rows
//! ([`Bounds`]). Node ids (interned by the compact history) are columns ([`Nodes`]) and every
//! write's *full* clock (its context with its dot folded in) is one row of
//! integers. A sibling `s` then bounds the answer from both sides: a row at
//! most `s`'s context is covered (every event of it is in `s`'s history),
//! and a row above `s`'s full clock anywhere is not (it has an event `s`
//! never saw); only a row between the two is decided by `includes` itself.
//!
//! Both bounds hold for whole ranges of rows at once: if the componentwise
//! *maximum* of a range is at most `s`'s context, every row in it is
//! covered; if its componentwise *minimum* is above `s`'s full clock in
//! some column, none is. So the rows, in invocation order, sit under a
//! segment tree holding each range's minimum and maximum ([`KeyClocks`]),
//! and a read's covered writes are counted by descending it: a range
//! decided by a bound is counted whole, and only ranges straddling the
//! read's frontier are split. Since a store's writes are mostly causally
//! ordered, the covered writes of a read are nearly a prefix, and the
//! descent visits O(log n) ranges plus the few writes concurrent with the
//! read. A test checks the count against visiting every pair with
//! `includes`, on random dotted histories.

use history::compact::VersionRef;

use crate::observe::Ack;

/// The nodes a history's acks name, as column numbers. Node ids are the
/// compact history's ([`history::compact::Versions`]).
pub(crate) struct Nodes {
    /// Node id -> its column, for the nodes some ack names.
    columns: Vec<Option<usize>>,
    /// The number of columns.
    width: usize,
}

impl Nodes {
    /// Every node named in an ack's clock or dot.
    pub(crate) fn of(acks: &[Ack<'_>]) -> Nodes {
        let mut nodes = Nodes { columns: Vec::new(), width: 0 };
        for ack in acks {
            let named = ack.version.clock().map(|(n, _)| n).chain(ack.version.dot().map(|(n, _)| n));
            for node in named {
                if nodes.columns.len() <= node.index() {
                    nodes.columns.resize(node.index() + 1, None);
                }
                if nodes.columns[node.index()].is_none() {
                    nodes.columns[node.index()] = Some(nodes.width);
                    nodes.width += 1;
                }
            }
        }
        nodes
    }

    /// The number of columns.
    pub(crate) fn len(&self) -> usize {
        self.width
    }

    /// The column of node `index`, if an ack names it.
    fn column(&self, index: usize) -> Option<usize> {
        self.columns.get(index).copied().flatten()
    }

    /// `version`'s full clock (with `dot`: its context only) as a row.
    /// Nodes no ack names are left out: no ack's row has an event of theirs.
    pub(crate) fn row(&self, version: VersionRef<'_>, with_dot: bool) -> Vec<u64> {
        let mut row = vec![0; self.len()];
        for (node, counter) in version.clock() {
            if let Some(column) = self.column(node.index()) {
                row[column] = counter;
            }
        }
        if let Some((node, counter)) = version.dot().filter(|_| with_dot) {
            if let Some(column) = self.column(node.index()) {
                row[column] = row[column].max(counter);
            }
        }
        row
    }
}

/// What one sibling's version says about an ack's full clock, by bounds.
pub(crate) struct Bounds<'s> {
    /// The sibling's context: an ack at most this is covered.
    context: Vec<u64>,
    /// The sibling's full clock: an ack above it anywhere is not.
    full: Vec<u64>,
    /// The version itself, for the acks between the bounds.
    version: VersionRef<'s>,
}

impl<'s> Bounds<'s> {
    /// The bounds of `version` over the interned columns.
    pub(crate) fn of(version: VersionRef<'s>, nodes: &Nodes) -> Bounds<'s> {
        Bounds { context: nodes.row(version, false), full: nodes.row(version, true), version }
    }

    /// Whether this sibling covers the ack whose full clock is `row`:
    /// exactly `self.version.includes(ack)`.
    pub(crate) fn covers(&self, row: &[u64], ack: VersionRef<'_>) -> bool {
        if at_most(row, &self.context) {
            true
        } else if !at_most(row, &self.full) {
            false
        } else {
            self.version.includes(ack)
        }
    }
}

/// Whether every entry of `row` is at most the same entry of `bound`.
fn at_most(row: &[u64], bound: &[u64]) -> bool {
    debug_assert_eq!(row.len(), bound.len());
    row.iter().zip(bound).all(|(r, b)| r <= b)
}

/// One key's acks in invocation order, their full clocks as rows, and the
/// tree of each range's componentwise minimum and maximum.
pub(crate) struct KeyClocks<'o, 'a> {
    /// The acks, in invocation order.
    pub(crate) acks: Vec<&'o Ack<'a>>,
    /// Their invocation times, for the binary searches.
    pub(crate) invoke_times: Vec<u64>,
    /// Their ack times, sorted (not in invocation order).
    ack_times_sorted: Vec<u64>,
    /// The longest time from an invocation to its ack, ns: an ack acked at
    /// or after `t` was invoked no earlier than `t` minus this.
    pub(crate) max_latency_ns: u64,
    /// Full clocks, `width` counters each, one after the other.
    rows: Vec<u64>,
    /// Counters per row: the number of interned nodes.
    width: usize,
    /// Leaves of the tree: the number of acks rounded up to a power of two.
    leaves: usize,
    /// Per tree node (1-based heap order), its range's componentwise maximum.
    max: Vec<u64>,
    /// Per tree node, its range's componentwise minimum.
    min: Vec<u64>,
}

impl<'o, 'a> KeyClocks<'o, 'a> {
    /// The clocks of `acks` (one key's, in invocation order).
    pub(crate) fn new(acks: Vec<&'o Ack<'a>>, nodes: &Nodes) -> KeyClocks<'o, 'a> {
        assert!(acks.windows(2).all(|w| w[0].invoke_time <= w[1].invoke_time), "acks in invocation order");
        let width = nodes.len();
        let leaves = acks.len().next_power_of_two();
        let mut rows = Vec::with_capacity(acks.len() * width);
        for ack in &acks {
            rows.extend(nodes.row(ack.version, true));
        }
        let mut ack_times_sorted: Vec<u64> = acks.iter().map(|a| a.ack_time).collect();
        ack_times_sorted.sort_unstable();
        let max_latency_ns = acks.iter().map(|a| a.ack_time.saturating_sub(a.invoke_time)).max().unwrap_or(0);
        let invoke_times = acks.iter().map(|a| a.invoke_time).collect();
        let mut clocks = KeyClocks {
            acks,
            invoke_times,
            ack_times_sorted,
            max_latency_ns,
            rows,
            width,
            leaves,
            max: vec![0; 2 * leaves * width],
            min: vec![u64::MAX; 2 * leaves * width],
        };
        clocks.build();
        clocks
    }

    /// Fills the tree: leaves from the rows, each parent from its children.
    fn build(&mut self) {
        let w = self.width;
        for i in 0..self.acks.len() {
            let node = self.leaves + i;
            self.max[node * w..(node + 1) * w].copy_from_slice(&self.rows[i * w..(i + 1) * w]);
            self.min[node * w..(node + 1) * w].copy_from_slice(&self.rows[i * w..(i + 1) * w]);
        }
        for node in (1..self.leaves).rev() {
            for c in 0..w {
                let (l, r) = (2 * node * w + c, (2 * node + 1) * w + c);
                self.max[node * w + c] = self.max[l].max(self.max[r]);
                self.min[node * w + c] = self.min[l].min(self.min[r]);
            }
        }
    }

    /// The full clock of ack `i`.
    pub(crate) fn row(&self, i: usize) -> &[u64] {
        &self.rows[i * self.width..(i + 1) * self.width]
    }

    /// How many acks were acknowledged strictly before `t_ns`.
    pub(crate) fn acked_before(&self, t_ns: u64) -> usize {
        self.ack_times_sorted.partition_point(|&t| t < t_ns)
    }

    /// The first ack (in invocation order) invoked at or after `t_ns`.
    pub(crate) fn invoked_from(&self, t_ns: u64) -> usize {
        self.invoke_times.partition_point(|&t| t < t_ns)
    }

    /// Whether any of `siblings` covers ack `i`.
    pub(crate) fn covered(&self, i: usize, siblings: &[Bounds<'_>]) -> bool {
        siblings.iter().any(|b| b.covers(self.row(i), self.acks[i].version))
    }

    /// How many of the acks `0..end` (invocation order) any of `siblings`
    /// covers, by descending the tree (see the module documentation).
    pub(crate) fn count_covered(&self, end: usize, siblings: &[Bounds<'_>]) -> usize {
        assert!(end <= self.acks.len());
        if end == 0 || siblings.is_empty() {
            return 0;
        }
        self.descend(1, 0, self.leaves, end, siblings)
    }

    /// The covered acks of tree node `node` (range `lo..hi`) below `end`.
    fn descend(&self, node: usize, lo: usize, hi: usize, end: usize, siblings: &[Bounds<'_>]) -> usize {
        if lo >= end {
            return 0;
        }
        let w = self.width;
        let (max, min) = (&self.max[node * w..(node + 1) * w], &self.min[node * w..(node + 1) * w]);
        if hi <= end {
            if siblings.iter().any(|b| at_most(max, &b.context)) {
                return hi - lo;
            }
            if siblings.iter().all(|b| !at_most(min, &b.full)) {
                return 0;
            }
            if hi - lo == 1 {
                return usize::from(self.covered(lo, siblings));
            }
        }
        let mid = lo + (hi - lo) / 2;
        self.descend(2 * node, lo, mid, end, siblings) + self.descend(2 * node + 1, mid, hi, end, siblings)
    }
}
