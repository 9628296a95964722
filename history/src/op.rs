//! One line of `history.jsonl`: an invocation or completion of a client
//! operation, or a nemesis action.

use serde::{Deserialize, Serialize};

use std::sync::OnceLock;

use crate::compact::CompactHistory;
use crate::Version;

/// Who performed an op: a client process (one op outstanding at a time) or
/// the nemesis. Serialized as an integer or the string `"nemesis"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A client process, by its number (from 0). A process that got `info`
    /// never invokes again: its client goes on under a fresh number.
    Client(u64),
    /// The nemesis, which injects the faults.
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(Process::Client)
                .ok_or_else(|| serde::de::Error::custom("process must be a non-negative integer")),
            serde_json::Value::String(s) if s == "nemesis" => Ok(Process::Nemesis),
            other => Err(serde::de::Error::custom(format!("process must be an integer or \"nemesis\", got {other}"))),
        }
    }
}

/// `fail`: certainly did not happen. `info`: unknown, may have happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// The client sent the request.
    Invoke,
    /// The store acknowledged it: it happened.
    Ok,
    /// The store refused it: it certainly did not happen.
    Fail,
    /// No verdict (timeout, lost connection): it may or may not have
    /// happened. Every nemesis event is `info` too.
    Info,
}

impl OpType {
    /// Whether this ends an op (`ok`, `fail` or `info`) rather than starting one.
    pub fn is_completion(self) -> bool {
        self != OpType::Invoke
    }
}

/// One line of `history.jsonl` (`docs/history-format.md`): the invocation
/// or completion of a client op, or a nemesis event. A completion follows an
/// invocation of the same process and `f`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the file, from 0.
    pub index: u64,
    /// Nanoseconds since the run started (harness monotonic clock).
    pub time: u64,
    /// The client process that performed the op, or the nemesis.
    pub process: Process,
    /// Invocation, or which completion (`type` in the file).
    #[serde(rename = "type")]
    pub kind: OpType,
    /// `read`, `write`, `delete`, `add`, or a nemesis action.
    pub f: String,
    /// The key a client op is on; absent for nemesis events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `write`: the value written, unique per run. `read`: null on the
    /// invocation, on `ok` the list of siblings, each `{"value", "version"}`
    /// (a null value is a tombstone). `add`: the element added. A nemesis
    /// event: what was done (e.g. `{"grudge": {...}}`).
    #[serde(default)]
    pub value: serde_json::Value,
    /// The node the client sent the request to; absent for nemesis events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// On `ok` of `write`/`delete`/`add`: the version the store assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// On `fail`/`info`: the reason, as the store (or the client) said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// On `ok` of `write`/`delete`/`add` (our store, sloppy quorum): the home
    /// replicas a stand-in was asked to hold this write for. Hinted handoff
    /// owes each of them this version; the hint-delivery checker looks for it
    /// on their replica-local reads. Omitted when empty, so histories without
    /// hints (and those written before the field existed) read the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hinted_for: Vec<String>,
    /// On `ok` of `read` (our store): the replicas whose answers the
    /// coordinator merged into this reply, as the node reported them. It
    /// is what a stale read's sentence names ("answered by n1, n3"), so a
    /// reader can see which replicas missed the write. `None` when the
    /// store does not report it (peer stores, older nodes) and in every
    /// history written before the field existed; omitted then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<Vec<String>>,
    /// The datacenter of the client that performed the op, in a run across
    /// several DCs (`run.json`'s `datacenters` names every node's). A
    /// client stays in its DC and talks to that DC's nodes only. Omitted in
    /// a run of one DC and in every history written before the field
    /// existed, which read the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dc: Option<String>,
}

/// One version returned by a read: the value written (None for a tombstone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sibling {
    /// The value written (null for a tombstone; under the set workload, the
    /// JSON array of the elements this version holds).
    pub value: serde_json::Value,
    /// The version it carries.
    pub version: Version,
}

/// One version returned by a read, its value borrowed from the op: what
/// the checkers read, without copying a value (a set's whole cart) per read.
#[derive(Debug, Clone, PartialEq)]
pub struct SiblingRef<'a> {
    /// The value written (null for a tombstone).
    pub value: &'a serde_json::Value,
    /// The version it carries.
    pub version: Version,
}

/// A sibling's shape, to check one as [`Sibling`] would parse without
/// copying its value: the same fields, the same forms (a map, or a
/// sequence in field order), the same required fields.
#[derive(Deserialize)]
struct SiblingShape {
    /// Required, never read here.
    #[allow(dead_code, reason = "parsed only to require the field, as Sibling does")]
    value: serde::de::IgnoredAny,
    version: Version,
}

impl Op {
    /// A client op with no completion fields yet; `index` and `time` are
    /// assigned by the recorder.
    pub fn client(process: u64, kind: OpType, f: &str, key: &str, node: &str) -> Op {
        Op {
            index: 0,
            time: 0,
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: Some(key.to_string()),
            value: serde_json::Value::Null,
            node: Some(node.to_string()),
            version: None,
            error: None,
            hinted_for: Vec::new(),
            answered_by: None,
            dc: None,
        }
    }

    /// A nemesis event: always `info`, with a value saying exactly what was done.
    pub fn nemesis(f: &str, value: serde_json::Value) -> Op {
        Op {
            index: 0,
            time: 0,
            process: Process::Nemesis,
            kind: OpType::Info,
            f: f.to_string(),
            key: None,
            value,
            node: None,
            version: None,
            error: None,
            hinted_for: Vec::new(),
            answered_by: None,
            dc: None,
        }
    }

    /// The siblings of an `ok` read; `None` if this is not one or the value
    /// is not a list of `{value, version}` objects.
    pub fn siblings(&self) -> Option<Vec<Sibling>> {
        if self.f != "read" || self.kind != OpType::Ok {
            return None;
        }
        // Deserialized from a borrow of the value: no copy of its tree.
        Vec::<Sibling>::deserialize(&self.value).ok()
    }

    /// [`Op::siblings`] with each value borrowed: `None` exactly when
    /// `siblings` is, the same versions, the values not copied.
    pub fn sibling_refs(&self) -> Option<Vec<SiblingRef<'_>>> {
        if self.f != "read" || self.kind != OpType::Ok {
            return None;
        }
        let shapes = Vec::<SiblingShape>::deserialize(&self.value).ok()?;
        let items = self.value.as_array()?;
        debug_assert_eq!(items.len(), shapes.len());
        items
            .iter()
            .zip(shapes)
            .map(|(item, shape)| Some(SiblingRef { value: value_of(item)?, version: shape.version }))
            .collect()
    }
}

/// Where a sibling's value sits in its JSON: the `value` field of a map,
/// or the first element of the sequence form.
fn value_of(item: &serde_json::Value) -> Option<&serde_json::Value> {
    match item {
        serde_json::Value::Object(map) => map.get("value"),
        serde_json::Value::Array(fields) => fields.first(),
        _ => None,
    }
}

/// A whole history, in file order.
#[derive(Clone, Default)]
pub struct History {
    /// Every line of `history.jsonl`, in file order (`ops[i].index == i`).
    /// Not to be changed once [`History::compact`] was asked for.
    pub ops: Vec<Op>,
    /// The compact form of `ops`, built on first use.
    compact: OnceLock<CompactHistory>,
}

impl PartialEq for History {
    /// Two histories are equal when their ops are.
    fn eq(&self, other: &Self) -> bool {
        self.ops == other.ops
    }
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").field("ops", &self.ops).finish()
    }
}

/// A client operation with its invocation and completion paired.
#[derive(Debug, Clone, Copy)]
pub struct OpPair<'a> {
    /// The `invoke` line.
    pub invoke: &'a Op,
    /// None when the run ended before the op completed (treated as `info`).
    pub complete: Option<&'a Op>,
}

impl History {
    /// A history of `ops`, taken as they are (in file order).
    pub fn new(ops: Vec<Op>) -> History {
        History { ops, compact: OnceLock::new() }
    }

    /// The compact form of the ops ([`CompactHistory`]), built once, on
    /// the first call: what checkers read instead of the JSON trees.
    pub fn compact(&self) -> &CompactHistory {
        let compact = self.compact.get_or_init(|| CompactHistory::from_ops(&self.ops));
        assert_eq!(compact.ops().len(), self.ops.len(), "the ops were not changed after their compact form was built");
        compact
    }

    /// Pairs each client invocation with its completion. Nemesis events are
    /// skipped. Returned in invocation order.
    pub fn pairs(&self) -> Vec<OpPair<'_>> {
        let mut open: std::collections::HashMap<u64, usize> = Default::default();
        let mut pairs: Vec<OpPair<'_>> = Vec::new();
        for op in &self.ops {
            let Process::Client(p) = op.process else { continue };
            match op.kind {
                OpType::Invoke => {
                    open.insert(p, pairs.len());
                    pairs.push(OpPair { invoke: op, complete: None });
                }
                _ => {
                    if let Some(i) = open.remove(&p) {
                        pairs[i].complete = Some(op);
                    }
                }
            }
        }
        pairs
    }

    /// The nemesis's events, in file order.
    pub fn nemesis_events(&self) -> impl Iterator<Item = &Op> {
        self.ops.iter().filter(|op| op.process == Process::Nemesis)
    }
}

impl AsRef<CompactHistory> for History {
    /// [`History::compact`]: checkers take either form.
    fn as_ref(&self) -> &CompactHistory {
        self.compact()
    }
}

impl<'a> OpPair<'a> {
    /// The completion type; an op that never completed is `info`.
    pub fn outcome(&self) -> OpType {
        self.complete.map(|c| c.kind).unwrap_or(OpType::Info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_of(value: serde_json::Value) -> Op {
        let mut op = Op::client(1, OpType::Ok, "read", "k", "n1");
        op.value = value;
        op
    }

    #[test]
    fn sibling_refs_parse_exactly_what_siblings_parse() {
        let version = json!({"clock": {"n1": 2}, "ts": 7});
        let cases = [
            json!([]),
            json!([{"value": "a", "version": version}, {"value": null, "version": {}}]),
            json!([{"value": ["x", "y"], "version": version, "extra": 1}]),
            json!([["a", version]]),
            json!([{"version": version}]),
            json!([{"value": "a"}]),
            json!([{"value": "a", "version": 3}]),
            json!(["a"]),
            json!({"value": "a", "version": version}),
            json!(null),
        ];
        for value in cases {
            let op = read_of(value.clone());
            let owned = op.siblings();
            let borrowed = op.sibling_refs();
            assert_eq!(owned.is_some(), borrowed.is_some(), "{value}");
            if let (Some(owned), Some(borrowed)) = (owned, borrowed) {
                let owned: Vec<(serde_json::Value, Version)> =
                    owned.into_iter().map(|s| (s.value, s.version)).collect();
                let borrowed: Vec<(serde_json::Value, Version)> =
                    borrowed.into_iter().map(|s| (s.value.clone(), s.version)).collect();
                assert_eq!(owned, borrowed, "{value}");
            }
        }
    }
}
