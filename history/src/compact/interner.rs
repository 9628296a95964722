//! Strings stored once and named by a small integer.
//!
//! A history names the same few keys, nodes and op types millions of
//! times, and a read returns values that some write already carried. Held
//! as `String`s (or as JSON trees) each mention costs an allocation; held
//! here, each distinct string is stored once and every mention is a `u32`
//! ([`Id`]). Two mentions are the same string exactly when their ids are
//! equal, so comparing or hashing a key is comparing or hashing an integer.
//!
//! The table only grows: an id, once given, names its string for the life
//! of the table.
//!
//! Reading an hour of a campaign interns millions of strings, so the table
//! hashes with `rustc-hash`'s Fx hasher rather than the standard SipHash:
//! the strings are the history's own, not chosen by an attacker, and SipHash
//! was a tenth of the time the reader took.

use std::sync::Arc;

use rustc_hash::FxHashMap;

/// A string's number in its [`Interner`], from 0 in order of first mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub u32);

impl Id {
    /// The id as an index into per-id tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Distinct strings, each stored once, numbered in order of first mention.
#[derive(Debug, Clone, Default)]
pub struct Interner {
    /// Id -> string. Shared with `ids`, so each string is allocated once.
    strings: Vec<Arc<str>>,
    /// String -> id.
    ids: FxHashMap<Arc<str>, Id>,
}

impl Interner {
    /// The id of `text`, giving it the next one if it is new.
    pub fn intern(&mut self, text: &str) -> Id {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = Id(u32::try_from(self.strings.len()).expect("fewer than 2^32 distinct strings"));
        let shared: Arc<str> = Arc::from(text);
        self.strings.push(Arc::clone(&shared));
        self.ids.insert(shared, id);
        id
    }

    /// The id of `text`, if it was interned.
    pub fn get(&self, text: &str) -> Option<Id> {
        self.ids.get(text).copied()
    }

    /// The string `id` names. Panics on an id this table never gave.
    pub fn text(&self, id: Id) -> &str {
        &self.strings[id.index()]
    }

    /// How many distinct strings are held.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether no string is held.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// Every string, by id.
    pub fn iter(&self) -> impl Iterator<Item = (Id, &str)> {
        self.strings.iter().enumerate().map(|(i, s)| (Id(i as u32), &**s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_string_gets_the_same_id_and_a_new_one_the_next() {
        let mut names = Interner::default();
        let k1 = names.intern("k1");
        let k2 = names.intern("k2");
        assert_eq!((k1, k2), (Id(0), Id(1)));
        assert_eq!(names.intern("k1"), k1);
        assert_eq!(names.text(k2), "k2");
        assert_eq!(names.get("k3"), None);
        assert_eq!(names.len(), 2);
        let listed: Vec<(Id, &str)> = names.iter().collect();
        assert_eq!(listed, [(Id(0), "k1"), (Id(1), "k2")]);
    }
}
