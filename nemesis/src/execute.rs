//! The effectful half: applying a schedule to a cluster and recording it.

use std::time::{Duration, Instant};

use docker::{Cluster, ClusterError};
use history::{Op, Recorder};
use serde_json::json;
use tracing::{info, warn};

use crate::{partition, Action, Schedule};

#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    #[error("the {backend} backend cannot do {fault}; reported as unsupported, not faked")]
    Unsupported { backend: &'static str, fault: String },
    #[error("on {node}, `{command}` failed: {detail}")]
    Command { node: String, command: String, detail: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot record a nemesis event: {0}")]
    Record(#[from] history::HistoryError),
}

/// Runs `schedule`, whose times are offsets from `phase_start`. Each action
/// is recorded after it was performed, with exactly what was done; a failed
/// action is recorded with its error and ends the schedule.
pub async fn execute(
    schedule: &Schedule,
    cluster: &dyn Cluster,
    recorder: &Recorder,
    phase_start: Instant,
) -> Result<(), NemesisError> {
    for step in &schedule.actions {
        tokio::time::sleep_until((phase_start + Duration::from_millis(step.at_ms)).into()).await;
        let result = perform(&step.action, cluster).await;
        let mut value = describe(&step.action);
        if let Err(e) = &result {
            value["error"] = json!(e.to_string());
        }
        recorder.record(Op::nemesis(name(&step.action), value))?;
        info!(action = name(&step.action), "nemesis");
        result?;
    }
    Ok(())
}

async fn perform(action: &Action, cluster: &dyn Cluster) -> Result<(), NemesisError> {
    match action {
        Action::StartPartition { grudge, .. } => partition::apply(cluster, grudge).await,
        Action::StopPartition => partition::heal(cluster).await,
    }
}

fn name(action: &Action) -> &'static str {
    match action {
        Action::StartPartition { .. } => "start-partition",
        Action::StopPartition => "stop-partition",
    }
}

fn describe(action: &Action) -> serde_json::Value {
    match action {
        Action::StartPartition { scheme, grudge } => json!({"scheme": scheme, "grudge": grudge}),
        Action::StopPartition => json!({"healed": "iptables -F INPUT on every node"}),
    }
}

/// The final heal: whatever happened, remove every fault this crate can
/// inject. Faults the backend cannot do were never applied, so are skipped.
pub async fn heal_all(cluster: &dyn Cluster, recorder: &Recorder) -> Result<(), NemesisError> {
    if !cluster.supports(docker::Fault::Partition) {
        return Ok(());
    }
    let result = partition::heal(cluster).await;
    let mut value = json!({"healed": "iptables -F INPUT on every node", "final": true});
    if let Err(e) = &result {
        warn!("final heal failed: {e}");
        value["error"] = json!(e.to_string());
    }
    recorder.record(Op::nemesis("stop-partition", value))?;
    result
}
