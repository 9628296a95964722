//! Stats: how many client ops succeeded, failed or ended unknown, overall,
//! per op type (`f`) and per phase.
//!
//! Definitions. Each client op (an invocation and its completion) counts
//! once, under its outcome: `ok`, `fail` (certainly did not happen) or
//! `info` (unknown: a timeout or a lost connection). An op the run ended
//! before answering counts as `info`, as HISTORY.md says. Percentages are
//! `100 * outcome / total`; *availability* is the fraction of requests that
//! succeeded, `ok / total`, so an `info` counts against it (the client did
//! not get an answer it could act on). The phase of an op is the phase in
//! force at its invocation ([`crate::phase`]), which is what lets a table
//! show availability during faults next to availability after healing.
//!
//! Offered load. The workload ends by recording a `workload` event (process
//! `nemesis`, like the phase markers) with its arrival mode, target rate,
//! duration, and, for an open loop, how many arrivals it scheduled and how
//! many found every process busy and were never issued. `offered_load`
//! repeats it with `achieved_rate_per_s` (ops issued per second of workload)
//! and `dropped_fraction`, so a table can show the load the store was offered
//! next to what it took. Dropped arrivals are a measurement, not a failure.
//!
//! Verdict. Stats promise nothing and so are `true`, except on a history
//! with no client ops at all, which is `unknown`: an empty run is not a
//! healthy one, and a report of 100% availability over zero requests would
//! be a claim without evidence.
//!
//! Across datacenters `by_dc` splits the counts by the client's DC and by
//! what its DC suffered at the invocation (`crate::availability_by_dc`).

use std::collections::BTreeMap;

use history::compact::CompactHistory;
use history::OpType;
use serde_json::{json, Value};

use crate::phase::Phases;
use crate::result::{CheckResult, Validity};

/// The checker's name in `results.json`.
pub const NAME: &str = "stats";

/// Outcome counts over some set of ops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Ops that completed `ok`.
    pub ok: u64,
    /// Ops that completed `fail`.
    pub fail: u64,
    /// Ops that completed `info` or never completed.
    pub info: u64,
}

impl Counts {
    /// Counts one op with this outcome (an `invoke` outcome cannot happen
    /// for a paired op; it would be counted as `info`).
    pub fn add(&mut self, outcome: OpType) {
        match outcome {
            OpType::Ok => self.ok += 1,
            OpType::Fail => self.fail += 1,
            OpType::Info | OpType::Invoke => self.info += 1,
        }
    }

    /// Every op counted: `ok + fail + info`.
    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }

    /// `ok / total`, or 0 on no ops.
    pub fn availability(&self) -> f64 {
        ratio(self.ok, self.total())
    }

    /// The counts and their percentages as a JSON object.
    pub fn to_json(&self) -> Value {
        let total = self.total();
        json!({
            "total": total,
            "ok": self.ok,
            "fail": self.fail,
            "info": self.info,
            "ok_pct": 100.0 * ratio(self.ok, total),
            "fail_pct": 100.0 * ratio(self.fail, total),
            "info_pct": 100.0 * ratio(self.info, total),
            "availability": self.availability(),
        })
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Counts outcomes overall, per `f` and per phase.
pub fn check(history: &impl AsRef<CompactHistory>, run: &history::RunConfig) -> CheckResult {
    let history = history.as_ref();
    let phases = Phases::of(history);
    let ops = history.ops();
    let mut all = Counts::default();
    // Keyed by borrowed names: no allocation per op.
    let mut by_f: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut by_phase: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut incomplete = 0u64;
    for pair in history.pairs() {
        let outcome = pair.outcome(ops);
        if pair.complete.is_none() {
            incomplete += 1;
        }
        all.add(outcome);
        let invoke = &ops[pair.invoke];
        by_f.entry(history.name(invoke.f)).or_default().add(outcome);
        by_phase.entry(phases.at(invoke.index)).or_default().add(outcome);
    }
    let valid = if all.total() == 0 { Validity::Unknown } else { Validity::True };
    let mut result = CheckResult::new(valid);
    if let Value::Object(overall) = all.to_json() {
        result.figures.extend(overall);
    }
    result = result
        .with("incomplete", json!(incomplete))
        .with("nemesis_events", json!(nemesis_actions(history)))
        .with("by_f", to_json_map(&by_f))
        .with("by_phase", to_json_map(&by_phase))
        .with("offered_load", offered_load(history));
    if let Some(by_dc) = crate::availability_by_dc::split(history, run) {
        result = result.with("by_dc", by_dc);
    }
    if all.total() == 0 {
        result = result.with("reason", json!("the history has no client ops"));
    }
    result
}

/// The `f` of the workload's summary event.
pub const WORKLOAD_F: &str = "workload";

/// Nemesis events other than phase markers and the workload's summary: the
/// faults actually injected.
fn nemesis_actions(history: &CompactHistory) -> usize {
    let bookkeeping = [crate::phase::PHASE_F, WORKLOAD_F].map(|f| history.name_id(f));
    history.nemesis_events().filter(|op| !bookkeeping.contains(&Some(op.f))).count()
}

/// The workload's summary event with the achieved rate and dropped fraction
/// added; null when the history has none (runs from before it existed).
fn offered_load(history: &CompactHistory) -> Value {
    let Some(event) = history.nemesis_events().find(|op| history.is(op.f, WORKLOAD_F)) else { return Value::Null };
    let value = history.value_json(event);
    let mut load = value.clone();
    let figure = |name: &str| value.get(name).and_then(Value::as_f64);
    let achieved = figure("issued").zip(figure("duration_s")).filter(|(_, d)| *d > 0.0).map(|(n, d)| n / d);
    let dropped = figure("dropped_arrivals").zip(figure("arrivals")).filter(|(_, a)| *a > 0.0).map(|(d, a)| d / a);
    if let Value::Object(map) = &mut load {
        map.insert("achieved_rate_per_s".into(), json!(achieved));
        map.insert("dropped_fraction".into(), json!(dropped));
    }
    load
}

fn to_json_map(counts: &BTreeMap<&str, Counts>) -> Value {
    Value::Object(counts.iter().map(|(k, c)| (k.to_string(), c.to_json())).collect())
}
