//! Checkers: pure functions from a recorded history to a verdict and figures.
//!
//! Every checker here is `fn check(&CompactHistory, &RunConfig) -> CheckResult`
//! (the admin checkers also take the `admin.jsonl` snapshots), and takes a
//! parsed `History` as well, through its compact form. They read only
//! what a run directory holds (`history.jsonl`, `run.json`, `admin.jsonl`), so
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
//! - **`siblings`** ([`siblings`]): sibling counts per read, single-version
//!   fraction (Dynamo: 99.94%).
//! - **`t-visibility`** ([`t_visibility`]): P(covered | t) with
//!   Clopper-Pearson intervals, k-staleness, the PBS closed form, and with
//!   the nodes' WARS timings the PBS prediction ([`pbs`]) and its RMSE.
//! - **`quorum`** ([`quorum`]): strict runs must have no stale read and no
//!   read-your-writes violation, or the run is invalid.
//! - **`phantom-reads`** ([`phantom_reads`]): a read of a value (or set
//!   element) no client ever sent; any is a failure, in every run.
//! - **`linearizable`** ([`linearizable`], register workload): whether one
//!   real-time order of all ops makes every read return the latest write,
//!   per key (Wing-Gong/Lowe search), with a shrunk witness per violating
//!   key; a measurement, since no quorum setting promises it.
//! - **`consistent-prefix`** ([`consistent_prefix`], prefix workload):
//!   observers that read an answer, then its question's key, and missed the
//!   question; strict quorums forbid it when the question was acknowledged
//!   before the question read began, nothing does when it was read in flight.
//! - **`lost-writes`** ([`lost_writes`], set workload): acknowledged adds
//!   absent from the final reads, recovered `info` adds, losses to clocks.
//! - **`hint-delivery`** and **`convergence`** ([`hint_delivery`],
//!   [`convergence`]): from `admin.jsonl`, hints stored/delivered/dropped and
//!   their drain time, and (from `replica_reads.jsonl`) whether every hinted
//!   write is on its home replica; time until the replicas' Merkle roots agree.
//!
//! Every anomaly example (stale read, read-your-writes, monotonic read,
//! lost add) carries a `sentence` (module `explain`) naming the write and its
//! ack, the read with its coordinator and answering replicas, and the
//! fault windows ([`windows`]) in force, as the linearizability witness does.
//!
//! "Covers" is always [`history::Version::covers`] under the run's
//! resolution (`siblings`: inclusion of causal histories, which for
//! undotted versions is vector-clock descent and for dotted ones is the
//! node's own obsolescence rule; `lww`: not-older `(ts, clock)`), and only acknowledged (`ok`) writes are owed to anyone:
//! `fail` certainly did not happen, `info` may or may not have.
//!
//! # Cost
//!
//! A campaign of hours records millions of ops, so every checker is linear
//! in the ops but for sorting: per key, in time order, with comparisons
//! that borrow from the history instead of copying values, versions or
//! clock maps. Every checker reads the history's compact form
//! ([`CompactHistory`]: read line by line from the file by `workbench
//! check`, or built once from parsed ops and shared): names and values
//! interned, versions parsed once, as rows of small integers with node ids
//! in name order, and compared as such; no JSON tree per op is held. A
//! checker parses a value only where it looks inside one (a nemesis
//! event's, a set's cart, an example it reports). t-visibility, which needs for every read how many earlier
//! acks of its key it covers, counts them on sorted acks under `lww` and,
//! under `siblings`, where covering is only a partial order, on a tree of
//! clock bounds that counts whole ranges of acks at once ([`t_visibility`]).
//! The exception is said where it is: the linearizability search is
//! exponential in the worst case and bounded by its budget. `make bench-checkers` times every
//! checker on seeded 1M-op register histories (lww, and siblings with
//! dotted versions) and a set history (`checker/benches/checkers.rs`).
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
//! Nor is a checker `true` or `false` on a history it read only in part.
//! An op whose type it does not know (a `cas`), or whose answer it cannot
//! parse (a read sibling without its `version`), is counted by reason and
//! makes that checker `unknown` with the reason (`understood`): the op
//! left out may be the one that explains, or contradicts, the rest.
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

mod availability_by_dc;
mod clock_rows;
mod explain;
mod frontier;
mod hint_homes;
mod observe;
mod side_by_side;
mod stale_by_dc;
mod understood;
mod visibility_by_dc;
mod visibility_pairs;

pub mod consistent_prefix;
pub mod convergence;
pub mod hint_delivery;
pub mod latency;
pub mod linearizable;
pub mod lost_writes;
pub mod monotonic_reads;
pub mod pbs;
pub mod phantom_reads;
pub mod phase;
pub mod quorum;
pub mod read_your_writes;
pub mod result;
pub mod siblings;
pub mod stale_reads;
pub mod stats;
pub mod t_visibility;
pub mod windows;

use history::compact::CompactHistory;
use history::{AdminSnapshot, ReplicaRead, RunConfig, WarsFile};

pub use observe::Checked;
pub use result::{CheckResult, Results, Validity};

/// A checker: a pure function from a history (its compact form, which is
/// all a checker reads, with what several checkers extract from it shared)
/// and its run to a result.
pub type CheckFn = fn(&Checked<'_>, &RunConfig) -> CheckResult;

/// A checker that also reads the admin snapshots; None when the run holds
/// no data it applies to (the nodes do not report its counters).
pub type AdminCheckFn = fn(&CompactHistory, &RunConfig, &[AdminSnapshot]) -> Option<CheckResult>;

/// Every history checker, by its name in `results.json`.
pub const CHECKERS: [(&str, CheckFn); 9] = [
    (stats::NAME, |h, r| stats::check(h, r)),
    (stale_reads::NAME, |h, r| stale_reads::check(h, r)),
    (read_your_writes::NAME, |h, r| read_your_writes::check(h, r)),
    (monotonic_reads::NAME, |h, r| monotonic_reads::check(h, r)),
    (latency::NAME, |h, r| latency::check(h, r)),
    (siblings::NAME, |h, r| siblings::check(h, r)),
    (t_visibility::NAME, |h, r| t_visibility::check(h, r)),
    (quorum::NAME, |h, r| quorum::check(h, r)),
    (phantom_reads::NAME, |h, r| phantom_reads::check(h, r)),
];

/// Checkers of the register workload only.
pub const REGISTER_CHECKERS: [(&str, CheckFn); 1] = [(linearizable::NAME, |h, r| linearizable::check(h, r))];

/// Checkers of the set workload only.
pub const SET_CHECKERS: [(&str, CheckFn); 1] = [(lost_writes::NAME, |h, r| lost_writes::check(h, r))];

/// Checkers of the prefix workload only.
pub const PREFIX_CHECKERS: [(&str, CheckFn); 1] = [(consistent_prefix::NAME, |h, r| consistent_prefix::check(h, r))];

/// Checkers of the admin snapshots alone (hint delivery also reads the
/// replica reads, so [`check_run_files`] calls it by name).
pub const ADMIN_CHECKERS: [(&str, AdminCheckFn); 1] = [(convergence::NAME, |h, r, a| convergence::check(h, r, a))];

/// [`check_run_files`] for a run without `replica_reads.jsonl` or `wars.json`.
pub fn check_all(history: &impl AsRef<CompactHistory>, run: &RunConfig, admin: &[AdminSnapshot]) -> Results {
    check_run_files(history.as_ref(), run, admin, RunExtras::default())
}

/// The run files beside the history and admin snapshots that some
/// checkers read when a run has them (None: the run has none).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunExtras<'a> {
    /// `replica_reads.jsonl` (hint delivery).
    pub replica_reads: Option<&'a [ReplicaRead]>,
    /// `wars.json` (t-visibility's PBS prediction).
    pub wars: Option<&'a WarsFile>,
}

/// Runs every checker that applies to this run and combines their verdicts
/// into `results.json`. A checker that does not apply (the set checkers on a
/// register run, the admin checkers when the nodes report none of their
/// counters) is left out, never reported as passing.
pub fn check_run_files(
    history: &CompactHistory,
    run: &RunConfig,
    admin: &[AdminSnapshot],
    extras: RunExtras<'_>,
) -> Results {
    let checked = Checked::new(history);
    let one = |name: &str, check: &CheckFn| match (name, extras.wars) {
        (t_visibility::NAME, Some(wars)) => t_visibility::check_with_wars(&checked, run, Some(wars)),
        _ => check(&checked, run),
    };
    let mut checkers = side_by_side::run(&CHECKERS, one);
    // What the checkers above shared is freed before the workload's own
    // run, so that their peaks do not add up.
    drop(checked);
    let checked = Checked::new(history);
    let workload: &[(&str, CheckFn)] = match run.workload.as_str() {
        "register" => &REGISTER_CHECKERS,
        "prefix" => &PREFIX_CHECKERS,
        "set" => &SET_CHECKERS,
        _ => &[],
    };
    checkers.extend(side_by_side::run(workload, |_, check| check(&checked, run)));
    for (name, check) in ADMIN_CHECKERS {
        if let Some(result) = check(history, run, admin) {
            checkers.insert(name.to_string(), result);
        }
    }
    if let Some(result) = hint_delivery::check(history, run, admin, extras.replica_reads) {
        checkers.insert(hint_delivery::NAME.to_string(), result);
    }
    Results::from_checkers(checkers)
}
