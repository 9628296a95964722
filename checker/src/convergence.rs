//! Convergence: how long after the final heal the replicas agree.
//!
//! Two views. From the admin snapshots: each node reports a Merkle root per
//! key range it replicates, keyed by a range name every replica of the range
//! shares; the replicas *agree* at a moment when, for every range, all
//! reachable nodes' latest roots for it are equal. The figure is the time
//! from the final heal (the `heal` phase marker) to the first snapshot at
//! which they agree, and whether they still agree at the end. The workload
//! keeps writing through the quiet period after the heal, so roots churn
//! until it stops; `converged_ms_after_writes_stop` measures from the start
//! of the final reads (no more writes) instead. From the
//! history: the final reads of each key through every node return the same
//! siblings (`final_reads_disagree` counts keys where they do not). Keys and
//! bytes moved are the growth, after the heal, of every counter whose name
//! mentions repair or anti-entropy.
//!
//! The verdict. The harness keeps polling after the final reads (no more
//! writes) until the roots agree or the quiet period has passed again, so
//! a run that converges ends agreeing: `true`. One that ends disagreeing is
//! `false` when anti-entropy was on, every fault was healed (no final heal
//! reported an error) and the roots were watched for at least
//! [`MIN_INTERVALS`] anti-entropy intervals after the writes stopped: every
//! range then had several exchanges to agree and did not. With a shorter
//! watch it is `unknown`, and `undecided` says why; with anti-entropy off
//! nothing promises agreement and it stays `true` (a measurement). Not
//! applicable (None) when no node ever reported a Merkle root.

use std::collections::{BTreeMap, BTreeSet};

use history::compact::CompactHistory;
use history::{AdminSnapshot, OpType, RunConfig};
use serde_json::{json, Value};

use crate::phase::{self, Phases};
use crate::result::{CheckResult, Validity};

/// The checker's name in `results.json`.
pub const NAME: &str = "convergence";

/// Anti-entropy intervals the roots must be watched after the writes stop
/// before disagreement counts as a failure.
pub const MIN_INTERVALS: u64 = 3;

/// A node's latest snapshot older than this (three admin polls) no longer
/// counts: the node left or stopped answering.
pub const STALE_AFTER_NS: u64 = 3_000_000_000;

/// The node's anti-entropy period (`--aae-interval-ms` default), ms; the
/// workbench never passes another.
pub const AAE_INTERVAL_MS: u64 = 2_000;

/// Checks convergence; None when the nodes report no Merkle roots.
pub fn check(history: &impl AsRef<CompactHistory>, run: &RunConfig, admin: &[AdminSnapshot]) -> Option<CheckResult> {
    let history = history.as_ref();
    if !admin.iter().any(|s| !s.merkle_roots.is_empty()) {
        return None;
    }
    let mut sorted: Vec<&AdminSnapshot> = admin.iter().filter(|s| s.reachable).collect();
    sorted.sort_by_key(|s| s.time);
    let heal = phase::start_time(history, "heal").unwrap_or(0);
    let (first_agree, agree_at_end) = agreement(&sorted, heal);
    let quiesced = phase::start_time(history, "final");
    let after_writes = quiesced.and_then(|q| agreement(&sorted, q).0.map(|t| t.saturating_sub(q) / 1_000_000));
    let disagree = final_reads_disagree(history);
    let writes_stop = quiesced.unwrap_or(heal);
    let watched_ms = sorted.last().map_or(0, |s| s.time.saturating_sub(writes_stop) / 1_000_000);
    let (valid, undecided) = verdict(run, history, agree_at_end, watched_ms);
    let mut result = CheckResult::new(valid)
        .with("converged", json!(agree_at_end))
        .with("watched_ms_after_writes_stop", json!(watched_ms))
        .with("converged_ms_after_heal", json!(first_agree.map(|t| t.saturating_sub(heal) / 1_000_000)))
        .with("converged_ms_after_writes_stop", json!(after_writes))
        .with("final_reads_disagree", json!(disagree.len()))
        .with("disagreeing_keys", json!(disagree.iter().take(5).collect::<Vec<_>>()))
        .with("moved_after_heal", moved(&sorted, heal));
    if let Some(why) = undecided {
        result = result.with("undecided", json!(why));
    }
    Some(result)
}

/// The verdict on a run whose roots agreed at the end or not, watched for
/// `watched_ms` after the writes stopped; with the reason when undecided.
fn verdict(
    run: &RunConfig,
    history: &CompactHistory,
    agree_at_end: bool,
    watched_ms: u64,
) -> (Validity, Option<String>) {
    if agree_at_end || !run.anti_entropy {
        return (Validity::True, None);
    }
    if let Some(error) = heal_error(history) {
        return (Validity::Unknown, Some(format!("a fault was not healed ({error}): disagreement is expected")));
    }
    let needed_ms = MIN_INTERVALS * AAE_INTERVAL_MS;
    if watched_ms < needed_ms {
        let why = format!(
            "roots watched {watched_ms} ms after the writes stopped, fewer than {MIN_INTERVALS} anti-entropy \
             intervals ({needed_ms} ms): lengthen --quiet"
        );
        return (Validity::Unknown, Some(why));
    }
    (Validity::False, None)
}

/// The error of a final heal step (a `final: true` nemesis event), if any.
fn heal_error(history: &CompactHistory) -> Option<String> {
    history.nemesis_events().find_map(|op| {
        let value = history.value_json(op);
        let final_step = value.get("final") == Some(&json!(true));
        let error = value.get("error").and_then(|e| e.as_str());
        final_step.then_some(error).flatten().map(|e| format!("{}: {e}", history.name(op.f)))
    })
}

/// Whether every range's latest roots (per node, of the reachable
/// snapshots in `snapshots`) agree: what the harness polls for before it
/// stops watching.
pub fn latest_agree(snapshots: &[AdminSnapshot]) -> bool {
    let mut latest: BTreeMap<&str, &AdminSnapshot> = BTreeMap::new();
    for s in snapshots.iter().filter(|s| s.reachable) {
        latest.insert(s.node.as_str(), s);
    }
    agrees(&latest)
}

/// Whether every range's latest roots are equal across the nodes reporting it.
fn agrees(latest: &BTreeMap<&str, &AdminSnapshot>) -> bool {
    let mut by_range: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in latest.values() {
        for (range, root) in &s.merkle_roots {
            by_range.entry(range.as_str()).or_default().insert(root.as_str());
        }
    }
    !by_range.is_empty() && by_range.values().all(|roots| roots.len() == 1)
}

/// (the time from which the roots agree through the end, at or after
/// `heal`; whether they agree at the end).
fn agreement(sorted: &[&AdminSnapshot], heal: u64) -> (Option<u64>, bool) {
    let mut latest: BTreeMap<&str, &AdminSnapshot> = BTreeMap::new();
    let mut since = None;
    let mut now = false;
    for s in sorted {
        latest.insert(s.node.as_str(), s);
        // A node that left is no longer polled; its last roots name ranges
        // the others may still report for a while (trees rebuild after the
        // ring change), which would read as disagreement that is not there.
        latest.retain(|_, seen| s.time.saturating_sub(seen.time) <= STALE_AFTER_NS);
        now = agrees(&latest);
        if s.time < heal {
            continue;
        }
        since = if now { since.or(Some(s.time)) } else { None };
    }
    (since, now)
}

/// Keys whose `ok` final reads through different nodes returned different siblings.
fn final_reads_disagree(history: &CompactHistory) -> Vec<String> {
    let phases = Phases::of(history);
    let (ops, read) = (history.ops(), history.name_id("read"));
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for pair in history.pairs() {
        let (invoke, complete) = pair.ops(ops);
        if Some(invoke.f) != read || pair.outcome(ops) != OpType::Ok || phases.at(invoke.index) != "final" {
            continue;
        }
        let (Some(key), Some(done)) = (invoke.key, complete) else { continue };
        seen.entry(history.name(key)).or_default().insert(view(history, done));
    }
    seen.into_iter().filter(|(_, views)| views.len() > 1).map(|(k, _)| k.to_string()).collect()
}

/// What a read returned, as a text equal for two reads exactly when they
/// returned the same siblings (in any order): their value and version ids,
/// or the value's text when it did not parse as siblings.
fn view(history: &CompactHistory, read: &history::compact::CompactOp) -> String {
    let Some(span) = read.siblings else { return history.value_json(read).to_string() };
    let mut siblings: Vec<String> =
        history.siblings(span).map(|s| format!("{}/{}", s.value.id().0, s.version.id().0)).collect();
    siblings.sort();
    siblings.join("|")
}

/// Growth after `heal` of repair and anti-entropy counters, summed over nodes.
fn moved(sorted: &[&AdminSnapshot], heal: u64) -> Value {
    let interesting = |name: &str| name.contains("repair") || name.contains("anti_entropy") || name.contains("aae");
    let mut at_heal: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut last: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for s in sorted {
        for (name, v) in s.counters.iter().filter(|(n, _)| interesting(n)) {
            let k = (s.node.as_str(), name.as_str());
            if s.time <= heal {
                at_heal.insert(k, *v);
            }
            last.insert(k, *v);
        }
    }
    let mut out: BTreeMap<&str, u64> = BTreeMap::new();
    for ((node, name), v) in &last {
        let base = at_heal.get(&(*node, *name)).copied().unwrap_or(0);
        *out.entry(name).or_default() += v.saturating_sub(base);
    }
    json!(out)
}
