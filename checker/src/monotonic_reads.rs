//! Monotonic reads: a client's later read of a key sees less than an
//! earlier read of the same key did.
//!
//! Definition. For each client process `p` and key `k`, take `p`'s `ok`
//! reads of `k` in order (one op outstanding per process, so each began
//! after the previous one completed). Read `r1` *saw* a write `x` when one
//! of its siblings carries `x`'s value (values are unique per run) and
//! therefore `x`'s version; tombstone siblings count too, by version. A
//! later read `r2` is a violation when, for some version an earlier read
//! saw, none of `r2`'s siblings covers it (`Version::covers` under the run's
//! resolution). Only the maximal versions seen so far are kept
//! ([`crate::frontier`]), which gives exactly the same count.
//!
//! Why the verdict is always `true`. Dynamo-style stores do not promise
//! monotonic reads, not even with strict quorums: a write that reached one
//! replica and then failed (or is still in flight) can be returned by one
//! read quorum and missed by the next, which meets different replicas; read
//! repair narrows the window but does not close it. So a non-zero count is
//! a property of the configuration, not a bug, and this checker is a
//! measurement (`expected_zero: false`). Its test still plants a violation
//! and demands the count see it: a counter that cannot count proves nothing.

use rustc_hash::FxHashMap;

use history::compact::Sibling;
use history::RunConfig;
use serde_json::{json, Value};

use crate::explain;
use crate::frontier::{Frontier, Seen};
use crate::observe::{ObservedSource, Read};
use crate::result::{CheckResult, Validity};
use crate::stale_reads::{fraction, MAX_EXAMPLES};
use crate::windows::{fault_windows, Window};

/// The checker's name in `results.json`.
pub const NAME: &str = "monotonic-reads";

/// Counts monotonic-read violations; see the module documentation.
pub fn check(history: &impl ObservedSource, run: &RunConfig) -> CheckResult {
    let observed = history.observed();
    let history = history.as_ref();
    let windows = fault_windows(history);
    let mut seen: FxHashMap<(u64, &str), Frontier> = FxHashMap::default();
    let mut checked = 0usize;
    let mut violations = 0usize;
    let mut examples: Vec<Value> = Vec::new();
    let mut by_dc = crate::stale_by_dc::SessionTally::new(run);
    // Observed reads are in invocation order, hence in each process's order.
    for read in &observed.reads {
        let frontier = seen.entry((read.process, read.key)).or_insert_with(|| Frontier::new(run.resolution));
        if !frontier.is_empty() {
            checked += 1;
            let lost = frontier.first_uncovered(&read.siblings);
            by_dc.count(read.node, lost.is_some());
            if let Some(lost) = lost {
                violations += 1;
                if examples.len() < MAX_EXAMPLES {
                    let earlier = crate::observe::by_index(&observed.reads, lost.index, |r| r.index)
                        .expect("a seen version comes from an earlier ok read");
                    examples.push(example(read, earlier, lost, &windows));
                }
            }
        }
        for sibling in &read.siblings {
            frontier.insert(seen_of(read, sibling));
        }
    }
    let mut result = CheckResult::new(Validity::for_promise(false, violations, checked))
        .with("reads_checked", json!(checked))
        .with("violations", json!(violations))
        .with("violation_fraction", json!(fraction(violations, checked)))
        .with("expected_zero", json!(false))
        .with("examples", Value::Array(examples));
    if let Some(split) = by_dc.to_json() {
        result = result.with("by_dc", split);
    }
    if checked == 0 {
        result = result.with("reason", json!("no process read the same key twice"));
    }
    observed.not_understood.judge(result)
}

fn seen_of<'a>(read: &Read<'a>, sibling: &Sibling<'a>) -> Seen<'a> {
    Seen { index: read.index, value: sibling.value, version: sibling.version }
}

fn example(read: &Read<'_>, earlier: &Read<'_>, lost: &Seen<'_>, windows: &[Window]) -> Value {
    json!({
        "sentence": explain::went_back(read, earlier, lost, windows),
        "answered_by": read.answered_by,
        "read_index": read.index,
        "process": read.process,
        "key": read.key,
        "node": read.node,
        "earlier_read_index": lost.index,
        "lost_value": lost.value,
        "lost_version": lost.version,
    })
}
