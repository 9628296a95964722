//! `workbench explore`: one configuration over many seeds, in parallel.
//!
//! Each seed is a whole simulated run (`--backend sim` only: a real cluster
//! takes a minute where a simulation takes seconds, and only the simulator
//! replays a seed). Workers, one per core unless `--jobs` says otherwise,
//! each take the next seed and run it on their own thread with their own
//! simulation; each run's directory is the campaign one's
//! (`results/<name>/seed-<S>/<run>/`: `run.json`, `history.jsonl`,
//! `results.json`), so `workbench check` re-checks any of them. Plots are
//! skipped: a sweep is for finding seeds, `workbench check --write` draws
//! them for the ones worth a look.
//!
//! The report: every seed whose verdict is invalid or whose run showed an
//! anomaly (stale reads, read-your-writes or monotonic-read violations,
//! lost acknowledged writes), with the command that replays it, then the
//! totals and the seeds per minute achieved.
//!
//! With `--shrink`, the first invalid seed is shrunk: nemesis actions are
//! dropped one at a time, and then the offered rate halved (fewer ops), for
//! as long as the verdict stays invalid (greedy, bounded by
//! [`SHRINK_ATTEMPTS`] simulations). The smallest schedule found is printed
//! and written to `shrunk-schedule.json` beside the seeds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use checker::{Results, Validity};
use clap::Args;
use history::files;

use crate::args::CampaignArgs;
use crate::backend::{Backend, BackendChoice};
use crate::campaign::check_run;
use crate::run::write_json;
use crate::sim_run;
use crate::spec::RunSpec;
use crate::table::validity_label;

/// `workbench explore` flags: the seeds, then any campaign flag.
#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// Seeds to run: `A..B` (A to B-1) or `A..=B`.
    #[arg(long)]
    pub seeds: String,
    /// Parallel simulations; default: one per core.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Exit 1 unless at least this many seeds are flagged (a planted bug must be found).
    #[arg(long)]
    pub expect_flagged: Option<usize>,
    /// Exit 1 if more than this many seeds are flagged (a clean build must stay clean).
    #[arg(long)]
    pub max_flagged: Option<usize>,
    /// Shrink the first invalid seed's schedule and print the smallest found.
    #[arg(long)]
    pub shrink: bool,
    #[command(flatten)]
    pub campaign: CampaignArgs,
}

/// The seeds `A..B` or `A..=B` stand for.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>> {
    let (a, b, inclusive) = if let Some((a, b)) = text.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = text.split_once("..") {
        (a, b, false)
    } else {
        bail!("--seeds {text:?}: expected A..B or A..=B");
    };
    let a: u64 = a.trim().parse().with_context(|| format!("--seeds {text:?}: {a:?} is not a seed"))?;
    let b: u64 = b.trim().parse().with_context(|| format!("--seeds {text:?}: {b:?} is not a seed"))?;
    let end = if inclusive { b.checked_add(1).context("--seeds: end too large")? } else { b };
    if end <= a {
        bail!("--seeds {text:?} is empty");
    }
    if end - a > 100_000 {
        bail!("--seeds {text:?}: more than 100,000 seeds in one sweep");
    }
    Ok((a..end).collect())
}

/// One run of the sweep, as the report sees it.
#[derive(Debug, Clone)]
pub struct SeedRow {
    /// The campaign seed.
    pub seed: u64,
    /// The run's directory name.
    pub run: String,
    /// Its verdict.
    pub valid: Validity,
    /// The anomalies found, `checker: count`.
    pub anomalies: Vec<String>,
    /// The command that replays this seed.
    pub replay: String,
    /// Simulated seconds per wall second of this run.
    pub speedup: f64,
    /// Why the run did not finish, if it did not.
    pub error: Option<String>,
}

impl SeedRow {
    /// Whether the report lists this seed.
    pub fn flagged(&self) -> bool {
        self.valid == Validity::False || !self.anomalies.is_empty() || self.error.is_some()
    }
}

/// The anomaly counts a run's results show.
pub fn anomalies(results: &Results) -> Vec<String> {
    let figures = [("stale-reads", "stale"), ("read-your-writes", "violations"), ("monotonic-reads", "violations"), ("lost-writes", "lost")];
    let mut out = Vec::new();
    for (checker, key) in figures {
        let count = results.checkers.get(checker).and_then(|c| c.figure(key)).and_then(|v| v.as_u64()).unwrap_or(0);
        if count > 0 {
            out.push(format!("{checker}: {count}"));
        }
    }
    for (name, result) in &results.checkers {
        if result.valid == Validity::False && !out.iter().any(|a| a.starts_with(name.as_str())) {
            out.push(format!("{name}: invalid"));
        }
    }
    out
}

/// The whole sweep; returns the exit code.
pub fn explore(args: &ExploreArgs) -> Result<i32> {
    if !matches!(args.campaign.backend, BackendChoice::Sim | BackendChoice::Auto) {
        bail!("explore runs under the simulator only (--backend sim)");
    }
    let seeds = parse_seeds(&args.seeds)?;
    args.campaign.validate()?;
    let plan = args.campaign.plan(args.campaign.matrix()?, Backend::Sim);
    let dir = plan.results_dir.join(&plan.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).clamp(1, 64);
    let started = Instant::now();
    let rows = sweep(&plan.matrix, &seeds, &dir, &plan.name, jobs)?;
    let wall = started.elapsed();
    let flagged: Vec<&SeedRow> = rows.iter().filter(|r| r.flagged()).collect();
    println!("{}", report(&rows, &flagged, seeds.len(), wall, jobs));
    if args.shrink {
        if let Some(first) = rows.iter().find(|r| r.valid == Validity::False) {
            let mut m = plan.matrix.clone();
            m.seed = first.seed;
            if let Some(spec) = m.runs().into_iter().find(|s| s.name == first.run) {
                println!("{}", shrink_report(&spec, &dir)?);
            }
        }
    }
    let mut code = if rows.iter().any(|r| r.error.is_some()) { 2 } else { 0 };
    if let Some(min) = args.expect_flagged {
        if flagged.len() < min {
            eprintln!("expected at least {min} flagged seeds, found {}", flagged.len());
            code = 1;
        }
    }
    if let Some(max) = args.max_flagged {
        if flagged.len() > max {
            eprintln!("expected at most {max} flagged seeds, found {}", flagged.len());
            code = 1;
        }
    }
    Ok(code)
}

/// Runs every seed's runs on `jobs` worker threads; rows in seed order.
fn sweep(matrix: &crate::matrix::Matrix, seeds: &[u64], dir: &Path, campaign: &str, jobs: usize) -> Result<Vec<SeedRow>> {
    let next = Arc::new(AtomicUsize::new(0));
    let rows = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for w in 0..jobs.min(seeds.len()) {
        let (next, rows, seeds, matrix) = (next.clone(), rows.clone(), seeds.to_vec(), matrix.clone());
        let (dir, campaign) = (dir.to_path_buf(), campaign.to_string());
        let worker = sim_run::sim_thread(format!("explore-{w}")).spawn(move || loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(&seed) = seeds.get(i) else { break };
            let mut m = matrix.clone();
            m.seed = seed;
            for spec in m.runs() {
                let row = one_seed(&spec, seed, &dir, &campaign);
                eprintln!("seed {seed} {}: {}", spec.name, row_status(&row));
                rows.lock().expect("rows lock poisoned").push(row);
            }
        });
        workers.push(worker.context("cannot start an explore worker")?);
    }
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("an explore worker panicked"))?;
    }
    let mut rows = std::mem::take(&mut *rows.lock().expect("rows lock poisoned"));
    rows.sort_by(|a, b| (a.seed, &a.run).cmp(&(b.seed, &b.run)));
    Ok(rows)
}

fn row_status(row: &SeedRow) -> String {
    match &row.error {
        Some(e) => format!("error: {e}"),
        None => format!("valid: {} {}", validity_label(row.valid), row.anomalies.join(", ")),
    }
}

/// The replay command of one seed of this sweep.
fn replay(campaign: &str, seed: u64) -> String {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(sub) = args.iter().position(|a| a == "explore") {
        args[sub] = "campaign".into();
    }
    let mut out = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seeds" | "--jobs" | "--seed" | "--name" | "--expect-flagged" | "--max-flagged" => {
                it.next();
            }
            "--expect-anomalies" | "--resume" => {}
            a if a.starts_with("--seeds=") || a.starts_with("--seed=") || a.starts_with("--name=") || a.starts_with("--jobs=") => {}
            _ => out.push(arg),
        }
    }
    let quoted: Vec<String> = out.iter().map(|a| sim_run::shell_word(a)).collect();
    format!("target/release/workbench {} --backend sim --seed {seed} --name {campaign}-seed-{seed}", quoted.join(" "))
}

/// One run of one seed: simulated, checked, written.
fn one_seed(spec: &RunSpec, seed: u64, dir: &Path, campaign: &str) -> SeedRow {
    let run_dir: PathBuf = dir.join(format!("seed-{seed}")).join(&spec.name);
    let replay = replay(campaign, seed);
    let mut row = SeedRow {
        seed,
        run: spec.name.clone(),
        valid: Validity::Unknown,
        anomalies: Vec::new(),
        replay: replay.clone(),
        speedup: 0.0,
        error: None,
    };
    match simulate_and_check(spec, &run_dir, &replay) {
        Ok((results, speedup)) => {
            row.valid = results.valid;
            row.anomalies = anomalies(&results);
            row.speedup = speedup;
        }
        Err(e) => row.error = Some(format!("{e:#}")),
    }
    row
}

fn simulate_and_check(spec: &RunSpec, run_dir: &Path, replay: &str) -> Result<(Results, f64)> {
    std::fs::create_dir_all(run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    let mut run = spec.run_config(dynamo_sim::BACKEND, &sim_run::image());
    write_json(&run_dir.join(files::RUN), &run)?;
    let (history, status, report) = sim_run::simulate_here(spec, run_dir, None)?;
    if let Some(status) = status {
        crate::campaign::apply_status(&status, &mut run);
    }
    run.extra.insert("sim".into(), sim_run::report_json(&report));
    run.extra.insert("replay".into(), serde_json::json!(replay));
    write_json(&run_dir.join(files::RUN), &run)?;
    let results = check_run(&run, &history)?;
    write_json(&run_dir.join(files::RESULTS), &results)?;
    Ok((results, report.speedup()))
}

/// Simulations a shrink may spend.
pub const SHRINK_ATTEMPTS: usize = 40;

/// Whether `spec` (with its schedule override) still gives an invalid verdict.
fn still_invalid(spec: &RunSpec, dir: &Path, attempt: usize) -> bool {
    let run_dir = dir.join(format!("shrink-{}", spec.seed)).join(format!("attempt-{attempt}"));
    let verdict = simulate_and_check(spec, &run_dir, "(shrinking)").map(|(r, _)| r.valid);
    let _ = std::fs::remove_dir_all(&run_dir);
    verdict.is_ok_and(|v| v == Validity::False)
}

/// Greedy shrink of an invalid run: drop nemesis actions, then halve the rate.
fn shrink_report(spec: &RunSpec, dir: &Path) -> Result<String> {
    let mut current = crate::run::schedules(spec);
    let before: usize = current.iter().map(|s| s.actions.len()).sum();
    let mut attempts = 0;
    'scan: loop {
        for si in 0..current.len() {
            for ai in 0..current[si].actions.len() {
                if attempts >= SHRINK_ATTEMPTS {
                    break 'scan;
                }
                let mut candidate = current.clone();
                candidate[si].actions.remove(ai);
                attempts += 1;
                let trial = RunSpec { schedule_override: Some(candidate.clone()), ..spec.clone() };
                if still_invalid(&trial, dir, attempts) {
                    current = candidate;
                    continue 'scan;
                }
            }
        }
        break;
    }
    let mut smallest = RunSpec { schedule_override: Some(current.clone()), ..spec.clone() };
    while attempts < SHRINK_ATTEMPTS && smallest.knobs.rate >= 2.0 {
        attempts += 1;
        let mut trial = smallest.clone();
        trial.knobs.rate = smallest.knobs.rate / 2.0;
        if !still_invalid(&trial, dir, attempts) {
            break;
        }
        smallest = trial;
    }
    let after: usize = current.iter().map(|s| s.actions.len()).sum();
    let path = dir.join("shrunk-schedule.json");
    write_json(&path, &current)?;
    Ok(format!(
        "shrunk seed {} ({}) in {attempts} simulations: {after} of {before} nemesis actions, rate {} ops/s, still invalid; schedule: {}\n{}",
        spec.seed,
        spec.name,
        smallest.knobs.rate,
        path.display(),
        serde_json::to_string(&current)?,
    ))
}

/// The table of flagged seeds and the totals.
fn report(rows: &[SeedRow], flagged: &[&SeedRow], seeds: usize, wall: std::time::Duration, jobs: usize) -> String {
    let mut text = String::from("| seed | run | valid | anomalies | replay |\n| --- | --- | --- | --- | --- |\n");
    for r in flagged {
        let what = r.error.clone().unwrap_or_else(|| r.anomalies.join(", "));
        text.push_str(&format!("| {} | {} | {} | {} | `{}` |\n", r.seed, r.run, validity_label(r.valid), what, r.replay));
    }
    let invalid = rows.iter().filter(|r| r.valid == Validity::False).count();
    let minutes = wall.as_secs_f64() / 60.0;
    let mean_speedup = rows.iter().map(|r| r.speedup).sum::<f64>() / rows.len().max(1) as f64;
    text.push_str(&format!(
        "\n{} of {seeds} seeds flagged ({} runs, {invalid} invalid); {:.1} s wall on {jobs} workers: {:.1} seeds/minute; \
         each run {:.1} simulated s per wall s on average\n",
        flagged.iter().map(|r| r.seed).collect::<std::collections::BTreeSet<_>>().len(),
        rows.len(),
        wall.as_secs_f64(),
        seeds as f64 / minutes.max(1e-9),
        mean_speedup,
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_and_bad_ones_say_why() {
        assert_eq!(parse_seeds("3..6").unwrap(), vec![3, 4, 5]);
        assert_eq!(parse_seeds("3..=5").unwrap(), vec![3, 4, 5]);
        assert!(parse_seeds("5..5").is_err());
        assert!(parse_seeds("a..5").unwrap_err().to_string().contains("not a seed"));
        assert!(parse_seeds("7").is_err());
    }
}
