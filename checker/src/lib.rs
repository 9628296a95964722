//! Checkers: pure functions from a recorded history to a verdict and figures.
//!
//! Every checker here is `fn check(&History, &RunConfig) -> CheckResult`. It
//! reads only what a run directory holds (`history.jsonl`, `run.json`), so
//! `workbench check <run-dir>` can re-check any old run offline, and a test
//! can hand it a history written by hand. None of them knows about Docker,
//! tokio or the node.
//!
//! # The checkers
//!
//! - **`stats`** ([`stats`]): `ok` / `fail` / `info` counts and percentages
//!   per op type and per phase (`run`, `heal`, `quiet`, `final`, as the
//!   workload marks them), and availability (`ok / total`). An op that never
//!   completed counts as `info`.
//! - **`stale-reads`** ([`stale_reads`]): a read that began after a write of
//!   its key was acknowledged, yet none of its siblings covers that write's
//!   version. Strict quorums (`W + R > N`, not sloppy) promise zero: any is a
//!   failure. Weak settings promise nothing: the count is the measurement.
//! - **`read-your-writes`** ([`read_your_writes`]): the same, restricted to a
//!   client's own acknowledged writes; same promise policy.
//! - **`monotonic-reads`** ([`monotonic_reads`]): a client's later read of a
//!   key misses a version its earlier read saw. Dynamo does not promise this
//!   even with strict quorums (a partially applied write can be seen by one
//!   quorum and missed by the next), so it is always reported, never failed.
//! - **`latency`** ([`latency`]): nearest-rank p50/p95/p99/max per op type
//!   and outcome (and per phase), and `ok` throughput over the run.
//!
//! "Covers" is always [`history::Version::covers`] under the run's
//! resolution (`siblings`: vector-clock descent; `lww`: not-older
//! `(ts, clock)`), and only acknowledged (`ok`) writes are owed to anyone:
//! `fail` certainly did not happen, `info` may or may not have.
//!
//! # Three verdicts, and why a checker must be able to fail
//!
//! A verdict is `true`, `false` or `unknown` ([`Validity`]). `unknown` means
//! the history held no evidence (no client ops, no read that followed an
//! acknowledged write): reporting `true` there would turn "we looked at
//! nothing" into "we found nothing wrong". The overall verdict of
//! [`check_all`] is `false` if any checker says `false`, else `unknown` if
//! any says `unknown`, else `true`.
//!
//! A checker that cannot fail proves nothing: if a bug in the checker (a key
//! never matched, a comparison the wrong way round, reads filtered out by
//! accident) made it report zero anomalies on every input, every run would
//! look healthy and the tables would compare noise. So each checker has a
//! test that feeds it a history with a planted anomaly and demands it be
//! found, next to a clean history it must pass; the measurement-only
//! checkers (monotonic reads, stale reads on weak settings) are held to the
//! same standard through their counts, since their verdict cannot fail by
//! design.

mod frontier;
mod observe;

pub mod latency;
pub mod monotonic_reads;
pub mod phase;
pub mod read_your_writes;
pub mod result;
pub mod stale_reads;
pub mod stats;

use std::collections::BTreeMap;

use history::{History, RunConfig};

pub use result::{CheckResult, Results, Validity};

/// A checker: a pure function from a history and its run to a result.
pub type CheckFn = fn(&History, &RunConfig) -> CheckResult;

/// Every checker, by its name in `results.json`.
pub const CHECKERS: [(&str, CheckFn); 5] = [
    (stats::NAME, stats::check),
    (stale_reads::NAME, stale_reads::check),
    (read_your_writes::NAME, read_your_writes::check),
    (monotonic_reads::NAME, monotonic_reads::check),
    (latency::NAME, latency::check),
];

/// Runs every checker and combines their verdicts into `results.json`.
pub fn check_all(history: &History, run: &RunConfig) -> Results {
    let checkers: BTreeMap<String, CheckResult> =
        CHECKERS.iter().map(|(name, check)| (name.to_string(), check(history, run))).collect();
    Results::from_checkers(checkers)
}
