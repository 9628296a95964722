//! What a campaign claims, checked against what it measured.
//!
//! Every run must be valid by its own checkers (a strict quorum that served
//! a stale read is a bug). With `--expect-anomalies` the campaign also claims
//! the things a Dynamo-style store is known to do, so a workbench that
//! stopped finding them fails loudly instead of reporting a clean bill:
//! - register, no faults, strict quorums (W + R > N): no stale reads (weak
//!   settings promise nothing even without faults: a W=1 write is
//!   acknowledged before its replicas have it, and PBS puts the chance that
//!   an R=1 read right after misses it at C(N-W,R)/C(N,R); the node's faster
//!   paths made that visible, 5 stale reads in 3,000 ops on a healthy cluster);
//! - register, partitions, W + R <= N: stale reads;
//! - prefix, no faults, strict quorums: no observer sees an answer without
//!   its question (an acknowledged question missed would be a stale read; a
//!   question the answerer read in flight would have to stay off the
//!   observer's R replicas through the answer's write and both reads, which
//!   no healthy run showed: 0 of 1,300 observations in each of 6 strict
//!   configurations in the simulator, 0 of 1,217 on Docker, seed 42);
//! - prefix, partitions, W = R = 1: observers do see answers without their
//!   questions (the answer's replicas and the question's are on different
//!   sides);
//! - set under contention (no more keys than clients), last-write-wins:
//!   acknowledged adds are lost (concurrent read-merge-writes overwrite);
//! - set, sibling resolution, no faults or only kills on a durable engine
//!   (`storage: lsm`): no acknowledged add is lost (union merge keeps all);
//! - set, clock skew, last-write-wins: adds are lost to the skewed clock.
//! - latency alone, any workload: ops invoked in a latency window take at
//!   least the injected mean delay longer (median) than ops outside every
//!   window: a client op crosses a slowed link at least twice, so a fault
//!   that did not bite (a mechanism that did nothing) fails the campaign.
//! - set under power losses only (the `power-loss` nemesis on any backend,
//!   or kills under the simulator, where a kill is a power loss): with
//!   `--fsync never` and W=1 acknowledged adds are lost (they lived only in
//!   the page cache of the one replica that acknowledged them) and the run
//!   is invalid, as it must be; with `--fsync always` or `batch` (both
//!   acknowledge only what is synced) and siblings none is.
//!
//! - across datacenters (register): under `dc-partition` with `local`
//!   writes and reads, reads in one DC miss writes acknowledged in another
//!   and reads in the writer's own DC miss none; with `each` writes, writes
//!   invoked while the DCs are cut are (almost all) unavailable; under
//!   `dc-outage` with `local` quorums, a DC whose nodes are up keeps
//!   serving (90% or more) while another DC is down; under `wan-latency`,
//!   `each` writes take at least the least injected WAN delay longer
//!   (median) inside the windows, `local` writes less than half of it.
//!
//! A run that could not be performed (unsupported fault) makes the verdict
//! unknown, never a pass.

use checker::{Results, Validity};
use history::{Fsync, Resolution, RunConfig};

use crate::table::{config_label, nemesis_label};

/// One run as the expectations see it; `results` is None when unsupported.
pub struct Measured<'a> {
    /// Its `run.json`.
    pub run: &'a RunConfig,
    /// Its `results.json`, if it was performed.
    pub results: Option<&'a Results>,
}

/// The campaign's verdict and the reasons for it.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Expectations not met and invalid runs.
    pub failures: Vec<String>,
    /// Runs that could not be decided or performed.
    pub unknowns: Vec<String>,
    /// Expectations that held, for the summary.
    pub met: Vec<String>,
    /// Why not every planned run finished (interrupted, a run failed to
    /// start): then nothing after it was checked and the verdict is unknown.
    pub incomplete: Option<String>,
}

impl Verdict {
    /// 0 all as expected, 1 something is not, 2 something could not be
    /// decided or was not run.
    pub fn exit_code(&self) -> i32 {
        if !self.failures.is_empty() {
            1
        } else if !self.unknowns.is_empty() || self.incomplete.is_some() {
            2
        } else {
            0
        }
    }

    /// The verdict section of `summary.md`.
    pub fn markdown(&self) -> String {
        let mut text = String::new();
        if let Some(incomplete) = &self.incomplete {
            text.push_str(&format!("Verdict unknown: {incomplete}. Runs that did not finish were not checked.\n"));
        } else if self.exit_code() == 0 {
            text.push_str("Every run is as valid as expected.\n");
        }
        for f in &self.failures {
            text.push_str(&format!("- FAILED: {f}\n"));
        }
        for u in &self.unknowns {
            text.push_str(&format!("- unknown: {u}\n"));
        }
        for m in &self.met {
            text.push_str(&format!("- as expected: {m}\n"));
        }
        text
    }
}

/// A checker's whole-number figure (a count), if it reported one.
pub(crate) fn figure(results: &Results, checker: &str, key: &str) -> Option<u64> {
    results.checkers.get(checker)?.figure(key)?.as_u64()
}

/// A checker's fractional figure (a duration in ms, a ratio), if it reported one.
fn figure_f64(results: &Results, checker: &str, key: &str) -> Option<f64> {
    results.checkers.get(checker)?.figure(key)?.as_f64()
}

/// Judges every run, and with `expect_anomalies` the known behaviours too.
pub fn evaluate(measured: &[Measured<'_>], expect_anomalies: bool) -> Verdict {
    let mut v = Verdict::default();
    for m in measured {
        let label = format!("[{} / {}] {}", nemesis_label(m.run), m.run.workload, config_label(m.run));
        let Some(results) = m.results else {
            v.unknowns.push(format!("{label}: not performed (unsupported by the backend)"));
            continue;
        };
        match results.valid {
            Validity::False => match expected_invalid(m.run).filter(|_| expect_anomalies) {
                Some(why) => v.met.push(format!("{label}: invalid, as expected: {why}")),
                None => v.failures.push(format!("{label}: invalid (see its results.json)")),
            },
            // Convergence is undecidable when the quiet period is shorter
            // than a few anti-entropy intervals; the campaign's claims do
            // not rest on it, so that alone is noted, not an unknown run.
            Validity::Unknown => match undecided_convergence_only(results) {
                Some(why) => v.met.push(format!("{label}: convergence not decided ({why})")),
                None => v.unknowns.push(format!("{label}: a checker could not decide")),
            },
            Validity::True => {}
        }
        if expect_anomalies {
            for claim in claims(m.run, results) {
                match claim {
                    Ok(met) => v.met.push(format!("{label}: {met}")),
                    Err(failed) => v.failures.push(format!("{label}: {failed}")),
                }
            }
        }
    }
    v
}

/// Why this run's quorum guarantees are void by construction, so that an
/// invalid verdict is what it must show: a power loss (the `power-loss`
/// nemesis, or the simulator's kill) on nodes that acknowledge before
/// syncing (`--fsync never`) drops acknowledged writes, and reads then miss
/// them whatever W + R is.
fn expected_invalid(run: &RunConfig) -> Option<String> {
    let power_loss = run.nemesis.iter().any(|n| n == POWER_LOSS || (run.backend == "sim" && n == "kill"));
    (power_loss && run.labels.fsync_requested == Some(Fsync::Never))
        .then(|| "a power loss with --fsync never drops acknowledged writes, so reads miss them".to_string())
}

/// Why convergence was undecided, when it is the only checker that was.
fn undecided_convergence_only(results: &Results) -> Option<String> {
    let mut unknown = results.checkers.iter().filter(|(_, c)| c.valid == Validity::Unknown);
    let (name, only) = unknown.next()?;
    if name != checker::convergence::NAME || unknown.next().is_some() {
        return None;
    }
    Some(only.figure("undecided").and_then(|w| w.as_str()).unwrap_or("no reason given").to_string())
}

/// A figure as the verdict prints it: the number, or `no figure` when the
/// checker did not report one (never Rust's `Some(..)`/`None`).
pub(crate) fn shown(figure: Option<u64>) -> String {
    figure.map_or_else(|| "no figure".to_string(), |v| v.to_string())
}

/// The power-loss nemesis's name in `run.json`.
const POWER_LOSS: &str = "power-loss";

/// Whether every fault of this run is a power loss: the `power-loss`
/// nemesis, or a kill under the simulator (where a kill is one).
fn only_power_losses(run: &RunConfig) -> bool {
    let is_power_loss = |n: &String| n == POWER_LOSS || (run.backend == "sim" && n == "kill");
    !run.nemesis.is_empty() && run.nemesis.iter().all(is_power_loss)
}

/// A claim's outcome: `Ok(what held)` or `Err(what did not)`.
pub(crate) type Claim = Result<String, String>;

pub(crate) fn claim(holds: bool, what: String) -> Claim {
    if holds {
        Ok(what)
    } else {
        Err(format!("expected {what}"))
    }
}

/// The known behaviours that apply to this run.
fn claims(run: &RunConfig, results: &Results) -> Vec<Claim> {
    let has = |n: &str| run.nemesis.iter().any(|x| x == n);
    let mut out = Vec::new();
    if run.workload == "register" {
        let stale = figure(results, "stale-reads", "stale");
        if run.nemesis.is_empty() && run.is_strict_quorum() {
            out.push(claim(stale == Some(0), format!("0 stale reads without faults (W+R>N), found {}", shown(stale))));
        }
        if has("partition") && run.w + run.r <= run.n {
            out.push(claim(
                stale.is_some_and(|s| s > 0),
                format!("stale reads under partitions (W+R<=N), found {}", shown(stale)),
            ));
        }
    }
    if run.workload == "set" {
        out.extend(set_claims(run, results));
    }
    if run.workload == "prefix" {
        out.extend(prefix_claims(run, results));
    }
    if run.workload == "register" && run.topology.is_multi_dc() {
        out.extend(crate::expect_dc::claims(run, results));
    }
    if run.nemesis == ["latency"] {
        let shift = figure_f64(results, checker::latency::NAME, "latency_window_p50_shift_ms");
        let delay_ms = nemesis::netem::DELAY_MS as f64;
        out.push(claim(
            shift.is_some_and(|s| s >= delay_ms),
            format!(
                "ops in latency windows slower by at least the {delay_ms} ms injected (median), shift {}",
                shift.map_or("unmeasured".into(), |s| format!("{s:.1} ms"))
            ),
        ));
    }
    out
}

fn prefix_claims(run: &RunConfig, results: &Results) -> Vec<Claim> {
    let violations = figure(results, checker::consistent_prefix::NAME, "violations");
    let mut out = Vec::new();
    if run.nemesis.is_empty() && run.is_strict_quorum() {
        out.push(claim(
            violations == Some(0),
            format!("0 consistent-prefix violations without faults (W+R>N), found {}", shown(violations)),
        ));
    }
    if run.nemesis.iter().any(|n| n == "partition") && run.w == 1 && run.r == 1 {
        out.push(claim(
            violations.is_some_and(|v| v > 0),
            format!("consistent-prefix violations under partitions (W=R=1), found {}", shown(violations)),
        ));
    }
    out
}

fn set_claims(run: &RunConfig, results: &Results) -> Vec<Claim> {
    let lost = figure(results, "lost-writes", "lost");
    let to_clock = figure(results, "lost-writes", "lost_to_clock");
    // keys is 0 only in runs that predate recording it: then not known to be contended.
    let contended = run.knobs.keys > 0 && run.knobs.keys <= run.knobs.concurrency;
    let durable = run.durable_storage();
    let fsync = run.labels.fsync_requested;
    let only = |allowed: &[&str]| run.nemesis.iter().all(|n| allowed.contains(&n.as_str()));
    let mut out = Vec::new();
    match run.resolution {
        Resolution::Lww if contended && run.nemesis.is_empty() => {
            out.push(claim(
                lost.is_some_and(|l| l > 0),
                format!("LWW to lose acknowledged adds under contention, lost {}", shown(lost)),
            ));
        }
        // A corrupt node lost data only it held, and N=3 replicas hold every add.
        Resolution::Siblings if run.nemesis.is_empty() || (durable && only(&["kill", "corrupt"])) => {
            out.push(claim(
                lost == Some(0),
                format!("siblings with union merge to lose no acknowledged add, lost {}", shown(lost)),
            ));
        }
        _ => {}
    }
    let power_loss = only_power_losses(run);
    if power_loss && fsync == Some(Fsync::Never) && run.w == 1 {
        out.push(claim(
            lost.is_some_and(|l| l > 0),
            format!("power loss with fsync never to lose acknowledged W=1 adds, lost {}", shown(lost)),
        ));
    }
    // Both acknowledge a write only once it is synced.
    let synced = match fsync {
        Some(Fsync::Always) => Some("always"),
        Some(Fsync::Batch) => Some("batch"),
        _ => None,
    };
    if let (true, Some(synced), Resolution::Siblings) = (power_loss, synced, run.resolution) {
        out.push(claim(
            lost == Some(0),
            format!("power loss with fsync {synced} to lose no acknowledged add, lost {}", shown(lost)),
        ));
    }
    if run.resolution == Resolution::Lww && run.nemesis.iter().any(|n| n == "clock") {
        out.push(claim(
            to_clock.is_some_and(|l| l > 0),
            format!("LWW to lose adds to skewed clocks, lost_to_clock {}", shown(to_clock)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::tests::matrix;
    use std::collections::BTreeMap;

    /// A register run's results with only a stale-reads figure (or none).
    fn results(stale: Option<u64>) -> Results {
        let mut stale_reads = checker::CheckResult::new(Validity::True);
        if let Some(stale) = stale {
            stale_reads = stale_reads.with("stale", serde_json::json!(stale));
        }
        Results::from_checkers(BTreeMap::from([("stale-reads".to_string(), stale_reads)]))
    }

    #[test]
    fn the_verdict_prints_figures_as_numbers_never_as_rust_options() {
        let runs = matrix().runs();
        let partition_weak = runs.iter().find(|r| r.nemesis.label() != "none" && r.w == 1 && r.r == 1).unwrap();
        let mut run = partition_weak.run_config("sim", "img");
        run.nemesis = vec!["partition".into()];
        run.workload = "register".into();
        for (stale, shown) in [(Some(0), "found 0"), (Some(239), "found 239"), (None, "found no figure")] {
            let r = results(stale);
            let text = evaluate(&[Measured { run: &run, results: Some(&r) }], true).markdown();
            assert!(text.contains(shown) && !text.contains("Some(") && !text.contains("None"), "{text}");
        }
    }

    /// A set run's results with only a lost-writes figure.
    fn lost(n: u64) -> Results {
        let lost = checker::CheckResult::new(Validity::True).with("lost", serde_json::json!(n));
        Results::from_checkers(BTreeMap::from([("lost-writes".to_string(), lost)]))
    }

    #[test]
    fn power_losses_lose_adds_with_fsync_never_and_none_once_synced() {
        let mut run = matrix().runs()[0].run_config("docker", "img");
        (run.workload, run.resolution, run.w) = ("set".into(), Resolution::Siblings, 1);
        run.nemesis = vec![POWER_LOSS.into()];
        let says = |run: &RunConfig, n, ok: bool, what: &str| {
            set_claims(run, &lost(n)).iter().any(|c| c.is_ok() == ok && c.as_ref().unwrap_or_else(|e| e).contains(what))
        };
        run.labels.fsync_requested = Some(Fsync::Never);
        assert!(expected_invalid(&run).is_some());
        assert!(says(&run, 3, true, "fsync never") && says(&run, 0, false, "fsync never"));
        for (fsync, word) in [(Fsync::Always, "fsync always"), (Fsync::Batch, "fsync batch")] {
            run.labels.fsync_requested = Some(fsync);
            assert!(expected_invalid(&run).is_none());
            assert!(says(&run, 0, true, word) && says(&run, 2, false, word), "{word}");
        }
        run.nemesis.push("partition".into());
        assert!(!says(&run, 0, true, "power loss"), "a partition too: no power-loss claim");
    }
}
