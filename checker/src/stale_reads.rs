//! Stale reads: a read that missed a write acknowledged before it began.
//!
//! Definition. An `ok` read of key `k` invoked at time `t` is *stale* when
//! some write or delete of `k` was acknowledged (its `ok` recorded) strictly
//! before `t` and none of the read's siblings covers that write's version
//! (`Version::covers` under the run's resolution: inclusion of causal
//! histories, i.e. descent of vector clocks or the dot rule, for
//! `siblings`, not-older `(ts, clock)` for `lww`). Writes that were still
//! in flight when the read began are concurrent with it, and the read may
//! legitimately miss them; `fail`ed and `info` writes promise nothing.
//!
//! Why it matters. With strict quorums (`W + R > N`, no sloppy quorum) every
//! read quorum intersects every write quorum, so a read that begins after a
//! write's acknowledgement must meet at least one replica holding it (or a
//! descendant): a stale read there is a bug, and the verdict is `false`.
//! With weak settings (`W + R <= N`, or sloppy quorums under partition) the
//! store promises nothing; stale reads are the measurement, the verdict is
//! `true`, and `expected_zero: false` tells the tables which case they read.
//!
//! Exactness. For each key, acknowledged writes are merged with reads in
//! time order and only the frontier of maximal versions is tested (see
//! [`crate::frontier`]): a read misses some acknowledged write iff it misses
//! a maximal one, so the count equals the brute-force definition.

use rustc_hash::FxHashMap;

use history::compact::CompactHistory;
use history::RunConfig;
use serde_json::{json, Value};

use crate::explain;
use crate::frontier::{Frontier, Seen};
use crate::observe::{Ack, Observed, ObservedSource, Read};
use crate::result::{CheckResult, Validity};
use crate::windows::{fault_windows, Window};

/// The checker's name in `results.json`.
pub const NAME: &str = "stale-reads";

/// How many stale reads are described in full.
pub const MAX_EXAMPLES: usize = 5;

/// One step of the time-ordered merge of acks and reads.
pub(crate) enum Event<'o, 'a> {
    /// A write became acknowledged.
    Ack(&'o Ack<'a>),
    /// A read began.
    Read(&'o Read<'a>),
}

/// Checks a history for stale reads; see the module documentation.
pub fn check(history: &impl ObservedSource, run: &RunConfig) -> CheckResult {
    history.stale_reads(run).into_owned()
}

/// [`check`] on the history's acks and reads, extracted once by the caller
/// (the quorum checker runs this and read-your-writes on the same).
pub(crate) fn check_observed(history: &CompactHistory, run: &RunConfig, observed: &Observed<'_>) -> CheckResult {
    let trace = Trace::of(history, observed);
    let mut frontiers: FxHashMap<&str, Frontier> = FxHashMap::default();
    let mut checked = 0usize;
    let mut stale: Vec<Value> = Vec::new();
    let mut stale_count = 0usize;
    for event in merged(observed) {
        match event {
            Event::Ack(ack) => {
                frontiers.entry(ack.key).or_insert_with(|| Frontier::new(run.resolution)).insert(seen_of(ack))
            }
            Event::Read(read) => {
                let Some(frontier) = frontiers.get(read.key).filter(|f| !f.is_empty()) else {
                    continue;
                };
                checked += 1;
                if let Some(missed) = frontier.first_uncovered(&read.siblings) {
                    stale_count += 1;
                    if stale.len() < MAX_EXAMPLES {
                        stale.push(example(read, missed, &trace, false));
                    }
                }
            }
        }
    }
    let mut result = figures(run, observed, checked, stale_count, stale);
    if let Some(split) = crate::stale_by_dc::split(run, observed) {
        result = result.with("by_dc", split);
    }
    observed.not_understood.judge(result)
}

/// Acks at their acknowledgement time, reads at their invocation time; on a
/// tie the read goes first, because only writes acked *strictly before* the
/// read began are owed to it.
pub(crate) fn merged<'o, 'a>(observed: &'o Observed<'a>) -> Vec<Event<'o, 'a>> {
    let mut events: Vec<(u64, u8, u64, Event<'o, 'a>)> = Vec::new();
    for ack in &observed.acks {
        events.push((ack.ack_time, 1, ack.index, Event::Ack(ack)));
    }
    for read in &observed.reads {
        events.push((read.invoke_time, 0, read.index, Event::Read(read)));
    }
    events.sort_by_key(|(time, order, index, _)| (*time, *order, *index));
    events.into_iter().map(|(_, _, _, e)| e).collect()
}

pub(crate) fn seen_of<'a>(ack: &Ack<'a>) -> Seen<'a> {
    Seen { index: ack.index, value: ack.value, version: ack.version }
}

/// What the sentences of the missed-write checkers look up: every
/// acknowledged write by its invocation index, and the fault windows.
pub(crate) struct Trace<'o, 'a> {
    /// Acknowledged writes, in invocation order (looked up by index only
    /// for examples, so no table of them is built).
    acks: &'o [Ack<'a>],
    /// The run's fault windows.
    windows: Vec<Window>,
}

impl<'o, 'a> Trace<'o, 'a> {
    pub(crate) fn of(history: &CompactHistory, observed: &'o Observed<'a>) -> Trace<'o, 'a> {
        Trace { acks: &observed.acks, windows: fault_windows(history) }
    }
}

/// A stale read (or, `own`, a read-your-writes violation) described for a
/// human: the indices and versions, and the sentence ([`crate::explain`]).
pub(crate) fn example(read: &Read<'_>, missed: &Seen<'_>, trace: &Trace<'_, '_>, own: bool) -> Value {
    let write = crate::observe::by_index(trace.acks, missed.index, |a| a.index)
        .expect("every frontier entry of these checkers is an acknowledged write");
    json!({
        "sentence": explain::missed_write(read, write, &trace.windows, own),
        "answered_by": read.answered_by,
        "read_index": read.index,
        "process": read.process,
        "key": read.key,
        "node": read.node,
        "read_siblings": read.siblings.len(),
        "missed_write_index": missed.index,
        "missed_value": missed.value,
        "missed_version": missed.version,
    })
}

fn figures(
    run: &RunConfig,
    observed: &Observed<'_>,
    checked: usize,
    stale: usize,
    examples: Vec<Value>,
) -> CheckResult {
    let promised = run.is_strict_quorum();
    let mut result = CheckResult::new(Validity::for_promise(promised, stale, checked))
        .with("reads", json!(observed.reads.len()))
        .with("reads_checked", json!(checked))
        .with("stale", json!(stale))
        .with("stale_fraction", json!(fraction(stale, checked)))
        .with("expected_zero", json!(promised))
        .with("unversioned_acks", json!(observed.unversioned_acks))
        .with("unparsed_reads", json!(observed.unparsed_reads))
        .with("examples", Value::Array(examples));
    if checked == 0 {
        result = result.with("reason", json!("no ok read began after an acknowledged write of its key"));
    }
    result
}

/// `part / whole`, or 0 when there is nothing to divide.
pub(crate) fn fraction(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
