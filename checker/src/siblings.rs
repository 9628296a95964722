//! Siblings: how many versions each successful read returned.
//!
//! Dynamo reported 99.94% of reads seeing exactly one version; concurrent
//! writes to the same key (and partitions) create siblings under vector
//! clocks, and last-write-wins never returns more than one. The figures are
//! the histogram of sibling counts per `ok` read, the fraction of reads with
//! at most one version (an absent key is zero versions, not a conflict), and
//! the largest count seen. A measurement: `true`, or `unknown` without reads.
//! It reads the history's compact form, where a read's siblings are already
//! parsed, once for every checker.

use std::collections::BTreeMap;

use history::compact::CompactHistory;
use history::{OpType, RunConfig};
use serde_json::{json, Value};

use crate::observe::{KNOWN_FS, UNPARSED_READ};
use crate::result::{CheckResult, Validity};
use crate::understood::NotUnderstood;

/// The checker's name in `results.json`.
pub const NAME: &str = "siblings";

/// Histogram and single-version fraction of sibling counts per `ok` read.
pub fn check(history: &impl AsRef<CompactHistory>, _run: &RunConfig) -> CheckResult {
    let history = history.as_ref();
    let mut histogram: BTreeMap<usize, u64> = BTreeMap::new();
    let mut not_understood = NotUnderstood::default();
    let compact = history;
    let ops = compact.ops();
    for pair in compact.pairs() {
        let invoke = &ops[pair.invoke];
        let f = compact.name(invoke.f);
        if !KNOWN_FS.contains(&f) {
            not_understood.note_unknown_f(f, invoke.index);
            continue;
        }
        let Some(done) = pair.complete.map(|c| &ops[c]) else { continue };
        if f != "read" || done.kind != OpType::Ok {
            continue;
        }
        // Parsed as the other checkers parse it: a list that is not one of
        // siblings is not a read this checker understands either.
        let Some(count) = done.siblings.map(|s| s.len()) else {
            not_understood.note(UNPARSED_READ, invoke.index);
            continue;
        };
        *histogram.entry(count).or_default() += 1;
    }
    let reads: u64 = histogram.values().sum();
    let single: u64 = histogram.iter().filter(|(c, _)| **c <= 1).map(|(_, n)| n).sum();
    let valid = if reads == 0 { Validity::Unknown } else { Validity::True };
    let fraction = if reads == 0 { Value::Null } else { json!(single as f64 / reads as f64) };
    let hist: serde_json::Map<String, Value> = histogram.iter().map(|(c, n)| (c.to_string(), json!(n))).collect();
    let mut result = CheckResult::new(valid)
        .with("reads", json!(reads))
        .with("single_version_fraction", fraction)
        .with("multi_version_reads", json!(reads - single))
        .with("max_siblings", json!(histogram.keys().max()))
        .with("histogram", Value::Object(hist));
    if reads == 0 {
        result = result.with("reason", json!("no ok read"));
    }
    not_understood.judge(result)
}
