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

use std::collections::{BTreeMap, BTreeSet};

use history::{History, OpPair, OpType, RunConfig};
use serde_json::{json, Value};

use crate::result::{CheckResult, Validity};

/// The checker's name in `results.json`.
pub const NAME: &str = "phantom-reads";

/// How many phantoms are described in full.
pub const MAX_EXAMPLES: usize = 5;

/// What clients sent, per key.
#[derive(Debug, Default)]
struct Written {
    /// key -> every register value written (as JSON text).
    values: BTreeMap<String, BTreeSet<String>>,
    /// key -> every set element added.
    elements: BTreeMap<String, BTreeSet<String>>,
}

impl Written {
    fn of(pairs: &[OpPair<'_>]) -> Written {
        let mut w = Written::default();
        for pair in pairs {
            let (Some(key), value) = (pair.invoke.key.clone(), &pair.invoke.value) else { continue };
            match pair.invoke.f.as_str() {
                "write" => {
                    w.values.entry(key).or_default().insert(value.to_string());
                }
                "add" => {
                    if let Some(e) = value.as_str() {
                        w.elements.entry(key).or_default().insert(e.to_string());
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
        let written = |v: &Value| self.values.get(key).is_some_and(|s| s.contains(&v.to_string()));
        if written(value) {
            return Vec::new();
        }
        match value.as_array() {
            // A set: every element must have been added to this key.
            Some(items) if items.iter().all(Value::is_string) => items
                .iter()
                .filter(|e| !self.elements.get(key).is_some_and(|s| e.as_str().is_some_and(|e| s.contains(e))))
                .cloned()
                .collect(),
            _ => vec![value.clone()],
        }
    }
}

/// Checks every `ok` read for values never written; see the module docs.
pub fn check(history: &History, _run: &RunConfig) -> CheckResult {
    let pairs = history.pairs();
    let written = Written::of(&pairs);
    let (mut reads, mut phantoms) = (0usize, Vec::new());
    for pair in &pairs {
        let (Some(key), Some(done)) = (pair.invoke.key.as_deref(), pair.complete) else { continue };
        if pair.invoke.f != "read" || done.kind != OpType::Ok {
            continue;
        }
        let Some(siblings) = done.siblings() else { continue };
        reads += 1;
        for s in siblings {
            for value in written.unwritten(key, &s.value) {
                phantoms.push(json!({"read_index": done.index, "key": key, "node": done.node, "value": value}));
            }
        }
    }
    CheckResult::new(Validity::for_promise(true, phantoms.len(), reads))
        .with("reads", json!(reads))
        .with("phantoms", json!(phantoms.len()))
        .with("examples", Value::Array(phantoms.into_iter().take(MAX_EXAMPLES).collect()))
}
