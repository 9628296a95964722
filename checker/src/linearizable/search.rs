//! The search for a linearization of one register's history: Wing and
//! Gong's backtracking over the real-time order, with Lowe's memoisation of
//! (linearized set, state) pairs, as Porcupine does it.
//!
//! The history is a list of calls and returns sorted by time, kept as a
//! doubly linked list. Walking it from the front, a call may be
//! *linearized* (taken out of the list, call and return, and applied to the
//! register) if the register allows it in the current state and the pair
//! (ops linearized so far, new state) has not been tried before; the choice
//! is pushed on a stack. Reaching a return means the op it closes was not
//! linearized before its response, so the last choice was wrong: pop it,
//! put its op back and try the next call after it. An empty list is a
//! linearization; a return reached with an empty stack proves there is
//! none. The memo is what keeps this from exploring the same partial
//! linearization twice: two orders that linearize the same ops and leave the
//! same value are interchangeable for the rest of the search.
//!
//! Ties in time: a call at the same instant as another op's return is
//! sorted before it, so the two count as concurrent. The recorder's clock
//! has finite resolution (whole milliseconds under the simulator), and
//! ordering ops it cannot tell apart would invent anomalies.
//!
//! The memo is exact and cheap: the linearized set carries a Zobrist hash
//! (a fixed random word per op, XORed in and out as ops are linearized and
//! undone), so looking a pair up costs O(1) instead of hashing every word of
//! the set; equal hashes are compared, so a collision costs time, never a
//! wrong answer. A set is stored as its count of leading all-ones words and
//! the few words after them up to its last linearized op, not one bit per op
//! of the key, which made every insert copy and every key's memo hold
//! ops²/8 bytes.
//!
//! An op whose outcome is unknown (`info`, or no completion) returns at
//! `u64::MAX`: it may be linearized anywhere after its call, and being
//! linearized after everything else is the same as never taking effect.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

/// An op's effect on the register. Values are interned: `0` is the absent
/// key (never written, or deleted), every written value has its own id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sets the register to the value.
    Write(u32),
    /// Returned the value; allowed only when the register holds it.
    Read(u32),
    /// Compare-and-set: sets the register to `to`, allowed only when it
    /// holds `from` (the cas-register model; a cas that failed is left out,
    /// since it certainly did not happen).
    Cas {
        /// The value it expected.
        from: u32,
        /// The value it installed.
        to: u32,
    },
}

impl Kind {
    /// The value this op leaves in the register when it takes effect, if it
    /// writes one (a write or a cas).
    pub fn installs(self) -> Option<u32> {
        match self {
            Kind::Write(value) | Kind::Cas { to: value, .. } => Some(value),
            Kind::Read(_) => None,
        }
    }

    /// The value this op must find in the register, if it reads one (a
    /// read, or the value a cas compares against).
    pub fn observes(self) -> Option<u32> {
        match self {
            Kind::Read(value) | Kind::Cas { from: value, .. } => Some(value),
            Kind::Write(_) => None,
        }
    }
}

/// One operation of the register's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// When it was invoked (ns since the run started).
    pub call_ns: u64,
    /// When it completed; `u64::MAX` when it may or may not have happened.
    pub return_ns: u64,
    /// What it did or saw.
    pub kind: Kind,
}

/// What the search may spend on one history before it gives up.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Wall-clock time.
    pub time: Duration,
    /// Memoised (linearized set, state) pairs, a bound on memory: each
    /// holds the words of its set between the leading ones and the
    /// trailing zeros (a few, as the search goes; one bit per op at worst).
    pub memo_entries: usize,
}

/// The answer for one history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Some order of the ops respects real time and the register.
    Linearizable,
    /// None does (the witness module finds a small set of ops that shows it).
    Violation,
    /// The budget ran out first; why.
    GaveUp(String),
}

/// The register after `kind`, or None if `kind` is impossible in `state`.
fn step(state: u32, kind: Kind) -> Option<u32> {
    match kind {
        Kind::Write(value) => Some(value),
        Kind::Read(value) => (value == state).then_some(state),
        Kind::Cas { from, to } => (from == state).then_some(to),
    }
}

/// Searches `ops` for a linearization within `budget`.
pub fn search(ops: &[Entry], budget: Budget) -> Outcome {
    let mut list = EventList::new(ops);
    let started = Instant::now();
    let mut linearized = Linearized::new(ops.len());
    let mut memo = Memo::new();
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let mut state = 0u32;
    let mut event = list.first();
    let mut steps = 0u64;
    while let Some(e) = event {
        steps += 1;
        if steps.is_multiple_of(4096) && started.elapsed() > budget.time {
            return Outcome::GaveUp(format!("search passed its {} ms budget", budget.time.as_millis()));
        }
        let op = list.op_of(e);
        if list.is_call(e) {
            if let Some(next_state) = step(state, ops[op].kind) {
                linearized.flip(op);
                if memo.insert(&linearized, next_state) {
                    if memo.len() > budget.memo_entries {
                        return Outcome::GaveUp(format!("search passed its {} memo-entry budget", budget.memo_entries));
                    }
                    stack.push((op, state));
                    state = next_state;
                    list.lift(op);
                    event = list.first();
                    continue;
                }
                linearized.flip(op);
            }
            event = list.next(e);
        } else {
            let Some((undone, before)) = stack.pop() else {
                return Outcome::Violation;
            };
            state = before;
            linearized.flip(undone);
            list.unlift(undone);
            event = list.next(list.call_event(undone));
        }
    }
    debug_assert!(linearized.bits.iter().map(|w| w.count_ones() as usize).sum::<usize>() == ops.len());
    Outcome::Linearizable
}

/// The set of linearized ops, one bit each, with a hash kept up to date
/// as bits flip (Zobrist: the XOR of a fixed random word per set bit), so
/// the memo hashes it in O(1) instead of reading every word.
///
/// The search linearizes ops roughly in invocation order, so the set is a
/// run of whole words of ones, a ragged edge of a few words, then zeros.
/// `full` and `top` track the edge, and (`full`, the words from `full` to
/// `top`) is a canonical form of the set that the memo stores and compares:
/// a few words, not one bit per op of the key.
struct Linearized {
    /// Bit `i` is op `i`.
    bits: Vec<u64>,
    /// XOR of [`zobrist`] over the set bits.
    hash: u64,
    /// Leading words that are all ones.
    full: usize,
    /// One past the last word that is not zero (0: none is).
    top: usize,
}

impl Linearized {
    fn new(ops: usize) -> Linearized {
        Linearized { bits: vec![0; ops.div_ceil(64)], hash: 0, full: 0, top: 0 }
    }

    /// Adds op `i` if absent, removes it if present.
    fn flip(&mut self, i: usize) {
        let (word, mask) = (i / 64, 1u64 << (i % 64));
        self.bits[word] ^= mask;
        self.hash ^= zobrist(i as u64);
        if self.bits[word] & mask != 0 {
            self.top = self.top.max(word + 1);
            while self.full < self.bits.len() && self.bits[self.full] == u64::MAX {
                self.full += 1;
            }
        } else {
            self.full = self.full.min(word);
            while self.top > 0 && self.bits[self.top - 1] == 0 {
                self.top -= 1;
            }
        }
        debug_assert!(self.full <= self.top.max(self.full) && self.top <= self.bits.len());
    }

    /// The words between the leading ones and the trailing zeros.
    fn edge(&self) -> &[u64] {
        &self.bits[self.full..self.top.max(self.full)]
    }
}

/// A fixed pseudo-random word per op (splitmix64 of its position).
fn zobrist(i: u64) -> u64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The (linearized set, state) pairs tried so far. Exact: entries with
/// equal hashes are chained and compared by their canonical forms, so a
/// collision costs a comparison, never a wrong answer. The sets' edges
/// live in one arena.
struct Memo {
    /// Entry `i`'s set: its count of leading all-ones words, and where its
    /// edge words sit in `arena` (start, length).
    sets: Vec<(usize, usize, usize)>,
    /// The entries' edge words, one after another.
    arena: Vec<u64>,
    /// Entry `i`'s state.
    states: Vec<u32>,
    /// Entry `i`'s next entry with the same hash, or `NONE`.
    chain: Vec<u32>,
    /// Hash of (set, state) -> the latest entry with it.
    heads: HashMap<u64, u32, BuildHasherDefault<PreHashed>>,
}

/// No next entry in a [`Memo`] chain.
const NONE: u32 = u32::MAX;

impl Memo {
    fn new() -> Memo {
        Memo { sets: Vec::new(), arena: Vec::new(), states: Vec::new(), chain: Vec::new(), heads: HashMap::default() }
    }

    fn len(&self) -> usize {
        self.states.len()
    }

    /// Records (set, state); false if it was already there.
    fn insert(&mut self, set: &Linearized, state: u32) -> bool {
        let hash = set.hash ^ zobrist(u64::from(state) ^ 0x5eed_0000_0000_0000);
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        let mut entry = head;
        while entry != NONE {
            let i = entry as usize;
            let (full, start, len) = self.sets[i];
            if self.states[i] == state && full == set.full && self.arena[start..start + len] == *set.edge() {
                return false;
            }
            entry = self.chain[i];
        }
        let i = u32::try_from(self.states.len()).expect("fewer than 2^32 memo entries (the budget is far below)");
        self.sets.push((set.full, self.arena.len(), set.edge().len()));
        self.arena.extend_from_slice(set.edge());
        self.states.push(state);
        self.chain.push(head);
        self.heads.insert(hash, i);
        true
    }
}

/// A hasher for keys that are already uniform hashes: it passes the
/// `u64` through.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Calls and returns in time order, as a doubly linked list that ops can
/// be lifted out of and put back in (the last lifted first, as the stack
/// undoes them). Two sentinels close it: `head` and `tail`, placed after
/// the events in the arrays.
struct EventList {
    /// Per event (and sentinel): the previous one.
    prev: Vec<usize>,
    /// Per event (and sentinel): the next one.
    next: Vec<usize>,
    /// Per event: its op, and whether it is the call.
    event_op: Vec<(usize, bool)>,
    /// Per op: its call event and return event.
    op_events: Vec<(usize, usize)>,
    /// The head sentinel's position.
    head: usize,
    /// The tail sentinel's position.
    tail: usize,
}

impl EventList {
    fn new(ops: &[Entry]) -> EventList {
        assert!(ops.iter().all(|o| o.call_ns <= o.return_ns), "an op returns before its call");
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            events.push((o.call_ns, false, i));
            events.push((o.return_ns, true, i));
        }
        // At one instant calls come first (false < true): such ops are concurrent.
        events.sort_unstable();
        let count = events.len();
        let (head, tail) = (count, count + 1);
        let mut op_events = vec![(0, 0); ops.len()];
        let mut event_op = Vec::with_capacity(count);
        for (e, &(_, is_return, op)) in events.iter().enumerate() {
            event_op.push((op, !is_return));
            if is_return {
                op_events[op].1 = e;
            } else {
                op_events[op].0 = e;
            }
        }
        // Positions in list order: head, 0, 1, ..., count - 1, tail.
        let order: Vec<usize> = std::iter::once(head).chain(0..count).chain(std::iter::once(tail)).collect();
        let mut prev = vec![head; count + 2];
        let mut next = vec![tail; count + 2];
        for pair in order.windows(2) {
            next[pair[0]] = pair[1];
            prev[pair[1]] = pair[0];
        }
        EventList { prev, next, event_op, op_events, head, tail }
    }

    /// The first event still in the list.
    fn first(&self) -> Option<usize> {
        self.next(self.head)
    }

    /// The event after `e`, if any.
    fn next(&self, e: usize) -> Option<usize> {
        let n = self.next[e];
        (n != self.tail).then_some(n)
    }

    fn op_of(&self, e: usize) -> usize {
        self.event_op[e].0
    }

    fn is_call(&self, e: usize) -> bool {
        self.event_op[e].1
    }

    fn call_event(&self, op: usize) -> usize {
        self.op_events[op].0
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    /// Puts `e` back between the neighbours it had (which must be back).
    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        self.prev[n] = e;
    }

    /// Takes `op`'s call and return out of the list.
    fn lift(&mut self, op: usize) {
        let (call, ret) = self.op_events[op];
        self.unlink(call);
        self.unlink(ret);
    }

    /// Undoes the last [`EventList::lift`], which must have been of `op`.
    fn unlift(&mut self, op: usize) {
        let (call, ret) = self.op_events[op];
        self.relink(ret);
        self.relink(call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Budget = Budget { time: Duration::from_secs(5), memo_entries: 1_000_000 };

    fn w(call_ms: u64, return_ms: u64, value: u32) -> Entry {
        Entry { call_ns: call_ms * 1_000_000, return_ns: return_ms * 1_000_000, kind: Kind::Write(value) }
    }

    fn r(call_ms: u64, return_ms: u64, value: u32) -> Entry {
        Entry { call_ns: call_ms * 1_000_000, return_ns: return_ms * 1_000_000, kind: Kind::Read(value) }
    }

    #[test]
    fn sequential_and_overlapping_histories_linearize() {
        assert_eq!(search(&[], BUDGET), Outcome::Linearizable);
        assert_eq!(search(&[w(0, 1, 1), r(2, 3, 1), w(4, 5, 2), r(6, 7, 2)], BUDGET), Outcome::Linearizable);
        // A read concurrent with a write may see either value.
        assert_eq!(search(&[w(0, 1, 1), w(2, 10, 2), r(3, 4, 2), r(5, 6, 2)], BUDGET), Outcome::Linearizable);
        assert_eq!(search(&[w(0, 1, 1), w(2, 10, 2), r(3, 4, 1), r(5, 6, 2)], BUDGET), Outcome::Linearizable);
        // Ops that touch at one instant are concurrent.
        assert_eq!(search(&[w(0, 5, 1), r(5, 6, 0)], BUDGET), Outcome::Linearizable);
    }

    #[test]
    fn a_read_that_goes_back_after_another_saw_the_new_value_is_a_violation() {
        // Write 2 is in flight (4..20); read A (5..6) sees it, read B
        // (7..8) begins after A ended and sees the older 1: no stale read
        // (2 was not acknowledged when B began), but not linearizable.
        let ops = [w(0, 1, 1), w(4, 20, 2), r(5, 6, 2), r(7, 8, 1)];
        assert_eq!(search(&ops, BUDGET), Outcome::Violation);
        // Without the read that saw 2, nothing is wrong.
        assert_eq!(search(&[ops[0], ops[1], ops[3]], BUDGET), Outcome::Linearizable);
    }

    #[test]
    fn unknown_writes_may_or_may_not_take_effect() {
        let info = |call_ms: u64, value: u32| Entry {
            call_ns: call_ms * 1_000_000,
            return_ns: u64::MAX,
            kind: Kind::Write(value),
        };
        assert_eq!(search(&[w(0, 1, 1), info(2, 2), r(3, 4, 1)], BUDGET), Outcome::Linearizable);
        assert_eq!(search(&[w(0, 1, 1), info(2, 2), r(3, 4, 2), r(5, 6, 2)], BUDGET), Outcome::Linearizable);
        assert!(matches!(search(&[w(0, 1, 1), info(2, 2), r(3, 4, 2), r(5, 6, 1)], BUDGET), Outcome::Violation));
    }

    #[test]
    fn a_value_never_written_is_a_violation() {
        assert!(matches!(search(&[w(0, 1, 1), r(2, 3, 7)], BUDGET), Outcome::Violation));
        assert!(matches!(search(&[r(0, 1, 1)], BUDGET), Outcome::Violation));
    }

    #[test]
    fn the_memo_is_exact_even_when_hashes_collide() {
        let mut memo = Memo::new();
        let mut set = Linearized::new(100);
        assert!(memo.insert(&set, 0));
        assert!(!memo.insert(&set, 0), "the same pair twice");
        assert!(memo.insert(&set, 1), "another state");
        set.flip(70);
        assert!(memo.insert(&set, 0));
        set.flip(70);
        assert_eq!(set.hash, 0, "undoing an op restores the hash");
        assert!(!memo.insert(&set, 0));
        // A different set forced onto the same hash is still a new pair.
        let mut other = Linearized::new(100);
        other.flip(0);
        other.flip(2);
        other.hash = 0;
        assert!(memo.insert(&other, 0));
        assert!(!memo.insert(&other, 0));
        assert_eq!(memo.len(), 4);
    }

    #[test]
    fn the_canonical_form_tracks_every_flip() {
        let mut set = Linearized::new(300);
        let check = |set: &Linearized| {
            let full = set.bits.iter().take_while(|w| **w == u64::MAX).count();
            let top = set.bits.iter().rposition(|w| *w != 0).map_or(0, |p| p + 1);
            assert_eq!((set.full, set.top), (full, top));
        };
        // Fill ops 0..256 in a scattered order (whole words become ones),
        // then flip at random, mostly near the edge.
        for i in 0..256 {
            set.flip((i * 37) % 256);
            check(&set);
        }
        let mut x = 7u64;
        for _ in 0..20_000 {
            x = zobrist(x);
            set.flip((x % 300) as usize);
            check(&set);
        }
    }

    #[test]
    fn the_budget_ends_in_giving_up_not_a_guess() {
        // Many concurrent writes and a read of a value none wrote: the
        // search must try every subset before it can say no.
        let mut ops: Vec<Entry> = (1..=40).map(|v| w(0, 100, v)).collect();
        ops.push(r(50, 60, 99));
        let tiny = Budget { time: Duration::from_secs(5), memo_entries: 1_000 };
        assert!(matches!(search(&ops, tiny), Outcome::GaveUp(_)));
    }
}
