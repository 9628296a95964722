//! The effectful half: applying schedules to a cluster and recording them.
//!
//! Each schedule runs as its own sequence (so composed nemeses keep their own
//! timing); all of them share one [`FaultState`]. Every action is recorded
//! after it was performed, as a nemesis `info` event whose value says exactly
//! what was done; a failed action is recorded with its error and ends its
//! schedule. [`heal_all`] undoes whatever is still in force, and after a
//! membership nemesis records the final members (event `membership`).

use std::time::Duration;

use tokio::time::Instant;

use docker::{Cluster, Fault};
use futures::future::join_all;
use history::{Op, Recorder};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::error::NemesisError;
use crate::perform::perform;
use crate::state::FaultState;
use crate::{netem, partition, Schedule};

/// Runs one schedule, whose times are offsets from `phase_start`.
pub async fn execute(
    schedule: &Schedule,
    cluster: &dyn Cluster,
    recorder: &Recorder,
    phase_start: Instant,
    state: &Mutex<FaultState>,
) -> Result<(), NemesisError> {
    for step in &schedule.actions {
        tokio::time::sleep_until(phase_start + Duration::from_millis(step.at_ms)).await;
        let result = perform(&step.action, cluster, state).await;
        let value = match &result {
            Ok(done) => with_kind(done.clone(), schedule),
            Err(e) => with_kind(json!({"requested": step.action, "error": e.to_string()}), schedule),
        };
        recorder.record(Op::nemesis(step.action.name(), value))?;
        info!(action = step.action.name(), "nemesis");
        result?;
    }
    Ok(())
}

fn with_kind(mut value: Value, schedule: &Schedule) -> Value {
    if let (Value::Object(map), Some(kind)) = (&mut value, schedule.kind) {
        map.insert("nemesis".into(), json!(kind.as_str()));
    }
    value
}

/// Runs every schedule side by side; the first error, if any, after all ended.
pub async fn execute_all(
    schedules: &[Schedule],
    cluster: &dyn Cluster,
    recorder: &Recorder,
    phase_start: Instant,
    state: &Mutex<FaultState>,
) -> Result<(), NemesisError> {
    let results = join_all(schedules.iter().map(|s| execute(s, cluster, recorder, phase_start, state))).await;
    results.into_iter().collect()
}

/// The final heal: undo every fault still in force (and flush rules and
/// qdiscs the backend supports, whatever the state says). Each step is
/// recorded; the first error is returned after all steps were tried.
pub async fn heal_all(
    cluster: &dyn Cluster,
    recorder: &Recorder,
    state: &Mutex<FaultState>,
) -> Result<(), NemesisError> {
    let snapshot = state.lock().await.clone();
    let mut first_error = None;
    let mut note = |f: &str, result: Result<Value, NemesisError>| -> Result<(), NemesisError> {
        let value = match result {
            Ok(mut v) => {
                v["final"] = json!(true);
                v
            }
            Err(e) => {
                warn!("final heal ({f}) failed: {e}");
                let v = json!({"final": true, "error": e.to_string()});
                first_error.get_or_insert(e);
                v
            }
        };
        recorder.record(Op::nemesis(f, value)).map(|_| ()).map_err(NemesisError::from)
    };
    if !snapshot.paused.is_empty() {
        note("resume", resume_all(cluster, state, &snapshot).await)?;
    }
    if !snapshot.killed.is_empty() {
        note("restart", restart_all(cluster, state, &snapshot).await)?;
    }
    if !snapshot.skewed.is_empty() {
        note("clock-reset", reset_clocks(cluster, state, &snapshot).await)?;
    }
    if cluster.supports(Fault::Partition) {
        note("stop-partition", partition::heal(cluster).await)?;
    }
    if cluster.supports(Fault::Latency) && snapshot.latency {
        note("stop-latency", remove_qdiscs(cluster).await)?;
    }
    if !snapshot.joined.is_empty() || !snapshot.left.is_empty() {
        // Nothing to undo (no join or leave is in flight: the schedules
        // ended before the heal); the record is who the final reads ask.
        let members = json!({"nodes": cluster.nodes(), "joined": snapshot.joined, "left": snapshot.left});
        note("membership", Ok(members))?;
    }
    *state.lock().await = FaultState::default();
    first_error.map_or(Ok(()), Err)
}

async fn resume_all(cluster: &dyn Cluster, state: &Mutex<FaultState>, s: &FaultState) -> Result<Value, NemesisError> {
    for node in &s.paused {
        cluster.resume(node).await?;
        state.lock().await.paused.remove(node);
    }
    Ok(json!({"nodes": s.paused, "signal": "SIGCONT"}))
}

async fn restart_all(cluster: &dyn Cluster, state: &Mutex<FaultState>, s: &FaultState) -> Result<Value, NemesisError> {
    for node in &s.killed {
        cluster.restart(node).await?;
        state.lock().await.killed.remove(node);
    }
    Ok(json!({"nodes": s.killed, "data": "same data directory"}))
}

async fn reset_clocks(cluster: &dyn Cluster, state: &Mutex<FaultState>, s: &FaultState) -> Result<Value, NemesisError> {
    for node in &s.skewed {
        cluster.set_clock_offset(node, 0).await?;
        state.lock().await.skewed.remove(node);
    }
    Ok(json!({"nodes": s.skewed, "offset_s": 0}))
}

async fn remove_qdiscs(cluster: &dyn Cluster) -> Result<Value, NemesisError> {
    if let Some(native) = cluster.link_faults() {
        let done = native.unslow().await?;
        return Ok(json!({"nodes": cluster.nodes(), "mechanism": native.mechanism(), "done": done}));
    }
    let command = netem::stop_command();
    for node in cluster.nodes() {
        partition::run_sh(cluster, &node, &command).await?;
    }
    Ok(json!({"nodes": cluster.nodes(), "command": command}))
}
