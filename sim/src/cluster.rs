//! [`SimCluster`]: the [`docker::Cluster`] a simulated run is driven through.
//!
//! The harness (workload, nemeses, admin poller, final reads) runs unchanged
//! against this trait, inside the simulation as a turmoil client. Each fault
//! is performed by the simulator, natively, and says so in its event:
//! - partitions, hold-then-release, latency and loss: [`LinkFaults`] on the
//!   simulated network (the composition of faults is kept in [`Links`]);
//! - kill: a power loss. The host stops and its disks drop every unsynced
//!   write (`PowerLoss::crash`); restart boots the same disks;
//! - pause: every link of the node held, both ways, until resume, when the
//!   held messages are delivered at once (what the peers see of a SIGSTOP;
//!   the node's own timers keep running, unlike a stopped process);
//! - clock: the node's [`ClockOffset`];
//! - membership: the shared protocol of `docker::ring_change` over a host
//!   added to (or stopped in) the simulation.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use docker::{
    Capabilities, Cluster, ClusterError, ExecOutput, Fault, Joined, Left, LinkFaults, Members, StoreKind, PEER_STORES,
};
use serde_json::{json, Value};
use tonic::transport::Channel;

use crate::clock::ClockOffset;
use crate::control::{Control, ControlQueue};
use crate::links::{self, pair, LinkOp, Links, Pair};
use crate::net;

/// The backend's name in `run.json`.
pub const BACKEND: &str = "sim";
/// What performs every fault, in the events.
pub const MECHANISM: &str = "turmoil";
/// The port every simulated node serves on.
pub const PORT: u16 = 7000;
/// How long a restarted node may take to answer its admin service.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Reason under which the hold nemesis holds links.
const HOLD_REASON: &str = "hold";

/// A running simulated cluster, as the harness sees it.
#[derive(Debug)]
pub struct SimCluster {
    /// The harness's own host (its links are slowed and held too), and
    /// the links its dials must wait on.
    gate: net::Gate,
    /// Current members, in join order.
    members: Mutex<Vec<String>>,
    /// Every node's clock offset, kept across crashes.
    offsets: Mutex<BTreeMap<String, ClockOffset>>,
    /// The link faults in force.
    links: Mutex<Links>,
    /// Pairs whose latency or loss was changed (restored by `unslow`).
    slowed: Mutex<Vec<Pair>>,
    /// Base latency every link returns to, ms (min, max).
    base_latency_ms: (u64, u64),
    /// Requests to the step loop.
    control: ControlQueue,
}

impl SimCluster {
    /// The cluster of `nodes`, their clock offsets, seen from the harness
    /// host that `gate` dials from.
    pub(crate) fn new(
        gate: net::Gate,
        nodes: &[String],
        offsets: BTreeMap<String, ClockOffset>,
        base_latency_ms: (u64, u64),
        control: ControlQueue,
    ) -> Self {
        SimCluster {
            gate,
            members: Mutex::new(nodes.to_vec()),
            offsets: Mutex::new(offsets),
            links: Mutex::new(Links::default()),
            slowed: Mutex::new(Vec::new()),
            base_latency_ms,
            control,
        }
    }

    /// How the simulator performs `fault` (the same for every simulated
    /// cluster, so asked before one exists: `run.json`'s `fault_mechanisms`).
    pub fn mechanism(fault: Fault) -> Option<&'static str> {
        Some(match fault {
            Fault::Kill => "power loss: host stopped, unsynced writes dropped (turmoil crash)",
            Fault::Pause => "every link of the node held both ways (turmoil hold), delivered on resume",
            Fault::Clock => "simulated clock offset",
            // The simulator's kill is already a power loss (see `disk.rs`).
            Fault::PowerLoss => "sim",
            _ => MECHANISM,
        })
    }

    /// What simulated clusters can perform, before one is started: every
    /// fault, on our node only (the peer stores are real programs, not
    /// libraries the simulator can host).
    pub fn capabilities() -> Capabilities {
        let why = "the simulator hosts only the dynamo-node library (peer stores are separate programs)";
        let no_files =
            "simulated nodes store in the power-loss model, in memory: there are no WAL or SSTable files to damage";
        Fault::ALL
            .into_iter()
            .fold(Capabilities::all(BACKEND), |caps, fault| caps.without(fault, &PEER_STORES, why))
            .without(Fault::Corrupt, &[StoreKind::Dynamo], no_files)
    }

    fn known(&self, node: &str) -> Result<(), ClusterError> {
        let members = self.members.lock().expect("members lock poisoned");
        if members.iter().any(|m| m == node) {
            return Ok(());
        }
        Err(ClusterError::UnknownNode(node.to_string()))
    }

    /// Every other host `node` has a link to: the members and the harness.
    fn neighbours(&self, node: &str) -> Vec<String> {
        let members = self.members.lock().expect("members lock poisoned");
        members.iter().chain(std::iter::once(&self.gate.from)).filter(|h| *h != node).cloned().collect()
    }

    fn send_links(&self, ops: Vec<LinkOp>) -> Value {
        let count = ops.len();
        if count > 0 {
            self.control.push(Control::Links(ops));
        }
        json!(count)
    }

    async fn call(
        &self,
        make: impl FnOnce(tokio::sync::oneshot::Sender<crate::control::Reply>) -> Control,
    ) -> Result<Value, ClusterError> {
        self.control.call(make).await.map_err(ClusterError::Other)
    }

    /// Polls `node`'s admin status until it answers or [`READY_TIMEOUT`] passes.
    async fn wait_ready(&self, node: &str) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let channel = self.channel(node, Duration::from_secs(1))?;
        loop {
            let status = proto::admin_client::AdminClient::new(channel.clone()).status(proto::StatusRequest {}).await;
            match status {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(ClusterError::NotReady {
                        node: node.to_string(),
                        timeout_ms: READY_TIMEOUT.as_millis() as u64,
                        last_error: e.to_string(),
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

#[async_trait::async_trait]
impl Cluster for SimCluster {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn image(&self) -> String {
        format!("dynamo-node {} (library, in process)", env!("CARGO_PKG_VERSION"))
    }

    fn nodes(&self) -> Vec<String> {
        self.members.lock().expect("members lock poisoned").clone()
    }

    fn endpoint(&self, node: &str) -> docker::Result<String> {
        Ok(format!("http://{node}:{PORT}"))
    }

    fn channel(&self, node: &str, timeout: Duration) -> docker::Result<Channel> {
        net::channel(&self.gate, &format!("{node}:{PORT}"), timeout, Some(timeout))
            .map_err(|e| ClusterError::Other(format!("channel to {node}: {e}")))
    }

    fn peer_ip(&self, node: &str) -> docker::Result<std::net::IpAddr> {
        Ok(turmoil::lookup(node))
    }

    fn supports(&self, fault: Fault) -> bool {
        Self::capabilities().supports(fault, StoreKind::Dynamo)
    }

    async fn exec(&self, _node: &str, _argv: &[&str]) -> docker::Result<ExecOutput> {
        Err(self.unsupported("run commands in a node (it is a library in this process)"))
    }

    async fn kill(&self, node: &str) -> docker::Result<serde_json::Value> {
        self.known(node)?;
        let node = node.to_string();
        // The power loss's report: the unsynced writes and hint writes it dropped.
        self.call(|reply| Control::Crash { node, reply }).await
    }

    async fn power_loss(&self, node: &str) -> docker::Result<serde_json::Value> {
        self.kill(node).await
    }

    async fn restart(&self, node: &str) -> docker::Result<()> {
        self.known(node)?;
        let owned = node.to_string();
        self.call(|reply| Control::Start { node: owned, reply }).await?;
        self.wait_ready(node).await
    }

    async fn pause(&self, node: &str) -> docker::Result<()> {
        self.known(node)?;
        let pairs: Vec<Pair> = self.neighbours(node).iter().map(|h| pair(node, h)).collect();
        let ops = self.links.lock().expect("links lock poisoned").hold(&pairs, &format!("pause {node}"));
        self.send_links(ops);
        Ok(())
    }

    async fn resume(&self, node: &str) -> docker::Result<()> {
        let ops = self.links.lock().expect("links lock poisoned").release(&format!("pause {node}"));
        self.send_links(ops);
        Ok(())
    }

    async fn collect_logs(&self) -> docker::Result<()> {
        Ok(()) // Every node logs into the run's one simulation log as it goes.
    }

    async fn teardown(&self) -> docker::Result<()> {
        Ok(()) // The simulation ends with its harness.
    }

    async fn set_clock_offset(&self, node: &str, offset_secs: i64) -> docker::Result<()> {
        let offsets = self.offsets.lock().expect("offsets lock poisoned");
        let offset = offsets.get(node).ok_or_else(|| ClusterError::UnknownNode(node.to_string()))?;
        offset.set_s(offset_secs);
        Ok(())
    }

    async fn join_node(&self, id: &str) -> docker::Result<Joined> {
        docker::ring_change::join(self, id).await
    }

    async fn leave_node(&self, node: &str) -> docker::Result<Left> {
        docker::ring_change::leave(self, node).await
    }

    async fn preference_list(&self, key: &str) -> docker::Result<Vec<String>> {
        docker::ring_change::preference_list(self, key).await
    }

    fn link_faults(&self) -> Option<&dyn LinkFaults> {
        Some(self)
    }

    fn fault_mechanism(&self, fault: Fault) -> Option<&'static str> {
        SimCluster::mechanism(fault)
    }
}

#[async_trait::async_trait]
impl Members for SimCluster {
    fn store(&self) -> StoreKind {
        StoreKind::Dynamo
    }

    async fn start_member(&self, id: &str, extra_args: Vec<String>) -> docker::Result<()> {
        if self.nodes().iter().any(|n| n == id) {
            return Err(ClusterError::Other(format!("node {id} already exists")));
        }
        let offset = ClockOffset::default();
        self.offsets.lock().expect("offsets lock poisoned").insert(id.to_string(), offset);
        let node = id.to_string();
        self.call(|reply| Control::Add { node, extra_args, reply }).await?;
        self.members.lock().expect("members lock poisoned").push(id.to_string());
        self.wait_ready(id).await
    }

    async fn remove_member(&self, id: &str) -> docker::Result<()> {
        self.known(id)?;
        let node = id.to_string();
        self.call(|reply| Control::Remove { node, reply }).await?;
        self.members.lock().expect("members lock poisoned").retain(|n| n != id);
        Ok(())
    }
}

#[async_trait::async_trait]
impl LinkFaults for SimCluster {
    fn mechanism(&self) -> &'static str {
        MECHANISM
    }

    async fn cut(&self, cut: &[(String, String)]) -> docker::Result<Value> {
        let ops = self.links.lock().expect("links lock poisoned").cut(cut);
        Ok(json!({"dropped_links": cut, "link_ops": self.send_links(ops)}))
    }

    async fn heal(&self) -> docker::Result<Value> {
        let mut links = self.links.lock().expect("links lock poisoned");
        let mut ops = links.heal_cuts();
        ops.extend(links.release(HOLD_REASON));
        drop(links);
        Ok(json!({"cuts_and_holds_removed": true, "link_ops": self.send_links(ops)}))
    }

    async fn hold(&self, pairs: &[(String, String)]) -> docker::Result<Value> {
        let pairs: Vec<Pair> = pairs.iter().map(|(a, b)| pair(a, b)).collect();
        let ops = self.links.lock().expect("links lock poisoned").hold(&pairs, HOLD_REASON);
        Ok(json!({"held_pairs": pairs, "link_ops": self.send_links(ops)}))
    }

    async fn release(&self) -> docker::Result<Value> {
        let ops = self.links.lock().expect("links lock poisoned").release(HOLD_REASON);
        Ok(json!({"released": true, "link_ops": self.send_links(ops)}))
    }

    async fn slow(&self, nodes: &[String], delay_ms: u64, jitter_ms: u64, loss_pct: u32) -> docker::Result<Value> {
        let (min_ms, max_ms) = links::latency_bounds_ms(delay_ms, jitter_ms);
        let rate = f64::from(loss_pct) / 100.0;
        let mut ops = Vec::new();
        let mut slowed = self.slowed.lock().expect("slowed lock poisoned");
        for node in nodes {
            for other in self.neighbours(node) {
                let p = pair(node, &other);
                ops.push(LinkOp::Latency { pair: p.clone(), min_ms, max_ms });
                ops.push(LinkOp::FailRate { pair: p.clone(), rate });
                slowed.push(p);
            }
        }
        drop(slowed);
        Ok(json!({
            "latency_ms": {"min": min_ms, "max": max_ms, "distribution": "min + (max - min) * Exp(5), capped"},
            "message_fail_rate": rate,
            "loss_model": "a failed message drops what is in flight on its link (turmoil link flap); stalled streams are redialed after the HTTP/2 keep-alive",
            "link_ops": self.send_links(ops),
        }))
    }

    async fn slow_links(&self, links: &[(String, String)], delay_ms: u64, jitter_ms: u64) -> docker::Result<Value> {
        // turmoil's latency is per pair: both directions of each pair.
        let (min_ms, max_ms) = links::latency_bounds_ms(delay_ms, jitter_ms);
        let pairs: std::collections::BTreeSet<Pair> = links.iter().map(|(a, b)| pair(a, b)).collect();
        let mut slowed = self.slowed.lock().expect("slowed lock poisoned");
        let ops: Vec<LinkOp> = pairs.iter().map(|p| LinkOp::Latency { pair: p.clone(), min_ms, max_ms }).collect();
        slowed.extend(pairs.iter().cloned());
        drop(slowed);
        Ok(json!({
            "latency_ms": {"min": min_ms, "max": max_ms, "distribution": "min + (max - min) * Exp(5), capped"},
            "pairs": pairs.len(),
            "link_ops": self.send_links(ops),
        }))
    }

    async fn unslow(&self) -> docker::Result<Value> {
        let pairs: Vec<Pair> = std::mem::take(&mut *self.slowed.lock().expect("slowed lock poisoned"));
        let (min_ms, max_ms) = self.base_latency_ms;
        let mut ops = Vec::new();
        for p in pairs {
            ops.push(LinkOp::Latency { pair: p.clone(), min_ms, max_ms });
            ops.push(LinkOp::FailRate { pair: p, rate: 0.0 });
        }
        Ok(
            json!({"latency_ms": {"min": min_ms, "max": max_ms}, "message_fail_rate": 0.0, "link_ops": self.send_links(ops)}),
        )
    }
}
