//! What a campaign across datacenters claims (see [`crate::expect`]): the
//! classic trade of the quorum words, measured.
//!
//! - `dc-partition`, `local` writes and reads: reads miss writes
//!   acknowledged in the other DC (the split's cross-DC stale reads are
//!   more than none) and none acknowledged in their own (a local majority
//!   of writes meets a local majority of reads);
//! - `dc-partition`, `each` writes: writes invoked while a partition is in
//!   force are unavailable (under 20% succeed: one invoked just before a
//!   heal may still complete);
//! - `dc-outage`, `local` quorums: while one DC is down, a DC whose nodes
//!   are all up serves 90% or more of its reads and writes;
//! - `wan-latency`: an `each` write's median inside the windows is at least
//!   the least injected WAN delay above its median outside them; a `local`
//!   write's, less than half of it.

use checker::Results;
use history::RunConfig;
use serde_json::Value;

use crate::expect::{claim, shown, Claim};

/// Writes invoked under a partition that `each` may still see succeed.
const EACH_PARTITIONED_MAX_AVAILABILITY: f64 = 0.2;
/// What a DC with every node up serves under `local` while another is down.
const LOCAL_SURVIVOR_MIN_AVAILABILITY: f64 = 0.9;

/// The claims that apply to this multi-DC register run.
pub fn claims(run: &RunConfig, results: &Results) -> Vec<Claim> {
    let has = |n: &str| run.nemesis.iter().any(|x| x == n);
    let word = |w: &Option<String>| w.as_deref().unwrap_or("").to_string();
    let (w, r) = (word(&run.topology.w_quorum), word(&run.topology.r_quorum));
    let mut out = Vec::new();
    if has("dc-partition") && w == "local" && r == "local" {
        let (cross, same) = stale_split(results);
        out.push(claim(
            cross.is_some_and(|c| c > 0),
            format!("reads across DCs to miss writes under dc-partition (local), found {}", shown(cross)),
        ));
        out.push(claim(
            same == Some(0),
            format!("reads in the writer's own DC to miss none (local), found {}", shown(same)),
        ));
    }
    if has("dc-partition") && w == "each" {
        let availability = condition_availability(results, "partitioned", "write");
        out.push(claim(
            availability.is_some_and(|a| a < EACH_PARTITIONED_MAX_AVAILABILITY),
            format!("each-quorum writes unavailable while the DCs are cut, availability {}", percent(availability)),
        ));
    }
    if has("dc-outage") && w == "local" && r == "local" {
        for f in ["read", "write"] {
            let availability = condition_availability(results, "other_dc_down", f);
            out.push(claim(
                availability.is_some_and(|a| a >= LOCAL_SURVIVOR_MIN_AVAILABILITY),
                format!(
                    "the surviving DC to serve {f}s while another is down (local), availability {}",
                    percent(availability)
                ),
            ));
        }
    }
    if has("wan-latency") {
        out.extend(wan_claim(&w, results));
    }
    out
}

/// Stale reads across DCs and within one, summed over the split.
fn stale_split(results: &Results) -> (Option<u64>, Option<u64>) {
    let Some(Value::Object(split)) = results.checkers.get("stale-reads").and_then(|c| c.figure("by_dc")) else {
        return (None, None);
    };
    let (mut cross, mut same) = (0, 0);
    for (pair, figures) in split {
        let stale = figures.get("stale").and_then(Value::as_u64).unwrap_or(0);
        match pair.split_once("->") {
            Some((w, r)) if w == r => same += stale,
            _ => cross += stale,
        }
    }
    (Some(cross), Some(same))
}

/// The availability of `f` ops invoked under `condition`, over every DC.
fn condition_availability(results: &Results, condition: &str, f: &str) -> Option<f64> {
    let by_dc = results.checkers.get("stats")?.figure("by_dc")?.as_object()?;
    let (mut ok, mut total) = (0, 0);
    for conditions in by_dc.values() {
        let counts = conditions.get(condition).and_then(|c| c.get(f));
        ok += counts.and_then(|c| c.get("ok")).and_then(Value::as_u64).unwrap_or(0);
        total += counts.and_then(|c| c.get("total")).and_then(Value::as_u64).unwrap_or(0);
    }
    (total > 0).then(|| ok as f64 / total as f64)
}

/// The claim on a write's median inside WAN windows against outside.
fn wan_claim(w: &str, results: &Results) -> Option<Claim> {
    let p50 = |window: &str| figure_f64_path(results, &["by_window", window, "write", "ok", "p50_ms"]);
    let shift = p50("latency").zip(p50(checker::latency::OUTSIDE_WINDOWS)).map(|(inside, outside)| inside - outside);
    let least = nemesis::datacenter::WAN_DELAY_MIN_MS as f64;
    let shown = shift.map_or("unmeasured".into(), |s| format!("{s:.1} ms"));
    match w {
        "each" => Some(claim(
            shift.is_some_and(|s| s >= least),
            format!("each writes to wait for the WAN ({least} ms or more), shift {shown}"),
        )),
        "local" => Some(claim(
            shift.is_some_and(|s| s < least / 2.0),
            format!("local writes not to wait for the WAN (under {} ms), shift {shown}", least / 2.0),
        )),
        _ => None,
    }
}

/// A nested figure of the latency checker.
fn figure_f64_path(results: &Results, path: &[&str]) -> Option<f64> {
    let (first, rest) = path.split_first()?;
    let mut value = results.checkers.get(checker::latency::NAME)?.figure(first)?;
    for key in rest {
        value = value.get(key)?;
    }
    value.as_f64()
}

fn percent(availability: Option<f64>) -> String {
    availability.map_or_else(|| "no figure".into(), |a| format!("{:.1}%", 100.0 * a))
}
