//! Siblings: how many versions each successful read returned.
//!
//! Dynamo reported 99.94% of reads seeing exactly one version; concurrent
//! writes to the same key (and partitions) create siblings under vector
//! clocks, and last-write-wins never returns more than one. The figures are
//! the histogram of sibling counts per `ok` read, the fraction of reads with
//! at most one version (an absent key is zero versions, not a conflict), and
//! the largest count seen. A measurement: `true`, or `unknown` without reads.

use std::collections::BTreeMap;

use history::{History, OpType, RunConfig};
use serde_json::{json, Value};

use crate::result::{CheckResult, Validity};

/// The checker's name in `results.json`.
pub const NAME: &str = "siblings";

/// Histogram and single-version fraction of sibling counts per `ok` read.
pub fn check(history: &History, _run: &RunConfig) -> CheckResult {
    let mut histogram: BTreeMap<usize, u64> = BTreeMap::new();
    for pair in history.pairs() {
        if pair.invoke.f != "read" || pair.outcome() != OpType::Ok {
            continue;
        }
        let Some(done) = pair.complete else { continue };
        let Some(count) = done.value.as_array().map(Vec::len) else { continue };
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
    result
}
