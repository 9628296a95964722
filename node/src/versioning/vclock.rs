//! Vector clocks, dotted versions, siblings and the sibling set: the
//! conflict model.
//!
//! Every write creates a new immutable [`Version`]. A version minted by this
//! node is a *dotted version vector* (Preguiça et al., "Dotted Version
//! Vectors"; Riak 2.0): its [`Dot`] names the single event that created it
//! (the coordinator and a value of its node-wide counter, unique and never
//! reused) and its `clock` is the causal *context*: what the writer had
//! seen, i.e. the context clock the client sent, *excluding* the new event.
//! The version's causal history is the set of events
//! `{(n, k) : 1 <= k <= clock[n]} ∪ {dot}`. A version without a dot (legacy
//! or hand-built) has history `{(n, k) : k <= clock[n]}`: its clock is the
//! whole clock, and every rule below reduces to plain clock descent for it.
//!
//! Why the dot. With a plain clock the coordinator must bump its own entry
//! past a node-wide counter, and two clients writing the same key through
//! the same coordinator with the same (empty) context got `{n1:101}` and
//! `{n1:102}`: the second strictly descends the first, so every replica
//! silently dropped the first, acknowledged write although its writer never
//! saw it. With dots the two versions are `(n1,101) | {}` and
//! `(n1,102) | {}`; neither history contains the other's dot, so both are
//! kept as siblings.
//!
//! Obsolescence ([`Version::includes`]): `b` replaces `a` when `a`'s whole
//! causal history is contained in `b`'s: `a`'s dot is in `b`'s history
//! (`a.dot == b.dot`, or `b.clock[a.dot.node] >= a.dot.counter`) *and* `a`'s
//! context is too. In a real run the second condition follows from the first
//! (whoever saw `a` also saw what `a` had seen); requiring it anyway makes
//! obsolescence literally set inclusion, a partial order, so the merge stays
//! commutative, associative and idempotent on *any* input, and it can only
//! keep a version the bare dot rule would have dropped, never the reverse.
//!
//! The context handed to a client on a read stays a plain vector clock
//! ([`SiblingSet::merged_clock`]): the join over the siblings read of each
//! one's clock with its dot folded in (as a max). A client that read both
//! siblings therefore writes back a version that obsoletes both.
//!
//! Known limit, and how the coordinator narrows it: counters are node-wide,
//! and a vector clock summarises "every event of n1 up to 102", so a
//! context can claim events it never saw. A reader that saw only `(n1,102)`
//! gets context `{n1:102}`, which also covers an unseen concurrent
//! `(n1,101)`; its next write then obsoletes `(n1,101)` (when that version's
//! own context is covered too, as an empty one is). Even with W + R > N this
//! happened while `(n1,101)` was still in flight and `(n1,102)`, minted just
//! after it by the same coordinator, was already readable (2 of 1787 acked
//! adds lost, N3 W2 R2, random coordinators, no faults). The coordinator now
//! ships its in-flight versions of a key with every newer one
//! (`inflight.rs`), so whoever holds `(n1,102)` holds `(n1,101)` too: 0 of
//! ~9,000 adds lost since. What remains needs a read quorum that missed an
//! acknowledged write outright (W + R <= N, or sloppy quorums with failed
//! homes); Riak's cure for that is per-key dots minted at a replica against
//! its stored siblings, not attempted here.
//!
//! In `siblings` mode concurrent versions are all kept as [`Sibling`]s and
//! handed back to the client to reconcile. In `lww` mode the set keeps
//! exactly one sibling, the greatest by [`Version::lww_cmp`], which mirrors
//! `history::Version::lww_cmp` so that the workbench's checkers judge the
//! node by the same order it resolves with.
//!
//! [`SiblingSet::merge`] is the single merge rule used everywhere (replica
//! stores, coordinator reads, read repair, hinted handoff and anti-entropy).
//! It is a function of the *union* of its inputs (the maximal elements under
//! a strict partial order), which is what makes it commutative, associative
//! and idempotent: replicas may receive the same versions in any order, any
//! number of times, and converge.
//!
//! Clocks are bounded: past `max_clock_entries` the entries bumped longest
//! ago are pruned (as in Dynamo). Pruning can make a later version look
//! concurrent with an earlier one (a spurious sibling) but never loses a
//! version silently; the node counts prunings so the workbench can show it.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::node_id::NodeId;

/// How concurrent versions of a key are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Keep every concurrent version; the client reconciles (Dynamo, Riak).
    Siblings,
    /// Keep only the greatest version by timestamp (Cassandra); the rest are
    /// silently discarded.
    Lww,
}

impl Resolution {
    /// The name used on the command line and in `Admin.Status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Siblings => "siblings",
            Resolution::Lww => "lww",
        }
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Resolution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "siblings" => Ok(Resolution::Siblings),
            "lww" => Ok(Resolution::Lww),
            other => Err(format!("unknown resolution {other:?}: expected siblings or lww")),
        }
    }
}

/// A vector clock with, per entry, the time it was last bumped.
///
/// Invariant: no entry has counter 0 (an absent entry *is* 0), so two clocks
/// descend each other exactly when their counter maps are equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct VClock {
    /// Node id -> counter: the causal history this clock summarises.
    counters: BTreeMap<NodeId, u64>,
    /// Node id -> wall-clock ms of the entry's last bump; only pruning reads
    /// it (oldest entries go first). Not part of causality.
    entry_ts_ms: BTreeMap<NodeId, u64>,
}

impl VClock {
    /// The empty clock (descended by every clock).
    pub fn new() -> Self {
        VClock::default()
    }

    /// Builds a clock from `(node, counter, last bump ms)` entries; zero
    /// counters are dropped to keep the no-zero invariant.
    pub fn from_entries<I>(entries: I) -> Self
    where
        I: IntoIterator<Item = (NodeId, u64, u64)>,
    {
        let mut clock = VClock::new();
        for (node, counter, ts_ms) in entries.into_iter().filter(|e| e.1 > 0) {
            clock.counters.insert(node.clone(), counter);
            clock.entry_ts_ms.insert(node, ts_ms);
        }
        clock.check_invariants();
        clock
    }

    /// The counter of `node` (0 when absent).
    pub fn get(&self, node: &NodeId) -> u64 {
        self.counters.get(node).copied().unwrap_or(0)
    }

    /// When `node`'s entry was last bumped (0 when absent).
    pub fn entry_ts_ms(&self, node: &NodeId) -> u64 {
        self.entry_ts_ms.get(node).copied().unwrap_or(0)
    }

    /// The counters, ordered by node id.
    pub fn counters(&self) -> &BTreeMap<NodeId, u64> {
        &self.counters
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// True for the empty clock.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// Sum of all counters: grows strictly along causality, which is what
    /// lets the lww order break timestamp ties in favour of descendants.
    pub fn counter_sum(&self) -> u128 {
        self.counters.values().map(|c| u128::from(*c)).sum()
    }

    /// True when every entry of `self` is `>=` the same entry of `other`
    /// (equal clocks descend each other).
    pub fn descends(&self, other: &VClock) -> bool {
        other.counters.iter().all(|(node, c)| self.get(node) >= *c)
    }

    /// True when `self` descends `other` and they differ.
    pub fn strictly_descends(&self, other: &VClock) -> bool {
        self.descends(other) && self.counters != other.counters
    }

    /// True when neither clock descends the other.
    pub fn concurrent(&self, other: &VClock) -> bool {
        !self.descends(other) && !other.descends(self)
    }

    /// Pointwise maximum: the smallest clock that descends both.
    pub fn merge(&mut self, other: &VClock) {
        for (node, counter) in &other.counters {
            let mine = self.counters.entry(node.clone()).or_insert(0);
            *mine = (*mine).max(*counter);
            let ts = self.entry_ts_ms.entry(node.clone()).or_insert(0);
            *ts = (*ts).max(other.entry_ts_ms(node));
        }
        self.check_invariants();
    }

    /// Adds one to `node`'s entry and stamps it with `now_ms`.
    pub fn increment(&mut self, node: &NodeId, now_ms: u64) {
        let next = self.get(node) + 1;
        self.bump_to(node, next, now_ms);
    }

    /// Sets `node`'s entry to `counter`, which must exceed its current value,
    /// and stamps it with `now_ms`.
    pub fn bump_to(&mut self, node: &NodeId, counter: u64, now_ms: u64) {
        assert!(counter > self.get(node), "a clock entry may only grow");
        self.counters.insert(node.clone(), counter);
        self.entry_ts_ms.insert(node.clone(), now_ms);
        self.check_invariants();
    }

    /// Drops the entries bumped longest ago until at most `max_entries`
    /// remain, never dropping `keep` (the entry just bumped). Ties on the
    /// timestamp are broken by node id. Returns how many entries were pruned.
    pub fn prune(&mut self, max_entries: usize, keep: &NodeId) -> usize {
        assert!(max_entries >= 1, "a clock must be allowed at least one entry");
        if self.len() <= max_entries {
            return 0;
        }
        let mut by_age: Vec<(u64, NodeId)> = self
            .counters
            .keys()
            .filter(|node| *node != keep)
            .map(|node| (self.entry_ts_ms(node), node.clone()))
            .collect();
        by_age.sort();
        let excess = self.len() - max_entries;
        for (_, node) in by_age.into_iter().take(excess) {
            self.counters.remove(&node);
            self.entry_ts_ms.remove(&node);
        }
        debug_assert!(self.len() <= max_entries);
        self.check_invariants();
        excess
    }

    /// Keeps only the entries whose node satisfies `keep`.
    pub fn retain(&mut self, keep: impl Fn(&NodeId) -> bool) {
        self.counters.retain(|node, _| keep(node));
        self.entry_ts_ms.retain(|node, _| keep(node));
        self.check_invariants();
    }

    /// Folds one event in as a max: afterwards `get(node) >= counter`.
    pub fn fold(&mut self, node: &NodeId, counter: u64, ts_ms: u64) {
        if counter > self.get(node) {
            self.bump_to(node, counter, ts_ms);
        }
    }

    fn check_invariants(&self) {
        assert!(self.counters.values().all(|c| *c > 0), "zero entry in clock");
        assert!(self.counters.keys().eq(self.entry_ts_ms.keys()), "every entry needs a bump time");
    }
}

/// The event that created a version: which coordinator minted it, and the
/// value of that node's counter it took (unique per node, never reused).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dot {
    /// The coordinator that minted the version.
    pub node: NodeId,
    /// The counter value it issued for it (>= 1).
    pub counter: u64,
}

/// One immutable version of a key: its causal history (context clock and
/// dot, see the module essay) and the coordinator's wall-clock time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Version {
    /// With a dot: the causal context, what the writer had seen (the dot is
    /// *not* in it). Without a dot: the version's whole clock.
    pub clock: VClock,
    /// Coordinator wall-clock ms when the version was created; orders
    /// versions under `lww`.
    pub ts_ms: u64,
    /// The event that created this version; `None` for undotted versions,
    /// which keep the plain clock-descent rule.
    pub dot: Option<Dot>,
}

impl Version {
    /// The version's clock with its dot folded in (as a max, stamped with
    /// `ts_ms`): the plain vector clock summarising its history, which is
    /// what a reader's context is built from and what lww compares.
    pub fn full_clock(&self) -> VClock {
        let mut clock = self.clock.clone();
        if let Some(dot) = &self.dot {
            clock.fold(&dot.node, dot.counter, self.ts_ms);
        }
        clock
    }

    /// Whether event `(node, counter)` is in this version's causal history.
    pub fn has_event(&self, node: &NodeId, counter: u64) -> bool {
        counter <= self.clock.get(node) || self.dot.as_ref().is_some_and(|d| d.node == *node && d.counter == counter)
    }

    /// Whether events `(node, 1..=upto)` are all in this version's history:
    /// below the context's entry, plus possibly the dot right after it.
    fn has_events_upto(&self, node: &NodeId, upto: u64) -> bool {
        let below = self.clock.get(node);
        upto <= below || (upto == below + 1 && self.has_event(node, upto))
    }

    /// Whether `other`'s causal history is contained in `self`'s (equal
    /// histories include each other). For two undotted versions this is
    /// exactly `self.clock.descends(&other.clock)`.
    pub fn includes(&self, other: &Version) -> bool {
        let dot_seen = other.dot.as_ref().is_none_or(|d| self.has_event(&d.node, d.counter));
        dot_seen && other.clock.counters().iter().all(|(node, upto)| self.has_events_upto(node, *upto))
    }

    /// Whether `self` makes `other` obsolete: `other`'s history is a strict
    /// subset of `self`'s.
    pub fn obsoletes(&self, other: &Version) -> bool {
        self.includes(other) && !other.includes(self)
    }

    /// LWW order, identical to `history::Version::lww_cmp`: timestamp
    /// first, then the sum of the full clock's counters, then the full
    /// clocks' map ordering, then the dots (absent first). A lexicographic
    /// order over a tuple is a total order, so it is transitive (no
    /// same-timestamp cycles); since a strict descendant has a strictly
    /// larger counter sum, it agrees with causality: among equal timestamps a
    /// descendant always wins. Two versions with different dots never compare
    /// `Equal`.
    pub fn lww_cmp(&self, other: &Version) -> Ordering {
        let sum = |v: &Version| v.full_counters().map(|(_, c)| u128::from(c)).sum::<u128>();
        self.ts_ms
            .cmp(&other.ts_ms)
            .then_with(|| sum(self).cmp(&sum(other)))
            .then_with(|| self.full_counters().cmp(other.full_counters()))
            .then_with(|| self.dot.cmp(&other.dot))
    }

    /// The counters of [`Version::full_clock`] in node order, without
    /// building it (lww compares on every replica store).
    fn full_counters(&self) -> impl Iterator<Item = (&NodeId, u64)> + '_ {
        let dot = self.dot.as_ref();
        let mut extra = dot.filter(|d| !self.clock.counters.contains_key(&d.node)).map(|d| (&d.node, d.counter));
        let mut context = self
            .clock
            .counters
            .iter()
            .map(move |(n, c)| (n, dot.filter(|d| d.node == *n).map_or(*c, |d| d.counter.max(*c))))
            .peekable();
        std::iter::from_fn(move || match (extra, context.peek()) {
            (Some(e), Some((n, _))) if e.0 >= *n => context.next(),
            (Some(e), _) => {
                extra = None;
                Some(e)
            }
            (None, _) => context.next(),
        })
    }

    /// Asserts what [`crate::coordinate::mint::mint_version`] guarantees and the
    /// wire decoder checks: a dot lies outside its own context.
    fn check_invariants(&self) {
        if let Some(dot) = &self.dot {
            assert!(dot.counter > self.clock.get(&dot.node), "a dot must lie outside its own context");
        }
    }
}

/// One version of a key's value; `value: None` is a tombstone (a delete).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sibling {
    /// The bytes written, or `None` for a delete, which must still be stored
    /// and replicated so that it can supersede older values.
    pub value: Option<Vec<u8>>,
    /// Which write produced this sibling.
    pub version: Version,
}

impl Sibling {
    /// True for a delete marker.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// A total order used only to break ties between siblings with equal
    /// causal histories (normally impossible: every write mints a fresh
    /// dot), so that the merge stays deterministic even on odd inputs. It
    /// compares every field, so it is `Equal` only for identical siblings.
    fn tiebreak_cmp(&self, other: &Sibling) -> Ordering {
        self.version
            .ts_ms
            .cmp(&other.version.ts_ms)
            .then_with(|| self.value.cmp(&other.value))
            .then_with(|| self.version.clock.entry_ts_ms.cmp(&other.version.clock.entry_ts_ms))
            .then_with(|| self.version.dot.cmp(&other.version.dot))
            .then_with(|| self.version.clock.counters.cmp(&other.version.clock.counters))
    }

    /// The canonical order of siblings inside a set (by clock, then dot).
    fn canonical_cmp(&self, other: &Sibling) -> Ordering {
        self.version
            .clock
            .counters
            .cmp(&other.version.clock.counters)
            .then_with(|| self.version.dot.cmp(&other.version.dot))
            .then_with(|| self.tiebreak_cmp(other))
    }

    /// Total order used for lww: [`Version::lww_cmp`] refined by the tiebreak.
    fn lww_total_cmp(&self, other: &Sibling) -> Ordering {
        self.version.lww_cmp(&other.version).then_with(|| self.tiebreak_cmp(other))
    }
}

/// The stored state of one key: an antichain of siblings (no sibling's
/// causal history includes another's), kept in canonical order so equal sets
/// compare equal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiblingSet {
    /// The concurrent versions; exactly one (or none) under `lww`.
    siblings: Vec<Sibling>,
}

impl SiblingSet {
    /// The empty set (key never written).
    pub fn new() -> Self {
        SiblingSet::default()
    }

    /// The set resolved from arbitrary siblings (not necessarily an antichain).
    pub fn from_siblings(siblings: Vec<Sibling>, mode: Resolution) -> Self {
        let set = SiblingSet { siblings: resolve(siblings, mode) };
        set.check_invariants(mode);
        set
    }

    /// A set read back from its stored form (`wire::decode_set`). What a
    /// node stores was resolved before it was written, so a set in
    /// canonical order is taken as it is; anything else is resolved in
    /// full, as [`SiblingSet::from_siblings`] does. Why: a replica reads the
    /// stored set on every store and fetch, and resolving it again compared
    /// every pair of siblings (a set of 20 siblings is 400 comparisons) and
    /// copied the survivors, all to rebuild the set it had read. The antichain
    /// is still checked up to [`CHECKED_SIBLINGS`], where release builds
    /// check it anyway; the stored bytes themselves are guarded by the
    /// storage's checksums.
    pub fn from_stored(siblings: Vec<Sibling>, mode: Resolution) -> Self {
        let ordered = siblings.windows(2).all(|w| w[0].canonical_cmp(&w[1]) == Ordering::Less);
        let fits_mode = mode == Resolution::Siblings || siblings.len() <= 1;
        let antichain = siblings.len() > CHECKED_SIBLINGS || is_antichain(&siblings);
        if !(ordered && fits_mode && antichain) {
            return SiblingSet::from_siblings(siblings, mode);
        }
        // The order, the mode and (up to CHECKED_SIBLINGS) the antichain
        // were checked just above; what is left of `check_invariants` is
        // each version's own, and the debug builds' antichain of larger sets.
        debug_assert!(is_antichain(&siblings), "sibling set must be an antichain: no sibling may include another");
        siblings.iter().for_each(|s| s.version.check_invariants());
        SiblingSet { siblings }
    }

    /// Merges `incoming` into `self`: siblings dominated by (or equal to) a
    /// sibling of the other side are dropped, concurrent ones are kept; under
    /// `lww` only the greatest survives.
    pub fn merge(&mut self, incoming: SiblingSet, mode: Resolution) {
        self.merge_changed(incoming, mode);
    }

    /// [`SiblingSet::merge`], telling whether the set changed. Why not
    /// compare with a copy: a replica merges every store it takes into what
    /// it holds, and the copy and the comparison cost more than the merge.
    /// The set stays as it was exactly when every sibling it held survives
    /// and every incoming sibling that survives is one it already held.
    pub fn merge_changed(&mut self, incoming: SiblingSet, mode: Resolution) -> bool {
        let held = self.siblings.len();
        let mut all = std::mem::take(&mut self.siblings);
        all.extend(incoming.siblings);
        let (siblings, changed) = match mode {
            Resolution::Siblings => {
                let kept = maximal_flags(&all);
                let (current, arriving) = all.split_at(held);
                let changed = kept[..held].contains(&false)
                    || arriving.iter().zip(&kept[held..]).any(|(sibling, &kept)| {
                        kept && current.binary_search_by(|c| c.canonical_cmp(sibling)).is_err()
                    });
                (maximal_of(all, kept), changed)
            }
            Resolution::Lww => {
                // At most one held and one or two arriving: finding the
                // winner twice costs nothing worth a second code path.
                let winner = lww_winner(&all);
                let changed = held > 1 || winner.map(|w| &all[w]) != all[..held].first();
                (resolve(all, mode), changed)
            }
        };
        self.siblings = siblings;
        self.check_invariants(mode);
        changed
    }

    /// The siblings, in canonical order.
    pub fn siblings(&self) -> &[Sibling] {
        &self.siblings
    }

    /// Consumes the set into its siblings.
    pub fn into_siblings(self) -> Vec<Sibling> {
        self.siblings
    }

    /// Number of siblings.
    pub fn len(&self) -> usize {
        self.siblings.len()
    }

    /// True when the key has no version at all.
    pub fn is_empty(&self) -> bool {
        self.siblings.is_empty()
    }

    /// The join of every sibling's full clock (context with the dot folded
    /// in): the causal context a client needs so that its next write
    /// obsoletes all of them.
    pub fn merged_clock(&self) -> VClock {
        let mut clock = VClock::new();
        for sibling in &self.siblings {
            clock.merge(&sibling.version.full_clock());
        }
        clock
    }

    /// Checked on every set made or merged, in release builds too: a
    /// dominated version kept as a sibling would be served as a live value
    /// nobody can overwrite. The pairwise check is quadratic, so it runs in
    /// full on sets of up to [`CHECKED_SIBLINGS`] (every set a healthy
    /// cluster makes) and on larger ones only in debug builds.
    fn check_invariants(&self, mode: Resolution) {
        if mode == Resolution::Lww {
            assert!(self.siblings.len() <= 1, "lww keeps at most one sibling");
        }
        assert!(
            self.siblings.windows(2).all(|w| w[0].canonical_cmp(&w[1]) == Ordering::Less),
            "siblings must be in canonical order without duplicates"
        );
        if self.siblings.len() <= CHECKED_SIBLINGS {
            assert!(is_antichain(&self.siblings), "sibling set must be an antichain: no sibling may include another");
        } else {
            debug_assert!(
                is_antichain(&self.siblings),
                "sibling set must be an antichain: no sibling may include another"
            );
        }
        self.siblings.iter().for_each(|s| s.version.check_invariants());
    }
}

/// The largest sibling set whose antichain invariant release builds check.
pub const CHECKED_SIBLINGS: usize = 8;

/// Whether no sibling's causal history includes another's.
fn is_antichain(siblings: &[Sibling]) -> bool {
    siblings.iter().all(|a| siblings.iter().all(|b| a == b || !a.version.includes(&b.version)))
}

/// Reduces any collection of siblings to the resolved set (a function of the
/// collection's contents only, hence order-insensitive).
fn resolve(all: Vec<Sibling>, mode: Resolution) -> Vec<Sibling> {
    match mode {
        Resolution::Siblings => {
            let kept = maximal_flags(&all);
            maximal_of(all, kept)
        }
        Resolution::Lww => {
            let winner = lww_winner(&all);
            all.into_iter().nth(winner.unwrap_or(usize::MAX)).into_iter().collect()
        }
    }
}

/// The maximal elements under history inclusion (those `kept`, from
/// [`maximal_flags`]); among equal histories the greatest by the tiebreak
/// order. The survivors are moved, not cloned: a replica resolves every set
/// it reads from its store.
fn maximal_of(all: Vec<Sibling>, kept: Vec<bool>) -> Vec<Sibling> {
    assert_eq!(all.len(), kept.len(), "one flag per sibling");
    let mut kept: Vec<Sibling> =
        all.into_iter().zip(kept).filter_map(|(sibling, kept)| kept.then_some(sibling)).collect();
    kept.sort_by(Sibling::canonical_cmp);
    kept.dedup();
    kept
}

/// For each sibling, whether no other dominates it.
fn maximal_flags(all: &[Sibling]) -> Vec<bool> {
    all.iter().map(|s| !all.iter().any(|t| dominates(t, s))).collect()
}

/// Whether `t` makes `s` redundant: a strictly larger causal history, or the
/// same history with a greater tiebreak. Lexicographic over (history by
/// inclusion, tiebreak), hence a strict partial order: the merge's maximal
/// elements do not depend on grouping.
fn dominates(t: &Sibling, s: &Sibling) -> bool {
    let (tv, sv) = (&t.version, &s.version);
    tv.includes(sv) && (!sv.includes(tv) || t.tiebreak_cmp(s) == Ordering::Greater)
}

/// The lww survivor: the sibling that is `>=` every other under the lww
/// order. Should same-timestamp versions form a cycle (see
/// [`Version::lww_cmp`]), no such sibling exists and the greatest by
/// (timestamp, clock map order, tiebreak) is kept instead, which is still a
/// deterministic function of the inputs.
fn lww_winner(all: &[Sibling]) -> Option<usize> {
    let winner = all.iter().position(|s| all.iter().all(|t| s.lww_total_cmp(t) != Ordering::Less));
    winner.or_else(|| {
        let by = |a: &(usize, &Sibling), b: &(usize, &Sibling)| {
            a.1.version.ts_ms.cmp(&b.1.version.ts_ms).then_with(|| a.1.canonical_cmp(b.1))
        };
        all.iter().enumerate().max_by(by).map(|(index, _)| index)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn clock(pairs: &[(&str, u64)]) -> VClock {
        VClock::from_entries(pairs.iter().map(|(n, c)| (NodeId::from(*n), *c, *c)))
    }

    fn sib(value: &str, pairs: &[(&str, u64)], ts_ms: u64) -> Sibling {
        Sibling { value: Some(value.as_bytes().to_vec()), version: Version { clock: clock(pairs), ts_ms, dot: None } }
    }

    fn set(siblings: Vec<Sibling>, mode: Resolution) -> SiblingSet {
        SiblingSet::from_siblings(siblings, mode)
    }

    #[test]
    fn descends_and_concurrent() {
        let a = clock(&[("n1", 1)]);
        let b = clock(&[("n1", 2), ("n2", 1)]);
        let c = clock(&[("n2", 2)]);
        assert!(b.descends(&a) && b.strictly_descends(&a));
        assert!(!a.descends(&b));
        assert!(a.descends(&a) && !a.strictly_descends(&a));
        assert!(a.concurrent(&c) && b.concurrent(&c));
        assert!(a.descends(&VClock::new()));
    }

    #[test]
    fn merge_is_pointwise_max() {
        let mut a = clock(&[("n1", 3), ("n2", 1)]);
        a.merge(&clock(&[("n2", 4), ("n3", 1)]));
        assert_eq!(a, clock(&[("n1", 3), ("n2", 4), ("n3", 1)]));
    }

    #[test]
    fn increment_and_bump() {
        let n1 = NodeId::from("n1");
        let mut c = VClock::new();
        c.increment(&n1, 7);
        assert_eq!(c.get(&n1), 1);
        assert_eq!(c.entry_ts_ms(&n1), 7);
        c.bump_to(&n1, 10, 9);
        assert_eq!(c.get(&n1), 10);
        assert_eq!(c.entry_ts_ms(&n1), 9);
    }

    #[test]
    #[should_panic(expected = "only grow")]
    fn bump_backwards_panics() {
        let n1 = NodeId::from("n1");
        let mut c = clock(&[("n1", 5)]);
        c.bump_to(&n1, 5, 0);
    }

    #[test]
    fn prune_drops_oldest_but_keeps_the_bumped_entry() {
        let mut c = VClock::from_entries([
            (NodeId::from("a"), 1, 30),
            (NodeId::from("b"), 1, 10),
            (NodeId::from("c"), 1, 20),
            (NodeId::from("d"), 1, 5),
        ]);
        assert_eq!(c.prune(4, &NodeId::from("d")), 0);
        assert_eq!(c.prune(2, &NodeId::from("d")), 2);
        let left: Vec<&str> = c.counters().keys().map(|n| n.as_str()).collect();
        assert_eq!(left, vec!["a", "d"]);
    }

    #[test]
    fn concurrent_writes_become_siblings_and_a_covering_write_replaces_them() {
        let mode = Resolution::Siblings;
        let mut s = set(vec![sib("x", &[("n1", 1)], 1)], mode);
        s.merge(set(vec![sib("y", &[("n2", 1)], 1)], mode), mode);
        assert_eq!(s.len(), 2);
        s.merge(set(vec![sib("z", &[("n1", 2), ("n2", 1)], 2)], mode), mode);
        assert_eq!(s.len(), 1);
        assert_eq!(s.siblings()[0].value.as_deref(), Some(&b"z"[..]));
        // A stale version arriving late is dropped.
        s.merge(set(vec![sib("x", &[("n1", 1)], 1)], mode), mode);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn lww_keeps_latest_timestamp_even_if_causally_older() {
        let mode = Resolution::Lww;
        let mut s = set(vec![sib("new-clock-old-ts", &[("n1", 2)], 5)], mode);
        s.merge(set(vec![sib("old-clock-new-ts", &[("n1", 1)], 9)], mode), mode);
        assert_eq!(s.len(), 1);
        assert_eq!(s.siblings()[0].version.ts_ms, 9);
    }

    #[test]
    fn lww_same_ts_uses_descends_then_map_order() {
        let mode = Resolution::Lww;
        let s = set(vec![sib("a", &[("n1", 1)], 5), sib("b", &[("n1", 1), ("n0", 1)], 5)], mode);
        assert_eq!(s.siblings()[0].value.as_deref(), Some(&b"b"[..]));
        let s = set(vec![sib("a", &[("n1", 1)], 5), sib("b", &[("n2", 1)], 5)], mode);
        // {n1:1} < {n2:1} in map order, as in history::Version::lww_cmp.
        assert_eq!(s.siblings()[0].value.as_deref(), Some(&b"b"[..]));
    }

    #[test]
    fn lww_order_is_transitive_and_a_descendant_wins_ties() {
        // Under a map-order-only tiebreak these three formed a cycle.
        let a = sib("a", &[("x", 1)], 5);
        let b = sib("b", &[("w", 1), ("x", 1)], 5);
        let c = sib("c", &[("wz", 1)], 5);
        assert_eq!(b.version.lww_cmp(&a.version), Ordering::Greater, "descendant wins");
        assert_eq!(b.version.lww_cmp(&c.version), Ordering::Greater);
        assert_eq!(a.version.lww_cmp(&c.version), Ordering::Greater, "equal sums: map order");
        let one = set(vec![a.clone(), b.clone(), c.clone()], Resolution::Lww);
        let two = set(vec![c, a, b], Resolution::Lww);
        assert_eq!(one, two);
        assert_eq!(one.siblings()[0].value.as_deref(), Some(&b"b"[..]));
    }

    #[test]
    fn merged_clock_covers_all_siblings() {
        let s = set(vec![sib("x", &[("n1", 3)], 1), sib("y", &[("n2", 2)], 1)], Resolution::Siblings);
        assert_eq!(s.merged_clock(), clock(&[("n1", 3), ("n2", 2)]));
    }

    fn dotted(value: &str, context: &[(&str, u64)], dot: (&str, u64), ts_ms: u64) -> Sibling {
        Sibling {
            value: Some(value.as_bytes().to_vec()),
            version: Version {
                clock: clock(context),
                ts_ms,
                dot: Some(Dot { node: NodeId::from(dot.0), counter: dot.1 }),
            },
        }
    }

    fn values(s: &SiblingSet) -> Vec<&str> {
        let mut v: Vec<&str> =
            s.siblings().iter().map(|x| std::str::from_utf8(x.value.as_deref().unwrap()).unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn same_coordinator_same_context_writes_are_siblings() {
        // The bug: A and B both read {} and write through n1.
        let mode = Resolution::Siblings;
        let a = dotted("A", &[], ("n1", 101), 1);
        let b = dotted("B", &[], ("n1", 102), 2);
        assert!(!b.version.includes(&a.version) && !a.version.includes(&b.version));
        let mut s = set(vec![a.clone()], mode);
        s.merge(set(vec![b.clone()], mode), mode);
        assert_eq!(values(&s), vec!["A", "B"]);
        // The context a reader of both gets, and a write with it.
        let ctx = s.merged_clock();
        assert_eq!(ctx.counters(), clock(&[("n1", 102)]).counters());
        let c = Sibling {
            value: Some(b"C".to_vec()),
            version: Version { clock: ctx, ts_ms: 3, dot: Some(Dot { node: NodeId::from("n2"), counter: 7 }) },
        };
        s.merge(set(vec![c.clone()], mode), mode);
        assert_eq!(values(&s), vec!["C"]);
        // A stale replica re-sending an obsoleted version resurrects nothing.
        s.merge(set(vec![a, b], mode), mode);
        assert_eq!(s.siblings(), &[c][..]);
    }

    #[test]
    fn a_write_that_saw_one_sibling_replaces_only_that_one() {
        let mode = Resolution::Siblings;
        let a = dotted("A", &[], ("n1", 101), 1);
        let b = dotted("B", &[], ("n2", 5), 1);
        // Saw only A (context {n1:101}), wrote through n1.
        let a2 = dotted("A2", &[("n1", 101)], ("n1", 103), 2);
        let s = set(vec![a, b, a2], mode);
        assert_eq!(values(&s), vec!["A2", "B"]);
    }

    #[test]
    fn the_dot_rule_is_history_inclusion() {
        let v = |ctx: &[(&str, u64)], dot: (&str, u64)| dotted("x", ctx, dot, 1).version;
        let a = v(&[("n2", 3)], ("n1", 5));
        // The dot is seen but not a's context: a is kept (never lost).
        assert!(!v(&[("n1", 5)], ("n3", 1)).includes(&a));
        assert!(v(&[("n1", 5), ("n2", 3)], ("n3", 1)).includes(&a));
        // The same dot and context: equal histories.
        assert!(a.includes(&a.clone()) && !a.obsoletes(&a.clone()));
        // A context entry just below the dot, completed by the dot.
        let b = v(&[("n1", 4)], ("n1", 5));
        assert!(!b.includes(&v(&[("n1", 5)], ("n1", 6))));
        assert!(b.includes(&undotted(&[("n1", 5)])));
        assert!(!undotted(&[("n1", 4)]).includes(&b));
        assert!(undotted(&[("n1", 5)]).includes(&b));
    }

    fn undotted(pairs: &[(&str, u64)]) -> Version {
        sib("u", pairs, 1).version
    }

    #[test]
    fn lww_is_unchanged_by_dots_and_never_ties_different_dots() {
        let a = dotted("A", &[], ("n1", 101), 5).version;
        let b = dotted("B", &[], ("n1", 102), 5).version;
        // As the undotted {n1:101} vs {n1:102}: the larger sum wins.
        assert_eq!(b.lww_cmp(&a), Ordering::Greater);
        assert_eq!(b.lww_cmp(&a), undotted(&[("n1", 102)]).lww_cmp(&undotted(&[("n1", 101)])));
        // Same full clock {n1:2, n2:1}, different dots: still ordered.
        let c = dotted("C", &[("n1", 2)], ("n2", 1), 5).version;
        let d = dotted("D", &[("n2", 1)], ("n1", 2), 5).version;
        assert_eq!(c.full_clock().counters(), d.full_clock().counters());
        assert_ne!(c.lww_cmp(&d), Ordering::Equal);
        assert_eq!(c.lww_cmp(&d), d.lww_cmp(&c).reverse());
        let s = set(vec![dotted("A", &[], ("n1", 101), 5), dotted("B", &[], ("n1", 102), 5)], Resolution::Lww);
        assert_eq!(values(&s), vec!["B"]);
    }

    #[test]
    fn full_counters_fold_the_dot_in_order() {
        for (ctx, dot) in [
            (vec![], ("b", 3)),
            (vec![("a", 1), ("c", 2)], ("b", 3)),
            (vec![("a", 1), ("b", 2)], ("b", 3)),
            (vec![("b", 1)], ("a", 3)),
            (vec![("b", 1)], ("c", 3)),
        ] {
            let v = dotted("x", &ctx, dot, 1).version;
            let via_iter: BTreeMap<NodeId, u64> = v.full_counters().map(|(n, c)| (n.clone(), c)).collect();
            assert_eq!(&via_iter, v.full_clock().counters());
        }
    }

    const NODES: [&str; 4] = ["a", "b", "c", "d"];

    /// Siblings whose payload is a function of the clock (as in a real
    /// cluster, where each clock is minted once).
    fn arb_sibling() -> impl Strategy<Value = Sibling> {
        (proptest::collection::vec(0u64..4, NODES.len()), 0u64..4, any::<bool>()).prop_map(|(counts, ts_ms, tomb)| {
            let pairs: Vec<(&str, u64)> = NODES.iter().copied().zip(counts).collect();
            let c = clock(&pairs);
            let value = (!tomb).then(|| format!("{:?}", c.counters()).into_bytes());
            Sibling { value, version: Version { clock: c, ts_ms, dot: None } }
        })
    }

    /// Like `arb_sibling`, but with a timestamp unique to the clock, so the
    /// lww order is a total order (no same-timestamp cycles).
    fn arb_sibling_distinct_ts() -> impl Strategy<Value = Sibling> {
        arb_sibling().prop_map(|mut s| {
            let ts = s.version.clock.counters().values().fold(0u64, |acc, c| acc * 4 + c);
            s.version.ts_ms = ts;
            s
        })
    }

    /// Dotted siblings: a context, a dot outside it, a payload that is a
    /// function of the dot (each dot is minted once in a real cluster).
    fn arb_dotted() -> impl Strategy<Value = Sibling> {
        (proptest::collection::vec(0u64..3, NODES.len()), 0usize..NODES.len(), 1u64..3, 0u64..4, any::<bool>())
            .prop_map(|(counts, node, above, ts_ms, tomb)| {
                let pairs: Vec<(&str, u64)> = NODES.iter().copied().zip(counts).collect();
                let context = clock(&pairs);
                let dot_node = NodeId::from(NODES[node]);
                let counter = context.get(&dot_node) + above;
                let value = (!tomb).then(|| format!("{:?}@{node}:{counter}", context.counters()).into_bytes());
                Sibling {
                    value,
                    version: Version { clock: context, ts_ms, dot: Some(Dot { node: dot_node, counter }) },
                }
            })
    }

    /// Dotted and undotted siblings mixed.
    fn arb_any_sibling() -> impl Strategy<Value = Sibling> {
        prop_oneof![arb_sibling(), arb_dotted(), arb_dotted()]
    }

    fn arb_dotted_set(mode: Resolution) -> impl Strategy<Value = SiblingSet> {
        proptest::collection::vec(arb_any_sibling(), 0..5).prop_map(move |v| set(v, mode))
    }

    fn arb_mode() -> impl Strategy<Value = Resolution> {
        prop_oneof![Just(Resolution::Siblings), Just(Resolution::Lww)]
    }

    fn arb_set(mode: Resolution) -> impl Strategy<Value = SiblingSet> {
        proptest::collection::vec(arb_sibling(), 0..5).prop_map(move |v| set(v, mode))
    }

    fn merged(a: &SiblingSet, b: &SiblingSet, mode: Resolution) -> SiblingSet {
        let mut out = a.clone();
        out.merge(b.clone(), mode);
        out
    }

    proptest! {
        /// A stored set reads back as resolving it would: siblings out of
        /// order, dominated or repeated (bytes a node did not write) are
        /// resolved, and a resolved set of any size is itself.
        #[test]
        fn a_stored_set_reads_back_as_resolving_it_would(
            mode in arb_mode(),
            siblings in proptest::collection::vec(arb_any_sibling(), 0..14),
        ) {
            if siblings.len() <= CHECKED_SIBLINGS {
                let stored = SiblingSet::from_stored(siblings.clone(), mode);
                prop_assert_eq!(stored, SiblingSet::from_siblings(siblings.clone(), mode));
            }
            let resolved = SiblingSet::from_siblings(siblings, mode);
            prop_assert_eq!(SiblingSet::from_stored(resolved.siblings().to_vec(), mode), resolved);
        }

        /// What a replica keys its writes on: `merge_changed` says the set
        /// changed exactly when it differs from before the merge, in both
        /// modes, dotted or not, with an incoming set that repeats what is
        /// held (a retried store) or overlaps it.
        #[test]
        fn merge_changed_says_whether_the_set_differs_from_before(
            mode in arb_mode(),
            held in proptest::collection::vec(arb_any_sibling(), 0..5),
            arriving in proptest::collection::vec(arb_any_sibling(), 0..5),
            repeat in 0usize..3,
        ) {
            let before = set(held, mode);
            let mut incoming: Vec<Sibling> = before.siblings().iter().take(repeat).cloned().collect();
            incoming.extend(arriving);
            let mut after = before.clone();
            let changed = after.merge_changed(set(incoming.clone(), mode), mode);
            prop_assert_eq!(changed, after != before, "{:?} + {:?} -> {:?}", before, incoming, after);
            let mut again = after.clone();
            prop_assert!(!again.merge_changed(set(incoming, mode), mode), "merging the same again changes nothing");
            prop_assert_eq!(again, after);
        }

        #[test]
        fn merge_is_commutative(mode in arb_mode(), a in arb_set(Resolution::Siblings), b in arb_set(Resolution::Siblings)) {
            let (a, b) = (set(a.into_siblings(), mode), set(b.into_siblings(), mode));
            prop_assert_eq!(merged(&a, &b, mode), merged(&b, &a, mode));
        }

        #[test]
        fn merge_is_idempotent(mode in arb_mode(), a in arb_set(Resolution::Siblings)) {
            let a = set(a.into_siblings(), mode);
            prop_assert_eq!(merged(&a, &a, mode), a);
        }

        #[test]
        fn merge_is_associative_for_siblings(a in arb_set(Resolution::Siblings), b in arb_set(Resolution::Siblings), c in arb_set(Resolution::Siblings)) {
            let mode = Resolution::Siblings;
            prop_assert_eq!(merged(&merged(&a, &b, mode), &c, mode), merged(&a, &merged(&b, &c, mode), mode));
        }

        #[test]
        fn merge_is_associative_for_lww_when_timestamps_differ(
            a in proptest::collection::vec(arb_sibling_distinct_ts(), 0..4),
            b in proptest::collection::vec(arb_sibling_distinct_ts(), 0..4),
            c in proptest::collection::vec(arb_sibling_distinct_ts(), 0..4),
        ) {
            let mode = Resolution::Lww;
            let (a, b, c) = (set(a, mode), set(b, mode), set(c, mode));
            prop_assert_eq!(merged(&merged(&a, &b, mode), &c, mode), merged(&a, &merged(&b, &c, mode), mode));
        }

        #[test]
        fn merged_set_is_an_antichain(a in arb_set(Resolution::Siblings), b in arb_set(Resolution::Siblings)) {
            let m = merged(&a, &b, Resolution::Siblings);
            for x in m.siblings() {
                for y in m.siblings() {
                    prop_assert!(x == y || !x.version.clock.descends(&y.version.clock));
                }
            }
            // Nothing is lost: every input is dominated by (or in) the result.
            for s in a.siblings().iter().chain(b.siblings()) {
                prop_assert!(m.siblings().iter().any(|k| k.version.clock.descends(&s.version.clock)));
            }
        }

        #[test]
        fn a_descendant_of_all_replaces_all(a in arb_set(Resolution::Siblings), node in 0usize..4, ts_ms in 0u64..10) {
            let mut c = a.merged_clock();
            c.increment(&NodeId::from(NODES[node]), ts_ms);
            let newer = Sibling { value: Some(b"new".to_vec()), version: Version { clock: c, ts_ms, dot: None } };
            let m = merged(&a, &set(vec![newer.clone()], Resolution::Siblings), Resolution::Siblings);
            prop_assert_eq!(m.siblings(), &[newer][..]);
        }

        #[test]
        fn lww_keeps_the_max(all in proptest::collection::vec(arb_sibling_distinct_ts(), 1..6)) {
            let m = set(all.clone(), Resolution::Lww);
            prop_assert_eq!(m.len(), 1);
            let kept = &m.siblings()[0];
            for s in &all {
                prop_assert!(kept.version.lww_cmp(&s.version) != Ordering::Less);
            }
        }

        #[test]
        fn dotted_merge_is_commutative_idempotent_associative(mode in arb_mode(), a in arb_dotted_set(Resolution::Siblings), b in arb_dotted_set(Resolution::Siblings), c in arb_dotted_set(Resolution::Siblings)) {
            let (a, b, c) = (set(a.into_siblings(), mode), set(b.into_siblings(), mode), set(c.into_siblings(), mode));
            prop_assert_eq!(merged(&a, &b, mode), merged(&b, &a, mode));
            prop_assert_eq!(merged(&a, &a, mode), a.clone());
            if mode == Resolution::Siblings {
                prop_assert_eq!(merged(&merged(&a, &b, mode), &c, mode), merged(&a, &merged(&b, &c, mode), mode));
            }
        }

        #[test]
        fn dotted_merge_loses_nothing(a in arb_dotted_set(Resolution::Siblings), b in arb_dotted_set(Resolution::Siblings)) {
            let m = merged(&a, &b, Resolution::Siblings);
            for x in m.siblings() {
                for y in m.siblings() {
                    prop_assert!(x == y || !x.version.includes(&y.version));
                }
            }
            for s in a.siblings().iter().chain(b.siblings()) {
                prop_assert!(m.siblings().iter().any(|k| k.version.includes(&s.version)));
            }
        }

        #[test]
        fn a_write_with_the_read_context_obsoletes_every_sibling_read(a in arb_dotted_set(Resolution::Siblings), node in 0usize..4, above in 1u64..3, ts_ms in 0u64..10) {
            let context = a.merged_clock();
            let me = NodeId::from(NODES[node]);
            let counter = context.get(&me) + above;
            let newer = Sibling { value: Some(b"new".to_vec()), version: Version { clock: context, ts_ms, dot: Some(Dot { node: me, counter }) } };
            let m = merged(&a, &set(vec![newer.clone()], Resolution::Siblings), Resolution::Siblings);
            prop_assert_eq!(m.siblings(), &[newer][..]);
        }

        #[test]
        fn undotted_inclusion_is_clock_descent(a in arb_sibling(), b in arb_sibling()) {
            prop_assert_eq!(a.version.includes(&b.version), a.version.clock.descends(&b.version.clock));
        }

        #[test]
        fn lww_is_a_total_order_on_dotted_versions(a in arb_any_sibling(), b in arb_any_sibling()) {
            let (x, y) = (&a.version, &b.version);
            prop_assert_eq!(x.lww_cmp(y), y.lww_cmp(x).reverse());
            if x.lww_cmp(y) == Ordering::Equal {
                prop_assert_eq!(&x.dot, &y.dot);
            }
        }

        #[test]
        fn prune_bounds_the_clock(counts in proptest::collection::vec(1u64..5, 1..12), max in 1usize..6) {
            let mut c = VClock::from_entries(counts.iter().enumerate().map(|(i, n)| (NodeId::new(format!("n{i}")), *n, i as u64)));
            let before = c.len();
            let keep = NodeId::from("n0");
            let pruned = c.prune(max, &keep);
            prop_assert_eq!(pruned, before.saturating_sub(max));
            prop_assert!(c.len() <= max);
            prop_assert!(c.get(&keep) > 0);
        }
    }
}
