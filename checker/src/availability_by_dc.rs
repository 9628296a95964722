//! Availability split by datacenter and by what the client's DC suffered.
//!
//! The trade quorum words make across datacenters is availability: with
//! `local` quorums a DC keeps serving while another is down or cut off,
//! with `each` or a global count it does not. So for a run across DCs the
//! outcome of every client op is counted under its client's DC (its
//! `node`'s, from `run.json`'s `datacenters`) and under the condition in
//! force when it was invoked, read from the nemesis events before it:
//!
//! - `own_dc_down`: a node of the client's own DC was down (killed,
//!   powered off, corrupted and not yet restarted);
//! - `other_dc_down`: every node of its DC was up, one elsewhere was down;
//! - `partitioned`: nothing down, a partition in force;
//! - `healthy`: none of these.
//!
//! Under each, counts per `f` (`read`, `write`, ...), as the stats checker
//! counts them. An op whose node the map does not name is counted under
//! the DC `unknown`, never guessed.

use std::collections::{BTreeMap, BTreeSet};

use history::compact::CompactHistory;
use history::RunConfig;
use serde_json::Value;

use crate::stale_by_dc::UNKNOWN_DC;
use crate::stats::Counts;

/// What the history says is wrong with the cluster at one point.
#[derive(Debug, Default)]
struct Faults {
    /// Nodes killed (or powered off, or corrupted) and not yet restarted.
    down: BTreeSet<String>,
    /// Whether a partition is in force.
    partitioned: bool,
}

impl Faults {
    /// Applies one nemesis event: its `f` and its value.
    fn apply(&mut self, f: &str, value: &Value) {
        let nodes = || crate::windows::event_nodes(value);
        match f {
            "kill" | "power-loss" => self.down.extend(nodes()),
            "corrupt" => self.down.extend(value.get("node").and_then(Value::as_str).map(str::to_string)),
            "restart" => {
                for node in nodes() {
                    self.down.remove(&node);
                }
            }
            "start-partition" => self.partitioned = true,
            "stop-partition" => self.partitioned = false,
            _ => {}
        }
    }

    /// The condition a client of `dc` is in.
    fn condition(&self, dc: &str, run: &RunConfig) -> &'static str {
        let in_dc = |n: &String| run.topology.dc_of(n) == Some(dc);
        if self.down.iter().any(in_dc) {
            "own_dc_down"
        } else if !self.down.is_empty() {
            "other_dc_down"
        } else if self.partitioned {
            "partitioned"
        } else {
            "healthy"
        }
    }
}

/// DC -> condition -> f -> counts, as `results.json`'s `stats.by_dc`;
/// `None` for a run of one DC.
pub fn split(history: &CompactHistory, run: &RunConfig) -> Option<Value> {
    if !run.topology.is_multi_dc() {
        return None;
    }
    let ops = history.ops();
    let mut faults = Faults::default();
    // Line of each invocation -> (its client's DC, the condition then).
    let mut at_invoke: BTreeMap<usize, (String, &'static str)> = BTreeMap::new();
    for (line, op) in ops.iter().enumerate() {
        if op.is_nemesis() {
            faults.apply(history.name(op.f), &history.value_json(op));
        } else if op.kind == history::OpType::Invoke {
            let node = op.node.map(|n| history.name(n));
            let dc = node.and_then(|n| run.topology.dc_of(n)).unwrap_or(UNKNOWN_DC).to_string();
            let condition = faults.condition(&dc, run);
            at_invoke.insert(line, (dc, condition));
        }
    }
    let mut counts: BTreeMap<String, BTreeMap<&str, BTreeMap<&str, Counts>>> = BTreeMap::new();
    for pair in history.pairs() {
        let Some((dc, condition)) = at_invoke.get(&pair.invoke) else { continue };
        let by_f = counts.entry(dc.clone()).or_default().entry(condition).or_default();
        by_f.entry(history.name(ops[pair.invoke].f)).or_default().add(pair.outcome(ops));
    }
    Some(to_json(&counts))
}

fn to_json(counts: &BTreeMap<String, BTreeMap<&str, BTreeMap<&str, Counts>>>) -> Value {
    let by_dc = counts.iter().map(|(dc, conditions)| {
        let by_condition = conditions.iter().map(|(c, by_f)| {
            let by_f = by_f.iter().map(|(f, n)| (f.to_string(), n.to_json()));
            (c.to_string(), Value::Object(by_f.collect()))
        });
        (dc.clone(), Value::Object(by_condition.collect()))
    });
    Value::Object(by_dc.collect())
}
