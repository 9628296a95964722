//! Read-your-writes: a client's read misses that same client's own earlier,
//! acknowledged write of the key.
//!
//! Definition. For each client process `p` and key `k`, an `ok` read of `k`
//! by `p` is a violation when some write or delete of `k` that `p` issued
//! *and saw acknowledged* earlier is not covered by any of the read's
//! siblings. A process has one op outstanding at a time, so "earlier" is
//! simply earlier in `p`'s own sequence. After an `info` the client carries
//! on under a fresh process id (HISTORY.md), so an unacknowledged write
//! never belongs to a process that reads afterwards: only acks matter.
//!
//! Why it matters. This is the session guarantee users notice first ("I
//! saved my cart and it is empty"). With strict quorums a read quorum meets
//! every replica set that acknowledged the client's write, so a violation is
//! a bug and the verdict is `false`. With weak settings (`W + R <= N` or a
//! sloppy quorum) the store does not promise it: the count is reported, the
//! verdict is `true`, and `expected_zero` says which case applies.
//!
//! Every violation here is also a stale read (the write was acknowledged
//! before the read began); this checker isolates the ones a single client
//! can observe by itself, which needs no synchronized view of other clients.

use rustc_hash::FxHashMap;

use history::compact::CompactHistory;
use history::RunConfig;
use serde_json::{json, Value};

use crate::frontier::Frontier;
use crate::observe::{Ack, Observed, ObservedSource, Read};
use crate::result::{CheckResult, Validity};
use crate::stale_reads::{example, fraction, seen_of, Trace, MAX_EXAMPLES};

/// The checker's name in `results.json`.
pub const NAME: &str = "read-your-writes";

/// One of a process's own ops, in its issue order.
enum Own<'o, 'a> {
    Ack(&'o Ack<'a>),
    Read(&'o Read<'a>),
}

/// Checks a history for read-your-writes violations.
pub fn check(history: &impl ObservedSource, run: &RunConfig) -> CheckResult {
    history.read_your_writes(run).into_owned()
}

/// [`check`] on acks and reads the caller extracted (see `stale_reads::check_observed`).
pub(crate) fn check_observed(history: &CompactHistory, run: &RunConfig, observed: &Observed<'_>) -> CheckResult {
    let trace = Trace::of(history, observed);
    let mut frontiers: FxHashMap<(u64, &str), Frontier> = FxHashMap::default();
    let mut checked = 0usize;
    let mut violations = 0usize;
    let mut examples: Vec<Value> = Vec::new();
    let mut by_dc = crate::stale_by_dc::SessionTally::new(run);
    for op in in_issue_order(observed) {
        match op {
            Own::Ack(ack) => frontiers
                .entry((ack.process, ack.key))
                .or_insert_with(|| Frontier::new(run.resolution))
                .insert(seen_of(ack)),
            Own::Read(read) => {
                let Some(own) = frontiers.get(&(read.process, read.key)) else { continue };
                checked += 1;
                let missed = own.first_uncovered(&read.siblings);
                by_dc.count(read.node, missed.is_some());
                if let Some(missed) = missed {
                    violations += 1;
                    if examples.len() < MAX_EXAMPLES {
                        examples.push(example(read, missed, &trace, true));
                    }
                }
            }
        }
    }
    let promised = run.is_strict_quorum();
    let mut result = CheckResult::new(Validity::for_promise(promised, violations, checked))
        .with("reads_checked", json!(checked))
        .with("violations", json!(violations))
        .with("violation_fraction", json!(fraction(violations, checked)))
        .with("expected_zero", json!(promised))
        .with("examples", Value::Array(examples));
    if let Some(split) = by_dc.to_json() {
        result = result.with("by_dc", split);
    }
    if checked == 0 {
        result = result.with("reason", json!("no process read a key after its own acknowledged write"));
    }
    observed.not_understood.judge(result)
}

/// Acks and reads by invocation index: per process, that is issue order.
fn in_issue_order<'o, 'a>(observed: &'o Observed<'a>) -> Vec<Own<'o, 'a>> {
    let mut ops: Vec<(u64, Own<'o, 'a>)> = Vec::new();
    ops.extend(observed.acks.iter().map(|a| (a.index, Own::Ack(a))));
    ops.extend(observed.reads.iter().map(|r| (r.index, Own::Read(r))));
    ops.sort_by_key(|(index, _)| *index);
    ops.into_iter().map(|(_, op)| op).collect()
}
