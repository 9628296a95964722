//! t-visibility and k-staleness: how soon an acknowledged write becomes
//! visible, measured, next to the PBS closed form.
//!
//! t-visibility. For every acknowledged write `w` of key `k` and every later
//! `ok` read of `k` that began `t` ms after `w`'s acknowledgement (up to
//! [`HORIZON_MS`]), the pair is *covered* when a sibling of the read covers
//! `w`'s version. Pairs are binned by `t`; per bin the checker reports
//! `P(covered | t)` with a 95% Clopper-Pearson interval (exact binomial,
//! from the Beta quantiles in statrs), so a bin with 3 pairs says how little
//! it knows. This is the curve of Bailis et al.'s Probabilistically Bounded
//! Staleness, measured instead of simulated.
//!
//! k-staleness. For each read, `k` is the number of writes of its key that
//! were acknowledged before it began and that it does not cover: `k = 0` is
//! a fresh read, `k = 1` missed the latest, and so on.
//!
//! PBS closed form. With N replicas, a write acknowledged by W and a read
//! of R chosen uniformly, the read misses the write at `t = 0` with
//! probability `C(N-W, R) / C(N, R)` (zero when `W + R > N`;
//! [`pbs_p_stale`], defined in [`crate::pbs`]). It ignores propagation
//! after the ack, so measured staleness should be at most this.
//!
//! PBS prediction. When the run has the nodes' WARS timings (`wars.json`),
//! [`check_with_wars`] also predicts each bin's `P(covered | t)` at the
//! bin's mean `t` by replaying the quorum protocol on those latencies
//! ([`crate::pbs`]), and reports the RMSE of prediction against measurement
//! over the bins with at least [`RMSE_MIN_PAIRS`] pairs (a bin of 3 pairs
//! measures in thirds, which no prediction can match).
//!
//! Cost. Pairing every read with every earlier ack of its key is quadratic
//! in a key's ops; under `lww` the same figures are counted by sorting each
//! key's acks by ack time and by version and sweeping
//! ([`crate::visibility_pairs`]), linear in the ops but for a log factor.
//! That module also defines the bins ([`Bin`], [`BIN_EDGES_MS`]) and the
//! limits ([`HORIZON_MS`], [`MAX_PAIRS`]) the pairs are counted into, which
//! this one re-exports: the imports go from here to there only.
//!
//! Across datacenters the figures are also split by the writer's and the
//! reader's DC, under `by_dc` ([`crate::visibility_by_dc`]).
//!
//! A measurement: `true`, or `unknown` when no read followed an ack.

use std::collections::BTreeMap;

use history::{RunConfig, WarsFile};
use serde_json::{json, Value};
use statrs::distribution::{Beta, ContinuousCDF};

use crate::observe::{ObservedSource, Read};
use crate::pbs::{self, Quorum, WarsModel};
use crate::result::{CheckResult, Validity};
use crate::visibility_pairs::Pairs;

/// The PBS closed form, defined in [`crate::pbs`] beside the simulated
/// prediction; re-exported here, where the checker reports it.
pub use crate::pbs::{binomial, pbs_p_stale};
/// The `t` bins and the pairing limits, defined in [`crate::visibility_pairs`]
/// where the pairs are counted into them; re-exported here as this checker's
/// parameters.
pub use crate::visibility_pairs::{Bin, BIN_EDGES_MS, HORIZON_MS, MAX_PAIRS};

/// The checker's name in `results.json`.
pub const NAME: &str = "t-visibility";

/// Confidence level of the intervals.
pub const CONFIDENCE: f64 = 0.95;

/// Bins with fewer pairs than this are predicted but left out of the RMSE.
pub const RMSE_MIN_PAIRS: u64 = 100;

/// The Clopper-Pearson interval of `covered / total` at [`CONFIDENCE`].
pub fn clopper_pearson(covered: u64, total: u64) -> (f64, f64) {
    assert!(covered <= total && total > 0);
    let alpha = 1.0 - CONFIDENCE;
    let (k, n) = (covered as f64, total as f64);
    let lower = if covered == 0 { 0.0 } else { Beta::new(k, n - k + 1.0).map_or(0.0, |b| b.inverse_cdf(alpha / 2.0)) };
    let upper = if covered == total {
        1.0
    } else {
        Beta::new(k + 1.0, n - k).map_or(1.0, |b| b.inverse_cdf(1.0 - alpha / 2.0))
    };
    (lower, upper)
}

fn bin_label(i: usize) -> String {
    let lo = if i == 0 { 0 } else { BIN_EDGES_MS[i - 1] };
    let hi = BIN_EDGES_MS.get(i).copied().unwrap_or(HORIZON_MS);
    format!("{lo}-{hi}")
}

/// Measures t-visibility and k-staleness; see the module documentation.
pub fn check(history: &impl ObservedSource, run: &RunConfig) -> CheckResult {
    check_with_wars(history, run, None)
}

/// [`check`], plus the PBS prediction from the run's WARS timings when it
/// has them.
pub fn check_with_wars(history: &impl ObservedSource, run: &RunConfig, wars: Option<&WarsFile>) -> CheckResult {
    let observed = history.observed();
    let counted = Pairs::of(&observed.acks, &observed.reads, run.resolution);
    let mut result = figures(run, &counted.bins, &counted.k_hist, counted.examined, counted.skipped);
    if let Some(split) = crate::visibility_by_dc::split(run, &observed) {
        result = result.with("by_dc", split);
    }
    let result = match wars {
        Some(wars) => with_prediction(result, &counted.bins, run, wars, &ok_read_latencies_ms(&observed.reads)),
        None => result,
    };
    observed.not_understood.judge(result)
}

/// Every `ok` read's latency as its client saw it, ms.
fn ok_read_latencies_ms(reads: &[Read<'_>]) -> Vec<f64> {
    reads.iter().map(|r| r.complete_time.saturating_sub(r.invoke_time) as f64 / 1e6).collect()
}

/// Adds `p_predicted` to each curve point and the prediction's figures.
fn with_prediction(
    result: CheckResult,
    bins: &[Bin],
    run: &RunConfig,
    wars: &WarsFile,
    client_read_ms: &[f64],
) -> CheckResult {
    let Some(model) = WarsModel::new(wars) else {
        return result.with("pbs_prediction", json!("none: the nodes reported no timings for some leg"));
    };
    let quorum = Quorum { n: run.n, w: run.w.min(run.n), r: run.r.min(run.n), nodes: run.nodes.len() as u32 };
    if quorum.n as usize > pbs::MAX_N || quorum.w == 0 || quorum.r == 0 {
        return result
            .with("pbs_prediction", json!(format!("none: N{} W{} R{} is outside the model", run.n, run.w, run.r)));
    }
    let measured: Vec<&Bin> = bins.iter().filter(|b| b.total > 0).collect();
    let client_ms = model.client_round_trip_ms(quorum, client_read_ms);
    let ts: Vec<f64> = measured.iter().map(|b| b.t_mean_ms() + client_ms).collect();
    let predicted = model.predict(quorum, &ts);
    let fitted: Vec<(f64, f64)> = measured
        .iter()
        .zip(&predicted)
        .filter(|(b, _)| b.total >= RMSE_MIN_PAIRS)
        .map(|(b, p)| (*p, b.covered as f64 / b.total as f64))
        .collect();
    let mut result = result
        .with("pbs_prediction", json!("wars monte carlo"))
        .with("pbs_trials_per_point", json!(pbs::TRIALS))
        .with("pbs_clock", json!(wars.clock))
        .with("pbs_client_round_trip_ms", json!(client_ms))
        .with("pbs_rmse", json!(pbs::rmse(&fitted)))
        .with("pbs_rmse_bins", json!(fitted.len()))
        .with("p_stale_first_bin_predicted", json!(predicted.first().map(|p| 1.0 - p)));
    if let Some(Value::Array(curve)) = result.figures.get_mut("curve") {
        for (point, p) in curve.iter_mut().zip(&predicted) {
            point["p_predicted"] = json!(p);
        }
    }
    result
}

fn figures(run: &RunConfig, bins: &[Bin], k_hist: &BTreeMap<u64, u64>, examined: usize, skipped: usize) -> CheckResult {
    let curve: Vec<Value> = bins
        .iter()
        .enumerate()
        .filter(|(_, b)| b.total > 0)
        .map(|(i, b)| {
            let (lo, hi) = clopper_pearson(b.covered, b.total);
            json!({"t_ms": bin_label(i), "t_lo_ms": if i == 0 { 0 } else { BIN_EDGES_MS[i - 1] },
                   "t_mean_ms": b.t_mean_ms(), "pairs": b.total, "covered": b.covered, "p_covered": b.covered as f64 / b.total as f64,
                   "ci_low": lo, "ci_high": hi})
        })
        .collect();
    let reads: u64 = k_hist.values().sum();
    let fresh = k_hist.get(&0).copied().unwrap_or(0);
    let first = bins.iter().find(|b| b.total > 0);
    let valid = if examined == 0 { Validity::Unknown } else { Validity::True };
    let k_json: serde_json::Map<String, Value> = k_hist.iter().map(|(k, n)| (k.to_string(), json!(n))).collect();
    let mut result = CheckResult::new(valid)
        .with("pairs", json!(examined))
        .with("pairs_not_examined", json!(skipped))
        .with("confidence", json!(CONFIDENCE))
        .with("interval", json!("clopper-pearson"))
        .with("curve", Value::Array(curve))
        .with("p_stale_first_bin", json!(first.map(|b| 1.0 - b.covered as f64 / b.total as f64)))
        .with("pbs_p_stale", json!(pbs_p_stale(run.n, run.w.min(run.n), run.r.min(run.n))))
        .with("k_staleness", Value::Object(k_json))
        .with("fresh_read_fraction", json!(if reads == 0 { Value::Null } else { json!(fresh as f64 / reads as f64) }));
    if examined == 0 {
        result = result.with("reason", json!("no ok read began after an acknowledged write of its key"));
    }
    result
}
