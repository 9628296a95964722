//! The compact history: what checkers read instead of JSON trees.
//!
//! Parsed as [`Op`]s, a history costs kilobytes per line: each read's
//! siblings are a JSON tree (a `BTreeMap` node per object, a `String` per
//! node name of every clock), and each checker that compares versions
//! parses them out of that tree again. An hour of a campaign does not fit.
//!
//! [`CompactHistory`] is built once, line by line, as the file is read
//! ([`CompactHistory::read`]) or from ops already parsed
//! ([`CompactHistory::from_ops`]). It holds:
//! - per line, one fixed-size [`CompactOp`]: times, process and type as
//!   they were, op type, key and node as interned ids ([`Interner`]);
//! - values as interned JSON texts ([`ValueRef`]): a write's value once,
//!   however many reads returned it;
//! - versions as rows of small integers in one table ([`Versions`]), each
//!   distinct version once, so a read's sibling is a pair of ids
//!   ([`Sibling`]) and "the same version" is an integer compare;
//! - an `ok` read's siblings parsed exactly as [`Op::sibling_refs`] parses
//!   them, or, when they do not parse, its value kept as text and the
//!   read marked as such ([`CompactOp::siblings`] is `None`): checkers
//!   count it as not understood, as they always have.
//!
//! Nothing is lost that a checker reads, and every line keeps its place:
//! `ops()[i]` is line `i` of `history.jsonl` (and `History::ops[i]`). It is a pure function of the
//! ops, so checkers that read it stay pure functions of the history.

mod interner;
mod parse;
#[cfg(test)]
mod read_tests;
mod reader;
mod values;
mod versions;

use std::path::Path;

pub use interner::{Id, Interner};
pub use values::{StringItems, ValueId, ValueRef, NULL_TEXT};
pub use versions::{NodeId, VersionId, VersionRef, VersionTable, Versions};

use crate::{HistoryError, Op, OpType, Process};

/// A run of entries in one of the history's shared arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// The first entry.
    start: u32,
    /// How many.
    len: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }

    /// How many entries it holds.
    pub fn len(self) -> usize {
        self.len as usize
    }

    /// Whether it holds none.
    pub fn is_empty(self) -> bool {
        self.len == 0
    }
}

/// One line of `history.jsonl`, its strings interned and its versions ids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactOp {
    /// The line's `index`, as it holds it: its position in a history read
    /// from a file (the reader checks), as given in one built by hand.
    pub index: u64,
    /// Nanoseconds since the run started.
    pub time_ns: u64,
    /// The client process, or the nemesis.
    pub process: Process,
    /// Invocation, or which completion.
    pub kind: OpType,
    /// The op type (`read`, `write`, ..., or a nemesis action), a name id.
    pub f: Id,
    /// The key, a name id; None for nemesis events.
    pub key: Option<Id>,
    /// The node the request went to, a name id.
    pub node: Option<Id>,
    /// The value, unless this is an `ok` read whose siblings parsed (then
    /// they are in `siblings`).
    pub value: Option<ValueId>,
    /// The version the store assigned (an `ok` of a write).
    pub version: Option<VersionId>,
    /// An `ok` read's siblings; None for other ops and for a read whose
    /// value is not a list of `{value, version}` siblings.
    pub siblings: Option<Span>,
    /// The replicas that answered a read, name ids; None when not reported.
    pub answered_by: Option<Span>,
    /// The home replicas a hinted write was held for, name ids.
    pub hinted_for: Span,
    /// A `fail` or `info`'s reason, a name id.
    pub error: Option<Id>,
    /// The client's datacenter, a name id; None in a run of one DC.
    pub dc: Option<Id>,
}

impl CompactOp {
    /// Whether the nemesis performed it (a fault, a phase marker, the
    /// workload's summary) rather than a client.
    pub fn is_nemesis(&self) -> bool {
        self.process == Process::Nemesis
    }
}

/// One version a read returned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sibling<'c> {
    /// The value written (null: a tombstone).
    pub value: ValueRef<'c>,
    /// The version it carries.
    pub version: VersionRef<'c>,
}

/// A whole history in compact form; see the module documentation.
#[derive(Debug, Clone)]
pub struct CompactHistory {
    /// Every line, in file order.
    ops: Vec<CompactOp>,
    /// Op types, keys, nodes.
    names: Interner,
    /// Value texts; `null` is always id 0.
    values: Interner,
    /// Every distinct version.
    versions: Versions,
    /// Reads' siblings, `(value, version)`, one run per read.
    siblings: Vec<(ValueId, VersionId)>,
    /// Lists of names (`answered_by`, `hinted_for`), one run per list.
    name_lists: Vec<Id>,
    /// Client invocations paired with their completions, in invocation
    /// order: built once, since nearly every checker walks them.
    pairs: Vec<LinePair>,
}

/// A [`CompactHistory`] being built, one op at a time.
#[derive(Debug)]
pub struct CompactBuilder {
    /// The lines so far.
    ops: Vec<CompactOp>,
    /// See [`CompactHistory`].
    names: Interner,
    /// See [`CompactHistory`].
    values: Interner,
    /// The versions so far, node ids not yet in name order.
    versions: VersionTable,
    /// See [`CompactHistory`].
    siblings: Vec<(ValueId, VersionId)>,
    /// See [`CompactHistory`].
    name_lists: Vec<Id>,
    /// Scratch for a value's JSON text.
    text: Vec<u8>,
}

impl Default for CompactBuilder {
    fn default() -> Self {
        let mut values = Interner::default();
        assert_eq!(values.intern(NULL_TEXT), Id(0), "null is value 0");
        CompactBuilder {
            ops: Vec::new(),
            names: Interner::default(),
            values,
            versions: VersionTable::default(),
            siblings: Vec::new(),
            name_lists: Vec::new(),
            text: Vec::new(),
        }
    }
}

/// A line's version, however it was read.
enum VersionIn<'l> {
    /// Parsed into a [`crate::Version`] (the plain path).
    Parsed(&'l crate::Version),
    /// Borrowed from the line (the fast path).
    Shape(&'l parse::VersionShape<'l>),
}

/// A line's fields besides its value, borrowed from either form it was
/// read in: what [`CompactBuilder::push_fields`] interns.
struct Fields<'l, N> {
    /// See [`CompactOp::index`].
    index: u64,
    /// See [`CompactOp::time_ns`].
    time_ns: u64,
    /// See [`CompactOp::process`].
    process: Process,
    /// See [`CompactOp::kind`].
    kind: OpType,
    /// The op type.
    f: &'l str,
    /// The key, if any.
    key: Option<&'l str>,
    /// The node, if any.
    node: Option<&'l str>,
    /// The version, if any.
    version: Option<VersionIn<'l>>,
    /// The replicas that answered, when reported.
    answered_by: Option<&'l [N]>,
    /// The home replicas of a hinted write.
    hinted_for: &'l [N],
    /// The reason of a `fail` or `info`.
    error: Option<&'l str>,
    /// The client's datacenter.
    dc: Option<&'l str>,
}

/// `len` as a `u32`, for spans.
fn small(len: usize) -> u32 {
    u32::try_from(len).expect("fewer than 2^32 entries")
}

impl CompactBuilder {
    /// Adds the next line (in file order).
    pub fn push(&mut self, op: &Op) {
        let siblings = op.sibling_refs().map(|siblings| {
            let start = small(self.siblings.len());
            for sibling in &siblings {
                let value = self.value(sibling.value);
                let version = self.versions.intern(&sibling.version);
                self.siblings.push((value, version));
            }
            Span { start, len: small(siblings.len()) }
        });
        let value = if siblings.is_some() { None } else { Some(self.value(&op.value)) };
        let fields = Fields {
            index: op.index,
            time_ns: op.time,
            process: op.process,
            kind: op.kind,
            f: &op.f,
            key: op.key.as_deref(),
            node: op.node.as_deref(),
            version: op.version.as_ref().map(VersionIn::Parsed),
            answered_by: op.answered_by.as_deref(),
            hinted_for: &op.hinted_for,
            error: op.error.as_deref(),
            dc: op.dc.as_deref(),
        };
        self.push_fields(fields, value, siblings);
    }

    /// Adds a line whose value (or siblings) is interned: its names and
    /// version interned in the one order both readers share, so that a
    /// line gets the same ids however it was read.
    fn push_fields<N: AsRef<str>>(&mut self, fields: Fields<'_, N>, value: Option<ValueId>, siblings: Option<Span>) {
        assert!(value.is_some() != siblings.is_some(), "a line has a value or siblings");
        let compact = CompactOp {
            index: fields.index,
            time_ns: fields.time_ns,
            process: fields.process,
            kind: fields.kind,
            f: self.names.intern(fields.f),
            key: fields.key.map(|k| self.names.intern(k)),
            node: fields.node.map(|n| self.names.intern(n)),
            value,
            version: fields.version.map(|v| match v {
                VersionIn::Parsed(version) => self.versions.intern(version),
                VersionIn::Shape(shape) => self.versions.intern_shape(shape),
            }),
            siblings,
            answered_by: fields.answered_by.map(|names| self.names(names)),
            hinted_for: self.names(fields.hinted_for),
            error: fields.error.map(|e| self.names.intern(e)),
            dc: fields.dc.map(|d| self.names.intern(d)),
        };
        self.ops.push(compact);
    }

    /// The id of `value`'s compact JSON text.
    fn value(&mut self, value: &serde_json::Value) -> ValueId {
        if value.is_null() {
            return Id(0);
        }
        self.text.clear();
        serde_json::to_writer(&mut self.text, value).expect("a JSON value serializes");
        self.values.intern(std::str::from_utf8(&self.text).expect("serde_json writes UTF-8"))
    }

    /// A list of names, interned, as a span of `name_lists`.
    fn names<N: AsRef<str>>(&mut self, names: &[N]) -> Span {
        let start = small(self.name_lists.len());
        for name in names {
            let id = self.names.intern(name.as_ref());
            self.name_lists.push(id);
        }
        Span { start, len: small(names.len()) }
    }

    /// The history, its versions' node ids in name order.
    pub fn finish(self) -> CompactHistory {
        CompactHistory {
            pairs: pair_lines(&self.ops),
            ops: self.ops,
            names: self.names,
            values: self.values,
            versions: self.versions.finish(),
            siblings: self.siblings,
            name_lists: self.name_lists,
        }
    }
}

/// A client op's invocation and completion, by line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinePair {
    /// The `invoke` line.
    pub invoke: usize,
    /// Its completion's line; None when the run ended before it.
    pub complete: Option<usize>,
}

impl LinePair {
    /// The completion type; an op that never completed is `info`
    /// ([`crate::OpPair::outcome`]).
    pub fn outcome(&self, ops: &[CompactOp]) -> OpType {
        self.complete.map_or(OpType::Info, |c| ops[c].kind)
    }

    /// The invocation and, if any, the completion.
    pub fn ops<'c>(&self, ops: &'c [CompactOp]) -> (&'c CompactOp, Option<&'c CompactOp>) {
        (&ops[self.invoke], self.complete.map(|c| &ops[c]))
    }
}

impl AsRef<CompactHistory> for CompactHistory {
    fn as_ref(&self) -> &CompactHistory {
        self
    }
}

impl CompactHistory {
    /// The compact form of `ops`, in their order: `ops()[i]` is `ops[i]`.
    pub fn from_ops(ops: &[Op]) -> CompactHistory {
        let mut builder = CompactBuilder::default();
        for op in ops {
            builder.push(op);
        }
        builder.finish()
    }

    /// Reads `history.jsonl` into the compact form, parsing lines on
    /// parser threads while this one interns them in file order (see
    /// `reader`); memory holds bounded chunks of the file, never all of
    /// it. Errors as [`crate::read_history`]'s: a malformed line, or an
    /// index out of place, is named by its line.
    pub fn read(path: &Path) -> Result<CompactHistory, HistoryError> {
        reader::read(path)
    }

    /// Reads `line` the plain way, as an [`Op`] (the reference the fast
    /// path matches), and returns its index, having added it if it is
    /// `expected`.
    pub(super) fn push_plain(
        builder: &mut CompactBuilder,
        line: &str,
        expected: u64,
    ) -> Result<u64, serde_json::Error> {
        let op: Op = serde_json::from_str(line)?;
        if op.index == expected {
            builder.push(&op);
        }
        Ok(op.index)
    }

    /// Every line, in file order.
    pub fn ops(&self) -> &[CompactOp] {
        &self.ops
    }

    /// The nemesis's events (faults, phase markers, the workload's
    /// summary), in file order.
    pub fn nemesis_events(&self) -> impl Iterator<Item = &CompactOp> + '_ {
        self.ops.iter().filter(|op| op.is_nemesis())
    }

    /// Whether `id` names `name` (an op type, key, node): one lookup of
    /// `name` per call, so a loop over every op looks its id up once
    /// ([`CompactHistory::name_id`]) instead.
    pub fn is(&self, id: Id, name: &str) -> bool {
        self.names.get(name) == Some(id)
    }

    /// The time of the last line, ns (0 for an empty history).
    pub fn end_ns(&self) -> u64 {
        self.ops.last().map_or(0, |op| op.time_ns)
    }

    /// An op's value as a JSON tree (null when it has none, or when its
    /// value is a read's parsed siblings): for the few values a checker
    /// looks inside, such as a nemesis event's.
    pub fn value_json(&self, op: &CompactOp) -> serde_json::Value {
        op.value.map_or(serde_json::Value::Null, |id| self.value(id).to_value())
    }

    /// The string a name id stands for (an op type, key or node).
    pub fn name(&self, id: Id) -> &str {
        self.names.text(id)
    }

    /// The id of a name, if the history mentions it.
    pub fn name_id(&self, name: &str) -> Option<Id> {
        self.names.get(name)
    }

    /// A value.
    pub fn value(&self, id: ValueId) -> ValueRef<'_> {
        ValueRef::new(&self.values, id)
    }

    /// The id of a value, by its compact JSON text, if the history holds it.
    pub fn value_id(&self, json_text: &str) -> Option<ValueId> {
        self.values.get(json_text)
    }

    /// The tombstone: `null`.
    pub fn null(&self) -> ValueRef<'_> {
        self.value(Id(0))
    }

    /// A version.
    pub fn version(&self, id: VersionId) -> VersionRef<'_> {
        self.versions.get(id)
    }

    /// Every distinct version of the history.
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// The siblings a read returned.
    pub fn siblings(&self, span: Span) -> impl ExactSizeIterator<Item = Sibling<'_>> + '_ {
        self.siblings[span.range()]
            .iter()
            .map(|&(value, version)| Sibling { value: self.value(value), version: self.version(version) })
    }

    /// A list of names (`answered_by`, `hinted_for`).
    pub fn names(&self, span: Span) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.name_lists[span.range()].iter().map(|&id| self.name(id))
    }

    /// Each client invocation paired with its completion, in invocation
    /// order, nemesis events skipped: [`crate::History::pairs`] by line.
    pub fn pairs(&self) -> &[LinePair] {
        &self.pairs
    }
}

/// See [`CompactHistory::pairs`].
fn pair_lines(ops: &[CompactOp]) -> Vec<LinePair> {
    let mut open: std::collections::HashMap<u64, usize> = Default::default();
    let mut pairs: Vec<LinePair> = Vec::with_capacity(ops.len() / 2 + 1);
    for (line, op) in ops.iter().enumerate() {
        let Process::Client(p) = op.process else { continue };
        if op.kind == OpType::Invoke {
            open.insert(p, pairs.len());
            pairs.push(LinePair { invoke: line, complete: None });
        } else if let Some(i) = open.remove(&p) {
            pairs[i].complete = Some(line);
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dot, Version};
    use serde_json::json;

    fn version(clock: &[(&str, u64)], dot: Option<(&str, u64)>, ts: u64) -> Version {
        Version {
            clock: clock.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
            ts,
            dot: dot.map(|(node, counter)| Dot { node: node.into(), counter }),
        }
    }

    /// A small history with every shape a checker reads: writes and their
    /// acks, reads with siblings (a tombstone among them), a read whose
    /// value does not parse, a hinted write, a reply's replicas, a nemesis
    /// event, an op never completed.
    pub(super) fn ops() -> Vec<Op> {
        let v1 = version(&[], Some(("n2", 1)), 10);
        let v2 = version(&[("n2", 1)], Some(("n1", 1)), 11);
        let mut ops = Vec::new();
        let mut push = |mut op: Op, time: u64| {
            op.index = ops.len() as u64;
            op.time = time;
            ops.push(op);
        };
        let mut w = Op::client(0, OpType::Invoke, "write", "k1", "n2");
        w.value = json!("p0-1");
        push(w.clone(), 1);
        w.kind = OpType::Ok;
        w.version = Some(v1.clone());
        w.hinted_for = vec!["n3".into()];
        push(w, 2);
        push(Op::nemesis("start-partition", json!({"grudge": {"n1": ["n3"]}})), 3);
        push(Op::client(1, OpType::Invoke, "read", "k1", "n1"), 4);
        let mut r = Op::client(1, OpType::Ok, "read", "k1", "n1");
        r.value = json!([{"value": "p0-1", "version": v1}, {"value": null, "version": v2}]);
        r.answered_by = Some(vec!["n1".into(), "n2".into()]);
        push(r, 5);
        push(Op::client(1, OpType::Invoke, "read", "k2", "n1"), 6);
        let mut bad = Op::client(1, OpType::Ok, "read", "k2", "n1");
        bad.value = json!([{"value": "x"}]);
        push(bad, 7);
        push(Op::client(2, OpType::Invoke, "delete", "k1", "n3"), 8);
        let mut refused = Op::client(3, OpType::Invoke, "write", "k2", "n2");
        refused.dc = Some("dc2".into());
        push(refused.clone(), 9);
        (refused.kind, refused.error) = (OpType::Fail, Some("overloaded".into()));
        push(refused, 10);
        ops
    }

    /// Every field a checker reads resolves to what the op holds.
    pub(super) fn assert_same(compact: &CompactHistory, ops: &[Op]) {
        assert_eq!(compact.ops().len(), ops.len());
        for (c, op) in compact.ops().iter().zip(ops) {
            assert_eq!((c.index, c.time_ns, c.process, c.kind), (op.index, op.time, op.process, op.kind));
            assert_eq!(compact.name(c.f), op.f);
            assert_eq!(c.key.map(|k| compact.name(k)), op.key.as_deref());
            assert_eq!(c.node.map(|n| compact.name(n)), op.node.as_deref());
            assert_eq!(c.version.map(|v| compact.version(v).to_version()), op.version);
            let parsed = op.sibling_refs();
            assert_eq!(c.siblings.is_some(), parsed.is_some(), "line {}", op.index);
            match (c.siblings, parsed) {
                (Some(span), Some(parsed)) => {
                    let got: Vec<(serde_json::Value, Version)> =
                        compact.siblings(span).map(|s| (s.value.to_value(), s.version.to_version())).collect();
                    let want: Vec<(serde_json::Value, Version)> =
                        parsed.into_iter().map(|s| (s.value.clone(), s.version)).collect();
                    assert_eq!(got, want);
                }
                _ => assert_eq!(c.value.map(|v| compact.value(v).to_value()), Some(op.value.clone())),
            }
            let answered: Option<Vec<&str>> = c.answered_by.map(|s| compact.names(s).collect());
            assert_eq!(answered, op.answered_by.as_ref().map(|a| a.iter().map(String::as_str).collect()));
            assert_eq!(compact.names(c.hinted_for).collect::<Vec<_>>(), op.hinted_for);
            assert_eq!(c.error.map(|e| compact.name(e)), op.error.as_deref());
            assert_eq!(c.dc.map(|d| compact.name(d)), op.dc.as_deref());
        }
        let pairs: Vec<(u64, Option<u64>)> = crate::History::new(ops.to_vec())
            .pairs()
            .iter()
            .map(|p| (p.invoke.index, p.complete.map(|c| c.index)))
            .collect();
        let lines: Vec<(u64, Option<u64>)> =
            compact.pairs().iter().map(|p| (p.invoke as u64, p.complete.map(|c| c as u64))).collect();
        assert_eq!(lines, pairs);
    }

    pub(super) fn write_file(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("compact-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_compact_form_holds_what_the_ops_hold() {
        let ops = ops();
        let compact = CompactHistory::from_ops(&ops);
        assert_same(&compact, &ops);
        assert_eq!(compact.versions().len(), 2, "each version once, though the read returned both again");
        let read = compact.ops()[4];
        let siblings: Vec<Sibling<'_>> = compact.siblings(read.siblings.unwrap()).collect();
        assert_eq!(siblings[0].version, compact.version(compact.ops()[1].version.unwrap()));
        assert!(siblings[1].value.is_null() && siblings[1].value == compact.null());
        assert_eq!(siblings[0].value.as_str().as_deref(), Some("p0-1"));
        assert_eq!(compact.ops()[6].siblings, None, "a read whose value does not parse is marked");
    }

    #[test]
    fn reading_the_file_line_by_line_gives_the_same_as_from_parsed_ops() {
        let ops = ops();
        let text: String = ops.iter().map(|op| serde_json::to_string(op).unwrap() + "\n\n").collect();
        let path = write_file("same", &text);
        let compact = CompactHistory::read(&path).unwrap();
        assert_same(&compact, &crate::read_history(&path).unwrap().ops);
        assert_same(&compact, &ops);
    }

    #[test]
    fn a_malformed_line_or_an_index_out_of_place_is_named_by_its_line() {
        let ops = ops();
        let good: Vec<String> = ops.iter().map(|op| serde_json::to_string(op).unwrap()).collect();
        let path = write_file("malformed", &format!("{}\n{}\n{{not json\n", good[0], good[1]));
        let err = CompactHistory::read(&path).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("history.jsonl") && err.contains("malformed"), "{err}");
        let path = write_file("index", &format!("{}\n{}\n", good[0], good[2]));
        let err = CompactHistory::read(&path).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("index is 2, expected 1"), "{err}");
    }
}
