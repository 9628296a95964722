//! Performing one action against a cluster, and saying exactly what was done.
//!
//! Each function acts, updates the [`FaultState`] and returns the JSON value
//! the history records for the event: the nodes actually acted on (which may
//! be fewer than requested when another nemesis already holds a node down
//! or the node left), for clock bumps the offset observed inside the
//! container afterwards, for a key-primaries target the preference list the
//! ring gave (or why the drawn fallback was hit instead), and for joins and
//! leaves the node, its address, the keys it held or streamed, how long it
//! took and the members afterwards.

use std::collections::BTreeMap;

use docker::{Cluster, Fault};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::action::Action;
use crate::error::NemesisError;
use crate::state::FaultState;
use crate::{corrupt, netem, partition, targets, Grudge};

/// Does `action`; returns what was done.
pub async fn perform(action: &Action, cluster: &dyn Cluster, state: &Mutex<FaultState>) -> Result<Value, NemesisError> {
    match action {
        Action::StartPartition { scheme, grudge, hold } => {
            // Marked first: a half-applied grudge must still be healed.
            let grudge = without_gone(grudge, &*state.lock().await);
            state.lock().await.partitioned = true;
            let how = if *hold {
                partition::apply_hold(cluster, &grudge).await?
            } else {
                partition::apply(cluster, &grudge).await?
            };
            Ok(merged(json!({"scheme": scheme, "grudge": grudge}), how))
        }
        Action::StopPartition => {
            let how = partition::heal(cluster).await?;
            state.lock().await.partitioned = false;
            Ok(how)
        }
        Action::Kill { nodes, primaries_of } => {
            let (nodes, aimed) = aim(cluster, state, "kill", nodes, primaries_of).await;
            Ok(merged(kill(cluster, state, &nodes).await?, aimed))
        }
        Action::PowerLoss { nodes, primaries_of } => {
            // Aimed as a kill is: the window's restart finds the nodes there.
            let (nodes, aimed) = aim(cluster, state, "kill", nodes, primaries_of).await;
            Ok(merged(power_loss(cluster, state, &nodes).await?, aimed))
        }
        Action::Restart { nodes, primaries_of } => {
            restart(cluster, state, &aimed_at(state, "kill", nodes, primaries_of).await).await
        }
        Action::Pause { nodes, primaries_of } => {
            let (nodes, aimed) = aim(cluster, state, "pause", nodes, primaries_of).await;
            Ok(merged(pause(cluster, state, &nodes).await?, aimed))
        }
        Action::Resume { nodes, primaries_of } => {
            resume(cluster, state, &aimed_at(state, "pause", nodes, primaries_of).await).await
        }
        Action::ClockBump { mode, offsets_s } => clock_bump(cluster, state, mode, offsets_s).await,
        Action::ClockReset { nodes } => clock_reset(cluster, state, nodes).await,
        Action::StartLatency { nodes, delay_ms, jitter_ms, loss_pct } => {
            start_latency(cluster, state, nodes, (*delay_ms, *jitter_ms, *loss_pct)).await
        }
        Action::StopLatency => stop_latency(cluster, state).await,
        Action::StartWanLatency { dcs, delay_ms, jitter_ms } => {
            start_wan_latency(cluster, state, dcs, (*delay_ms, *jitter_ms)).await
        }
        Action::Join { node } => join(cluster, state, node).await,
        Action::Leave { node } => leave(cluster, state, node).await,
        Action::Corrupt { node, target, damage, file_pick, offset_pick, mask } => {
            let draw = corrupt::Draw {
                target: *target,
                damage: *damage,
                file_pick: *file_pick,
                offset_pick: *offset_pick,
                mask: *mask,
            };
            corrupt_files(cluster, state, node, draw).await
        }
    }
}

/// Whom a kill or pause hits: `nodes`, or with `key` the primaries of that
/// key as the ring says now (remembered in `state` for the matching restart
/// or resume). A store that cannot tell (peer stores have no admin service)
/// gets the drawn fallback `nodes`, and the returned note says so.
async fn aim(
    cluster: &dyn Cluster,
    state: &Mutex<FaultState>,
    f: &str,
    nodes: &[String],
    key: &Option<String>,
) -> (Vec<String>, Value) {
    let Some(key) = key else { return (nodes.to_vec(), json!({})) };
    let (chosen, note) = match cluster.preference_list(key).await {
        Ok(list) => {
            let chosen = targets::primaries(&list, cluster.nodes().len());
            (chosen, json!({"target": "primaries", "key": key, "preference_list": list}))
        }
        Err(e) => {
            let why = format!("no preference list ({e}); hit the drawn fallback instead");
            (nodes.to_vec(), json!({"target": "fallback", "key": key, "fallback": why}))
        }
    };
    state.lock().await.aimed.insert(format!("{f} {key}"), chosen.clone());
    (chosen, note)
}

/// The nodes the start action of this window hit (see [`aim`]).
async fn aimed_at(state: &Mutex<FaultState>, f: &str, nodes: &[String], key: &Option<String>) -> Vec<String> {
    let Some(key) = key else { return nodes.to_vec() };
    state.lock().await.aimed.remove(&format!("{f} {key}")).unwrap_or_else(|| nodes.to_vec())
}

/// `value` with `"mechanism"` added when the backend performs `fault` its own way.
fn with_mechanism(cluster: &dyn Cluster, fault: Fault, value: Value) -> Value {
    match cluster.fault_mechanism(fault) {
        Some(how) => merged(value, json!({"mechanism": how})),
        None => value,
    }
}

/// `value` with `extra`'s fields added.
fn merged(mut value: Value, extra: Value) -> Value {
    if let (Value::Object(map), Value::Object(more)) = (&mut value, extra) {
        map.extend(more);
    }
    value
}

/// `grudge` without the nodes that left or are leaving (no rules to install there).
fn without_gone(grudge: &Grudge, state: &FaultState) -> Grudge {
    grudge
        .iter()
        .filter(|(node, _)| !state.gone(node))
        .map(|(node, peers)| (node.clone(), peers.iter().filter(|p| !state.gone(p)).cloned().collect()))
        .filter(|(_, peers): &(String, std::collections::BTreeSet<String>)| !peers.is_empty())
        .collect()
}

async fn join(cluster: &dyn Cluster, state: &Mutex<FaultState>, node: &str) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Membership, "membership (join)")?;
    let joined = cluster.join_node(node).await?;
    state.lock().await.joined.insert(node.to_string());
    Ok(json!({
        "node": joined.node,
        "address": joined.address,
        "keys_held": joined.keys_held,
        "duration_ms": joined.duration_ms,
        "members": cluster.nodes(),
    }))
}

/// Decommissions `node` unless another nemesis holds it down (then the
/// leave is skipped and the event says why).
async fn leave(cluster: &dyn Cluster, state: &Mutex<FaultState>, node: &str) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Membership, "membership (leave)")?;
    {
        let mut s = state.lock().await;
        let held = s.killed.contains(node) || s.paused.contains(node);
        if held || !cluster.nodes().iter().any(|n| n == node) {
            let why = if held { "held down by another nemesis" } else { "not a member" };
            return Ok(json!({"node": node, "skipped": why, "members": cluster.nodes()}));
        }
        s.leaving.insert(node.to_string());
    }
    let result = cluster.leave_node(node).await;
    let mut s = state.lock().await;
    s.leaving.remove(node);
    let left = result?;
    s.left.insert(node.to_string());
    s.skewed.remove(node);
    Ok(json!({
        "node": left.node,
        "address": left.address,
        "keys_streamed": left.keys_streamed,
        "duration_ms": left.duration_ms,
        "total_ms": left.total_ms,
        "members": cluster.nodes(),
    }))
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
    let victims = claim(state, nodes, |s| &mut s.killed).await;
    let mut crashes = serde_json::Map::new();
    for node in &victims {
        let report = cluster.kill(node).await?;
        if report.as_object().is_some_and(|r| !r.is_empty()) {
            crashes.insert(node.clone(), report);
        }
    }
    let mut event = json!({"nodes": victims, "requested": nodes, "signal": "SIGKILL"});
    if !crashes.is_empty() {
        event["crash"] = Value::Object(crashes);
    }
    Ok(with_mechanism(cluster, Fault::Kill, event))
}

/// Cuts the power of those of `nodes` that are running: each is SIGKILLed
/// and loses what it had not synced; the event records per node what was
/// lost (files, bytes, torn or not), and the mechanism (`lazyfs`, `sim`).
async fn power_loss(cluster: &dyn Cluster, state: &Mutex<FaultState>, nodes: &[String]) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::PowerLoss, "power-loss (drop a node's unsynced writes)")?;
    let victims = claim(state, nodes, |s| &mut s.killed).await;
    let mut lost = serde_json::Map::new();
    for node in &victims {
        lost.insert(node.clone(), cluster.power_loss(node).await?);
    }
    let event = json!({"nodes": victims, "requested": nodes, "signal": "SIGKILL", "lost": lost});
    Ok(with_mechanism(cluster, Fault::PowerLoss, event))
}

/// Kills `node` (unless another nemesis holds it down: then skipped), then
/// damages one of its data files as `draw` says; the node stays down until
/// the window's restart (or the final heal).
async fn corrupt_files(
    cluster: &dyn Cluster,
    state: &Mutex<FaultState>,
    node: &str,
    draw: corrupt::Draw,
) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Kill, "kill")?;
    ensure(cluster, Fault::Corrupt, "corrupt (file damage on a stopped node)")?;
    let requested = [node.to_string()];
    let victims = claim(state, &requested, |s| &mut s.killed).await;
    if victims.is_empty() {
        return Ok(json!({"node": node, "skipped": "held down by another nemesis, or not a member"}));
    }
    cluster.kill(node).await?;
    let files = cluster.data_files(node).await?;
    let Some((damage, done)) = corrupt::choose(&files, draw) else {
        return Ok(json!({"node": node, "signal": "SIGKILL", "skipped": "no non-empty WAL segment or SSTable"}));
    };
    cluster.damage_file(node, &damage).await?;
    Ok(with_mechanism(cluster, Fault::Corrupt, merged(json!({"node": node, "signal": "SIGKILL"}), done)))
}

/// Of `nodes`, those running now, marked held down (in the set `held`
/// picks) in the same critical section, so a kill and a pause running side
/// by side never both take a node (SIGSTOP to a dead container fails). A
/// node marked but not reached (the signal failed) is undone by the heal.
async fn claim(
    state: &Mutex<FaultState>,
    nodes: &[String],
    held: impl FnOnce(&mut FaultState) -> &mut std::collections::BTreeSet<String>,
) -> Vec<String> {
    let mut s = state.lock().await;
    let victims: Vec<String> = s.running(nodes).into_iter().cloned().collect();
    held(&mut s).extend(victims.iter().cloned());
    victims
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
    Ok(with_mechanism(cluster, Fault::Kill, json!({"nodes": down, "requested": nodes, "data": "same data directory"})))
}

async fn pause(cluster: &dyn Cluster, state: &Mutex<FaultState>, nodes: &[String]) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Pause, "pause")?;
    let victims = claim(state, nodes, |s| &mut s.paused).await;
    for node in &victims {
        cluster.pause(node).await?;
    }
    Ok(with_mechanism(cluster, Fault::Pause, json!({"nodes": victims, "requested": nodes, "signal": "SIGSTOP"})))
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
    Ok(with_mechanism(cluster, Fault::Pause, json!({"nodes": paused, "requested": nodes, "signal": "SIGCONT"})))
}

async fn clock_bump(
    cluster: &dyn Cluster,
    state: &Mutex<FaultState>,
    mode: &str,
    offsets_s: &BTreeMap<String, i64>,
) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Clock, "clock skew (libfaketime)")?;
    let mut observed = BTreeMap::new();
    let offsets_s: BTreeMap<&String, &i64> = {
        let s = state.lock().await;
        offsets_s.iter().filter(|(node, _)| !s.gone(node)).collect()
    };
    for (node, offset) in offsets_s.iter().map(|(n, o)| (*n, **o)) {
        cluster.set_clock_offset(node, offset).await?;
        state.lock().await.skewed.insert(node.clone());
        observed.insert(node.clone(), observed_offset_s(cluster, node).await);
    }
    let done = json!({"mode": mode, "offsets_s": offsets_s, "observed_offsets_s": observed});
    Ok(with_mechanism(cluster, Fault::Clock, done))
}

async fn clock_reset(
    cluster: &dyn Cluster,
    state: &Mutex<FaultState>,
    nodes: &[String],
) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Clock, "clock skew (libfaketime)")?;
    let nodes: Vec<String> = {
        let s = state.lock().await;
        nodes.iter().filter(|n| !s.gone(n)).cloned().collect()
    };
    for node in &nodes {
        cluster.set_clock_offset(node, 0).await?;
        state.lock().await.skewed.remove(node);
    }
    Ok(json!({"nodes": nodes, "offset_s": 0}))
}

/// The node's wall clock minus the host's, seconds, as seen by a process
/// started inside the container (or on the SSH host) under the node's
/// libfaketime settings; None
/// when the backend cannot run commands in a node.
pub async fn observed_offset_s(cluster: &dyn Cluster, node: &str) -> Option<i64> {
    let script = format!(
        "LD_PRELOAD={} FAKETIME_TIMESTAMP_FILE={} FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 date +%s",
        docker::LIBFAKETIME,
        docker::ssh::quote::quote(&cluster.faketime_file(node).ok()?)
    );
    let out = cluster.exec(node, &["sh", "-c", &script]).await.ok()?;
    let inside: i64 = out.stdout.trim().parse().ok()?;
    let host = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(inside - host)
}

/// `(delay_ms, jitter_ms, loss_pct)` on every link of `nodes`: natively
/// where the backend has its own network, else `tc netem` inside each node.
async fn start_latency(
    cluster: &dyn Cluster,
    state: &Mutex<FaultState>,
    nodes: &[String],
    (delay_ms, jitter_ms, loss_pct): (u64, u64, u32),
) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Latency, "latency (tc netem)")?;
    let nodes: Vec<String> = {
        let mut s = state.lock().await;
        s.latency = true;
        nodes.iter().filter(|n| !s.gone(n)).cloned().collect()
    };
    if let Some(native) = cluster.link_faults() {
        let done = native.slow(&nodes, delay_ms, jitter_ms, loss_pct).await?;
        return Ok(json!({"nodes": nodes, "mechanism": native.mechanism(), "done": done}));
    }
    let command = netem::start_command(delay_ms, jitter_ms, loss_pct);
    for node in &nodes {
        partition::run_sh(cluster, node, &command).await.map_err(|e| netem_missing(cluster, e))?;
    }
    Ok(json!({"nodes": nodes, "command": command}))
}

/// Slows the links between datacenters only. `tc netem` on a node's
/// interface slows every peer alike, so this needs the backend's own links.
async fn start_wan_latency(
    cluster: &dyn Cluster,
    state: &Mutex<FaultState>,
    dcs: &[Vec<String>],
    (delay_ms, jitter_ms): (u64, u64),
) -> Result<Value, NemesisError> {
    ensure(cluster, Fault::Latency, "wan-latency")?;
    let Some(native) = cluster.link_faults() else {
        return Err(NemesisError::Unsupported {
            backend: cluster.backend(),
            fault: "wan-latency: slowing only the links between datacenters needs the backend's own links (the simulator, or link proxies)".into(),
        });
    };
    let links: Vec<(String, String)> = {
        let mut s = state.lock().await;
        s.latency = true;
        let links = crate::datacenter::wan_links(dcs);
        links.into_iter().filter(|(a, b)| !s.gone(a) && !s.gone(b)).collect()
    };
    let done = native.slow_links(&links, delay_ms, jitter_ms).await?;
    Ok(json!({"dcs": dcs, "delay_ms": delay_ms, "jitter_ms": jitter_ms, "mechanism": native.mechanism(), "done": done}))
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
    if let Some(native) = cluster.link_faults() {
        let done = native.unslow().await?;
        state.lock().await.latency = false;
        return Ok(json!({"nodes": cluster.nodes(), "mechanism": native.mechanism(), "done": done}));
    }
    let command = netem::stop_command();
    for node in cluster.nodes() {
        partition::run_sh(cluster, &node, &command).await?;
    }
    state.lock().await.latency = false;
    Ok(json!({"nodes": cluster.nodes(), "command": command}))
}
