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
//! once for every checker; a sibling's value is rebuilt from its text.

use std::collections::{HashMap, HashSet};

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
            for value in written.unwritten(key, &s.value.to_value()) {
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
