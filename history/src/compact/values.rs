//! Values as the history wrote them, each distinct one stored once as its
//! JSON text.
//!
//! Checkers rarely look inside a value: they pass it along to say which
//! write a read missed, or compare it with another. A JSON tree per value
//! (a `BTreeMap` node per object, a `String` per text) costs far more than
//! its text, so a value is kept as its compact JSON text, interned, and
//! parsed again only when a checker asks for the tree ([`ValueRef::to_value`])
//! or the text of a string ([`ValueRef::as_str`]), which it does for the few
//! examples it reports.

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::interner::{Id, Interner};

/// A value's number among a history's distinct values.
pub type ValueId = Id;

/// The JSON text of `null`: a tombstone, and a value not given.
pub const NULL_TEXT: &str = "null";

/// A value with the table that holds its text.
#[derive(Clone, Copy)]
pub struct ValueRef<'c> {
    /// The history's value texts.
    values: &'c Interner,
    /// Its id there.
    id: ValueId,
}

impl<'c> ValueRef<'c> {
    /// `id` in `values`.
    pub fn new(values: &'c Interner, id: ValueId) -> ValueRef<'c> {
        ValueRef { values, id }
    }

    /// Its id among the history's values: equal values, equal ids.
    pub fn id(self) -> ValueId {
        self.id
    }

    /// The value's compact JSON text.
    pub fn json_text(self) -> &'c str {
        self.values.text(self.id)
    }

    /// Whether it is `null` (a tombstone).
    pub fn is_null(self) -> bool {
        self.json_text() == NULL_TEXT
    }

    /// The value as a JSON tree, built anew.
    pub fn to_value(self) -> Value {
        serde_json::from_str(self.json_text()).expect("an interned value is the JSON text of a value")
    }

    /// The string, when the value is one.
    pub fn as_str(self) -> Option<String> {
        let text = self.json_text();
        text.starts_with('"').then(|| serde_json::from_str(text).ok()).flatten()
    }
}

impl PartialEq for ValueRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        debug_assert!(std::ptr::eq(self.values, other.values), "values of one history");
        self.id == other.id
    }
}

impl std::fmt::Debug for ValueRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.json_text())
    }
}

impl Serialize for ValueRef<'_> {
    /// As the value itself serializes.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}
