//! Performing one action against a cluster, and saying exactly what was done.
//!
//! Each function acts, updates the [`FaultState`] and returns the JSON value
//! the history records for the event: the nodes actually acted on (which may
//! be fewer than requested when another nemesis already holds a node down),
//! and for clock bumps the offset observed inside the container afterwards.

use std::collections::BTreeMap;

use docker::{Cluster, Fault};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::schedule::Action;
use crate::state::FaultState;
use crate::{netem, partition, NemesisError};

/// Does `action`; returns what was done.
pub async fn perform(action: &Action, cluster: &dyn Cluster, state: &Mutex<FaultState>) -> Result<Value, NemesisError> {
    match action {
        Action::StartPartition { scheme, grudge } => {
            // Marked first: a half-applied grudge must still be healed.
            state.lock().await.partitioned = true;
            partition::apply(cluster, grudge).await?;
            Ok(json!({"scheme": scheme, "grudge": grudge}))
        }
        Action::StopPartition => {
            partition::heal(cluster).await?;
            state.lock().await.partitioned = false;
            Ok(json!({"healed": "iptables -F INPUT on every node"}))
        }
        Action::Kill { nodes } => kill(cluster, state, nodes).await,
        Action::Restart { nodes } => restart(cluster, state, nodes).await,
        Action::Pause { nodes } => pause(cluster, state, nodes).await,
        Action::Resume { nodes } => resume(cluster, state, nodes).await,
        Action::ClockBump { mode, offsets_s } => clock_bump(cluster, state, mode, offsets_s).await,
        Action::ClockReset { nodes } => clock_reset(cluster, state, nodes).await,
        Action::StartLatency { nodes, delay_ms, jitter_ms, loss_pct } => {
            start_latency(cluster, state, nodes, netem::start_command(*delay_ms, *jitter_ms, *loss_pct)).await
        }
        Action::StopLatency => stop_latency(cluster, state).await,
    }
}

/// Fails unless the backend can really do `fault`.
pub fn ensure(cluster: &dyn Cluster, fault: Fault, what: &str) -> Result<(), NemesisError> {
    if cluster.supports(fault) {
        return Ok(());
    }
    Err(NemesisError::Unsupported { backend: cluster.backend(), fault: what.into() })
}

async fn kill(cluster: &dyn Cluster, state: &Mutex<FaultState>, nodes: &[String]) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Kill, "kill")?;
    let victims: Vec<String> = state.lock().await.running(nodes).into_iter().cloned().collect();
    for node in &victims {
        cluster.kill(node).await?;
        state.lock().await.killed.insert(node.clone());
    }
    Ok(json!({"nodes": victims, "requested": nodes, "signal": "SIGKILL"}))
}

async fn restart(cluster: &dyn Cluster, state: &Mutex<FaultState>, nodes: &[String]) -> Result<Value, NemesisError> {
    let down: Vec<String> = {
        let s = state.lock().await;
        nodes.iter().filter(|n| s.killed.contains(*n)).cloned().collect()
    };
    for node in &down {
        cluster.restart(node).await?;
        state.lock().await.killed.remove(node);
    }
    Ok(json!({"nodes": down, "requested": nodes, "data": "same data directory"}))
}

async fn pause(cluster: &dyn Cluster, state: &Mutex<FaultState>, nodes: &[String]) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Pause, "pause")?;
    let victims: Vec<String> = state.lock().await.running(nodes).into_iter().cloned().collect();
    for node in &victims {
        cluster.pause(node).await?;
        state.lock().await.paused.insert(node.clone());
    }
    Ok(json!({"nodes": victims, "requested": nodes, "signal": "SIGSTOP"}))
}

async fn resume(cluster: &dyn Cluster, state: &Mutex<FaultState>, nodes: &[String]) -> Result<Value, NemesisError> {
    let paused: Vec<String> = {
        let s = state.lock().await;
        nodes.iter().filter(|n| s.paused.contains(*n)).cloned().collect()
    };
    for node in &paused {
        cluster.resume(node).await?;
        state.lock().await.paused.remove(node);
    }
    Ok(json!({"nodes": paused, "requested": nodes, "signal": "SIGCONT"}))
}

async fn clock_bump(
    cluster: &dyn Cluster,
    state: &Mutex<FaultState>,
    mode: &str,
    offsets_s: &BTreeMap<String, i64>,
) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Clock, "clock skew (libfaketime)")?;
    let mut observed = BTreeMap::new();
    for (node, offset) in offsets_s {
        cluster.set_clock_offset(node, *offset).await?;
        state.lock().await.skewed.insert(node.clone());
        observed.insert(node.clone(), observed_offset_s(cluster, node).await);
    }
    Ok(json!({"mode": mode, "offsets_s": offsets_s, "observed_offsets_s": observed}))
}

async fn clock_reset(cluster: &dyn Cluster, state: &Mutex<FaultState>, nodes: &[String]) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Clock, "clock skew (libfaketime)")?;
    for node in nodes {
        cluster.set_clock_offset(node, 0).await?;
        state.lock().await.skewed.remove(node);
    }
    Ok(json!({"nodes": nodes, "offset_s": 0}))
}

/// The node's wall clock minus the host's, seconds, as seen by a process
/// started inside the container under the node's libfaketime settings; None
/// when the backend cannot run commands in a node.
pub async fn observed_offset_s(cluster: &dyn Cluster, node: &str) -> Option<i64> {
    let script = format!(
        "LD_PRELOAD={} FAKETIME_TIMESTAMP_FILE={} FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 date +%s",
        docker::LIBFAKETIME,
        docker::FAKETIME_FILE
    );
    let out = cluster.exec(node, &["sh", "-c", &script]).await.ok()?;
    let inside: i64 = out.stdout.trim().parse().ok()?;
    let host = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(inside - host)
}

async fn start_latency(
    cluster: &dyn Cluster,
    state: &Mutex<FaultState>,
    nodes: &[String],
    command: String,
) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Latency, "latency (tc netem)")?;
    state.lock().await.latency = true;
    for node in nodes {
        partition::run_sh(cluster, node, &command).await.map_err(|e| netem_missing(cluster, e))?;
    }
    Ok(json!({"nodes": nodes, "command": command}))
}

/// `tc` says "Specified qdisc kind is unknown" when the host kernel has no
/// `sch_netem` (e.g. a VM kernel built without modules): the fault cannot be
/// performed here, which is Unsupported, not a failed run.
fn netem_missing(cluster: &dyn Cluster, e: NemesisError) -> NemesisError {
    match e {
        NemesisError::Command { detail, .. } if detail.contains("qdisc kind is unknown") => NemesisError::Unsupported {
            backend: cluster.backend(),
            fault: "latency (tc netem): the host kernel has no sch_netem".into(),
        },
        other => other,
    }
}

async fn stop_latency(cluster: &dyn Cluster, state: &Mutex<FaultState>) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Latency, "latency (tc netem)")?;
    let command = netem::stop_command();
    for node in cluster.nodes() {
        partition::run_sh(cluster, &node, &command).await?;
    }
    state.lock().await.latency = false;
    Ok(json!({"nodes": cluster.nodes(), "command": command}))
}
