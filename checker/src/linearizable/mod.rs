//! Linearizability of the register workload: is there one order of all
//! operations, consistent with real time, in which every read returns the
//! latest write?
//!
//! Why this checker exists. DDIA (ch. 5) warns that W + R > N does not make
//! a Dynamo-style store linearizable: a read can see a write still in
//! flight, and a later read, meeting other replicas, can then miss it. The
//! stale-read checker cannot see that: the write was not acknowledged when
//! the second read began, so nothing was owed to it. This checker decides
//! the question itself.
//!
//! How. Registers compose (linearizability is local, Herlihy and Wing), so
//! each key is checked alone ([`search`]: Wing and Gong's backtracking with
//! Lowe's memo of (linearized set, state), as Porcupine). Per key:
//! - a write is `Write(value)` from its invocation to its `ok`; a `fail`ed
//!   write is left out (it certainly did not happen); an `info` write, or
//!   one the run never answered, may or may not have taken effect, and
//!   returns at infinity (the search may place it anywhere after its call,
//!   last of all being "never");
//! - an `ok` read is `Read(value)` (a delete's tombstone, or no sibling at
//!   all, reads as the absent key); reads that failed or timed out saw
//!   nothing and constrain nothing;
//! - under `siblings`, a read that returned several versions is not a
//!   register read. Such a key is not decided: it is counted as unknown,
//!   with the reason, never guessed at. Under `lww` a read returns one
//!   version, and every key is decided.
//!
//! - under the cas-register [`Model`] (`workbench check --jepsen ...
//!   --model cas-register`, for stores with a compare-and-set), an `ok`
//!   `cas` with value `[expected, new]` is `Cas(expected, new)`: it takes
//!   effect only where the register holds `expected`. A `fail`ed cas is
//!   left out like a failed write, an `info` one may or may not have
//!   happened. The plain register model knows no `cas`;
//! - an op of any other type (a `cas` under the register model, say), or
//!   one it cannot parse (a read whose siblings lack a version, a cas
//!   whose value is not a pair), is not understood: leaving it out could
//!   make a linearizable key fail or an unread key pass. Its key is not
//!   decided, with the reason, and the checker's verdict is `unknown`
//!   ([`crate::understood`]).
//!
//! A per-key budget (time, and memo entries as a bound on memory) ends a
//! search that would not finish in `unknown` with the reason.
//!
//! For every key that is not linearizable a [`witness`] is shrunk from its
//! ops (a write or two and two reads, usually) and written out as a sentence.
//!
//! The verdict. No configuration of a Dynamo-style store promises
//! linearizability, so, like monotonic reads, this is a measurement, and
//! its checker verdict is `true`: it never makes a run invalid, nor
//! unknown for keys it could not decide (under `siblings` most keys cannot
//! be decided, and that says nothing about the run). Only input it did not
//! understand makes the verdict `unknown`. The answer itself is the `linearizable` figure:
//! `true`, `false`, or `unknown` when some key could not be decided and
//! none was found violated, with the reason per key, beside the witnesses.
//! The tables show it as the `lin` column.

pub mod search;
pub mod witness;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use history::compact::{CompactHistory, CompactOp, ValueRef};
use history::{OpType, RunConfig};
use serde_json::{json, Value};

use crate::observe::UNPARSED_READ;
use crate::result::{CheckResult, Validity};
use crate::understood::NotUnderstood;
use search::{Budget, Entry, Kind, Outcome};
use witness::Described;

/// The checker's name in `results.json`.
pub const NAME: &str = "linearizable";

/// Why a `cas` is not understood: its value is not `[expected, new]`.
const UNPARSED_CAS: &str = "a cas whose value is not a pair [expected, new]";

/// What one key's search may spend.
pub const KEY_BUDGET: Budget = Budget { time: Duration::from_secs(10), memo_entries: 2_000_000 };

/// What shrinking one witness may spend: a witness cut short is still a
/// witness (it says `minimal: false`), so this bounds the checker's time on
/// a run with many violating keys.
pub const WITNESS_BUDGET: Budget = Budget { time: Duration::from_secs(2), memo_entries: 2_000_000 };

/// Witnesses written to `results.json`.
pub const MAX_WITNESSES: usize = 5;

/// One key's ops, ready for the search, with what a witness names.
#[derive(Debug, Default)]
struct KeyOps {
    /// The ops, in invocation order.
    entries: Vec<Entry>,
    /// Who sent each and where, for the witness sentence (its values are
    /// the entry's ids, named by [`Values::text`] only for a witness).
    about: Vec<Source>,
    /// Why the key cannot be decided, if it cannot.
    undecidable: Option<String>,
}

/// What a witness names of an op besides its values: a few integers, so
/// that a million ops cost no string each.
#[derive(Debug, Clone, Copy)]
struct Source {
    /// The client process.
    process: u64,
    /// The history index of its invocation.
    index: u64,
    /// The node it was sent to.
    node: Option<history::compact::Id>,
}

/// Values as the search's ids: a value the history holds is its id there
/// (equal JSON texts, equal ids; `null`, the absent key, is 0), and one it
/// does not (a cas's expected value, held inside the cas's pair) gets an
/// id of its own, above every history id.
struct Values<'c> {
    /// The history.
    compact: &'c CompactHistory,
    /// Compact JSON texts the history does not hold -> their ids.
    extra: HashMap<String, u32>,
    /// Those texts by id, less [`EXTRA_BASE`].
    extra_texts: Vec<String>,
}

/// The first id of a value the history does not hold.
const EXTRA_BASE: u32 = 1 << 31;

impl<'c> Values<'c> {
    fn new(compact: &'c CompactHistory) -> Values<'c> {
        Values { compact, extra: HashMap::new(), extra_texts: Vec::new() }
    }

    /// The id of a value the history holds.
    fn of_ref(value: ValueRef<'_>) -> u32 {
        if value.is_null() {
            return 0;
        }
        let id = value.id().0;
        assert!(id < EXTRA_BASE, "fewer than 2^31 distinct values");
        id
    }

    /// The id of a parsed value (a cas's halves).
    fn of_json(&mut self, value: &Value) -> u32 {
        if value.is_null() {
            return 0;
        }
        let text = value.to_string();
        if let Some(id) = self.compact.value_id(&text) {
            return Values::of_ref(self.compact.value(id));
        }
        if let Some(&id) = self.extra.get(&text) {
            return id;
        }
        let id = EXTRA_BASE + u32::try_from(self.extra_texts.len()).expect("fewer than 2^31 extra values");
        self.extra_texts.push(text.clone());
        self.extra.insert(text, id);
        id
    }

    /// A value as a sentence shows it: a string as its text, another value
    /// as its JSON; None for the absent key.
    fn text(&self, id: u32) -> Option<String> {
        let json = match id {
            0 => return None,
            extra if extra >= EXTRA_BASE => self.extra_texts[(extra - EXTRA_BASE) as usize].as_str(),
            held => self.compact.value(history::compact::Id(held)).json_text(),
        };
        match serde_json::from_str::<Value>(json) {
            Ok(Value::String(text)) => Some(text),
            _ => Some(json.to_string()),
        }
    }
}

/// The object a key is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    /// Reads, writes and deletes (this project's register workload).
    #[default]
    Register,
    /// A register with compare-and-set besides (`f: "cas"`, value
    /// `[expected, new]`), as Knossos' `cas-register`.
    CasRegister,
}

impl Model {
    /// Every model, in the order `--help` lists them.
    pub const ALL: [Model; 2] = [Model::Register, Model::CasRegister];

    /// Its name in flags and in `results.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Model::Register => "register",
            Model::CasRegister => "cas-register",
        }
    }

    /// The op types it knows.
    fn knows(self, f: &str) -> bool {
        matches!(f, "read" | "write" | "delete") || (self == Model::CasRegister && f == "cas")
    }
}

impl std::str::FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Model::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown model {s:?} (expected register or cas-register)"))
    }
}

/// Checks every key of a register run against the plain register model;
/// see the module documentation.
pub fn check(history: &impl AsRef<CompactHistory>, run: &RunConfig) -> CheckResult {
    if run.workload != "register" {
        return CheckResult::new(Validity::Unknown).with("reason", json!("only the register workload is a register"));
    }
    check_history(history, Model::Register)
}

/// Checks every key of `history` against `model`, whatever run it came
/// from: what `workbench check --jepsen` runs on an imported history.
pub fn check_history(history: &impl AsRef<CompactHistory>, model: Model) -> CheckResult {
    let compact = history.as_ref();
    let mut values = Values::new(compact);
    let (keys, not_understood) = split_by_key(compact, model, &mut values);
    let mut decided = 0usize;
    let mut violating: Vec<String> = Vec::new();
    let mut unknown: BTreeMap<String, String> = BTreeMap::new();
    let mut witnesses: Vec<Value> = Vec::new();
    for (key, ops) in &keys {
        if let Some(why) = &ops.undecidable {
            unknown.insert(key.clone(), why.clone());
            continue;
        }
        match search::search(&ops.entries, KEY_BUDGET) {
            Outcome::Linearizable => decided += 1,
            Outcome::GaveUp(why) => {
                unknown.insert(key.clone(), format!("{why} ({} ops)", ops.entries.len()));
            }
            Outcome::Violation => {
                decided += 1;
                violating.push(key.clone());
                if witnesses.len() < MAX_WITNESSES {
                    witnesses.push(witness_of(key, ops, &values));
                }
            }
        }
    }
    let fully_read = not_understood.ops() == 0;
    let result =
        summary(decided, &violating, &unknown, witnesses, keys.len(), fully_read).with("model", json!(model.as_str()));
    not_understood.judge(result)
}

fn summary(
    decided: usize,
    violating: &[String],
    unknown: &BTreeMap<String, String>,
    witnesses: Vec<Value>,
    keys: usize,
    fully_read: bool,
) -> CheckResult {
    // A violation on a decided key stands whatever else the history holds
    // (registers compose); `true` needs every op read, keyed or not.
    let answer = if !violating.is_empty() {
        json!(false)
    } else if unknown.is_empty() && decided > 0 && fully_read {
        json!(true)
    } else {
        json!("unknown")
    };
    let mut result = CheckResult::new(Validity::True)
        .with("linearizable", answer)
        .with("keys", json!(keys))
        .with("keys_decided", json!(decided))
        .with("keys_violating", json!(violating))
        .with("keys_unknown", json!(unknown))
        .with("expected_zero", json!(false))
        .with("examples", Value::Array(witnesses));
    if decided == 0 {
        result = result.with("reason", json!("no key could be decided (see keys_unknown)"));
    }
    result
}

/// The witness of a violating key, as an example of `results.json`.
fn witness_of(key: &str, ops: &KeyOps, values: &Values<'_>) -> Value {
    let shrunk = witness::shrink(&ops.entries, WITNESS_BUDGET);
    let indices: Vec<u64> = shrunk.ops.iter().map(|&i| ops.about[i].index).collect();
    let about: Vec<Described> = ops.entries.iter().zip(&ops.about).map(|(e, s)| described(e, s, values)).collect();
    json!({
        "key": key,
        "ops": ops.entries.len(),
        "witness_indices": indices,
        "minimal": shrunk.minimal,
        "sentence": format!("key {key}: {}", witness::sentence(&ops.entries, &about, &shrunk.ops)),
    })
}

/// An op as a witness sentence names it.
fn described(entry: &Entry, source: &Source, values: &Values<'_>) -> Described {
    let value = entry.kind.installs().or(entry.kind.observes());
    let expected = match entry.kind {
        Kind::Cas { from, .. } => values.text(from),
        _ => None,
    };
    Described {
        process: source.process,
        index: source.index,
        value: value.and_then(|id| values.text(id)),
        node: source.node.map(|n| values.compact.name(n).to_string()),
        expected,
    }
}

/// Every key's ops, in invocation order, and the ops not understood (each
/// also leaves its key undecided). Values are [`Values`]' ids (0 is the
/// absent key).
fn split_by_key(
    compact: &CompactHistory,
    model: Model,
    values: &mut Values<'_>,
) -> (BTreeMap<String, KeyOps>, NotUnderstood) {
    let mut keys: BTreeMap<String, KeyOps> = BTreeMap::new();
    let mut not_understood = NotUnderstood::default();
    for pair in compact.pairs() {
        let (invoke, complete) = pair.ops(compact.ops());
        let index = invoke.index;
        let Some(key) = invoke.key.map(|k| compact.name(k)) else {
            if matches!(invoke.process, history::Process::Client(_)) {
                not_understood.note("a client op without a key", index);
            }
            continue;
        };
        let reading = op_of(invoke, complete, values, model);
        if matches!(reading, Reading::Skip) {
            continue;
        }
        if !keys.contains_key(key) {
            keys.insert(key.to_string(), KeyOps::default());
        }
        let ops = keys.get_mut(key).expect("inserted above");
        let op = match reading {
            Reading::Op(op) => op,
            Reading::Skip => unreachable!("skipped above"),
            Reading::NotUnderstood(why) => {
                ops.undecidable.get_or_insert(format!("the op at index {index} is not understood: {why}"));
                not_understood.note(why, index);
                continue;
            }
        };
        if op.versions_seen > 1 {
            let why = format!("a read returned {} concurrent versions: not a register read", op.versions_seen);
            ops.undecidable.get_or_insert(why);
            continue;
        }
        let kind = match op.effect {
            Effect::Write => Kind::Write(op.value),
            Effect::Read => Kind::Read(op.value),
            Effect::Cas => Kind::Cas { from: op.expected, to: op.value },
        };
        ops.entries.push(Entry { call_ns: op.call_ns, return_ns: op.return_ns, kind });
        ops.about.push(Source { process: op.process, index, node: op.node });
    }
    (keys, not_understood)
}

/// What [`op_of`] made of a client op.
enum Reading {
    /// A register op for the search.
    Op(RegisterOp),
    /// An op that constrains nothing: failed, or a read never answered.
    Skip,
    /// An op of another type, or one whose answer does not parse: why.
    NotUnderstood(String),
}

/// What a register op does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// A write or delete.
    Write,
    /// A read.
    Read,
    /// A compare-and-set (the cas-register model).
    Cas,
}

/// One client op as the search sees it.
struct RegisterOp {
    /// Invocation time (ns).
    call_ns: u64,
    /// `ok` time (ns), or `u64::MAX` when it may or may not have happened.
    return_ns: u64,
    /// What it does.
    effect: Effect,
    /// Written (a cas: installed) or seen, as a [`Values`] id; 0: a
    /// tombstone or the absent key.
    value: u32,
    /// A cas's expected value (0: the key absent; and for other ops).
    expected: u32,
    /// Versions a read returned (0 for writes).
    versions_seen: usize,
    /// The client process.
    process: u64,
    /// The node it was sent to.
    node: Option<history::compact::Id>,
}

/// The op invoked at `invoke` as the search sees it; see [`Reading`]. A
/// read's siblings come from the compact form, parsed there once for all
/// checkers.
fn op_of(invoke: &CompactOp, complete: Option<&CompactOp>, values: &mut Values<'_>, model: Model) -> Reading {
    let compact = values.compact;
    let history::Process::Client(process) = invoke.process else { return Reading::Skip };
    let f = compact.name(invoke.f);
    if !model.knows(f) {
        return Reading::NotUnderstood(format!("op type {f:?} is not one the {} model knows", model.as_str()));
    }
    let kind = complete.map_or(OpType::Info, |d| d.kind);
    if kind == OpType::Fail {
        return Reading::Skip;
    }
    let return_ns = match complete {
        Some(done) if kind == OpType::Ok => done.time_ns,
        _ => u64::MAX,
    };
    let mut op = RegisterOp {
        call_ns: invoke.time_ns,
        return_ns,
        effect: Effect::Write,
        value: 0,
        expected: 0,
        versions_seen: 0,
        process,
        node: invoke.node,
    };
    match f {
        "write" => op.value = invoke.value.map_or(0, |v| Values::of_ref(compact.value(v))),
        "delete" => {}
        "cas" => {
            let value = compact.value_json(invoke);
            let Some([expected, new]) = value.as_array().and_then(|pair| <&[Value; 2]>::try_from(pair.as_slice()).ok())
            else {
                return Reading::NotUnderstood(UNPARSED_CAS.to_string());
            };
            (op.effect, op.expected, op.value) = (Effect::Cas, values.of_json(expected), values.of_json(new));
        }
        "read" if kind == OpType::Ok => {
            let Some(span) = complete.and_then(|c| c.siblings) else {
                return Reading::NotUnderstood(UNPARSED_READ.to_string());
            };
            op.effect = Effect::Read;
            op.versions_seen = span.len();
            op.value = compact.siblings(span).next().map_or(0, |s| Values::of_ref(s.value));
        }
        _ => return Reading::Skip,
    }
    Reading::Op(op)
}
