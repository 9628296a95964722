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
//! anomaly its configuration promises away (stale reads or read-your-writes
//! violations with W+R>N, lost acknowledged adds with siblings), with the
//! command that replays it; then the seeds that only measured what the
//! configuration allows (see [`anomalies`]; `--flag-measured` flags those
//! too); then the totals and the seeds per minute achieved.
//!
//! With `--shrink`, the first invalid seed (else the first with anomalies)
//! is shrunk ([`shrink`]): whole fault windows are dropped, then single
//! nemesis actions, then the fault phase is cut just past the last action
//! left, then the offered rate halved, each kept only while the run still
//! shows what it showed (greedy, bounded by [`SHRINK_ATTEMPTS`]
//! simulations). The smallest schedule is printed and written to
//! `shrunk-schedule.json`, its run kept in `shrunk-seed-<S>/`, with the
//! command that replays it (`campaign --schedule ... --seed S`).
//!
//! The replay commands name the binary that ran the sweep: a planted build
//! (`workbench-planted`, see [`crate::planted`]) replays its seeds, the
//! clean one does not.
//!
//! With `--swarm` each seed's runs get their own configuration, drawn from
//! the seed ([`crate::swarm`]): fault kinds added to `--nemesis`, their
//! rhythms, and workload knobs; the report then says, per fault kind, in
//! how many flagged seeds and in how many seeds of all it was present.
//!
//! A sweep can be cut into shards (`--shard K/N`, [`shard`]) run anywhere,
//! each writing its record ([`record`]) into its results directory;
//! `--merge` ([`merge`]) puts them together into the table one sweep of the
//! whole range prints. Every sweep writes its record, sharded or not.

mod merge;
mod record;
mod shard;
mod worker;

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
use crate::json_file::write_json;
use crate::run::SCHEDULE_FILE;
use crate::sim_run;
use crate::spec::RunSpec;
use crate::swarm::Swarm;
use crate::table::validity_label;

/// `workbench explore` flags: the seeds, then any campaign flag.
#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// Seeds to run: `A..B` (A to B-1) or `A..=B`.
    #[arg(long, required_unless_present = "merge")]
    pub seeds: Option<String>,
    /// Run only the K-th of N shards of the seeds (1 <= K <= N): the seed at
    /// offset i of the range goes to shard i % N + 1. `--merge` combines the
    /// shards' results directories.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<shard::Shard>,
    /// Combine the results directories (results/<name>) of a sharded
    /// sweep's shards into one table, refusing shards of different flags
    /// and seeds run twice or not at all; runs nothing.
    #[arg(long, num_args = 1.., value_name = "DIR",
          conflicts_with_all = ["seeds", "shard", "shrink", "swarm", "jobs", "flag_measured"])]
    pub merge: Vec<PathBuf>,
    /// Swarm testing: each seed adds its own random subset of the fault
    /// kinds to --nemesis, with their own rhythms, and varies rate, keys,
    /// read fraction and concurrency, every choice drawn from the seed and
    /// recorded in run.json (`swarm`).
    #[arg(long)]
    pub swarm: bool,
    /// Parallel simulations; default: one per core.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Exit 1 unless at least this many seeds are flagged (a planted bug must be found).
    #[arg(long)]
    pub expect_flagged: Option<usize>,
    /// Exit 1 if more than this many seeds are flagged (a clean build must stay clean).
    #[arg(long)]
    pub max_flagged: Option<usize>,
    /// Shrink one flagged seed's schedule and print the smallest found: the
    /// first invalid seed, else the first flagged one.
    #[arg(long)]
    pub shrink: bool,
    /// Also flag seeds for anomalies the configuration does not promise
    /// away (stale reads with W+R<=N, monotonic-read violations, LWW's lost
    /// adds): to hunt examples of them rather than bugs.
    #[arg(long)]
    pub flag_measured: bool,
    /// Internal: run this one seed's runs in this process and print their
    /// rows as JSON lines (what a sweep's worker process does).
    #[arg(long, hide = true)]
    pub worker_seed: Option<u64>,
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
    /// The anomalies found that the configuration promises away
    /// (`checker: count`), and checkers with an invalid verdict.
    pub anomalies: Vec<String>,
    /// Anomalies found that the configuration does not promise away (the
    /// checker says `expected_zero: false`: weak quorums' stale reads,
    /// monotonic-read violations under any quorum, LWW's lost adds).
    pub measured: Vec<String>,
    /// Whether `measured` anomalies flag the seed too (`--flag-measured`).
    pub flag_measured: bool,
    /// The command that replays this seed.
    pub replay: String,
    /// Simulated seconds per wall second of this run.
    pub speedup: f64,
    /// Why the run did not finish, if it did not.
    pub error: Option<String>,
    /// The fault kinds the run performed.
    pub nemesis: Vec<nemesis::NemesisKind>,
}

impl SeedRow {
    /// Whether the report lists this seed.
    pub fn flagged(&self) -> bool {
        self.valid == Validity::False
            || !self.anomalies.is_empty()
            || (self.flag_measured && !self.measured.is_empty())
            || self.error.is_some()
    }
}

/// The anomalies a run's results show: those its configuration promises
/// away (and checkers with an invalid verdict), then those it does not.
///
/// Why two lists: a Dynamo-style store promises no monotonic reads even
/// with W+R>N (a write that reached one replica and failed can be seen by
/// one read quorum and missed by the next; `checker/src/monotonic_reads.rs`),
/// nor fresh reads with W+R<=N; the checkers count these with
/// `expected_zero: false`. A sweep of a correct build finds them on some
/// seeds, so they are reported, but flag a seed only with `--flag-measured`.
pub fn anomalies(results: &Results) -> (Vec<String>, Vec<String>) {
    let figures = [
        ("stale-reads", "stale"),
        ("read-your-writes", "violations"),
        ("monotonic-reads", "violations"),
        ("lost-writes", "lost"),
    ];
    let (mut promised, mut measured) = (Vec::new(), Vec::new());
    for (checker, key) in figures {
        let Some(result) = results.checkers.get(checker) else { continue };
        let count = result.figure(key).and_then(|v| v.as_u64()).unwrap_or(0);
        if count == 0 {
            continue;
        }
        // A checker that does not say counts as promised: flagged rather than missed.
        let expected_zero = result.figure("expected_zero").and_then(|v| v.as_bool()).unwrap_or(true);
        let list = if expected_zero { &mut promised } else { &mut measured };
        list.push(format!("{checker}: {count}"));
    }
    for (name, result) in &results.checkers {
        if result.valid == Validity::False && !promised.iter().chain(&measured).any(|a| a.starts_with(name.as_str())) {
            promised.push(format!("{name}: invalid"));
        }
    }
    (promised, measured)
}

/// Campaign flags `explore` does not use (its seeds replace `--seed`; it
/// writes no resumable campaign, takes no schedule and checks no
/// expectations; its nodes are simulated): hidden from `explore --help`.
const CAMPAIGN_ONLY: [&str; 15] = [
    "seed",
    "resume",
    "schedule",
    "expect_anomalies",
    "image",
    "node_binary",
    "config",
    "stores",
    "hosts",
    "ssh_user",
    "ssh_port",
    "ssh_key",
    "ssh_known_hosts",
    "ssh_accept_new",
    "ssh_connect_timeout_ms",
];

/// `explore --backend`: the simulator only, so its help offers nothing else.
pub fn backend_arg(arg: clap::Arg) -> clap::Arg {
    use clap::builder::{PossibleValuesParser, TypedValueParser};
    use clap::ValueEnum;
    let parser = PossibleValuesParser::new(["sim", "auto"])
        .map(|s| BackendChoice::from_str(&s, true).expect("sim and auto are backend choices"));
    arg.value_parser(parser).help("Always the simulator (sim; auto means sim here)")
}

/// Hides a campaign-only flag ([`CAMPAIGN_ONLY`]) from `explore --help`.
pub fn hide_campaign_only(arg: clap::Arg) -> clap::Arg {
    let hide = CAMPAIGN_ONLY.contains(&arg.get_id().as_str());
    arg.hide(hide)
}

/// The whole sweep (or one shard of it, or the merge of shards); returns the exit code.
pub fn explore(args: &ExploreArgs) -> Result<i32> {
    if !args.merge.is_empty() {
        return merge_shards(args);
    }
    if !matches!(args.campaign.backend, BackendChoice::Sim | BackendChoice::Auto) {
        bail!("explore runs under the simulator only (--backend sim)");
    }
    crate::planted::refuse_unless_allowed(true, args.campaign.allow_planted_bugs)?;
    let range = parse_seeds(args.seeds.as_deref().context("--seeds is required")?)?;
    let shard = args.shard.unwrap_or(shard::Shard::WHOLE);
    let seeds = shard.seeds_of(&range)?;
    args.campaign.validate()?;
    let plan = args.campaign.plan(args.campaign.matrix()?, Backend::Sim);
    if args.campaign.dry_run {
        let runs = plan.matrix.runs();
        println!(
            "{} seeds (shard {shard}) x {} runs: {}",
            seeds.len(),
            runs.len(),
            runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")
        );
        return Ok(0);
    }
    let dir = plan.results_dir.join(&plan.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if let Some(seed) = args.worker_seed {
        for (spec, chosen) in seed_runs(&plan.matrix, seed, args.swarm) {
            let row = one_seed(&spec, chosen.as_ref(), &dir, &plan.name, args.flag_measured);
            eprintln!("seed {seed} {}: {}", spec.name, row_status(&row));
            println!("{}", worker::row_line(&row));
        }
        return Ok(0);
    }
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).clamp(1, 64);
    let started = Instant::now();
    let workers = if jobs > 1 { Workers::Processes(jobs) } else { Workers::Threads(1) };
    let rows = sweep(&plan.matrix, &seeds, &dir, &plan.name, workers, args.flag_measured, args.swarm)?;
    let wall = started.elapsed();
    let identity = record::Identity::of(&plan.matrix, &range, shard.count, args.flag_measured, args.swarm);
    let sweep_record = record::SweepRecord {
        identity,
        shard,
        seeds: seeds.clone(),
        rows: rows.iter().map(record::RowRecord::of).collect(),
        wall_seconds: wall.as_secs_f64(),
        jobs,
        written_by: crate::campaign::written_by(),
    };
    write_json(&dir.join(record::file_name(shard)), &sweep_record)?;
    let flagged: Vec<&SeedRow> = rows.iter().filter(|r| r.flagged()).collect();
    println!("{}", table(&rows, &flagged, args.swarm));
    let what = if shard == shard::Shard::WHOLE { String::new() } else { format!("shard {shard}: ") };
    println!("{what}{}", totals(&rows, seeds.len(), wall, jobs));
    if args.shrink {
        // An invalid seed first; else any seed with anomalies (never one that errored).
        let candidates = || rows.iter().filter(|r| r.error.is_none());
        let first = candidates().find(|r| r.valid == Validity::False).or_else(|| candidates().find(|r| r.flagged()));
        match first {
            Some(first) => {
                let spec = seed_runs(&plan.matrix, first.seed, args.swarm)
                    .into_iter()
                    .map(|(spec, _)| spec)
                    .find(|s| s.name == first.run)
                    .context("the flagged run is not in the matrix")?;
                println!("{}", shrink_report(&spec, first, &dir, &plan.name)?);
            }
            None => println!("--shrink: no flagged seed to shrink"),
        }
    }
    Ok(exit_code(args, &rows))
}

/// `--merge`: the shards' table and totals, as one sweep's.
fn merge_shards(args: &ExploreArgs) -> Result<i32> {
    let merged = merge::merge(&args.merge)?;
    let flagged: Vec<&SeedRow> = merged.rows.iter().filter(|r| r.flagged()).collect();
    println!("{}", table(&merged.rows, &flagged, merged.identity.swarm));
    let seeds = merged.identity.all_seeds().len();
    let worker_s: f64 = merged.shards.iter().map(|s| s.wall_seconds * s.jobs as f64).sum();
    let longest_s = merged.shards.iter().map(|s| s.wall_seconds).fold(0.0, f64::max);
    println!(
        "merged {} shards: {} of {seeds} seeds flagged ({} runs); longest shard {longest_s:.1} s wall; \
         {:.2} seeds/minute per worker (core) over all shards",
        merged.shards.len(),
        flagged_seeds(&flagged),
        merged.rows.len(),
        seeds as f64 / (worker_s / 60.0).max(1e-9),
    );
    Ok(exit_code(args, &merged.rows))
}

/// How many distinct seeds `flagged` holds.
fn flagged_seeds(flagged: &[&SeedRow]) -> usize {
    flagged.iter().map(|r| r.seed).collect::<std::collections::BTreeSet<_>>().len()
}

/// 2 if a run errored, 1 if `--expect-flagged` or `--max-flagged` is not met, else 0.
fn exit_code(args: &ExploreArgs, rows: &[SeedRow]) -> i32 {
    let flagged_seeds = flagged_seeds(&rows.iter().filter(|r| r.flagged()).collect::<Vec<_>>());
    let mut code = if rows.iter().any(|r| r.error.is_some()) { 2 } else { 0 };
    if let Some(min) = args.expect_flagged {
        if flagged_seeds < min {
            eprintln!("expected at least {min} flagged seeds, found {flagged_seeds}");
            code = 1;
        }
    }
    if let Some(max) = args.max_flagged {
        if flagged_seeds > max {
            eprintln!("expected at most {max} flagged seeds, found {flagged_seeds}");
            code = 1;
        }
    }
    code
}

/// The runs of `seed`: the matrix's, each as swarm configures it with `--swarm`.
fn seed_runs(matrix: &crate::matrix::Matrix, seed: u64, swarm: bool) -> Vec<(RunSpec, Option<Swarm>)> {
    let mut m = matrix.clone();
    m.seed = seed;
    m.runs()
        .into_iter()
        .map(|spec| {
            if !swarm {
                return (spec, None);
            }
            let chosen = Swarm::draw(&spec);
            (chosen.apply(&spec), Some(chosen))
        })
        .collect()
}

/// How a sweep's seeds are spread over workers.
#[derive(Debug, Clone, Copy)]
enum Workers {
    /// This many threads of this process run the seeds. Byte-for-byte
    /// replays hold only with one (see `explore/worker.rs`); tests that
    /// judge verdicts alone use more.
    Threads(usize),
    /// This many threads, each running one seed at a time in a worker
    /// process of its own: what `--jobs` above 1 means.
    Processes(usize),
}

/// Runs every seed's runs on `workers`; rows in seed order.
fn sweep(
    matrix: &crate::matrix::Matrix,
    seeds: &[u64],
    dir: &Path,
    campaign: &str,
    workers: Workers,
    flag_measured: bool,
    swarm: bool,
) -> Result<Vec<SeedRow>> {
    let (jobs, in_processes) = match workers {
        Workers::Threads(jobs) => (jobs, false),
        Workers::Processes(jobs) => (jobs, true),
    };
    assert!(jobs > 0, "a sweep has at least one worker");
    let next = Arc::new(AtomicUsize::new(0));
    let rows = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for w in 0..jobs.min(seeds.len()) {
        let (next, rows, seeds, matrix) = (next.clone(), rows.clone(), seeds.to_vec(), matrix.clone());
        let (dir, campaign) = (dir.to_path_buf(), campaign.to_string());
        let worker = sim_run::sim_thread(format!("explore-{w}")).spawn(move || loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(&seed) = seeds.get(i) else { break };
            if in_processes {
                let done = worker::run_seed(&campaign, seed, flag_measured)
                    .unwrap_or_else(|e| vec![failed_seed(seed, &format!("{e:#}"), flag_measured)]);
                rows.lock().expect("rows lock poisoned").extend(done);
                continue;
            }
            for (spec, chosen) in seed_runs(&matrix, seed, swarm) {
                let row = one_seed(&spec, chosen.as_ref(), &dir, &campaign, flag_measured);
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

/// The row of a seed whose worker process failed: an error, never a pass.
fn failed_seed(seed: u64, why: &str, flag_measured: bool) -> SeedRow {
    SeedRow {
        seed,
        run: String::new(),
        valid: Validity::Unknown,
        anomalies: Vec::new(),
        measured: Vec::new(),
        flag_measured,
        replay: String::new(),
        speedup: 0.0,
        error: Some(why.to_string()),
        nemesis: Vec::new(),
    }
}

fn row_status(row: &SeedRow) -> String {
    match &row.error {
        Some(e) => format!("error: {e}"),
        None => format!(
            "valid: {} {}",
            validity_label(row.valid),
            row.anomalies.iter().chain(&row.measured).cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The command that replays one run of this sweep (`spec` at its seed)
/// under `name`, from `schedule_file` when its schedules were given.
fn replay(spec: &RunSpec, dir: &Path, name: &str, schedule_file: &Path) -> String {
    let results_dir = dir.parent().unwrap_or(Path::new("results"));
    let cx = crate::replay::ReplayContext {
        backend: "sim",
        backend_args: &[],
        results_dir,
        name,
        expect_anomalies: false,
        schedule_file,
    };
    crate::replay::replay_command(spec, &cx)
}

/// One run of one seed: simulated, checked, written (with what swarm chose, if it did).
fn one_seed(spec: &RunSpec, swarm: Option<&Swarm>, dir: &Path, campaign: &str, flag_measured: bool) -> SeedRow {
    let seed = spec.seed;
    let run_dir: PathBuf = dir.join(format!("seed-{seed}")).join(&spec.name);
    let replay = replay(spec, dir, &format!("{campaign}-seed-{seed}-{}", spec.name), &run_dir.join(SCHEDULE_FILE));
    let mut row = SeedRow {
        seed,
        run: spec.name.clone(),
        valid: Validity::Unknown,
        anomalies: Vec::new(),
        measured: Vec::new(),
        flag_measured,
        replay: replay.clone(),
        speedup: 0.0,
        error: None,
        nemesis: spec.nemesis.kinds.clone(),
    };
    match simulate_and_check(spec, &run_dir, &replay, swarm) {
        Ok((results, speedup)) => {
            row.valid = results.valid;
            (row.anomalies, row.measured) = anomalies(&results);
            row.speedup = speedup;
        }
        Err(e) => row.error = Some(format!("{e:#}")),
    }
    row
}

fn simulate_and_check(spec: &RunSpec, run_dir: &Path, replay: &str, swarm: Option<&Swarm>) -> Result<(Results, f64)> {
    std::fs::create_dir_all(run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    let mut run = spec.run_config(dynamo_sim::BACKEND, &sim_run::image());
    if let Some(swarm) = swarm {
        run.extra.insert(crate::swarm::RUN_JSON_FIELD.into(), swarm.to_json());
    }
    write_json(&run_dir.join(files::RUN), &run)?;
    let (history, status, report) = sim_run::simulate_here(spec, run_dir, None)?;
    if let Some(status) = status {
        crate::run::apply_status(&status, &mut run);
    }
    run.extra.insert("sim".into(), sim_run::report_json(&report));
    run.extra.insert(crate::campaign::REPLAY.into(), serde_json::json!(replay));
    run.extra.insert(crate::campaign::WRITTEN_BY.into(), crate::campaign::written_by());
    write_json(&run_dir.join(files::RUN), &run)?;
    let results = check_run(&run, &history)?;
    write_json(&run_dir.join(files::RESULTS), &results)?;
    Ok((results, report.speedup()))
}

/// Simulations a shrink may spend.
pub const SHRINK_ATTEMPTS: usize = 40;

/// What a shrunk run must keep showing: an invalid verdict (a seed that
/// gave one), else an anomaly its configuration promises away, else (a seed
/// flagged for a measured one, `--flag-measured`) any anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Invalid,
    Promised,
    Any,
}

impl Keep {
    fn of(row: &SeedRow) -> Keep {
        if row.valid == Validity::False {
            Keep::Invalid
        } else if !row.anomalies.is_empty() {
            Keep::Promised
        } else {
            Keep::Any
        }
    }

    fn holds(self, results: &Results) -> bool {
        let (promised, measured) = anomalies(results);
        match self {
            Keep::Invalid => results.valid == Validity::False,
            Keep::Promised => !promised.is_empty(),
            Keep::Any => !promised.is_empty() || !measured.is_empty(),
        }
    }
}

/// The client ops a run's history holds (the `stats` checker's totals).
fn ops_of(results: &Results) -> u64 {
    let by_f = results.checkers.get("stats").and_then(|c| c.figure("by_f")).and_then(|v| v.as_object());
    by_f.map_or(0, |by_f| by_f.values().filter_map(|f| f.get("total").and_then(|t| t.as_u64())).sum())
}

/// A greedy shrink of one flagged seed, bounded by [`SHRINK_ATTEMPTS`].
struct Shrinker<'a> {
    dir: &'a Path,
    keep: Keep,
    /// Simulations it may spend.
    budget: usize,
    attempts: usize,
    /// The directory of the smallest run that still showed it, and its ops.
    best: Option<(PathBuf, u64)>,
}

impl Shrinker<'_> {
    /// Whether `spec` still shows what is kept; `None` once the budget is spent.
    fn reproduces(&mut self, spec: &RunSpec, what: &str) -> Option<bool> {
        if self.attempts >= self.budget {
            return None;
        }
        self.attempts += 1;
        let run_dir = self.dir.join(format!("shrink-{}", spec.seed)).join(format!("attempt-{}", self.attempts));
        let kept = match simulate_and_check(spec, &run_dir, "(shrinking)", None) {
            Ok((results, _)) if self.keep.holds(&results) => Some(ops_of(&results)),
            Ok(_) => None,
            Err(e) => {
                eprintln!("shrink attempt {} ({what}): {e:#}", self.attempts);
                None
            }
        };
        eprintln!(
            "shrink attempt {} ({what}): {}",
            self.attempts,
            if kept.is_some() { "still flagged, kept" } else { "no longer flagged" }
        );
        match kept {
            Some(ops) => {
                if let Some((old, _)) = self.best.replace((run_dir, ops)) {
                    let _ = std::fs::remove_dir_all(old);
                }
                Some(true)
            }
            None => {
                let _ = std::fs::remove_dir_all(&run_dir);
                Some(false)
            }
        }
    }
}

/// The fault windows of a schedule: index ranges that each begin with an
/// action that starts a fault and run up to the next such action (a
/// partition and its heal, a kill and its restart), so dropping one drops
/// a whole fault rather than leaving its heal dangling.
fn windows(schedule: &nemesis::Schedule) -> Vec<std::ops::Range<usize>> {
    let starts: Vec<usize> =
        (0..schedule.actions.len()).filter(|&i| i == 0 || schedule.actions[i].action.starts_fault()).collect();
    starts.iter().enumerate().map(|(k, &a)| a..starts.get(k + 1).copied().unwrap_or(schedule.actions.len())).collect()
}

fn with_schedules(spec: &RunSpec, schedules: &[nemesis::Schedule]) -> RunSpec {
    RunSpec { schedule_override: Some(schedules.to_vec()), ..spec.clone() }
}

fn action_count(schedules: &[nemesis::Schedule]) -> usize {
    schedules.iter().map(|s| s.actions.len()).sum()
}

/// What a shrink found: the smallest run still flagged.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The run, with its schedules and knobs shrunk.
    pub spec: RunSpec,
    /// Nemesis actions before and after.
    pub actions_before: usize,
    /// Nemesis actions left.
    pub actions_after: usize,
    /// Client ops of the original run and of the smallest.
    pub ops_before: u64,
    /// Client ops of the smallest run.
    pub ops_after: u64,
    /// Simulations spent.
    pub attempts: usize,
    /// The smallest run's directory.
    pub run_dir: PathBuf,
}

/// Greedy shrink of a flagged run: drop whole fault windows, then single
/// actions, then end the fault phase after the last action left (halving it
/// when none is), then halve the offered rate, each kept only while the run
/// still shows what it showed (invalid, or anomalies). Every step is a whole
/// simulation from the same seed, so what is kept replays exactly; at most
/// `budget` simulations.
pub fn shrink(spec: &RunSpec, original: &SeedRow, dir: &Path, budget: usize) -> Result<Shrunk> {
    let keep = Keep::of(original);
    let mut s = Shrinker { dir, keep, budget, attempts: 0, best: None };
    let mut current = spec.schedule_override.clone().unwrap_or_else(|| crate::run::schedules(spec));
    let actions_before = action_count(&current);
    // The run as swept, once more: its ops, and a check that it still shows it.
    if s.reproduces(&with_schedules(spec, &current), "the seed as swept") != Some(true) {
        bail!(
            "seed {} ({}) did not show it again when re-run: not deterministic, or the budget is spent",
            spec.seed,
            spec.name
        );
    }
    let ops_before = s.best.as_ref().map_or(0, |b| b.1);

    // Whole windows, last first (later faults matter less often), until a pass drops none.
    'windows: loop {
        for si in 0..current.len() {
            for w in windows(&current[si]).into_iter().rev() {
                let mut candidate = current.clone();
                let dropped: Vec<&str> =
                    candidate[si].actions.drain(w.clone()).map(|a| a.action.name()).collect::<Vec<_>>();
                let what = format!("drop {} at {} ms", dropped.join("+"), current[si].actions[w.start].at_ms);
                match s.reproduces(&with_schedules(spec, &candidate), &what) {
                    Some(true) => {
                        current = candidate;
                        continue 'windows;
                    }
                    Some(false) => {}
                    None => break 'windows,
                }
            }
        }
        break;
    }
    // Single actions (a heal dropped leaves its fault on until the final heal).
    'actions: loop {
        for si in 0..current.len() {
            for ai in (0..current[si].actions.len()).rev() {
                let mut candidate = current.clone();
                let gone = candidate[si].actions.remove(ai);
                let what = format!("drop {} at {} ms", gone.action.name(), gone.at_ms);
                match s.reproduces(&with_schedules(spec, &candidate), &what) {
                    Some(true) => {
                        current = candidate;
                        continue 'actions;
                    }
                    Some(false) => {}
                    None => break 'actions,
                }
            }
        }
        break;
    }
    let mut smallest = with_schedules(spec, &current);
    // A shorter fault phase: fewer ops. Just past the last action left, or halved when none is.
    loop {
        let last_ms = current.iter().flat_map(|s| s.actions.iter().map(|a| a.at_ms)).max();
        let limit_s = smallest.knobs.time_limit_s;
        let shorter_s = match last_ms {
            Some(ms) => ms / 1_000 + 1,
            None => limit_s / 2,
        }
        .max(1);
        if shorter_s >= limit_s {
            break;
        }
        let mut trial = smallest.clone();
        trial.knobs.time_limit_s = shorter_s;
        match s.reproduces(&trial, &format!("fault phase {limit_s} s -> {shorter_s} s")) {
            Some(true) => smallest = trial,
            _ => break,
        }
        if last_ms.is_some() {
            break; // Already just past the last action.
        }
    }
    // Fewer ops per second.
    while smallest.knobs.rate >= 2.0 {
        let mut trial = smallest.clone();
        trial.knobs.rate = (smallest.knobs.rate / 2.0).floor();
        match s.reproduces(&trial, &format!("rate {} -> {} ops/s", smallest.knobs.rate, trial.knobs.rate)) {
            Some(true) => smallest = trial,
            _ => break,
        }
    }
    let (best_dir, ops_after) = s.best.take().expect("the first attempt reproduced");
    let run_dir = dir.join(format!("shrunk-seed-{}", spec.seed));
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::rename(&best_dir, &run_dir)
        .with_context(|| format!("cannot move {} to {}", best_dir.display(), run_dir.display()))?;
    let _ = std::fs::remove_dir_all(dir.join(format!("shrink-{}", spec.seed)));
    Ok(Shrunk {
        actions_after: action_count(&current),
        spec: smallest,
        actions_before,
        ops_before,
        ops_after,
        attempts: s.attempts,
        run_dir,
    })
}

/// Shrinks `row`'s run and says what is left and how to replay it.
fn shrink_report(spec: &RunSpec, row: &SeedRow, dir: &Path, campaign: &str) -> Result<String> {
    let shrunk = shrink(spec, row, dir, SHRINK_ATTEMPTS)?;
    let schedules = shrunk.spec.schedule_override.clone().unwrap_or_default();
    let path = dir.join("shrunk-schedule.json");
    write_json(&path, &schedules)?;
    let knobs = &shrunk.spec.knobs;
    let replay = replay(&shrunk.spec, dir, &format!("{campaign}-seed-{}-shrunk", spec.seed), &path);
    let mut text = format!(
        "shrunk seed {} ({}) in {} simulations: {} of {} nemesis actions, fault phase {} s, rate {} ops/s, {} of {} client ops; still {}\n",
        spec.seed,
        spec.name,
        shrunk.attempts,
        shrunk.actions_after,
        shrunk.actions_before,
        knobs.time_limit_s,
        knobs.rate,
        shrunk.ops_after,
        shrunk.ops_before,
        match Keep::of(row) {
            Keep::Invalid => "invalid",
            Keep::Promised => "showing an anomaly its configuration promises away",
            Keep::Any => "showing an anomaly",
        },
    );
    text.push_str(&format!("smallest schedule ({}):\n", path.display()));
    for schedule in &schedules {
        let kind = schedule.kind.map_or("?", |k| k.as_str());
        if schedule.actions.is_empty() {
            text.push_str(&format!("  {kind}: no actions\n"));
        }
        for a in &schedule.actions {
            text.push_str(&format!("  {kind} {:>6} ms {}\n", a.at_ms, serde_json::to_string(&a.action)?));
        }
    }
    text.push_str(&format!("its run: {}\nreplay: {replay}\n", shrunk.run_dir.display()));
    Ok(text)
}

/// The table of flagged seeds, the seeds that only measured something,
/// and with `--swarm` the fault kinds' presence: a function of the rows
/// alone, so a merge of shards prints exactly what one sweep prints.
fn table(rows: &[SeedRow], flagged: &[&SeedRow], swarm: bool) -> String {
    let mut text = String::from("| seed | run | valid | anomalies | measured (not promised) | replay |\n| --- | --- | --- | --- | --- | --- |\n");
    for r in flagged {
        let what = r.error.clone().unwrap_or_else(|| r.anomalies.join(", "));
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | `{}` |\n",
            r.seed,
            r.run,
            validity_label(r.valid),
            what,
            r.measured.join(", "),
            r.replay
        ));
    }
    // Seeds not flagged that still measured something: listed, so nothing is silently dropped.
    let measured_only: Vec<String> = rows
        .iter()
        .filter(|r| !r.flagged() && !r.measured.is_empty())
        .map(|r| format!("seed {} ({})", r.seed, r.measured.join(", ")))
        .collect();
    if !measured_only.is_empty() {
        text.push_str(&format!(
            "\nnot flagged, anomalies the configuration does not promise away (--flag-measured flags them): {}\n",
            measured_only.join("; ")
        ));
    }
    let invalid = rows.iter().filter(|r| r.valid == Validity::False).count();
    let seeds = rows.iter().map(|r| r.seed).collect::<std::collections::BTreeSet<_>>().len();
    text.push_str(&format!(
        "\nworkbench {}: {} of {seeds} seeds flagged ({} runs, {invalid} invalid)\n",
        crate::planted::VERSION,
        flagged_seeds(flagged),
        rows.len(),
    ));
    if swarm {
        let presence: Vec<(u64, Vec<nemesis::NemesisKind>, bool)> =
            rows.iter().map(|r| (r.seed, r.nemesis.clone(), r.flagged())).collect();
        text.push_str("\nswarm: each fault kind's presence in flagged seeds and in all seeds\n");
        text.push_str(&crate::swarm::presence_table(&presence));
    }
    text
}

/// What the sweep cost: wall time, seeds per minute, and per worker (a
/// core, by default), to size a sharded sweep by.
fn totals(rows: &[SeedRow], seeds: usize, wall: std::time::Duration, jobs: usize) -> String {
    let minutes = wall.as_secs_f64() / 60.0;
    let per_minute = seeds as f64 / minutes.max(1e-9);
    let mean_speedup = rows.iter().map(|r| r.speedup).sum::<f64>() / rows.len().max(1) as f64;
    format!(
        "{seeds} seeds in {:.1} s wall on {jobs} workers: {per_minute:.1} seeds/minute, {:.2} seeds/minute per worker (core); \
         each run {mean_speedup:.1} simulated s per wall s on average",
        wall.as_secs_f64(),
        per_minute / jobs.max(1) as f64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{switch_combinations, Matrix};

    /// 3 nodes, N=3, the register under partitions: 4 s of faults, 1 s quiet.
    fn tiny(w: u32, r: u32) -> Matrix {
        let mut m = crate::matrix::tests::matrix();
        m.node_count = 3;
        m.ns = vec![3];
        m.quorums = crate::matrix::count_pairs(&[(w, r)]);
        m.resolutions = vec![history::Resolution::Siblings];
        m.switches = switch_combinations(&[None], &[None], &[None], &[None]);
        m.workloads = vec![crate::spec::WorkloadKind::Register];
        m.nemeses = vec!["partition".parse().unwrap()];
        m.test_count = 1;
        m.knobs.time_limit_s = 4;
        m.knobs.quiet_s = 1;
        m
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wb-explore-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Strict quorums: flagged on every seed with the one-ack bug planted,
    /// on none without it.
    #[test]
    fn a_strict_quorum_sweep_is_flagged_exactly_when_the_bug_is_planted() {
        let dir = temp_dir("strict");
        let rows = sweep(&tiny(2, 2), &[1, 2], &dir, "t", Workers::Threads(2), false, false).unwrap();
        assert_eq!(rows.len(), 2);
        let planted = cfg!(feature = "planted-bug-one-ack");
        for row in &rows {
            assert!(row.error.is_none(), "seed {} ran: {:?}", row.seed, row.error);
            assert_eq!(row.flagged(), planted, "seed {}: {:?} {:?}", row.seed, row.valid, row.anomalies);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// W=R=1 under partitions reads stale values; the shrink keeps that
    /// while it drops what it can, and what it keeps replays.
    #[test]
    fn shrinking_a_flagged_seed_keeps_the_anomaly_with_no_more_faults_or_ops() {
        let dir = temp_dir("shrink");
        let rows = sweep(&tiny(1, 1), &[1], &dir, "t", Workers::Threads(1), true, false).unwrap();
        let row = &rows[0];
        assert!(row.flagged() && row.error.is_none(), "W=R=1 under partitions reads stale: {row:?}");
        let mut m = tiny(1, 1);
        m.seed = row.seed;
        let spec = m.runs().remove(0);
        let shrunk = shrink(&spec, row, &dir, 6).unwrap();
        assert!(shrunk.attempts <= 6);
        assert!(shrunk.actions_after <= shrunk.actions_before);
        assert!(shrunk.ops_after <= shrunk.ops_before, "{shrunk:?}");
        assert!(
            shrunk.actions_after < shrunk.actions_before
                || shrunk.spec.knobs.time_limit_s < 4
                || shrunk.spec.knobs.rate < 100.0,
            "something shrank: {shrunk:?}"
        );
        let again = dir.join("again");
        let (results, _) = simulate_and_check(&shrunk.spec, &again, "test", None).unwrap();
        assert!(!anomalies(&results).1.is_empty(), "the shrunk run replays its (measured) stale reads");
        assert_eq!(ops_of(&results), shrunk.ops_after, "and the same ops");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn windows_keep_a_fault_with_its_heal() {
        let mut spec = tiny(1, 1).runs().remove(0);
        spec.seed = 3;
        for schedule in crate::run::schedules(&spec) {
            let w = windows(&schedule);
            assert_eq!(w.iter().map(|r| r.len()).sum::<usize>(), schedule.actions.len(), "windows cover the schedule");
            for r in &w {
                assert!(schedule.actions[r.start].action.starts_fault(), "{:?}", schedule.actions[r.start]);
            }
        }
    }

    #[test]
    fn seed_ranges_parse_and_bad_ones_say_why() {
        assert_eq!(parse_seeds("3..6").unwrap(), vec![3, 4, 5]);
        assert_eq!(parse_seeds("3..=5").unwrap(), vec![3, 4, 5]);
        assert!(parse_seeds("5..5").is_err());
        assert!(parse_seeds("a..5").unwrap_err().to_string().contains("not a seed"));
        assert!(parse_seeds("7").is_err());
    }
}
