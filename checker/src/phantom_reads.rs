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
//! once for every checker. A value is interned there by its JSON text, so
//! a sibling that is a value written to its key is found by its id alone;
//! only the rest (a set's cart, a phantom) is parsed.

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashSet;

use history::compact::{CompactHistory, Id, ValueId, ValueRef};
use history::{OpType, RunConfig};
use serde_json::{json, Value};

use crate::observe::{KNOWN_FS, UNPARSED_READ};
use crate::result::{CheckResult, Validity};
use crate::understood::NotUnderstood;

/// The checker's name in `results.json`.
pub const NAME: &str = "phantom-reads";

/// How many phantoms are described in full.
pub const MAX_EXAMPLES: usize = 5;

/// What clients sent, per key, as the compact history's ids: a value's id
/// is its JSON text's, so "the read returned a value written" is an
/// integer lookup, with no value parsed or copied.
#[derive(Debug, Default)]
struct Written<'h> {
    /// key -> every register value written.
    values: HashMap<Id, HashSet<ValueId>>,
    /// key -> every set element added, as its JSON string's text: a cart's
    /// items are looked up in their key's own small table, not in the
    /// history's table of every value, whose size made each lookup a
    /// cache miss.
    elements: HashMap<Id, FxHashSet<&'h str>>,
    /// (key, value) pairs already found to hold nothing unwritten: a set
    /// key's cart is read many times over, and each distinct one need be
    /// walked once. Bounded by the history's distinct values per key.
    clean: HashSet<(Id, ValueId)>,
}

impl<'h> Written<'h> {
    fn of(history: &'h CompactHistory) -> Written<'h> {
        let (write, add) = (history.name_id("write"), history.name_id("add"));
        let mut w = Written::default();
        for op in history.ops().iter().filter(|op| op.kind == OpType::Invoke) {
            let (Some(key), Some(value)) = (op.key, op.value) else { continue };
            if Some(op.f) == write {
                w.values.entry(key).or_default().insert(value);
            } else if Some(op.f) == add && history.value(value).is_string() {
                w.elements.entry(key).or_default().insert(history.value(value).json_text());
            }
        }
        w
    }

    /// The parts of one sibling value that no client wrote to `key`: none
    /// when it is null (a tombstone) or a value written to the key; a set
    /// read's elements never added to it; else the value itself.
    fn unwritten(&mut self, key: Id, value: ValueRef<'_>) -> Vec<Value> {
        if value.is_null()
            || self.values.get(&key).is_some_and(|s| s.contains(&value.id()))
            || self.clean.contains(&(key, value.id()))
        {
            return Vec::new();
        }
        // A set: every element must have been added to this key. Each is
        // looked up by its text in the cart's, with no tree built.
        let Some(items) = value.string_items() else { return vec![value.to_value()] };
        let added = self.elements.get(&key);
        let was_added = |item: &str| added.is_some_and(|s| s.contains(item));
        let unwritten: Vec<Value> = items
            .filter(|item| !was_added(item))
            .map(|item| serde_json::from_str(item).expect("an item of an interned array is JSON"))
            .collect();
        if unwritten.is_empty() {
            self.clean.insert((key, value.id()));
        }
        unwritten
    }
}

/// Checks every `ok` read for values never written; see the module docs.
pub fn check(history: &impl AsRef<CompactHistory>, _run: &RunConfig) -> CheckResult {
    let history = history.as_ref();
    let ops = history.ops();
    let mut written = Written::of(history);
    let (mut reads, mut phantoms) = (0usize, Vec::new());
    let mut not_understood = NotUnderstood::default();
    for pair in history.pairs() {
        let (invoke, done) = pair.ops(ops);
        let f = history.name(invoke.f);
        // An op of another type may have written what a read returned.
        if !KNOWN_FS.contains(&f) {
            not_understood.note_unknown_f(f, invoke.index);
            continue;
        }
        let Some(done) = done else { continue };
        if f != "read" || done.kind != OpType::Ok {
            continue;
        }
        let (Some(key), Some(siblings)) = (invoke.key, done.siblings) else {
            not_understood.note(UNPARSED_READ, invoke.index);
            continue;
        };
        reads += 1;
        for s in history.siblings(siblings) {
            for value in written.unwritten(key, s.value) {
                let node = done.node.map(|n| history.name(n));
                let key = history.name(key);
                phantoms.push(json!({"read_index": done.index, "key": key, "node": node, "value": value}));
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
    use history::{History, Op, Version};

    #[test]
    fn a_value_is_unwritten_unless_written_to_its_key_or_its_elements_added() {
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
        let read: [(Value, Value); 9] = [
            (json!("a"), json!([])),
            (json!("b"), json!(["b"])),
            (json!("quote \" and \\ slash"), json!([])),
            (json!(["whole", "array"]), json!([])),
            (json!(["e1", "e2"]), json!(["e2"])),
            (json!(["e1", "esc\"aped"]), json!(["esc\"aped"])),
            (json!([]), json!([])),
            (json!(["e1", 3]), json!([["e1", 3]])),
            (json!({"x": 1}), json!([{"x": 1}])),
        ];
        let mut op = Op::client(1, OpType::Ok, "read", "k", "n1");
        op.index = ops.len() as u64;
        let siblings: Vec<Value> =
            read.iter().map(|(v, _)| json!({"value": v, "version": Version::default()})).collect();
        op.value = Value::Array(siblings);
        ops.push(op);
        let history = History::new(ops);
        let compact = history.compact();
        let mut written = Written::of(compact);
        let key = compact.name_id("k").expect("the key is named");
        let span = compact.ops().last().and_then(|op| op.siblings).expect("the read parses");
        for (sibling, (value, unwritten)) in compact.siblings(span).zip(&read) {
            assert_eq!(Value::from(written.unwritten(key, sibling.value)), *unwritten, "{value}");
        }
    }
}
