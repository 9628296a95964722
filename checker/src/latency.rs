//! Latency: how long client ops took, per op type and outcome, and the
//! run's throughput.
//!
//! Definitions. An op's latency is its completion time minus its invocation
//! time, on the harness's monotonic clock, reported in milliseconds. Ops the
//! run ended before answering have no latency; they are counted under
//! `incomplete` and left out of the percentiles rather than given an
//! invented duration. Percentiles use the *nearest-rank* method, computed
//! here with integer arithmetic: the p-th percentile of `n` sorted samples
//! is the sample at rank `ceil(p * n / 100)` (1-based). It always returns an
//! observed latency, never an interpolation between two, so "p99 = 250 ms"
//! means some op really took 250 ms. Throughput is `ok` ops per second over
//! the span from the first client invocation to the last client completion.
//!
//! Grouping: `by_f.<f>.<outcome>`, `by_phase.<phase>.<f>.<outcome>`
//! (phase of the invocation, see [`crate::phase`]) and
//! `by_window.<kind>.<f>.<outcome>` (the fault windows in force at the
//! invocation, see [`crate::windows`]; `none` outside every window);
//! timeouts (`info`) are kept apart from `ok` because a timeout's latency is
//! the client's timeout setting, not the store's speed.
//!
//! Did an injected latency bite? `latency_window_p50_shift_ms` is the
//! median of ok ops invoked inside `latency` windows minus the median of ok
//! ops invoked outside every window: the slowdown a client saw, measured
//! through the cluster, whatever performed the fault (tc netem, a link
//! proxy, the simulator's links). Absent when the run had no such window.
//!
//! Verdict. Latency promises nothing: `true`, or `unknown` when the history
//! has no client ops to measure.

use std::collections::BTreeMap;

use history::compact::{CompactHistory, CompactOp, LinePair};
use history::{OpType, RunConfig};
use serde_json::{json, Map, Value};

use crate::phase::Phases;
use crate::result::{CheckResult, Validity};
use crate::windows::{fault_windows, InForce};

/// The `by_window` group of ops invoked outside every fault window.
pub const OUTSIDE_WINDOWS: &str = "none";

/// The kind of window whose slowdown `latency_window_p50_shift_ms` reports.
const LATENCY_WINDOW: &str = "latency";

/// The checker's name in `results.json`.
pub const NAME: &str = "latency";

/// The percentiles reported, in percent.
pub const PERCENTILES: [u64; 3] = [50, 95, 99];

/// Latency samples (ms) grouped by `f`, then outcome name; names borrowed
/// from the history, so grouping allocates nothing per op.
type Groups<'h> = BTreeMap<&'h str, BTreeMap<&'static str, Vec<f64>>>;

/// Measures latency and throughput; see the module documentation.
pub fn check(history: &impl AsRef<CompactHistory>, _run: &RunConfig) -> CheckResult {
    let history = history.as_ref();
    let ops = history.ops();
    let pairs = history.pairs();
    let phases = Phases::of(history);
    let mut by_f: Groups = BTreeMap::new();
    let mut by_phase: BTreeMap<&str, Groups> = BTreeMap::new();
    let mut incomplete: BTreeMap<&str, u64> = BTreeMap::new();
    let windows = fault_windows(history);
    let mut in_force = InForce::new(&windows);
    let mut kinds = Vec::new();
    let mut by_window: BTreeMap<&'static str, Groups> = BTreeMap::new();
    for pair in pairs {
        let (invoke, complete) = pair.ops(ops);
        let f = history.name(invoke.f);
        let Some(ms) = latency_ms(invoke, complete) else {
            *incomplete.entry(f).or_default() += 1;
            continue;
        };
        let outcome = outcome_name(pair.outcome(ops));
        push(&mut by_f, f, outcome, ms);
        let phase = by_phase.entry(phases.at(invoke.index)).or_default();
        push(phase, f, outcome, ms);
        kinds_at(&mut in_force, invoke.time_ns, &mut kinds);
        for &kind in &kinds {
            push(by_window.entry(kind).or_default(), f, outcome, ms);
        }
    }
    let ok_ops = pairs.iter().filter(|p| p.outcome(ops) == OpType::Ok).count();
    let span_s = span_ns(ops, pairs).map(|ns| ns as f64 / 1e9);
    let throughput = span_s.filter(|s| *s > 0.0).map(|s| ok_ops as f64 / s);
    let valid = if pairs.is_empty() { Validity::Unknown } else { Validity::True };
    CheckResult::new(valid)
        .with("percentile_method", json!("nearest-rank"))
        .with("ok_ops", json!(ok_ops))
        .with("span_s", json!(span_s))
        .with("throughput_ok_per_s", json!(throughput))
        .with("incomplete", json!(incomplete))
        .with("by_f", groups_json(&by_f))
        .with("by_phase", Value::Object(by_phase.iter().map(|(p, g)| (p.to_string(), groups_json(g))).collect()))
        .with("by_window", Value::Object(by_window.iter().map(|(k, g)| (k.to_string(), groups_json(g))).collect()))
        .with("latency_window_p50_shift_ms", json!(p50_shift_ms(&by_window)))
}

/// Sets `kinds` to the kinds of the windows in force at `time_ns`, each
/// once in a row, or to [`OUTSIDE_WINDOWS`].
fn kinds_at(in_force: &mut InForce<'_>, time_ns: u64, kinds: &mut Vec<&'static str>) {
    in_force.kinds_at(time_ns as f64 / 1e9, kinds);
    kinds.dedup();
    if kinds.is_empty() {
        kinds.push(OUTSIDE_WINDOWS);
    }
}

/// Median ok latency inside latency windows minus outside every window.
fn p50_shift_ms(by_window: &BTreeMap<&'static str, Groups<'_>>) -> Option<f64> {
    let ok_p50 = |kind: &str| {
        let mut samples: Vec<f64> =
            by_window.get(kind)?.values().filter_map(|o| o.get("ok")).flatten().copied().collect();
        samples.sort_by(f64::total_cmp);
        nearest_rank(&samples, 50)
    };
    Some(ok_p50(LATENCY_WINDOW)? - ok_p50(OUTSIDE_WINDOWS)?)
}

/// Completion minus invocation, in ms; None for an op that never completed.
fn latency_ms(invoke: &CompactOp, complete: Option<&CompactOp>) -> Option<f64> {
    let done = complete?;
    Some(done.time_ns.saturating_sub(invoke.time_ns) as f64 / 1e6)
}

fn outcome_name(outcome: OpType) -> &'static str {
    match outcome {
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        OpType::Info | OpType::Invoke => "info",
    }
}

fn push<'h>(groups: &mut Groups<'h>, f: &'h str, outcome: &'static str, ms: f64) {
    groups.entry(f).or_default().entry(outcome).or_default().push(ms);
}

/// First client invocation to last client completion, in ns.
fn span_ns(ops: &[CompactOp], pairs: &[LinePair]) -> Option<u64> {
    let start = pairs.iter().map(|p| ops[p.invoke].time_ns).min()?;
    let end = pairs.iter().filter_map(|p| p.complete.map(|c| ops[c].time_ns)).max()?;
    Some(end.saturating_sub(start))
}

fn groups_json(groups: &Groups) -> Value {
    let per_f = groups.iter().map(|(f, outcomes)| {
        let per_outcome: Map<String, Value> =
            outcomes.iter().map(|(o, samples)| (o.to_string(), summary(samples))).collect();
        (f.to_string(), Value::Object(per_outcome))
    });
    Value::Object(per_f.collect())
}

/// Count, nearest-rank percentiles and max of some samples (ms).
pub fn summary(samples: &[f64]) -> Value {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut out = Map::new();
    out.insert("count".into(), json!(sorted.len()));
    for p in PERCENTILES {
        out.insert(format!("p{p}_ms"), json!(nearest_rank(&sorted, p)));
    }
    out.insert("max_ms".into(), json!(sorted.last()));
    Value::Object(out)
}

/// The nearest-rank `p`-th percentile of ascending `sorted`: the sample at
/// 1-based rank `ceil(p * n / 100)`, clamped to `1..=n`. None when empty.
pub fn nearest_rank(sorted: &[f64], p: u64) -> Option<f64> {
    let n = sorted.len() as u64;
    if n == 0 {
        return None;
    }
    let rank = (p * n).div_ceil(100).clamp(1, n);
    sorted.get((rank - 1) as usize).copied()
}
