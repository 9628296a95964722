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

    /// Whether the value is a string (its compact JSON text is quoted),
    /// told without decoding it.
    pub fn is_string(self) -> bool {
        self.json_text().starts_with('"')
    }

    /// The string, when the value is one.
    pub fn as_str(self) -> Option<String> {
        self.is_string().then(|| serde_json::from_str(self.json_text()).ok()).flatten()
    }

    /// When the value is an array of strings (a set's cart), each item's
    /// compact JSON text, quotes included, in order: what the item is
    /// interned as when it is a value of its own, found without building a
    /// tree or a `String` per item. None for any other value.
    pub fn string_items(self) -> Option<StringItems<'c>> {
        let text = self.json_text();
        let inner = text.strip_prefix('[')?.strip_suffix(']')?;
        let items = StringItems { rest: inner };
        // The text is compact JSON, as serde_json writes it: no spaces, so
        // an array of strings is `"..."` items joined by commas.
        items.clone().all(|item| item.len() >= 2).then_some(items)
    }
}

/// The items of an array of strings, as compact JSON texts; see
/// [`ValueRef::string_items`]. An item it cannot read ends the walk with
/// an empty slice, which the check there refuses.
#[derive(Debug, Clone)]
pub struct StringItems<'c> {
    /// What follows the items read so far.
    rest: &'c str,
}

impl<'c> Iterator for StringItems<'c> {
    type Item = &'c str;

    fn next(&mut self) -> Option<&'c str> {
        if self.rest.is_empty() {
            return None;
        }
        let len = string_len(self.rest.as_bytes());
        let (item, after) = self.rest.split_at(len);
        self.rest = match after.strip_prefix(',') {
            Some(more) if len > 0 && !more.is_empty() => more,
            _ if len > 0 && after.is_empty() => "",
            _ => {
                self.rest = "";
                return Some("");
            }
        };
        Some(item)
    }
}

/// The length of the JSON string `bytes` starts with, quotes included, or
/// 0 when it does not start with a whole string.
fn string_len(bytes: &[u8]) -> usize {
    if bytes.first() != Some(&b'"') {
        return 0;
    }
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    0
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `string_items` agrees with parsing the value and writing each item
    /// back, and refuses every value that is not an array of strings.
    #[test]
    fn string_items_are_the_items_serde_json_writes() {
        let cases = [
            "[]",
            r#"["a"]"#,
            r#"["a","b\"c","d\\","é",""]"#,
            r#"["a",1]"#,
            r#"[1,"a"]"#,
            r#"[["a"]]"#,
            r#"["a",null]"#,
            r#""a""#,
            "null",
            r#"{"a":"b"}"#,
        ];
        let mut values = Interner::default();
        for case in cases {
            let tree: Value = serde_json::from_str(case).unwrap();
            let text = serde_json::to_string(&tree).unwrap();
            let id = values.intern(&text);
            let value = ValueRef::new(&values, id);
            let want: Option<Vec<String>> = tree.as_array().and_then(|items| {
                items.iter().map(|i| i.is_string().then(|| serde_json::to_string(i).unwrap())).collect()
            });
            let got: Option<Vec<String>> = value.string_items().map(|items| items.map(str::to_string).collect());
            assert_eq!(got, want, "{case}");
        }
    }
}
