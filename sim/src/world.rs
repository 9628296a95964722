//! One simulation: the nodes as hosts, the harness as a client, and the
//! step loop that runs them and applies the harness's [`Control`] requests.
//!
//! Determinism: turmoil's RNG (link latency, loss) is seeded from the run's
//! seed; every node's seed derives from it and the node id; the epoch is
//! fixed ([`EPOCH_S`]), so clocks read the same values in every replay; hosts
//! are polled in a fixed order, one tick at a time, on one thread. What is
//! left to chance elsewhere (tokio's `select!` branch order, hash-map
//! iteration) is hunted down by the byte-identity test of `history.jsonl`.
//!
//! A node host's software is the real `dynamo-node` library: a turmoil
//! listener as its incoming stream, a dialer of turmoil sockets, the
//! simulated clock plus its offset, and a power-loss disk that lives in the
//! step loop, outside the host, so a crash and restart keep what was synced;
//! its hint log is a second such disk, so a crash drops unsynced hints as
//! it drops unsynced data, and keeps the synced ones for delivery.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use dynamo_node::storage::PowerLoss;
use dynamo_node::Config;
use serde_json::json;

use crate::clock::{ClockOffset, SimClock};
use crate::cluster::{SimCluster, PORT};
use crate::control::{Control, ControlQueue, Reply};
use crate::error::SimError;
use crate::links::LinkOp;
use crate::net;

/// The simulated wall clock starts at 2026-01-01T00:00:00Z in every run.
pub const EPOCH_S: u64 = 1_767_225_600;
/// Simulated time per step.
pub const TICK_MS: u64 = 1;
/// A link's base latency, ms (min, max): a LAN, one tick or none.
pub const BASE_LATENCY_MS: (u64, u64) = (0, 2);
/// The harness's host name.
pub const HARNESS: &str = "harness";
/// Segments a simulated TCP socket buffers before the sender waits.
const TCP_CAPACITY: usize = 4_096;
/// A node's connect timeout to its peers, ms.
const CONNECT_TIMEOUT_MS: u64 = 1_000;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimSpec {
    /// Every random choice of the simulator and the nodes derives from it.
    pub seed: u64,
    /// Node ids at start, e.g. `["n1", "n2", "n3"]`.
    pub nodes: Vec<String>,
    /// Flags every node gets, as for a real cluster (`--n 3 --w 2 ...`).
    pub node_args: Vec<String>,
    /// Where every node's log goes (one file, lines tagged by node); none: discarded.
    pub log_path: Option<PathBuf>,
    /// Simulated time after which the run is declared hung.
    pub limit: Duration,
}

/// What a simulation cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimReport {
    /// Simulated time the run took.
    pub sim_elapsed: Duration,
    /// Wall-clock time it took.
    pub wall: Duration,
    /// Steps taken.
    pub steps: u64,
}

impl SimReport {
    /// Simulated seconds per wall-clock second.
    pub fn speedup(&self) -> f64 {
        self.sim_elapsed.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

/// A node host's state that outlives its software: disks, clock, flags.
struct NodeHost {
    /// The node's configuration (parsed once, cloned per boot).
    config: Config,
    /// The node's data disk.
    disk: PowerLoss,
    /// The node's hint log, a disk of its own (as `<data-dir>/hints` is).
    hint_disk: PowerLoss,
    /// The node's clock skew.
    offset: ClockOffset,
    /// Whether its software is running.
    running: bool,
    /// Its dials' view of the network.
    gate: net::Gate,
}

/// Runs `harness` against a simulated cluster of `spec`'s nodes until it
/// returns; its value and what the run cost. Blocks the calling thread,
/// which must not be inside a tokio runtime (each host has its own).
pub fn simulate<T, F, Fut>(spec: &SimSpec, harness: F) -> Result<(T, SimReport), SimError>
where
    T: 'static,
    F: FnOnce(Arc<SimCluster>) -> Fut,
    Fut: Future<Output = Result<T, String>> + 'static,
{
    let _log = crate::log::capture(spec.log_path.as_deref())?;
    if !crate::task_ids::align() {
        tracing::debug!("task ids not aligned: other threads spawned tasks meanwhile");
    }
    let started = Instant::now();
    let mut sim = turmoil::Builder::new()
        .rng_seed(spec.seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_S))
        .simulation_duration(spec.limit)
        .tick_duration(Duration::from_millis(TICK_MS))
        .min_message_latency(Duration::from_millis(BASE_LATENCY_MS.0))
        .max_message_latency(Duration::from_millis(BASE_LATENCY_MS.1))
        .tcp_capacity(TCP_CAPACITY)
        .build();
    let mut hosts = BTreeMap::new();
    let blocked = net::Blocked::default();
    for node in &spec.nodes {
        add_node(&mut sim, &mut hosts, spec, &blocked, node, &[])?;
    }
    let offsets = hosts.iter().map(|(id, h): (&String, &NodeHost)| (id.clone(), h.offset.clone())).collect();
    let control = ControlQueue::default();
    let gate = net::Gate { from: HARNESS.to_string(), blocked: blocked.clone() };
    let cluster = Arc::new(SimCluster::new(gate, &spec.nodes, offsets, BASE_LATENCY_MS, control.clone()));
    let outcome: Rc<RefCell<Option<Result<T, String>>>> = Rc::default();
    let slot = Rc::clone(&outcome);
    let run = harness(cluster);
    sim.client(HARNESS, async move {
        let result = run.await;
        *slot.borrow_mut() = Some(result);
        Ok(())
    });
    let mut steps = 0u64;
    loop {
        let finished = sim.step().map_err(|e| SimError::Sim(e.to_string()))?;
        steps += 1;
        for request in control.take() {
            apply(&mut sim, &mut hosts, spec, &blocked, request)?;
        }
        if finished {
            break;
        }
    }
    let report = SimReport { sim_elapsed: sim.elapsed(), wall: started.elapsed(), steps };
    let result = outcome.borrow_mut().take().ok_or_else(|| SimError::Sim("the harness never finished".into()))?;
    result.map(|value| (value, report)).map_err(SimError::Harness)
}

/// One request of the harness, applied between two steps.
fn apply(
    sim: &mut turmoil::Sim<'_>,
    hosts: &mut BTreeMap<String, NodeHost>,
    spec: &SimSpec,
    blocked: &net::Blocked,
    request: Control,
) -> Result<(), SimError> {
    match request {
        Control::Links(ops) => ops.into_iter().for_each(|op| {
            blocked.apply(&op);
            link_op(sim, op)
        }),
        Control::Crash { node, reply } => answer(reply, crash(sim, hosts, &node)),
        Control::Start { node, reply } => answer(reply, start(sim, hosts, &node)),
        Control::Add { node, extra_args, reply } => {
            let added = add_node(sim, hosts, spec, blocked, &node, &extra_args).map(|()| json!({"added": node}));
            answer(reply, added.map_err(|e| e.to_string()));
        }
        Control::Remove { node, reply } => answer(reply, remove(sim, hosts, &node)),
    }
    Ok(())
}

fn answer(reply: tokio::sync::oneshot::Sender<Reply>, result: Reply) {
    // The harness may have given up waiting; nothing to tell then.
    let _ = reply.send(result);
}

fn link_op(sim: &mut turmoil::Sim<'_>, op: LinkOp) {
    match op {
        LinkOp::Hold((a, b)) => sim.hold(a, b),
        LinkOp::Release((a, b)) => sim.release(a, b),
        LinkOp::Repair((a, b)) => sim.repair(a, b),
        LinkOp::CutOneWay(from, to) => sim.partition_oneway(from, to),
        LinkOp::Latency { pair: (a, b), min_ms, max_ms } => {
            sim.set_link_latency(a.as_str(), b.as_str(), Duration::from_millis(min_ms));
            sim.set_link_max_message_latency(a, b, Duration::from_millis(max_ms));
        }
        LinkOp::FailRate { pair: (a, b), rate } => sim.set_link_fail_rate(a, b, rate),
    }
}

fn host<'h>(hosts: &'h mut BTreeMap<String, NodeHost>, node: &str) -> Result<&'h mut NodeHost, String> {
    hosts.get_mut(node).ok_or_else(|| format!("unknown node {node}"))
}

/// Power loss: the host stops, then its disks drop what they had not synced.
fn crash(sim: &mut turmoil::Sim<'_>, hosts: &mut BTreeMap<String, NodeHost>, node: &str) -> Reply {
    let h = host(hosts, node)?;
    if !h.running {
        return Err(format!("{node} is not running"));
    }
    sim.crash(node);
    h.running = false;
    let lost = h.disk.crash().map_err(|e| e.to_string())?;
    let hints_lost = h.hint_disk.crash().map_err(|e| e.to_string())?;
    Ok(json!({
        "lost_unsynced_writes": lost.lost_writes,
        "keys_left": lost.keys_left,
        "lost_unsynced_hint_writes": hints_lost.lost_writes,
        "hints_left": hints_lost.keys_left,
    }))
}

fn start(sim: &mut turmoil::Sim<'_>, hosts: &mut BTreeMap<String, NodeHost>, node: &str) -> Reply {
    let h = host(hosts, node)?;
    if h.running {
        return Err(format!("{node} is already running"));
    }
    sim.bounce(node);
    h.running = true;
    Ok(json!({"started": node}))
}

/// A node that left the ring: synced (a clean stop) and stopped for good.
fn remove(sim: &mut turmoil::Sim<'_>, hosts: &mut BTreeMap<String, NodeHost>, node: &str) -> Reply {
    let h = host(hosts, node)?;
    h.disk.sync().map_err(|e| e.to_string())?;
    h.hint_disk.sync().map_err(|e| e.to_string())?;
    if h.running {
        sim.crash(node);
        h.running = false;
    }
    Ok(json!({"removed": node}))
}

/// Every flag of `node`: its identity and peers, then the spec's, then `extra`.
fn node_argv(spec: &SimSpec, hosts: &BTreeMap<String, NodeHost>, node: &str, extra: &[String]) -> Vec<String> {
    // The starting members (all known at start, as on a real cluster) and any host added since.
    let mut members: Vec<&str> = spec.nodes.iter().map(String::as_str).collect();
    for extra_host in hosts.keys().map(String::as_str).chain(std::iter::once(node)) {
        if !members.contains(&extra_host) {
            members.push(extra_host);
        }
    }
    // A joiner lists only itself as a peer; it learns the rest from its seeds.
    if !extra.is_empty() {
        members = vec![node];
    }
    let peers: Vec<String> = members.iter().map(|m| format!("{m}={m}:{PORT}")).collect();
    let mut argv: Vec<String> =
        ["dynamo-node", "--id", node, "--listen", &format!("0.0.0.0:{PORT}")].iter().map(|s| s.to_string()).collect();
    argv.extend(["--peers".to_string(), peers.join(","), "--data-dir".to_string(), format!("/sim/{node}")]);
    argv.extend(spec.node_args.iter().cloned());
    // The Prometheus endpoint is a real socket: none under the simulator.
    argv.extend(["--metrics-listen".to_string(), String::new()]);
    argv.extend(extra.iter().cloned());
    argv
}

/// Adds `node`'s host, its disks and clock, and boots it.
fn add_node(
    sim: &mut turmoil::Sim<'_>,
    hosts: &mut BTreeMap<String, NodeHost>,
    spec: &SimSpec,
    blocked: &net::Blocked,
    node: &str,
    extra: &[String],
) -> Result<(), SimError> {
    let argv = node_argv(spec, hosts, node, extra);
    let config = Config::from_cli(argv).map_err(|reason| SimError::Config { node: node.to_string(), reason })?;
    let h = NodeHost {
        disk: PowerLoss::new(&config.lsm),
        hint_disk: PowerLoss::new(&config.lsm),
        offset: ClockOffset::default(),
        config,
        running: true,
        gate: net::Gate { from: node.to_string(), blocked: blocked.clone() },
    };
    let software = software(&h, node_seed(spec.seed, node));
    hosts.insert(node.to_string(), h);
    sim.host(node, software);
    Ok(())
}

/// The node's seed: the run's, mixed with its id.
pub fn node_seed(seed: u64, node: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(node.as_bytes(), seed)
}

/// What the host runs at every boot: the node library on the kept disks.
fn software(
    h: &NodeHost,
    seed: u64,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = turmoil::Result>>> + 'static {
    let (config, disk, hint_disk, offset) = (h.config.clone(), h.disk.clone(), h.hint_disk.clone(), h.offset.clone());
    let gate = h.gate.clone();
    move || {
        let env = dynamo_node::Environment {
            clock: Arc::new(SimClock::new(offset.clone())),
            dialer: dialer(gate.clone()),
            storage: Some(crate::disk::SimStorage::new(disk.storage())),
            hint_storage: Some(crate::disk::SimStorage::new(hint_disk.storage())),
            seed,
        };
        let config = config.clone();
        Box::pin(async move {
            let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
            dynamo_node::serve_incoming(config, env, net::incoming(listener), std::future::pending::<()>()).await?;
            Ok(())
        })
    }
}

/// The node's connector to its peers: simulated TCP, from `gate`'s host.
fn dialer(gate: net::Gate) -> dynamo_node::Dialer {
    let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
    Arc::new(move |address: &str| net::channel(&gate, address, timeout, None))
}
