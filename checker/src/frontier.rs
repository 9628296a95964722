//! The set of versions a later read must cover, kept small.
//!
//! Three checkers ask the same question: "given the versions this read had
//! to see (acknowledged writes, its own writes, what an earlier read saw),
//! is there one that none of its siblings covers?" Checking every earlier
//! version against every read is quadratic. It is also unnecessary: if
//! version `a` *dominates* `b` — every version that covers `a` also covers
//! `b` — then a read that misses `b` misses `a` too, so only the maximal
//! versions (the frontier) need testing, and the answer is exactly the same.
//!
//! Domination depends on the resolution mode:
//! - `siblings`: `a`'s causal history includes `b`'s
//!   ([`history::compact::VersionRef::includes`], as [`history::Version::includes`]; set inclusion is transitive, and for
//!   undotted versions it is clock descent).
//! - `lww`: `a.ts > b.ts`, or `a` and `b` are the same version. Equal
//!   timestamps with different clocks are left side by side, because the
//!   store's tiebreak on clocks is not guaranteed transitive.
//!
//! The frontier stays as small as the number of mutually concurrent writes.

use history::compact::{Sibling, ValueRef, VersionRef};
use history::Resolution;

/// A version that a later read must cover, and where it came from;
/// borrowed from the ops it was read from, never copied.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'s> {
    /// History index of the op that produced or observed it (its invoke).
    pub index: u64,
    /// The value written (null for a tombstone).
    pub value: ValueRef<'s>,
    /// The version the store assigned.
    pub version: VersionRef<'s>,
}

/// The maximal versions among those inserted, under one resolution mode.
#[derive(Debug, Clone)]
pub struct Frontier<'s> {
    /// Decides what "covers" and "dominates" mean.
    resolution: Resolution,
    /// Pairwise non-dominating versions, in insertion order.
    items: Vec<Seen<'s>>,
}

impl<'s> Frontier<'s> {
    pub fn new(resolution: Resolution) -> Frontier<'s> {
        Frontier { resolution, items: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds a version, dropping whatever it dominates; a no-op if something
    /// already there dominates it.
    pub fn insert(&mut self, seen: Seen<'s>) {
        let res = self.resolution;
        if self.items.iter().any(|x| dominates(x.version, seen.version, res)) {
            return;
        }
        self.items.retain(|x| !dominates(seen.version, x.version, res));
        self.items.push(seen);
    }

    /// The earliest-inserted frontier version that no sibling covers, if any.
    pub fn first_uncovered(&self, siblings: &[Sibling<'s>]) -> Option<&Seen<'s>> {
        self.items.iter().find(|w| !siblings.iter().any(|s| s.version.covers(w.version, self.resolution)))
    }
}

/// Whether every version that covers `a` also covers `b`.
pub fn dominates(a: VersionRef<'_>, b: VersionRef<'_>, resolution: Resolution) -> bool {
    match resolution {
        Resolution::Siblings => a.includes(b),
        Resolution::Lww => a.ts_ms() > b.ts_ms() || a == b,
    }
}
