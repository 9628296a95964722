//! Hint delivery: did the hints written for down replicas reach home?
//!
//! Reads the admin snapshots (`admin.jsonl`) the harness takes every second
//! and right after the final heal. Each node reports cumulative counters
//! `hints_stored`, `hints_delivered`, `hints_dropped` and the gauge
//! `hints_pending`. Figures: the totals over nodes (each node's last
//! reachable snapshot), and the drain time: from the final heal (the `heal`
//! phase marker) until the first snapshot at which every node's latest
//! `hints_pending` is zero (`null` if it never drained during the run).
//!
//! Verdict. A hint can only be delivered or dropped once it was stored, so
//! `delivered + dropped > stored` on a node is a counting bug: `false`.
//! Pending hints left at the end are reported (`drained: false`) but not
//! failed: the quiet period may be shorter than the delivery interval.
//! Whether every hinted write is present on its home replica needs a
//! replica-local read the harness does not take yet; `home_check` says so.
//! Not applicable (None) when no node ever reported a hint counter.

use std::collections::BTreeMap;

use history::{AdminSnapshot, History, RunConfig};
use serde_json::{json, Value};

use crate::phase;
use crate::result::{CheckResult, Validity};

/// The checker's name in `results.json`.
pub const NAME: &str = "hint-delivery";

/// The counters it reads.
pub const STORED: &str = "hints_stored";
/// Hints handed to their home node.
pub const DELIVERED: &str = "hints_delivered";
/// Hints given up on (too old, or the home node left).
pub const DROPPED: &str = "hints_dropped";
/// Hints held now.
pub const PENDING: &str = "hints_pending";

fn counter(s: &AdminSnapshot, name: &str) -> u64 {
    s.counters.get(name).copied().unwrap_or(0)
}

/// Checks hint delivery; None when the nodes report no hint counters.
pub fn check(history: &History, _run: &RunConfig, admin: &[AdminSnapshot]) -> Option<CheckResult> {
    let names = [STORED, DELIVERED, DROPPED, PENDING];
    if !admin.iter().any(|s| names.iter().any(|n| s.counters.contains_key(*n))) {
        return None;
    }
    let mut sorted: Vec<&AdminSnapshot> = admin.iter().filter(|s| s.reachable).collect();
    sorted.sort_by_key(|s| s.time);
    let last: BTreeMap<&str, &AdminSnapshot> = sorted.iter().map(|s| (s.node.as_str(), *s)).collect();
    let total = |name| last.values().map(|s| counter(s, name)).sum::<u64>();
    let broken: Vec<&str> = last
        .iter()
        .filter(|(_, s)| counter(s, DELIVERED) + counter(s, DROPPED) > counter(s, STORED))
        .map(|(n, _)| *n)
        .collect();
    let heal = phase::start_time(history, "heal");
    let drained_at = heal.and_then(|h| drained_at(&sorted, h));
    let mut result = CheckResult::new(Validity::from(broken.is_empty()))
        .with("stored", json!(total(STORED)))
        .with("delivered", json!(total(DELIVERED)))
        .with("dropped", json!(total(DROPPED)))
        .with("pending_at_end", json!(total(PENDING)))
        .with("drained", json!(total(PENDING) == 0))
        .with("drain_ms_after_heal", json!(drained_at.zip(heal).map(|(d, h)| (d.saturating_sub(h)) / 1_000_000)))
        .with("per_node", per_node(&last))
        .with("home_check", json!("not available: needs replica-local reads"));
    if !broken.is_empty() {
        result = result.with("reason", json!(format!("delivered + dropped exceeds stored on {broken:?}")));
    }
    Some(result)
}

/// The first snapshot time at or after `heal` when every node's latest
/// `hints_pending` is zero.
fn drained_at(sorted: &[&AdminSnapshot], heal: u64) -> Option<u64> {
    let mut pending: BTreeMap<&str, u64> = BTreeMap::new();
    for s in sorted {
        pending.insert(s.node.as_str(), counter(s, PENDING));
        if s.time >= heal && pending.values().all(|p| *p == 0) {
            return Some(s.time);
        }
    }
    None
}

fn per_node(last: &BTreeMap<&str, &AdminSnapshot>) -> Value {
    Value::Object(
        last.iter()
            .map(|(n, s)| {
                let c = json!({"stored": counter(s, STORED), "delivered": counter(s, DELIVERED),
                               "dropped": counter(s, DROPPED), "pending": counter(s, PENDING)});
                (n.to_string(), c)
            })
            .collect(),
    )
}
