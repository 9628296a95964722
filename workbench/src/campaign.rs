//! A campaign: the matrix's runs one after another, each on a fresh cluster,
//! leaving `results/<campaign>/` with a directory per run (history, results,
//! plots), `summary.md` with one table per nemesis and workload, and
//! `index.html` linking every run.
//!
//! Robustness rules: leftovers of an earlier, killed workbench are removed
//! before the first run; every cluster is torn down after its run, also when
//! the run fails or Ctrl-C arrives; the summary and index are rewritten after
//! every run, so an interrupted campaign leaves its finished runs readable;
//! `--resume` skips every run whose `results.json` is already there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use checker::{Results, Validity};
use docker::{Cluster, ClusterSpec};
use history::compact::CompactHistory;
use history::{files, read_admin, read_replica_reads, read_wars, RunConfig};
use tracing::{info, warn};

use crate::backend::Backend;
use crate::expect::{self, Measured};
use crate::json_file::{read_json, write_json};
use crate::matrix::Matrix;
use crate::progress::Progress;
use crate::run::{self, apply_status, node_status};
use crate::spec::RunSpec;
use crate::table::Outcome;
use crate::{index, plot, table, timeline};

/// A campaign: its name, where it writes, the backend and the matrix.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Directory name under `results_dir`.
    pub name: String,
    /// Parent of the campaign directory.
    pub results_dir: PathBuf,
    /// Where the nodes run.
    pub backend: Backend,
    /// Every run to do.
    pub matrix: Matrix,
    /// Also require the known anomalies (see [`crate::expect`]).
    pub expect_anomalies: bool,
    /// Skip runs already finished in this campaign's directory.
    pub resume: bool,
}

/// Runs the whole campaign; returns the process exit code.
pub async fn run_campaign(plan: &Plan) -> Result<i32> {
    plan.matrix.validate()?;
    let dir = plan.results_dir.join(&plan.name);
    if !plan.resume && has_runs(&dir) {
        bail!("{} already holds runs: pass --resume to finish it, or choose another --name", dir.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if matches!(plan.backend, Backend::Docker { .. }) {
        let removed = docker::remove_leftovers().await?;
        if removed > 0 {
            warn!("removed {removed} leftover containers/networks of an earlier workbench");
        }
    }
    let runs = plan.matrix.runs();
    let progress = Progress::new(runs.len());
    let mut outcomes = Vec::new();
    for (i, spec) in runs.iter().enumerate() {
        if plan.resume {
            if let Some(done) = finished(&dir, spec)? {
                progress.skip(&spec.name);
                outcomes.push(done);
                continue;
            }
        }
        progress.start(&spec.name, &format!("{} backend, {} s", plan.backend.name(), spec.knobs.total_s()));
        match one_run(plan, spec, &dir, i).await {
            Ok(outcome) => {
                progress.finish(&spec.name, &verdict_label(&outcome));
                outcomes.push(outcome);
                write_reports(plan, &dir, &outcomes, None)?;
            }
            Err(e) if e.is::<Interrupted>() => {
                progress.abandon();
                eprintln!(
                    "interrupted: the cluster was torn down; {} finished runs are in {} (resume with --resume)",
                    outcomes.len(),
                    dir.display()
                );
                write_reports(plan, &dir, &outcomes, Some(&format!("interrupted by Ctrl-C during run {}", spec.name)))?;
                return Ok(130);
            }
            Err(e) => {
                progress.abandon();
                let e = e.context(format!("run {} failed", spec.name));
                write_reports(plan, &dir, &outcomes, Some(&format!("{e:#}")))?;
                return Err(e);
            }
        }
    }
    progress.done();
    write_reports(plan, &dir, &outcomes, Some(""))
}

/// Whether `dir` holds at least one run directory (one with a `run.json`).
pub fn has_runs(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|entries| entries.flatten().any(|e| e.path().join(files::RUN).exists())).unwrap_or(false)
}

fn verdict_label(o: &Outcome) -> String {
    match (&o.results, &o.unsupported) {
        (Some(r), _) => format!("valid: {}", table::validity_label(r.valid)),
        (None, why) => format!("unsupported: {}", why.as_deref().unwrap_or("?")),
    }
}

/// A run of this campaign that already has its results (for `--resume`).
fn finished(dir: &Path, spec: &RunSpec) -> Result<Option<Outcome>> {
    let run_dir = dir.join(&spec.name);
    let (run_path, results_path) = (run_dir.join(files::RUN), run_dir.join(files::RESULTS));
    if !run_path.exists() || !results_path.exists() {
        return Ok(None);
    }
    let run: RunConfig = read_json(&run_path)?;
    let results: Results = read_json(&results_path)?;
    let performed = !results.checkers.contains_key(UNSUPPORTED_CHECKER);
    let unsupported = (!performed).then(|| "not performed (unsupported by the backend)".to_string());
    Ok(Some(Outcome { run, dir_name: spec.name.clone(), results: performed.then_some(results), unsupported }))
}

/// Ctrl-C arrived during a run; the cluster has been torn down.
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted by Ctrl-C")
    }
}

impl std::error::Error for Interrupted {}

async fn one_run(plan: &Plan, spec: &RunSpec, campaign_dir: &Path, index: usize) -> Result<Outcome> {
    let dir = campaign_dir.join(&spec.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let _ = std::fs::remove_file(dir.join(files::RESULTS));
    let mut run = spec.run_config(plan.backend.name(), &plan.backend.image());
    record_origin(plan, spec, &dir, index, &mut run);
    if let Some(hosts) = plan.backend.hosts() {
        run.extra.insert(HOSTS.into(), serde_json::json!(hosts));
    }
    write_json(&dir.join(files::RUN), &run)?;
    if let Some(why) = plan.backend.cannot(&spec.nemesis, spec.store.kind()) {
        write_json(&dir.join(files::RESULTS), &unsupported_results(&why))?;
        return Ok(Outcome { run, dir_name: spec.name.clone(), results: None, unsupported: Some(why) });
    }
    let driven = match plan.backend {
        Backend::Sim => crate::sim_run::drive(spec, &dir, &mut run).await,
        _ => drive_real(plan, spec, &dir, index, &mut run).await?,
    };
    if let Some(nemesis::NemesisError::Unsupported { .. }) = driven.as_ref().err().and_then(|e| e.downcast_ref()) {
        let why = format!("{:#}", driven.as_ref().err().map(|e| e.to_string()).unwrap_or_default());
        write_json(&dir.join(files::RESULTS), &unsupported_results(&why))?;
        return Ok(Outcome { run, dir_name: spec.name.clone(), results: None, unsupported: Some(why) });
    }
    let history_path = driven?;
    let results = check_run(&run, &history_path)?;
    write_json(&dir.join(files::RESULTS), &results)?;
    if let Err(e) = plot::plot_run(&dir, &run, &results) {
        warn!("plots for {} failed: {e:#}", spec.name);
    }
    timeline::write_timeline(&dir, &results)?;
    Ok(Outcome { run, dir_name: spec.name.clone(), results: Some(results), unsupported: None })
}

/// The `run.json` key naming the tool that wrote it (`workbench <version>`):
/// `workbench check` reads only run directories that carry it.
pub const WRITTEN_BY: &str = "written_by";
/// The `run.json` key of the run's place in its campaign's matrix (from 0),
/// so `workbench check` prints the rows in the campaign's order.
pub const RUN_INDEX: &str = "run_index";
/// The `run.json` key of the one command that replays this run ([`crate::replay`]).
pub const REPLAY: &str = "replay";
/// The `run.json` key: whether the campaign required the known anomalies.
pub const EXPECT_ANOMALIES: &str = "expect_anomalies";

/// The `run.json` key of an SSH run's hosts (`user@address:port`, no keys).
pub const HOSTS: &str = "hosts";
/// The `run.json` key of where the nodes' data stays after the run (`--keep-data`).
pub const KEPT_DATA: &str = "kept_data";

/// `run.json`'s `written_by`: this tool and its version.
pub fn written_by() -> serde_json::Value {
    serde_json::json!(format!("workbench {}", env!("CARGO_PKG_VERSION")))
}

/// Records in `run.json` who wrote it, the run's place in the matrix, the
/// campaign's `--expect-anomalies` and the command that replays the run.
fn record_origin(plan: &Plan, spec: &RunSpec, dir: &Path, index: usize, run: &mut RunConfig) {
    let name = format!("{}-{}-replay", plan.name, spec.name);
    let schedule_file = dir.join(crate::run::SCHEDULE_FILE);
    let backend_args = plan.backend.replay_flags();
    let cx = crate::replay::ReplayContext {
        backend: plan.backend.name(),
        backend_args: &backend_args,
        results_dir: &plan.results_dir,
        name: &name,
        expect_anomalies: plan.expect_anomalies,
        schedule_file: &schedule_file,
    };
    let extra = &mut run.extra;
    extra.insert(WRITTEN_BY.into(), written_by());
    extra.insert(RUN_INDEX.into(), serde_json::json!(index));
    extra.insert(EXPECT_ANOMALIES.into(), serde_json::json!(plan.expect_anomalies));
    extra.insert(REPLAY.into(), serde_json::json!(crate::replay::replay_command(spec, &cx)));
}

/// Starts a real cluster for `spec`, drives the run on it and tears it down
/// (the outer error); the inner result is the run's own.
async fn drive_real(
    plan: &Plan,
    spec: &RunSpec,
    dir: &Path,
    index: usize,
    run: &mut RunConfig,
) -> Result<Result<PathBuf>> {
    let cluster = tokio::select! {
        started = start_cluster(plan, spec, dir, index) => started?,
        _ = tokio::signal::ctrl_c() => {
            // The start's future is dropped mid-way: no handle to tear down.
            let name = cluster_name(plan, index);
            plan.backend.clean_interrupted_start(&name).await.context("cleaning up the interrupted start failed")?;
            return Ok(Err(anyhow::Error::new(Interrupted)));
        }
    };
    record_mechanisms(cluster.as_ref(), spec, run);
    let kept = cluster.kept_data();
    if !kept.is_empty() {
        run.extra.insert(KEPT_DATA.into(), serde_json::json!(kept));
    }
    if spec.store == crate::store::Store::Dynamo {
        // Peer stores have no admin service to ask.
        record_status(cluster.as_ref(), run).await;
    }
    write_json(&dir.join(files::RUN), &*run)?;
    let driven = tokio::select! {
        r = run::drive(spec, cluster.clone(), dir) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::Error::new(Interrupted)),
    };
    if let Err(e) = cluster.collect_logs().await {
        warn!("collecting node logs failed: {e}");
    }
    cluster.teardown().await.context("tearing the cluster down failed")?;
    if !kept.is_empty() {
        eprintln!("{}: the nodes' data is kept (--keep-data) at {}", spec.name, kept.join(" "));
    }
    Ok(driven)
}

/// Records in `run.json` (`fault_mechanisms`, e.g. `{"partition":
/// "linkproxy"}`) which of the run's faults the backend performs its own
/// way rather than as the nemesis event's words say (iptables, tc netem,
/// signals, libfaketime); nothing when there are none.
fn record_mechanisms(cluster: &dyn Cluster, spec: &RunSpec, run: &mut RunConfig) {
    spec.record_mechanisms(run, |fault| cluster.fault_mechanism(fault));
}

/// Records what the nodes report in `Admin.Status` as in force: the
/// storage engine (so an expectation can depend on whether data survives a
/// kill) and the four switches, instead of assuming the node's defaults.
async fn record_status(cluster: &dyn Cluster, run: &mut RunConfig) {
    if let Some(status) = node_status(cluster).await {
        apply_status(&status, run);
    }
}

/// Re-reads the history (and admin snapshots) from disk, so the live verdict
/// is exactly what an offline `workbench check` computes, and runs every checker.
pub fn check_run(run: &RunConfig, history_path: &Path) -> Result<Results> {
    let history = CompactHistory::read(history_path)?;
    let admin_path = history_path.with_file_name(files::ADMIN);
    let admin = read_admin(&admin_path)?;
    let replica_reads = read_replica_reads(&history_path.with_file_name(files::REPLICA_READS))?;
    let wars = read_wars(&history_path.with_file_name(files::WARS))?;
    let extras = checker::RunExtras { replica_reads: replica_reads.as_deref(), wars: wars.as_ref() };
    Ok(checker::check_run_files(&history, run, &admin, extras))
}

/// The only checker in the results of a run the backend could not perform.
const UNSUPPORTED_CHECKER: &str = "nemesis";

fn unsupported_results(why: &str) -> Results {
    let nemesis = checker::CheckResult::new(Validity::Unknown).with("reason", serde_json::json!(why));
    Results::from_checkers(BTreeMap::from([(UNSUPPORTED_CHECKER.to_string(), nemesis)]))
}

async fn start_cluster(plan: &Plan, spec: &RunSpec, dir: &Path, index: usize) -> Result<Arc<dyn Cluster>> {
    let cluster_spec = ClusterSpec {
        name: cluster_name(plan, index),
        nodes: spec.node_ids(),
        node_args: spec.node_args(),
        log_dir: dir.join("logs"),
        link_proxy: plan.backend.needs_link_proxy(&spec.nemesis, spec.store.kind()).then_some(spec.seed),
        clock_faults: spec.nemesis.kinds.iter().any(|kind| kind.fault() == Some(docker::Fault::Clock)),
        power_loss: spec.nemesis.kinds.iter().any(|kind| kind.fault() == Some(docker::Fault::PowerLoss)),
    };
    std::fs::create_dir_all(&cluster_spec.log_dir)?;
    info!(cluster = %cluster_spec.name, "starting");
    plan.backend.start(&cluster_spec, spec.store.kind()).await
}

/// The cluster of the campaign's run `index`: its Docker label, its
/// directory on SSH hosts.
fn cluster_name(plan: &Plan, index: usize) -> String {
    format!("{}-{index}", short_name(&plan.name))
}

/// Docker object names stay short and unique per campaign.
fn short_name(campaign: &str) -> String {
    let clean: String = campaign.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let tail: String = clean.chars().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
    format!("c{tail}")
}

/// Rewrites `summary.md` and `index.html`; returns the exit code so far.
/// `stopped` is set on the last call: `""` when every run was attempted,
/// else why the campaign stopped early (then the summary is printed, and
/// leads with that: the runs that did not finish were never checked).
fn write_reports(plan: &Plan, dir: &Path, outcomes: &[Outcome], stopped: Option<&str>) -> Result<i32> {
    let groups = table::group(outcomes.iter().map(|o| (&o.run, o.results.as_ref(), o.unsupported.as_deref())));
    let measured: Vec<Measured<'_>> =
        outcomes.iter().map(|o| Measured { run: &o.run, results: o.results.as_ref() }).collect();
    let mut verdict = expect::evaluate(&measured, plan.expect_anomalies);
    let planned = plan.matrix.runs().len();
    if outcomes.len() < planned {
        // An interrupted or failed campaign must not read as a clean bill.
        let why = stopped.filter(|w| !w.is_empty()).unwrap_or("still running");
        verdict.incomplete = Some(format!(
            "{} of {planned} runs finished ({why}); `--resume --name {}` runs the rest",
            outcomes.len(),
            plan.name
        ));
    }
    let text = summary_text(&Header::of_plan(plan), &groups, &verdict);
    std::fs::write(dir.join("summary.md"), &text)
        .with_context(|| format!("cannot write {}/summary.md", dir.display()))?;
    index::write_index(dir, &plan.name, outcomes, &verdict)?;
    if stopped.is_some() {
        println!("{text}");
        eprintln!("summary: {}\nindex: {}", dir.join("summary.md").display(), dir.join("index.html").display());
    }
    Ok(verdict.exit_code())
}

/// What a summary's header says about a campaign; `workbench check`
/// rebuilds it from the runs' `run.json` files ([`Header::of_runs`]).
pub struct Header {
    /// The campaign's name.
    pub name: String,
    /// The backend's name (`sim`, `docker`, `local`, `ssh`).
    pub backend: String,
    /// The node image, binary or simulated library.
    pub image: String,
    /// Cluster size.
    pub node_count: usize,
    /// The campaign's seed (repetition `i` ran with seed + i).
    pub seed: u64,
    /// The knobs every run shared.
    pub knobs: history::Knobs,
    /// Runs per configuration.
    pub test_count: u32,
    /// Rows skipped for a pair above their N ([`Matrix::skipped`]).
    pub skipped: Vec<String>,
}

impl Header {
    /// The header of a campaign about to run `plan`.
    fn of_plan(plan: &Plan) -> Header {
        let m = &plan.matrix;
        Header {
            name: plan.name.clone(),
            backend: plan.backend.name().into(),
            image: plan.backend.image(),
            node_count: m.node_count,
            seed: m.seed,
            knobs: m.knobs.clone(),
            test_count: m.test_count,
            skipped: m.skipped(),
        }
    }

    /// The header of the campaign `name` whose runs (in matrix order) are `runs`.
    pub fn of_runs(name: &str, runs: &[&RunConfig]) -> Option<Header> {
        let first = runs.first()?;
        Some(Header {
            name: name.into(),
            backend: first.backend.clone(),
            image: first.node_image.clone(),
            node_count: first.nodes.len(),
            seed: first.seed.wrapping_sub(u64::from(first.labels.test_index)),
            knobs: first.knobs.clone(),
            test_count: runs.iter().map(|r| r.labels.test_index + 1).max().unwrap_or(1),
            skipped: Vec::new(),
        })
    }
}

/// `summary.md`, as a campaign writes it and `workbench check` prints it:
/// the header, the column legend, one table per nemesis and workload, the verdict.
pub fn summary_text(h: &Header, groups: &BTreeMap<String, Vec<table::Row>>, verdict: &expect::Verdict) -> String {
    let k = &h.knobs;
    let mut text = format!(
        "# Campaign {}\n\nbackend: {} ({}), nodes: {}, seed: {}, phases: {} s warm-up + {} s faults + {} s quiet, \
         concurrency: {}, rate: {} ops/s, keys: {} ({}), tests per configuration: {}\n\n",
        h.name,
        h.backend,
        h.image,
        h.node_count,
        h.seed,
        k.warmup_s,
        k.time_limit_s,
        k.quiet_s,
        k.concurrency,
        k.rate,
        k.keys,
        k.key_distribution.label(),
        h.test_count,
    );
    if !h.skipped.is_empty() {
        text.push_str(&format!("Skipped (W or R above N): {}.\n\n", h.skipped.join(", ")));
    }
    if let Some(incomplete) = &verdict.incomplete {
        text.push_str(&format!("**Incomplete, verdict unknown: {incomplete}.**\n\n"));
    }
    text.push_str(table::LEGEND);
    text.push_str(&table::render(groups));
    text.push_str("## verdict\n\n");
    text.push_str(&verdict.markdown());
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::tests::matrix;

    #[test]
    fn resume_finds_finished_runs_and_only_those() {
        let dir = std::env::temp_dir().join(format!("wb-resume-{}", std::process::id()));
        let runs = matrix().runs();
        let (done, todo) = (&runs[0], &runs[1]);
        let run_dir = dir.join(&done.name);
        std::fs::create_dir_all(&run_dir).unwrap();
        write_json(&run_dir.join(files::RUN), &done.run_config("docker", "img")).unwrap();
        let results =
            Results::from_checkers(BTreeMap::from([("stats".to_string(), checker::CheckResult::new(Validity::True))]));
        write_json(&run_dir.join(files::RESULTS), &results).unwrap();
        std::fs::write(run_dir.join(files::HISTORY), "").unwrap();
        assert!(has_runs(&dir));
        let found = finished(&dir, done).unwrap().expect("a finished run is found");
        assert!(found.results.is_some() && found.unsupported.is_none());
        assert!(finished(&dir, todo).unwrap().is_none(), "an unfinished run is redone");
        // A run without its results.json (interrupted mid-run) is redone too.
        std::fs::remove_file(run_dir.join(files::RESULTS)).unwrap();
        assert!(finished(&dir, done).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_campaign_stopped_early_leads_with_an_unknown_verdict_and_the_reason() {
        let dir = std::env::temp_dir().join(format!("wb-stopped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plan = Plan {
            name: "stopped".into(),
            results_dir: dir.clone(),
            backend: Backend::Local { binary: "/nonexistent/dynamo-node".into() },
            matrix: matrix(),
            expect_anomalies: true,
            resume: false,
        };
        let planned = plan.matrix.runs().len();
        for why in ["interrupted by Ctrl-C during run r0", "run r0 failed: image \"x\" is not present"] {
            assert_eq!(write_reports(&plan, &dir, &[], Some(why)).unwrap(), 2, "nothing checked: unknown");
            let text = std::fs::read_to_string(dir.join("summary.md")).unwrap();
            assert!(!text.contains("Every run is as valid as expected"), "{text}");
            let lead =
                text.find(&format!("Incomplete, verdict unknown: 0 of {planned} runs finished ({why})")).expect(&text);
            assert!(lead < text.find("| column | meaning |").unwrap(), "the reason comes before the tables: {text}");
            assert!(text.contains("Verdict unknown: 0 of"), "{text}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
