//! Phantom reads: a read returned a value no client ever wrote.
//!
//! Definition. Every value a client sends is an invocation in the history
//! (`write` of a register value, `add` of a set element), whatever its
//! outcome: a `fail`ed or `info` write may still have reached a replica, so
//! a read of it is no phantom. A sibling of an `ok` read whose value is
//! none of the values written to its key, or, for a set, an element that
//! was never added to its key, is *phantom*: the store invented it, as a
//! node serving a corrupt block or a mixed-up key would. Tombstones
//! (`null`) are never phantoms.
//!
//! Promise. No store may serve a value that was never written, under any
//! quorum, resolution or fault: any phantom is a failure. `unknown` when
//! the history holds no `ok` read with a value.
//!
//! A read's siblings come from the history's compact form, parsed there
//! once for every checker; a sibling's value is read from its text,
//! borrowed when it is a string or a cart of strings.

use std::collections::{HashMap, HashSet};

use history::compact::ValueRef;
use history::{History, OpPair, OpType, RunConfig};
use serde_json::{json, Value};

use crate::observe::{KNOWN_FS, UNPARSED_READ};
use crate::result::{CheckResult, Validity};
use crate::understood::NotUnderstood;

/// The checker's name in `results.json`.
pub const NAME: &str = "phantom-reads";

/// How many phantoms are described in full.
pub const MAX_EXAMPLES: usize = 5;

/// A written value as the checker compares it: a string by its text, any
/// other JSON by its serialization (which never equals a string's: that
/// starts with a quote). Equal exactly when the two values serialize alike,
/// without serializing the strings, which are nearly all of them.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Text<'h> {
    /// A JSON string's contents.
    Str(&'h str),
    /// Any other value, serialized.
    Json(String),
}

impl<'h> Text<'h> {
    fn of(value: &'h Value) -> Text<'h> {
        match value {
            Value::String(s) => Text::Str(s),
            other => Text::Json(other.to_string()),
        }
    }
}

/// What clients sent, per key; borrowed from the history.
#[derive(Debug, Default)]
struct Written<'h> {
    /// key -> every register value written.
    values: HashMap<&'h str, HashSet<Text<'h>>>,
    /// key -> every set element added.
    elements: HashMap<&'h str, HashSet<&'h str>>,
}

impl<'h> Written<'h> {
    fn of(pairs: &[OpPair<'h>]) -> Written<'h> {
        let mut w = Written::default();
        for pair in pairs {
            let (Some(key), value) = (pair.invoke.key.as_deref(), &pair.invoke.value) else { continue };
            match pair.invoke.f.as_str() {
                "write" => {
                    w.values.entry(key).or_default().insert(Text::of(value));
                }
                "add" => {
                    if let Some(e) = value.as_str() {
                        w.elements.entry(key).or_default().insert(e);
                    }
                }
                _ => {}
            }
        }
        w
    }

    /// [`Written::unwritten`] of a value held as text, without building its
    /// tree when it is a string or a set's cart of strings that need no
    /// unescaping (nearly all): the same answer.
    fn unwritten_text(&self, key: &str, value: ValueRef<'_>) -> Vec<Value> {
        let text = value.json_text();
        if let Ok(string) = serde_json::from_str::<&str>(text) {
            let written = self.values.get(key).is_some_and(|s| s.contains(&Text::Str(string)));
            return if written { Vec::new() } else { vec![Value::from(string)] };
        }
        if let Ok(items) = serde_json::from_str::<Vec<&str>>(text) {
            if self.values.get(key).is_some_and(|s| s.contains(&Text::Json(text.to_string()))) {
                return Vec::new();
            }
            let added = self.elements.get(key);
            return items.into_iter().filter(|e| !added.is_some_and(|s| s.contains(e))).map(Value::from).collect();
        }
        self.unwritten(key, &value.to_value())
    }

    /// The parts of one sibling value that no client wrote to `key`.
    fn unwritten(&self, key: &str, value: &Value) -> Vec<Value> {
        if value.is_null() {
            return Vec::new();
        }
        let written = |v: &Value| self.values.get(key).is_some_and(|s| s.contains(&Text::of(v)));
        if written(value) {
            return Vec::new();
        }
        match value.as_array() {
            // A set: every element must have been added to this key.
            Some(items) if items.iter().all(Value::is_string) => {
                let added = self.elements.get(key);
                items
                    .iter()
                    .filter(|e| !added.is_some_and(|s| e.as_str().is_some_and(|e| s.contains(e))))
                    .cloned()
                    .collect()
            }
            _ => vec![value.clone()],
        }
    }
}

/// Checks every `ok` read for values never written; see the module docs.
pub fn check(history: &History, _run: &RunConfig) -> CheckResult {
    let compact = history.compact();
    let (lines, pairs): (Vec<_>, Vec<_>) = history.line_pairs().into_iter().unzip();
    let written = Written::of(&pairs);
    let (mut reads, mut phantoms) = (0usize, Vec::new());
    let mut not_understood = NotUnderstood::default();
    for (line, pair) in lines.iter().zip(&pairs) {
        // An op of another type may have written what a read returned.
        if !KNOWN_FS.contains(&pair.invoke.f.as_str()) {
            not_understood.note_unknown_f(&pair.invoke.f, pair.invoke.index);
            continue;
        }
        let Some(done) = pair.complete else { continue };
        if pair.invoke.f != "read" || done.kind != OpType::Ok {
            continue;
        }
        let siblings = line.complete.and_then(|c| compact.ops()[c].siblings);
        let (Some(key), Some(siblings)) = (pair.invoke.key.as_deref(), siblings) else {
            not_understood.note(UNPARSED_READ, pair.invoke.index);
            continue;
        };
        reads += 1;
        for s in compact.siblings(siblings).filter(|s| !s.value.is_null()) {
            for value in written.unwritten_text(key, s.value) {
                phantoms.push(json!({"read_index": done.index, "key": key, "node": done.node, "value": value}));
            }
        }
    }
    let result = CheckResult::new(Validity::for_promise(true, phantoms.len(), reads))
        .with("reads", json!(reads))
        .with("phantoms", json!(phantoms.len()))
        .with("examples", Value::Array(phantoms.into_iter().take(MAX_EXAMPLES).collect()));
    not_understood.judge(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::{Op, Version};

    #[test]
    fn reading_a_value_from_its_text_finds_what_its_tree_finds() {
        let written: [(&str, Value); 4] = [
            ("write", json!("a")),
            ("write", json!("quote \" and \\ slash")),
            ("write", json!(["whole", "array"])),
            ("add", json!("e1")),
        ];
        let mut ops: Vec<Op> = Vec::new();
        for (f, value) in written {
            let mut op = Op::client(0, OpType::Invoke, f, "k", "n1");
            (op.index, op.value) = (ops.len() as u64, value);
            ops.push(op);
        }
        let read: [Value; 9] = [
            json!("a"),
            json!("b"),
            json!("quote \" and \\ slash"),
            json!(["whole", "array"]),
            json!(["e1", "e2"]),
            json!(["e1", "esc\"aped"]),
            json!([]),
            json!(["e1", 3]),
            json!({"x": 1}),
        ];
        let mut op = Op::client(1, OpType::Ok, "read", "k", "n1");
        op.index = ops.len() as u64;
        let siblings: Vec<Value> = read.iter().map(|v| json!({"value": v, "version": Version::default()})).collect();
        op.value = Value::Array(siblings);
        ops.push(op);
        let history = History::new(ops);
        let compact = history.compact();
        let written = Written::of(&history.pairs());
        let span = compact.ops().last().and_then(|op| op.siblings).expect("the read parses");
        for (sibling, value) in compact.siblings(span).zip(&read) {
            assert_eq!(written.unwritten_text("k", sibling.value), written.unwritten("k", value), "{value}");
        }
    }
}
