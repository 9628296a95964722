//! A campaign: a matrix of configurations x nemeses, run one after another,
//! each on a fresh cluster, leaving `results/<campaign>/` with a directory per
//! run and `summary.md` with one table per nemesis.
//!
//! Robustness rules: leftovers of an earlier, killed workbench (anything with
//! the label) are removed before the first run; every cluster is torn down
//! after its run, also when the run fails or Ctrl-C arrives; on Ctrl-C the
//! finished runs stay readable and the summary covers them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use checker::{Results, Validity};
use docker::{Cluster, ClusterSpec, DockerCluster, Fault, LocalCluster};
use history::{files, read_history, Resolution, RunConfig};
use nemesis::NemesisKind;
use tracing::{info, warn};
use workload::register::NodeChoice;

use crate::expect::{self, Measured};
use crate::run::{self, write_json, RunSpec};
use crate::table::{self, Row};

/// Where the nodes run.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Containers from this image tag.
    Docker { image: String },
    /// Local processes of this binary.
    Local { binary: PathBuf },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Docker { .. } => "docker",
            Backend::Local { .. } => "local",
        }
    }

    pub fn image(&self) -> String {
        match self {
            Backend::Docker { image } => image.clone(),
            Backend::Local { binary } => binary.display().to_string(),
        }
    }

    /// Whether the backend can perform the faults of `kind`, without starting anything.
    fn supports(&self, kind: NemesisKind) -> bool {
        match (self, kind) {
            (_, NemesisKind::None) => true,
            (Backend::Docker { .. }, _) => true,
            (Backend::Local { .. }, NemesisKind::Partition) => false,
        }
    }
}

/// The campaign's matrix and knobs (already validated).
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub results_dir: PathBuf,
    pub backend: Backend,
    pub node_count: usize,
    pub n: u32,
    /// (W, R) pairs.
    pub quorums: Vec<(u32, u32)>,
    pub resolutions: Vec<Resolution>,
    pub nemeses: Vec<NemesisKind>,
    pub seed: u64,
    pub time_limit_s: u64,
    pub quiet_s: u64,
    pub concurrency: u32,
    pub rate: f64,
    pub keys: u32,
    pub node_choice: NodeChoice,
    pub read_fraction: f64,
    pub rmw_fraction: f64,
    pub request_timeout_ms: u64,
    pub client_timeout_ms: u64,
    pub expect_anomalies: bool,
}

impl Plan {
    pub fn validate(&self) -> Result<()> {
        if self.node_count < self.n as usize {
            bail!("N={} needs at least {} nodes, the cluster has {}", self.n, self.n, self.node_count);
        }
        for (w, r) in &self.quorums {
            if *w == 0 || *r == 0 || *w > self.n || *r > self.n {
                bail!("W={w} R={r} is not valid with N={}: both must be in 1..=N", self.n);
            }
        }
        if self.quorums.is_empty() || self.nemeses.is_empty() || self.resolutions.is_empty() {
            bail!("the matrix is empty: give at least one quorum, resolution and nemesis");
        }
        Ok(())
    }

    /// Every run of the matrix, nemesis-major so each table's rows are adjacent.
    pub fn runs(&self) -> Vec<RunSpec> {
        let mut out = Vec::new();
        for nemesis in &self.nemeses {
            for resolution in &self.resolutions {
                for (w, r) in &self.quorums {
                    out.push(self.run_spec(*nemesis, *resolution, *w, *r));
                }
            }
        }
        out
    }

    fn run_spec(&self, nemesis: NemesisKind, resolution: Resolution, w: u32, r: u32) -> RunSpec {
        RunSpec {
            name: format!("{}-n{}-w{w}-r{r}-{}", nemesis.as_str(), self.n, resolution.as_str()),
            node_count: self.node_count,
            n: self.n,
            w,
            r,
            resolution,
            nemesis,
            seed: self.seed,
            time_limit_s: self.time_limit_s,
            quiet_s: self.quiet_s,
            concurrency: self.concurrency,
            rate: self.rate,
            keys: self.keys,
            node_choice: self.node_choice,
            read_fraction: self.read_fraction,
            rmw_fraction: self.rmw_fraction,
            request_timeout_ms: self.request_timeout_ms,
            client_timeout_ms: self.client_timeout_ms,
        }
    }
}

/// What one run left behind.
struct Outcome {
    run: RunConfig,
    /// None: the run could not be performed on this backend.
    results: Option<Results>,
    unsupported: Option<String>,
}

/// Runs the whole campaign; returns the process exit code.
pub async fn run_campaign(plan: &Plan) -> Result<i32> {
    plan.validate()?;
    let dir = plan.results_dir.join(&plan.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if matches!(plan.backend, Backend::Docker { .. }) {
        let removed = docker::remove_leftovers().await?;
        if removed > 0 {
            warn!("removed {removed} leftover containers/networks of an earlier workbench");
        }
    }
    let runs = plan.runs();
    let mut outcomes = Vec::new();
    for (i, spec) in runs.iter().enumerate() {
        eprintln!("[{}/{}] {} ({} backend, {} s + {} s quiet)", i + 1, runs.len(), spec.name, plan.backend.name(), spec.time_limit_s, spec.quiet_s);
        match one_run(plan, spec, &dir, i).await {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) if e.is::<Interrupted>() => {
                eprintln!("interrupted: the cluster was torn down; {} finished runs are in {}", outcomes.len(), dir.display());
                write_summary(plan, &dir, &outcomes)?;
                return Ok(130);
            }
            Err(e) => return Err(e.context(format!("run {} failed", spec.name))),
        }
    }
    write_summary(plan, &dir, &outcomes)
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
    let run = spec.run_config(plan.backend.name(), &plan.backend.image());
    write_json(&dir.join(files::RUN), &run)?;
    if !plan.backend.supports(spec.nemesis) {
        let why = format!("the {} backend cannot do {} faults", plan.backend.name(), spec.nemesis.as_str());
        let results = unsupported_results(&why);
        write_json(&dir.join(files::RESULTS), &results)?;
        eprintln!("  unsupported: {why}");
        return Ok(Outcome { run, results: None, unsupported: Some(why) });
    }
    let cluster = start_cluster(plan, spec, &dir, index).await?;
    let driven = tokio::select! {
        r = run::drive(spec, cluster.clone(), &dir) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::Error::new(Interrupted)),
    };
    if let Err(e) = cluster.collect_logs().await {
        warn!("collecting node logs failed: {e}");
    }
    cluster.teardown().await.context("tearing the cluster down failed")?;
    let history_path = driven?;
    let results = check_run(&run, &history_path)?;
    write_json(&dir.join(files::RESULTS), &results)?;
    eprintln!("  valid: {}", table::validity_label(results.valid));
    Ok(Outcome { run, results: Some(results), unsupported: None })
}

/// Re-reads the history from disk (so the live verdict is exactly what an
/// offline `workbench check` computes) and runs every checker.
pub fn check_run(run: &RunConfig, history_path: &Path) -> Result<Results> {
    let history = read_history(history_path)?;
    Ok(checker::check_all(&history, run))
}

fn unsupported_results(why: &str) -> Results {
    let nemesis = checker::CheckResult::new(Validity::Unknown).with("reason", serde_json::json!(why));
    Results::from_checkers(BTreeMap::from([("nemesis".to_string(), nemesis)]))
}

async fn start_cluster(plan: &Plan, spec: &RunSpec, dir: &Path, index: usize) -> Result<Arc<dyn Cluster>> {
    let cluster_spec = ClusterSpec {
        name: format!("{}-{index}", short_name(&plan.name)),
        nodes: spec.node_ids(),
        node_args: spec.node_args(),
        log_dir: dir.join("logs"),
    };
    std::fs::create_dir_all(&cluster_spec.log_dir)?;
    info!(cluster = %cluster_spec.name, "starting");
    let cluster: Arc<dyn Cluster> = match &plan.backend {
        Backend::Docker { image } => Arc::new(DockerCluster::start(&cluster_spec, image).await?),
        Backend::Local { binary } => Arc::new(LocalCluster::start(&cluster_spec, binary.clone()).await?),
    };
    debug_assert!(spec.nemesis == NemesisKind::None || cluster.supports(Fault::Partition));
    Ok(cluster)
}

/// Docker object names stay short and unique per campaign.
fn short_name(campaign: &str) -> String {
    let clean: String = campaign.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let tail: String = clean.chars().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
    format!("c{tail}")
}

fn write_summary(plan: &Plan, dir: &Path, outcomes: &[Outcome]) -> Result<i32> {
    let mut groups: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for o in outcomes {
        let row = match (&o.results, &o.unsupported) {
            (Some(results), _) => table::row(&o.run, results),
            (None, why) => table::unsupported_row(&o.run, why.as_deref().unwrap_or("unsupported")),
        };
        groups.entry(table::nemesis_label(&o.run)).or_default().push(row);
    }
    let measured: Vec<Measured<'_>> =
        outcomes.iter().map(|o| Measured { run: &o.run, results: o.results.as_ref() }).collect();
    let verdict = expect::evaluate(&measured, plan.expect_anomalies);
    let text = summary_text(plan, &groups, &verdict);
    std::fs::write(dir.join("summary.md"), &text).with_context(|| format!("cannot write {}/summary.md", dir.display()))?;
    println!("{text}");
    eprintln!("summary: {}", dir.join("summary.md").display());
    Ok(verdict.exit_code())
}

fn summary_text(plan: &Plan, groups: &BTreeMap<String, Vec<Row>>, verdict: &expect::Verdict) -> String {
    let mut text = format!(
        "# Campaign {}\n\nbackend: {} ({}), nodes: {}, seed: {}, time limit: {} s + {} s quiet, \
         concurrency: {}, rate: {} ops/s, keys: {}\n\n",
        plan.name,
        plan.backend.name(),
        plan.backend.image(),
        plan.node_count,
        plan.seed,
        plan.time_limit_s,
        plan.quiet_s,
        plan.concurrency,
        plan.rate,
        plan.keys,
    );
    text.push_str(&table::render(groups));
    text.push_str("## verdict\n\n");
    match verdict.exit_code() {
        0 => text.push_str("Every run is as valid as expected.\n"),
        _ => {
            for f in &verdict.failures {
                text.push_str(&format!("- FAILED: {f}\n"));
            }
            for u in &verdict.unknowns {
                text.push_str(&format!("- unknown: {u}\n"));
            }
        }
    }
    text
}
