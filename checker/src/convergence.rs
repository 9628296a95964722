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
//! A measurement: `true`; the figures carry the story. Not applicable (None)
//! when no node ever reported a Merkle root.

use std::collections::{BTreeMap, BTreeSet};

use history::{AdminSnapshot, History, OpType, RunConfig};
use serde_json::{json, Value};

use crate::phase::{self, Phases};
use crate::result::{CheckResult, Validity};

/// The checker's name in `results.json`.
pub const NAME: &str = "convergence";

/// Checks convergence; None when the nodes report no Merkle roots.
pub fn check(history: &History, _run: &RunConfig, admin: &[AdminSnapshot]) -> Option<CheckResult> {
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
    let result = CheckResult::new(Validity::True)
        .with("converged", json!(agree_at_end))
        .with("converged_ms_after_heal", json!(first_agree.map(|t| t.saturating_sub(heal) / 1_000_000)))
        .with("converged_ms_after_writes_stop", json!(after_writes))
        .with("final_reads_disagree", json!(disagree.len()))
        .with("disagreeing_keys", json!(disagree.iter().take(5).collect::<Vec<_>>()))
        .with("moved_after_heal", moved(&sorted, heal));
    Some(result)
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
        now = agrees(&latest);
        if s.time < heal {
            continue;
        }
        since = if now { since.or(Some(s.time)) } else { None };
    }
    (since, now)
}

/// Keys whose `ok` final reads through different nodes returned different siblings.
fn final_reads_disagree(history: &History) -> Vec<String> {
    let phases = Phases::of(history);
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for pair in history.pairs() {
        if pair.invoke.f != "read" || pair.outcome() != OpType::Ok || phases.at(pair.invoke.index) != "final" {
            continue;
        }
        let (Some(key), Some(done)) = (pair.invoke.key.clone(), pair.complete) else { continue };
        let mut sibs: Vec<String> = done.value.as_array().map(|a| a.iter().map(|v| v.to_string()).collect()).unwrap_or_default();
        sibs.sort();
        seen.entry(key).or_default().insert(sibs.join("|"));
    }
    seen.into_iter().filter(|(_, views)| views.len() > 1).map(|(k, _)| k).collect()
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
