//! One run: a cluster, a workload, a nemesis, a history, a verdict.
//!
//! The timeline of a run (all times from the history's time zero):
//! `run` (workload + fault schedule for `time_limit_s`), `heal` (every fault
//! removed), `quiet` (the workload goes on with no faults for `quiet_s`, so
//! hints, repairs and late writes can land), `final` (every key read through
//! every node). Phase changes are recorded as nemesis-process `phase` events
//! so checkers can split figures by phase.
//!
//! The cluster is always torn down by the caller ([`crate::campaign`]), also
//! on error and on Ctrl-C; this module only borrows it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use docker::Cluster;
use history::{files, Op, Recorder, Resolution, RunConfig};
use nemesis::schedule::Rhythm;
use nemesis::NemesisKind;
use serde_json::json;
use workload::register::{self, NodeChoice, RegisterConfig, Target};
use workload::DynamoClient;

use crate::admin_poll::AdminPoller;

/// Everything that defines one run of a campaign.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Directory name inside the campaign, e.g. `partition-n3-w2-r2`.
    pub name: String,
    pub node_count: usize,
    pub n: u32,
    pub w: u32,
    pub r: u32,
    pub resolution: Resolution,
    pub nemesis: NemesisKind,
    pub seed: u64,
    pub time_limit_s: u64,
    /// Fault-free workload time after the final heal.
    pub quiet_s: u64,
    pub concurrency: u32,
    pub rate: f64,
    pub keys: u32,
    pub node_choice: NodeChoice,
    pub read_fraction: f64,
    pub rmw_fraction: f64,
    /// The node's own deadline for gathering W acks / R replies.
    pub request_timeout_ms: u64,
    /// The client's deadline; longer than the node's so its verdict arrives.
    pub client_timeout_ms: u64,
}

impl RunSpec {
    pub fn node_ids(&self) -> Vec<String> {
        (1..=self.node_count).map(|i| format!("n{i}")).collect()
    }

    /// Flags every node of this run gets.
    pub fn node_args(&self) -> Vec<String> {
        vec![
            "--n".into(),
            self.n.to_string(),
            "--w".into(),
            self.w.to_string(),
            "--r".into(),
            self.r.to_string(),
            "--resolution".into(),
            self.resolution.as_str().into(),
            "--request-timeout-ms".into(),
            self.request_timeout_ms.to_string(),
        ]
    }

    pub fn run_config(&self, backend: &str, image: &str) -> RunConfig {
        RunConfig {
            nodes: self.node_ids(),
            n: self.n,
            w: self.w,
            r: self.r,
            sloppy_quorum: false,
            resolution: self.resolution,
            hinted_handoff: false,
            read_repair: false,
            anti_entropy: false,
            workload: "register".into(),
            nemesis: match self.nemesis {
                NemesisKind::None => vec![],
                kind => vec![kind.as_str().into()],
            },
            seed: self.seed,
            time_limit_s: self.time_limit_s,
            concurrency: self.concurrency,
            rate: self.rate,
            backend: backend.into(),
            node_image: image.into(),
            started_at: chrono::Utc::now().to_rfc3339(),
            extra: extra_fields(self),
        }
    }

    fn register_config(&self) -> RegisterConfig {
        RegisterConfig {
            concurrency: self.concurrency,
            keys: self.keys,
            rate: self.rate,
            read_fraction: self.read_fraction,
            rmw_fraction: self.rmw_fraction,
            node_choice: self.node_choice,
            seed: self.seed,
        }
    }
}

/// Knobs beyond the contract's fields, kept so a run can be repeated exactly.
fn extra_fields(spec: &RunSpec) -> serde_json::Map<String, serde_json::Value> {
    let value = json!({
        "quiet_s": spec.quiet_s,
        "keys": spec.keys,
        "node_choice": format!("{:?}", spec.node_choice).to_lowercase(),
        "read_fraction": spec.read_fraction,
        "rmw_fraction": spec.rmw_fraction,
        "request_timeout_ms": spec.request_timeout_ms,
        "client_timeout_ms": spec.client_timeout_ms,
    });
    match value {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n").with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

fn phase(recorder: &Recorder, name: &str) -> Result<()> {
    recorder.record(Op::nemesis("phase", json!({"phase": name})))?;
    Ok(())
}

/// Drives the workload and the nemesis on a started cluster and writes
/// `history.jsonl` and `admin.jsonl` into `dir`. Returns the history path.
pub async fn drive(spec: &RunSpec, cluster: Arc<dyn Cluster>, dir: &Path) -> Result<PathBuf> {
    let history_path = dir.join(files::HISTORY);
    let start = Instant::now();
    let recorder = Arc::new(Recorder::create(&history_path, start)?);
    let poller = AdminPoller::start(cluster.clone(), recorder.clone(), &dir.join(files::ADMIN))?;
    let targets = targets(spec, cluster.as_ref())?;
    let config = spec.register_config();

    phase(&recorder, "run")?;
    let fault_phase = Duration::from_secs(spec.time_limit_s);
    let total = fault_phase + Duration::from_secs(spec.quiet_s);
    let workload = tokio::spawn({
        let (config, targets, recorder) = (config.clone(), targets.clone(), recorder.clone());
        async move { register::run(&config, &targets, recorder, total).await }
    });
    run_nemesis(spec, cluster.as_ref(), &recorder, start, fault_phase).await?;
    poller.snapshot_now().await;
    phase(&recorder, "quiet")?;
    let summary = workload.await.context("the workload task panicked")?;
    phase(&recorder, "final")?;
    register::final_reads(&config, &targets, recorder.clone(), summary.max_process + 1).await;
    poller.stop().await?;
    Ok(history_path)
}

/// Executes the seeded schedule during the fault phase, then heals all.
async fn run_nemesis(
    spec: &RunSpec,
    cluster: &dyn Cluster,
    recorder: &Recorder,
    start: Instant,
    fault_phase: Duration,
) -> Result<()> {
    let mut rng = workload::seeded_rng(spec.seed, "nemesis", 0);
    let fault_ms = fault_phase.as_millis() as u64;
    let schedule = nemesis::schedule::plan(spec.nemesis, &spec.node_ids(), fault_ms, Rhythm::default(), &mut rng);
    let executed = nemesis::execute(&schedule, cluster, recorder, start).await;
    tokio::time::sleep_until((start + fault_phase).into()).await;
    phase(recorder, "heal")?;
    let healed = if spec.nemesis == NemesisKind::None { Ok(()) } else { nemesis::heal_all(cluster, recorder).await };
    executed.context("the nemesis failed")?;
    healed.context("the final heal failed")?;
    Ok(())
}

fn targets(spec: &RunSpec, cluster: &dyn Cluster) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    for node in cluster.nodes() {
        let endpoint = cluster.endpoint(&node)?;
        let client = DynamoClient::new(&endpoint, spec.client_timeout_ms)?;
        out.push(Target { node, client: Arc::new(client) });
    }
    Ok(out)
}
