//! One run: a cluster, a workload, nemeses, a history, a verdict.
//!
//! The timeline of a run (all times from the history's time zero), each
//! phase start recorded as a nemesis-process `phase` event so checkers can
//! split figures by phase:
//! `warm-up` (workload, no faults, `warmup_s`), `faults` (workload plus every
//! nemesis on its own seeded schedule, `time_limit_s`), `heal` (every fault
//! still in force undone), `quiet` (workload, no faults, `quiet_s`, so hints,
//! repairs and late writes can land), `final` (every key read through every
//! node). Between `quiet` and `final`, for our store, each home replica of
//! every key with a hinted write is read directly (`replica_reads.jsonl`).
//!
//! The cluster is always torn down by the caller ([`crate::campaign`]), also
//! on error and on Ctrl-C; this module only borrows it.
//!
//! What the nodes report in force when the run starts ([`node_status`],
//! written into `run.json` by [`apply_status`]) is read here too, for both
//! callers: the campaign on a real cluster, and the simulated run
//! ([`crate::sim_run`]) inside its simulation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use anyhow::{Context, Result};
use docker::Cluster;
use history::{files, Op, Recorder, RunConfig};
use nemesis::{FaultState, NemesisKind, Rhythm, Schedule};
use serde_json::json;
use tokio::sync::Mutex;
use tracing::warn;
use workload::register::{self, RunSummary, Target};
use workload::{prefix, set, DynamoClient, EtcdClient, RedisClient};

use crate::store::{RedisRead, Store};

use crate::admin_poll::AdminPoller;
use crate::json_file::write_json;
use crate::spec::{RunSpec, WorkloadKind};

/// File name of the planned nemesis schedules inside a run directory.
pub const SCHEDULE_FILE: &str = "schedule.json";

fn phase(recorder: &Recorder, name: &str) -> Result<()> {
    recorder.record(Op::nemesis("phase", json!({"phase": name})))?;
    Ok(())
}

/// The schedules of every nemesis of `spec`, each from its own stream of
/// the seed: pure, so a test (and `schedule.json`) can compare two runs.
pub fn schedules(spec: &RunSpec) -> Vec<Schedule> {
    schedules_with(spec, |_| Rhythm::default())
}

/// [`schedules`] with each kind's own rhythm (`explore --swarm` draws
/// some): a kind given the default rhythm gets exactly its schedule there.
pub fn schedules_with(spec: &RunSpec, rhythm_of: impl Fn(NemesisKind) -> Rhythm) -> Vec<Schedule> {
    let fault_ms = spec.knobs.time_limit_s * 1_000;
    let (nodes, keys) = (spec.node_ids(), (0..spec.knobs.keys).map(workload::key_name).collect::<Vec<_>>());
    let dcs = spec.layout.members(&nodes);
    let scope = nemesis::Scope { nodes: &nodes, keys: &keys, dcs: &dcs };
    let rng_for = |k: NemesisKind| workload::seeded_rng(spec.seed, &format!("nemesis-{}", k.stream_name()), 0);
    let kinds = spec.nemesis.kinds.iter().filter(|k| **k != NemesisKind::None);
    kinds.map(|k| nemesis::schedule::plan(*k, scope, fault_ms, rhythm_of(*k), &mut rng_for(*k))).collect()
}

/// What the first node reports in `Admin.Status`, over the cluster's own
/// channel (TCP, or the simulator's sockets); None, with a warning, if it
/// does not answer.
pub async fn node_status(cluster: &dyn Cluster) -> Option<proto::StatusResponse> {
    let node = cluster.nodes().first().cloned()?;
    let channel = cluster.channel(&node, std::time::Duration::from_secs(2)).ok()?;
    match proto::admin_client::AdminClient::new(channel).status(proto::StatusRequest {}).await {
        Ok(status) => Some(status.into_inner()),
        Err(e) => {
            warn!("cannot read what is in force from {node}: {e}; run.json keeps the flags passed");
            None
        }
    }
}

/// Writes `status`'s storage engine and switches into `run`.
pub fn apply_status(status: &proto::StatusResponse, run: &mut RunConfig) {
    run.labels.storage = Some(status.storage.clone());
    let reported = [
        (&mut run.sloppy_quorum, status.sloppy_quorum),
        (&mut run.hinted_handoff, status.hinted_handoff),
        (&mut run.read_repair, status.read_repair),
        (&mut run.anti_entropy, status.anti_entropy),
    ];
    for (field, value) in reported {
        match value {
            Some(v) => *field = v,
            None => warn!("the node does not report its switches (an older node); run.json keeps the flags passed"),
        }
    }
    // Only a test build has any; its runs must say so wherever they are read.
    if !status.planted_bugs.is_empty() {
        run.extra.insert("planted_bugs".into(), serde_json::json!(status.planted_bugs));
    }
}

/// Drives the workload and the nemeses on a started cluster and writes
/// `history.jsonl`, `admin.jsonl` and `schedule.json` into `dir`.
pub async fn drive(spec: &RunSpec, cluster: Arc<dyn Cluster>, dir: &Path) -> Result<PathBuf> {
    let history_path = dir.join(files::HISTORY);
    // tokio's clock: the host's in a real run, the simulator's under `--backend sim`.
    let start = Instant::now();
    let clock = Box::new(move || start.elapsed().as_nanos() as u64);
    let recorder = Arc::new(Recorder::with_clock(&history_path, clock)?.with_datacenters(spec.client_dcs()));
    let poller = AdminPoller::start(cluster.clone(), recorder.clone(), &dir.join(files::ADMIN))?;
    let targets = targets(spec, cluster.as_ref())?;
    let schedules = spec.schedule_override.clone().unwrap_or_else(|| schedules(spec));
    write_json(&dir.join(SCHEDULE_FILE), &schedules)?;

    phase(&recorder, "warm-up")?;
    let warmup = Duration::from_secs(spec.knobs.warmup_s);
    let fault_phase = Duration::from_secs(spec.knobs.time_limit_s);
    let total = Duration::from_secs(spec.knobs.total_s());
    let workload = tokio::spawn(run_workload(spec.clone(), targets.clone(), recorder.clone(), total));
    tokio::time::sleep_until(start + warmup).await;
    phase(&recorder, "faults")?;
    let faults_start = Instant::now();
    run_nemeses(&schedules, cluster.as_ref(), &recorder, faults_start, fault_phase).await?;
    poller.snapshot_now().await;
    phase(&recorder, "quiet")?;
    let summary = workload.await.context("the workload task panicked")?;
    tracing::info!(
        "workload ({} loop): {} ops issued of {} arrivals, {} dropped",
        summary.arrival.as_str(),
        summary.ops,
        summary.arrivals,
        summary.dropped_arrivals
    );
    let decode = match spec.workload {
        WorkloadKind::Register | WorkloadKind::Prefix => register::siblings_json,
        WorkloadKind::Set => set::siblings_json,
    };
    if spec.store == Store::Dynamo {
        // The timings of the run's own requests, before the final reads add theirs.
        crate::wars::collect(spec, cluster.as_ref(), dir).await?;
        // Before the final reads, whose read repair could deliver what a hint did not.
        poller.snapshot_now().await;
        read_replicas(cluster.as_ref(), &recorder, decode, dir).await?;
    }
    phase(&recorder, "final")?;
    // Through the nodes that are members now: a membership nemesis may have
    // removed some of the workload's and added others.
    let members = self::targets(spec, cluster.as_ref())?;
    workload::final_reads(spec.knobs.keys, &members, recorder.clone(), summary.max_process + 1, decode).await;
    if spec.store == Store::Dynamo && spec.switches.anti_entropy != Some(false) {
        // The writes have stopped: watch the replicas settle for up to another quiet period.
        poller.settle(Duration::from_secs(spec.knobs.quiet_s)).await;
    }
    poller.stop().await?;
    Ok(history_path)
}

/// Writes `replica_reads.jsonl`: each home replica's own copy of every key
/// a hinted write touched (see [`workload::replica_reads`]).
async fn read_replicas(
    cluster: &dyn Cluster,
    recorder: &Arc<Recorder>,
    decode: workload::Decode,
    dir: &Path,
) -> Result<()> {
    let timeout = Duration::from_millis(workload::REPLICA_READ_TIMEOUT_MS);
    let mut channels = std::collections::BTreeMap::new();
    for node in cluster.nodes() {
        channels.insert(node.clone(), cluster.channel(&node, timeout)?);
    }
    let path = dir.join(files::REPLICA_READS);
    let done = workload::replica_reads(&channels, recorder.clone(), decode, &path).await?;
    tracing::info!("replica reads: {} hinted keys, {} reads, {} unreachable", done.keys, done.reads, done.unreachable);
    Ok(())
}

async fn run_workload(spec: RunSpec, targets: Vec<Target>, recorder: Arc<Recorder>, total: Duration) -> RunSummary {
    match spec.workload {
        WorkloadKind::Register => register::run(&spec.workload_config(), &targets, recorder, total).await,
        WorkloadKind::Set => set::run(&spec.workload_config(), &targets, recorder, total).await,
        WorkloadKind::Prefix => prefix::run(&spec.workload_config(), &targets, recorder, total).await,
    }
}

/// Executes the schedules during the fault phase, then heals everything.
async fn run_nemeses(
    schedules: &[Schedule],
    cluster: &dyn Cluster,
    recorder: &Recorder,
    faults_start: Instant,
    fault_phase: Duration,
) -> Result<()> {
    let state = Mutex::new(FaultState::default());
    let executed = nemesis::execute_all(schedules, cluster, recorder, faults_start, &state).await;
    tokio::time::sleep_until(faults_start + fault_phase).await;
    phase(recorder, "heal")?;
    let healed = if schedules.is_empty() { Ok(()) } else { nemesis::heal_all(cluster, recorder, &state).await };
    // Unsupported stays a typed error, so the campaign reports the run as such.
    executed.map_err(|e| match e {
        e @ nemesis::NemesisError::Unsupported { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context("the nemesis failed"),
    })?;
    healed.context("the final heal failed")?;
    Ok(())
}

/// One client per node the workload may send to. Redis writes always go to
/// the primary (n1), so its targets are the members reads go to: the
/// primary alone, or the replicas alone; each target is named after the
/// member it reads from, so the history says where a stale read came from.
fn targets(spec: &RunSpec, cluster: &dyn Cluster) -> Result<Vec<Target>> {
    let nodes = cluster.nodes();
    let primary = cluster.endpoint(&nodes[0])?;
    let readers: Vec<String> = match spec.store {
        Store::Redis(RedisRead::Primary) => nodes[..1].to_vec(),
        Store::Redis(RedisRead::Replica) if nodes.len() > 1 => nodes[1..].to_vec(),
        _ => nodes,
    };
    let mut out = Vec::new();
    for node in readers {
        let endpoint = cluster.endpoint(&node)?;
        let timeout_ms = spec.knobs.client_timeout_ms;
        let client: Arc<dyn workload::Client> = match spec.store {
            Store::Dynamo => {
                let channel = cluster.channel(&node, Duration::from_millis(timeout_ms))?;
                Arc::new(DynamoClient::from_channel(channel, timeout_ms))
            }
            Store::Etcd(read) => Arc::new(EtcdClient::new(&endpoint, read, timeout_ms)?),
            Store::Redis(_) => Arc::new(RedisClient::new(&primary, &endpoint, timeout_ms)),
        };
        out.push(Target { node, client });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::tests::matrix;

    fn spec(nemesis: &str, seed: u64) -> RunSpec {
        let mut m = matrix();
        m.nemeses = vec![nemesis.parse().unwrap()];
        m.seed = seed;
        m.runs().remove(0)
    }

    #[test]
    fn same_seed_same_schedules_actions_targets_and_times() {
        let a = schedules(&spec("kill+clock+partition+pause+latency", 7));
        let b = schedules(&spec("kill+clock+partition+pause+latency", 7));
        let c = schedules(&spec("kill+clock+partition+pause+latency", 8));
        assert_eq!(a.len(), 5);
        assert_eq!(a, b, "same seed, same schedule");
        assert_ne!(a, c, "another seed, another schedule");
        assert!(a.iter().all(|s| !s.actions.is_empty()));
    }

    #[test]
    fn composing_leaves_each_nemesis_schedule_unchanged() {
        let alone = schedules(&spec("kill", 7));
        let composed = schedules(&spec("kill+clock", 7));
        let kill = composed.iter().find(|s| s.kind == Some(NemesisKind::Kill)).unwrap();
        assert_eq!(&alone[0], kill);
    }
}
