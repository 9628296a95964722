//! Lost writes (set workload): acknowledged adds absent from the final reads.
//!
//! Definition. The set workload adds unique elements by read-merge-write;
//! after the heal and a quiet period every key is read through every node
//! (phase `final`). An `ok` add of element `e` to key `k` is *lost* when `k`
//! had at least one `ok` final read and no final read of `k` holds `e` in any
//! sibling: the union over nodes is the most generous view, so a lost add is
//! one no client can ever see again. An `info` add (it may or may not have
//! happened) that does appear is *recovered*; one that does not is simply
//! not there, which is allowed. Adds to keys with no `ok` final read cannot
//! be judged and are counted apart (`unchecked`).
//!
//! Clock attribution. Under last-write-wins a write whose timestamp is older
//! than one acknowledged *before it was invoked* loses although it came
//! later in real time: a skewed clock. A lost add is counted under
//! `lost_to_clock` when such an earlier-acknowledged, later-stamped write of
//! its key exists; `ts_inversions` counts those inversions among all
//! acknowledged adds, lost or not. Without skew they need two writes racing
//! within a clock tick, so a large count points at clocks.
//!
//! Promise. With sibling resolution and strict quorums no acknowledged add
//! may be lost: any is a failure. Under LWW (or weak quorums) the count is
//! the measurement, the verdict `true`.

use std::collections::{BTreeSet, HashMap, HashSet};

use history::compact::{CompactHistory, CompactOp, Id, ValueId, VersionRef};
use history::{OpType, Process, Resolution, RunConfig};
use serde_json::{json, Value};

use crate::explain::{self, AddTrace, FinalReadTrace};
use crate::observe::KNOWN_FS;
use crate::phase::Phases;
use crate::result::{CheckResult, Validity};
use crate::understood::NotUnderstood;
use crate::windows::{fault_windows, Window};

/// The checker's name in `results.json`.
pub const NAME: &str = "lost-writes";

/// The phase whose reads are the final reads.
pub const FINAL_PHASE: &str = "final";

/// How many lost adds are described in full.
pub const MAX_EXAMPLES: usize = 5;

/// An add, as the checker needs it.
#[derive(Debug, Clone)]
struct Add<'h> {
    /// History index of its invocation.
    index: u64,
    /// Invocation time, ns.
    invoke_time: u64,
    /// Acknowledgement time, ns (acked adds only).
    ack_time: u64,
    /// The key, as the history names it.
    key: Id,
    /// The element added: the id of its JSON string among the history's
    /// values, so that finding it in a final read compares integers.
    element: ValueId,
    /// The version the store assigned (acked adds only).
    version: Option<VersionRef<'h>>,
    /// The client process, for the sentence.
    process: u64,
    /// The node it was sent to, for the sentence.
    node: Option<Id>,
}

/// Everything extracted from the history.
#[derive(Debug, Default)]
struct Extract<'h> {
    /// `ok` adds.
    acked: Vec<Add<'h>>,
    /// `info` (or never completed) adds.
    unknown: Vec<Add<'h>>,
    /// key -> union of elements over every `ok` final read (those never
    /// a value of the history are left out: no add can have added them).
    final_elements: HashMap<Id, HashSet<ValueId>>,
    /// `ok` final reads whose siblings were not arrays of strings.
    unparsed_final_reads: usize,
    /// Every op not understood, by reason (the count above among them).
    not_understood: NotUnderstood,
    /// key -> who served each of its `ok` final reads, for the sentence.
    final_reads: HashMap<Id, Vec<FinalReadTrace>>,
}

/// Why a final read is not understood.
const UNPARSED_FINAL_READ: &str = "an ok final read whose siblings are not null or lists of string elements";

/// Checks a set history for lost adds; see the module documentation.
pub fn check(history: &impl AsRef<CompactHistory>, run: &RunConfig) -> CheckResult {
    let history = history.as_ref();
    let x = extract(history);
    let windows = fault_windows(history);
    let inversions = inversions(&x.acked);
    let mut lost = Vec::new();
    let mut unchecked = 0usize;
    for add in &x.acked {
        match x.final_elements.get(&add.key) {
            None => unchecked += 1,
            Some(seen) if !seen.contains(&add.element) => lost.push(add),
            Some(_) => {}
        }
    }
    let recovered =
        x.unknown.iter().filter(|a| x.final_elements.get(&a.key).is_some_and(|s| s.contains(&a.element))).count();
    let lost_to_clock = lost.iter().filter(|a| inversions.contains(&a.index)).count();
    let checked = x.acked.len() - unchecked;
    let promised = run.resolution == Resolution::Siblings && run.is_strict_quorum();
    let mut result = CheckResult::new(Validity::for_promise(promised, lost.len(), checked))
        .with("acked_adds", json!(x.acked.len()))
        .with("checked_adds", json!(checked))
        .with("lost", json!(lost.len()))
        .with("lost_fraction", json!(if checked == 0 { 0.0 } else { lost.len() as f64 / checked as f64 }))
        .with("lost_to_clock", json!(lost_to_clock))
        .with("ts_inversions", json!(inversions.len()))
        .with("unknown_adds", json!(x.unknown.len()))
        .with("recovered", json!(recovered))
        .with("unchecked", json!(unchecked))
        .with("unparsed_final_reads", json!(x.unparsed_final_reads))
        .with("keys_with_final_reads", json!(x.final_elements.len()))
        .with("expected_zero", json!(promised))
        .with(
            "examples",
            Value::Array(
                lost.iter()
                    .take(MAX_EXAMPLES)
                    .map(|a| example(history, a, &x, &windows, inversions.contains(&a.index)))
                    .collect(),
            ),
        );
    if checked == 0 {
        result = result.with("reason", json!("no acknowledged add to a key with an ok final read"));
    }
    x.not_understood.judge(result)
}

fn example(history: &CompactHistory, add: &Add<'_>, x: &Extract<'_>, windows: &[Window], clock: bool) -> Value {
    let key = history.name(add.key);
    let element = history.value(add.element).as_str().expect("an add's element is a string");
    let trace = AddTrace {
        process: add.process,
        key,
        element: &element,
        node: add.node.map(|n| history.name(n)),
        invoke_time: add.invoke_time,
        ack_time: add.ack_time,
    };
    let finals = x.final_reads.get(&add.key).map_or(&[][..], Vec::as_slice);
    json!({
        "sentence": explain::lost_add(trace, finals, windows, clock),
        "add_index": add.index, "key": key, "element": element, "version": add.version.map(VersionRef::to_version), "lost_to_clock": clock,
    })
}

fn extract(history: &CompactHistory) -> Extract<'_> {
    let phases = Phases::of(history);
    let ops = history.ops();
    let mut x = Extract::default();
    for pair in history.pairs() {
        let (invoke, done) = pair.ops(ops);
        let f = history.name(invoke.f);
        // A `remove`, say, would explain an absence the checker calls a loss.
        if !KNOWN_FS.contains(&f) {
            x.not_understood.note_unknown_f(f, invoke.index);
            continue;
        }
        let Some(key) = invoke.key else {
            x.not_understood.note("a client op without a key", invoke.index);
            continue;
        };
        match (f, pair.outcome(ops)) {
            ("add", outcome @ (OpType::Ok | OpType::Info)) => {
                let Some(element) = invoke.value.filter(|v| history.value(*v).is_string()) else {
                    x.not_understood.note("an add whose element is not a string", invoke.index);
                    continue;
                };
                let Process::Client(process) = invoke.process else { continue };
                let add = Add {
                    process,
                    node: invoke.node,
                    index: invoke.index,
                    invoke_time: invoke.time_ns,
                    ack_time: done.map_or(u64::MAX, |d| d.time_ns),
                    key,
                    element,
                    version: done.and_then(|d| d.version).map(|v| history.version(v)),
                };
                if outcome == OpType::Ok {
                    x.acked.push(add);
                } else {
                    x.unknown.push(add);
                }
            }
            ("read", OpType::Ok) if phases.at(invoke.index) == FINAL_PHASE => {
                let Some(done) = done else { continue };
                match final_elements(history, done) {
                    Some(els) => x.final_elements.entry(key).or_default().extend(els),
                    None => {
                        x.unparsed_final_reads += 1;
                        x.not_understood.note(UNPARSED_FINAL_READ, invoke.index);
                    }
                }
                let node = invoke.node.or(done.node).map(|n| history.name(n).to_string());
                let answered_by = done.answered_by.map(|span| history.names(span).map(str::to_string).collect());
                x.final_reads.entry(key).or_default().push(FinalReadTrace {
                    node,
                    answered_by,
                    invoke_time: invoke.time_ns,
                });
            }
            _ => {}
        }
    }
    x
}

/// [`elements_of`] a final read, as the ids of the elements' JSON strings
/// among the history's values (an element that is none was never added):
/// from its parsed siblings' values, or, when its value did not parse as
/// siblings, from the value itself.
fn final_elements(history: &CompactHistory, read: &CompactOp) -> Option<Vec<ValueId>> {
    let Some(span) = read.siblings else {
        let elements = elements_of(&history.value_json(read))?;
        let texts = elements.into_iter().map(|e| Value::String(e).to_string());
        return Some(texts.filter_map(|text| history.value_id(&text)).collect());
    };
    let mut out = Vec::new();
    for sibling in history.siblings(span).filter(|s| !s.value.is_null()) {
        out.extend(sibling.value.string_items()?.filter_map(|item| history.value_id(item)));
    }
    Some(out)
}

/// The elements of one sibling's value: none for a tombstone (null);
/// None when it is neither null nor an array of strings.
fn elements_in(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(|item| item.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

/// The elements of every sibling of a set read; None if a sibling's value is
/// neither an array of strings nor null (a tombstone).
pub fn elements_of(read_value: &Value) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for sibling in read_value.as_array()? {
        out.extend(elements_in(sibling.get("value")?)?);
    }
    Some(out)
}

/// Indices of acked adds whose timestamp is older than that of an add of the
/// same key acknowledged before they were invoked.
fn inversions(acked: &[Add<'_>]) -> BTreeSet<u64> {
    let mut by_key: HashMap<Id, Vec<&Add<'_>>> = HashMap::new();
    for a in acked.iter().filter(|a| a.version.is_some()) {
        by_key.entry(a.key).or_default().push(a);
    }
    let mut out = BTreeSet::new();
    for adds in by_key.values() {
        let mut by_ack: Vec<&&Add<'_>> = adds.iter().collect();
        by_ack.sort_by_key(|a| a.ack_time);
        let mut by_invoke: Vec<&&Add<'_>> = adds.iter().collect();
        by_invoke.sort_by_key(|a| a.invoke_time);
        // Sweep: the largest ts among adds acked strictly before each invocation.
        let (mut i, mut max_ts) = (0usize, None::<u64>);
        for add in by_invoke {
            while i < by_ack.len() && by_ack[i].ack_time < add.invoke_time {
                let ts = by_ack[i].version.map(|v| v.ts_ms());
                max_ts = max_ts.max(ts);
                i += 1;
            }
            let ts = add.version.map_or(0, |v| v.ts_ms());
            if max_ts.is_some_and(|m| m > ts) {
                out.insert(add.index);
            }
        }
    }
    out
}
