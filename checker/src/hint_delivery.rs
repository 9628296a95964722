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
//! Restarts. Counters live in the node's memory and start again from zero
//! when a node is killed and restarted, while its persisted hints survive and
//! are delivered by the next incarnation. A counter that goes down between
//! two snapshots of a node marks a new incarnation; totals sum each
//! incarnation's last values. A node named in a nemesis `restart` event
//! counts as restarted even when no counter went down.
//!
//! Verdict. A hint can only be delivered or dropped once it was stored, so
//! `delivered + dropped > stored` on a node that was never restarted is a
//! counting bug: `false`. (On a restarted node the hints counted as stored
//! in the snapshot gap before the kill are unknown, so it is not judged.)
//! Pending hints left at the end are reported (`drained: false`) but not
//! failed: the quiet period may be shorter than the delivery interval.
//!
//! Homes. Whether every hinted write is present on its home replica is
//! [`crate::hint_homes`]: the writes' `hinted_for` in the history against
//! the replica-local reads of `replica_reads.jsonl`. It enters the verdict
//! when some acknowledged write was hinted: a write missing on its home after
//! the hints drained is `false`; one missing while hints were still pending,
//! a home that could not be read, or no file at all is `unknown` (with the
//! reason in `home_check`), never `true`. "Drained" is judged at the replica
//! reads: each node's latest snapshot at or before the first read says
//! `hints_pending: 0` (the harness takes one right before reading).
//!
//! Not applicable (None) when no node ever reported a hint counter and no
//! write was hinted.

use std::collections::BTreeMap;

use history::compact::CompactHistory;
use history::{AdminSnapshot, ReplicaRead, RunConfig};
use serde_json::{json, Value};

use crate::hint_homes::HomeCheck;
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

/// Checks hint delivery from the counters and, where given, the replica
/// reads (`None`: the run has no `replica_reads.jsonl`). None when the nodes
/// report no hint counters and no write was hinted.
pub fn check(
    history: &impl AsRef<CompactHistory>,
    run: &RunConfig,
    admin: &[AdminSnapshot],
    replica_reads: Option<&[ReplicaRead]>,
) -> Option<CheckResult> {
    let history = history.as_ref();
    let names = [STORED, DELIVERED, DROPPED, PENDING];
    let homes = HomeCheck::run(history, run, replica_reads);
    if homes.hinted_writes == 0 && !admin.iter().any(|s| names.iter().any(|n| s.counters.contains_key(*n))) {
        return None;
    }
    let mut sorted: Vec<&AdminSnapshot> = admin.iter().filter(|s| s.reachable).collect();
    sorted.sort_by_key(|s| s.time);
    let mut last = totals(&sorted);
    for node in restarted_in(history) {
        if let Some(t) = last.get_mut(node.as_str()) {
            t.restarted = true;
        }
    }
    let total = |name| last.values().map(|t| t.get(name)).sum::<u64>();
    let broken: Vec<&str> = last
        .iter()
        .filter(|(_, t)| !t.restarted && t.get(DELIVERED) + t.get(DROPPED) > t.get(STORED))
        .map(|(n, _)| *n)
        .collect();
    let heal = phase::start_time(history, "heal");
    let drained_at = heal.and_then(|h| drained_at(&sorted, h));
    let drained_before_reads = drained_before(admin, replica_reads);
    let (home_valid, _) = homes.verdict(drained_before_reads);
    // The home part is judged only when some write was hinted.
    let home_counts = homes.hinted_writes > 0;
    let valid =
        Validity::all([Validity::from(broken.is_empty()), if home_counts { home_valid } else { Validity::True }]);
    let mut result = CheckResult::new(valid)
        .with("stored", json!(total(STORED)))
        .with("delivered", json!(total(DELIVERED)))
        .with("dropped", json!(total(DROPPED)))
        .with("pending_at_end", json!(total(PENDING)))
        .with("drained", json!(total(PENDING) == 0))
        .with("restarted_nodes", json!(last.iter().filter(|(_, t)| t.restarted).map(|(n, _)| *n).collect::<Vec<_>>()))
        .with("drain_ms_after_heal", json!(drained_at.zip(heal).map(|(d, h)| (d.saturating_sub(h)) / 1_000_000)))
        .with("per_node", per_node(&last))
        .with("hinted_writes", json!(homes.hinted_writes))
        .with("missing", json!(homes.missing.len()))
        .with("home_check", home_figures(&homes, drained_before_reads));
    if !broken.is_empty() {
        result = result.with("reason", json!(format!("delivered + dropped exceeds stored on {broken:?}")));
    } else if let (true, (_, Some(why))) = (home_counts, homes.verdict(drained_before_reads)) {
        result = result.with("reason", json!(format!("home check: {why}")));
    }
    Some(result)
}

/// The home part's figures; a note instead when no write was hinted.
fn home_figures(homes: &HomeCheck, drained: Option<bool>) -> Value {
    if homes.hinted_writes > 0 {
        return homes.figures(drained);
    }
    json!({"hinted_writes": 0, "note": "no acknowledged write named a home in hinted_for: nothing to look for"})
}

/// Whether every node's hints had drained when the replica reads began:
/// each node's latest snapshot at or before the first read is reachable and
/// says `hints_pending: 0`. Without replica reads, the end of the run.
/// None when a node's latest snapshot is unreachable and none is pending.
fn drained_before(admin: &[AdminSnapshot], reads: Option<&[ReplicaRead]>) -> Option<bool> {
    let cutoff = reads.and_then(|r| r.iter().map(|r| r.time).min()).unwrap_or(u64::MAX);
    let mut latest: BTreeMap<&str, &AdminSnapshot> = BTreeMap::new();
    for s in admin.iter().filter(|s| s.time <= cutoff) {
        let slot = latest.entry(s.node.as_str()).or_insert(s);
        if s.time >= slot.time {
            *slot = s;
        }
    }
    if latest.values().any(|s| s.reachable && counter(s, PENDING) > 0) {
        return Some(false);
    }
    if latest.is_empty() || latest.values().any(|s| !s.reachable) {
        return None;
    }
    Some(true)
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

/// Nodes the nemesis restarted, from its `restart` events.
fn restarted_in(history: &CompactHistory) -> Vec<String> {
    let restarts = history.nemesis_events().filter(|op| history.is(op.f, "restart"));
    restarts.flat_map(|op| crate::windows::event_nodes(&history.value_json(op))).collect()
}

/// One node's counters summed over its incarnations (pending: the latest).
#[derive(Debug, Clone, Default)]
struct Totals {
    /// Sum over incarnations of each counter's last value.
    done: BTreeMap<&'static str, u64>,
    /// The current incarnation's latest values.
    current: BTreeMap<&'static str, u64>,
    /// Whether a counter reset (a restart) was seen.
    restarted: bool,
}

impl Totals {
    fn get(&self, name: &str) -> u64 {
        if name == PENDING {
            return self.current.get(name).copied().unwrap_or(0);
        }
        self.done.get(name).copied().unwrap_or(0) + self.current.get(name).copied().unwrap_or(0)
    }

    fn observe(&mut self, s: &AdminSnapshot) {
        let cumulative = [STORED, DELIVERED, DROPPED];
        let reset = cumulative.iter().any(|n| counter(s, n) < self.current.get(n).copied().unwrap_or(0));
        if reset {
            self.restarted = true;
            for n in cumulative {
                *self.done.entry(n).or_default() += self.current.get(n).copied().unwrap_or(0);
            }
        }
        for n in [STORED, DELIVERED, DROPPED, PENDING] {
            self.current.insert(n, counter(s, n));
        }
    }
}

/// Per node, counters summed over incarnations, from time-sorted snapshots.
fn totals<'a>(sorted: &[&'a AdminSnapshot]) -> BTreeMap<&'a str, Totals> {
    let mut out: BTreeMap<&str, Totals> = BTreeMap::new();
    for s in sorted {
        out.entry(s.node.as_str()).or_default().observe(s);
    }
    out
}

fn per_node(last: &BTreeMap<&str, Totals>) -> Value {
    Value::Object(
        last.iter()
            .map(|(n, t)| {
                let c = json!({"stored": t.get(STORED), "delivered": t.get(DELIVERED),
                               "dropped": t.get(DROPPED), "pending": t.get(PENDING), "restarted": t.restarted});
                (n.to_string(), c)
            })
            .collect(),
    )
}
