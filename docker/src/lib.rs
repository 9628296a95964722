//! Cluster backends: where the nodes under test run, and how faults reach them.
//!
//! The workbench drives a cluster only through the [`Cluster`] trait, so a
//! workload, a nemesis or a campaign does not care whether the nodes are
//! containers on a Docker bridge network ([`DockerCluster`], the real one:
//! fixed addresses, iptables inside each container, libfaketime) or plain
//! processes on loopback ports ([`LocalCluster`], the fallback when no Docker
//! engine answers; link faults through `linkproxy` proxies in front of the
//! nodes when the spec asks for them), or processes on real Linux hosts
//! driven over SSH ([`SshCluster`], as Jepsen runs: every fault a command on
//! the host's own kernel). What a backend cannot perform is one table per backend
//! kind ([`Capabilities`], asked before a cluster starts and behind
//! [`Cluster::supports`]); callers report it as unsupported instead of faking it.
//!
//! Everything a backend creates carries the [`LABEL`] label, so teardown, a
//! Ctrl-C, or the next start's [`remove_leftovers`] can find and remove it.

mod capabilities;
mod cpu;
mod docker;
mod error;
mod file_damage;
pub mod link_plan;
mod local;
mod loss_answer;
mod memory;
mod ready;
pub mod ring_change;
mod signal;
mod spec;
pub mod ssh;
mod store;

pub use capabilities::{Capabilities, ALL_STORES, PEER_STORES};
pub use cpu::CpuTime;
pub use docker::{
    built_image_tag, check_image, connect, docker_available, image_for_tests, kernel_has_netem, remove_all_labeled,
    remove_leftovers, remove_run, DockerCluster, CONTROL_PORT, FAKETIME_FILE, PROXIED_NODE_PORT,
};
pub use error::ClusterError;
pub use local::{find_node_binary, libfaketime_path, LocalCluster, NODE_BINARY_ENV};
pub use memory::Memory;
pub use ready::{admin_status, wait_ready, READY_TIMEOUT};
pub use ring_change::{Joined, Left, Members, MEMBERSHIP_TIMEOUT};
pub use signal::teardown_on_ctrl_c;
pub use spec::{ClusterSpec, DataFile, ExecOutput, Fault, FileDamage};
pub use ssh::{SshCluster, SshConfig};
pub use store::{probe_peer, wait_peer_ready, Member, StoreKind};

/// The label every container and network the workbench creates carries.
pub const LABEL: &str = "dynamo-workbench";

/// Where libfaketime lives in the node image (and on a Debian host with the
/// `libfaketime` package).
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// The port every node serves its gRPC services on (client, replica, admin).
pub const NODE_PORT: u16 = 7000;

/// The result of every cluster operation: a value, or the [`ClusterError`] saying why not.
pub type Result<T> = std::result::Result<T, ClusterError>;

/// A running cluster of `dynamo-node`s that faults can be applied to.
#[async_trait::async_trait]
pub trait Cluster: Send + Sync {
    /// `"docker"`, `"local"`, `"ssh"` or `"sim"`.
    fn backend(&self) -> &'static str;
    /// The node image id (docker) or binary path (local), for `run.json`.
    fn image(&self) -> String;
    /// Node ids, e.g. `["n1", "n2", "n3"]`.
    fn nodes(&self) -> Vec<String>;
    /// The gRPC endpoint the harness uses to reach `node`, e.g. `http://10.91.3.11:7000`.
    fn endpoint(&self, node: &str) -> Result<String>;
    /// A lazily connected gRPC channel from the harness to `node`'s services
    /// (client, admin), each request bounded by `timeout`. Over TCP to
    /// [`Cluster::endpoint`] by default; a simulated cluster dials its own
    /// sockets, so every harness connection goes through here.
    fn channel(&self, node: &str, timeout: std::time::Duration) -> Result<tonic::transport::Channel> {
        tcp_channel(&self.endpoint(node)?, timeout)
    }
    /// The address other nodes see `node`'s packets come from (for iptables rules).
    fn peer_ip(&self, node: &str) -> Result<std::net::IpAddr>;
    /// Whether this backend can really perform `fault`.
    fn supports(&self, fault: Fault) -> bool;
    /// The path of `node`'s libfaketime timestamp file, as a command run
    /// through [`Cluster::exec`] on that node sees it: [`FAKETIME_FILE`] in
    /// every container by default; the node's own file on an SSH host.
    fn faketime_file(&self, node: &str) -> Result<String> {
        let _ = node;
        Ok(FAKETIME_FILE.to_string())
    }
    /// Runs a command inside the node's container (docker), or on its host (ssh).
    async fn exec(&self, node: &str, argv: &[&str]) -> Result<ExecOutput>;
    /// SIGKILL the node process; its data directory is kept. Returns what
    /// the kill did beyond the signal, for the nemesis event: the
    /// simulator's power loss reports the unsynced writes it dropped;
    /// `{}` where there is nothing to add.
    async fn kill(&self, node: &str) -> Result<serde_json::Value>;
    /// Cuts the node's power: SIGKILL, and its writes not yet synced are
    /// dropped (a lazy filesystem's `lose-unsynced` on Docker; on the
    /// simulator every kill is this). Returns what was lost, for the
    /// nemesis event. [`Cluster::restart`] brings it back on what survived.
    /// Needs [`Fault::PowerLoss`].
    async fn power_loss(&self, node: &str) -> Result<serde_json::Value> {
        let _ = node;
        Err(self.unsupported("cut a node's power (drop its unsynced writes)"))
    }
    /// Start a killed node again on the same data directory and wait until it answers.
    async fn restart(&self, node: &str) -> Result<()>;
    /// SIGSTOP the node process.
    async fn pause(&self, node: &str) -> Result<()>;
    /// SIGCONT the node process.
    async fn resume(&self, node: &str) -> Result<()>;
    /// Copies every node's log into the spec's log directory.
    async fn collect_logs(&self) -> Result<()>;
    /// Removes everything this cluster created. Idempotent.
    async fn teardown(&self) -> Result<()>;
    /// Where the nodes' data stays after [`Cluster::teardown`] (`--keep-data`
    /// on SSH hosts: `user@host:port:/dir/` for every host, a spare that
    /// never ran a node having none); empty when it is removed.
    fn kept_data(&self) -> Vec<String> {
        Vec::new()
    }
    /// Sets the node's wall-clock offset through libfaketime, in whole seconds
    /// (`120`, `-30`; `0` resets). The running process follows within ~0.1 s
    /// (monotonic clocks are not faked) and the offset survives a restart.
    /// Backends without libfaketime report [`ClusterError::Unsupported`].
    async fn set_clock_offset(&self, node: &str, offset_secs: i64) -> Result<()> {
        let _ = (node, offset_secs);
        Err(self.unsupported("skew a node's clock (no libfaketime)"))
    }
    /// Starts a fresh node `id` that joins the running ring (`--join true`,
    /// announced to every current member), and returns once the members that
    /// answer all see it normal (its ranges streamed in). From then on it is
    /// in [`Cluster::nodes`]. Needs [`Fault::Membership`].
    async fn join_node(&self, id: &str) -> Result<Joined> {
        let _ = id;
        Err(self.unsupported("add a node to a running cluster"))
    }
    /// Decommissions `node` (`Admin.Leave`: its ranges stream to their new
    /// owners), then removes its container or process (its log is kept).
    /// From then on it is no longer in [`Cluster::nodes`]. Needs
    /// [`Fault::Membership`]; refused for the only node.
    async fn leave_node(&self, node: &str) -> Result<Left> {
        let _ = node;
        Err(self.unsupported("remove a node from a running cluster"))
    }
    /// The home replicas of `key` (its preference list, N node ids in ring
    /// order, down or not), asked of the first member that answers
    /// `Admin.PreferenceList`. Peer stores have no such service.
    async fn preference_list(&self, key: &str) -> Result<Vec<String>> {
        let _ = key;
        Err(self.unsupported("tell a key's preference list (no admin service)"))
    }
    /// The files at the top of a killed node's data directory, by name.
    /// Needs [`Fault::Corrupt`].
    async fn data_files(&self, node: &str) -> Result<Vec<DataFile>> {
        let _ = node;
        Err(self.unsupported("reach a node's data files"))
    }
    /// Changes one file of a killed node's data directory (the `corrupt`
    /// nemesis); the node must be down so nothing races the change.
    async fn damage_file(&self, node: &str, damage: &FileDamage) -> Result<()> {
        let _ = (node, damage);
        Err(self.unsupported("reach a node's data files"))
    }
    /// The CPU time every current member's processes have used since they
    /// started (user and kernel, from the kernel's own accounting; see
    /// `cpu.rs`), for a benchmark's CPU per operation. Backends whose nodes
    /// are no processes of their own (a simulator) cannot tell.
    async fn cpu_time(&self) -> Result<CpuTime> {
        Err(self.unsupported("tell its processes' CPU time"))
    }
    /// Every current member's resident memory, now and at its peak (from
    /// the kernel's own accounting; see `memory.rs`), so a load sweep can
    /// show that no node grows without bound.
    async fn memory(&self) -> Result<Vec<Memory>> {
        Err(self.unsupported("tell its processes' memory"))
    }
    /// How this backend performs `fault` when that is not what the event's
    /// own words say (SIGKILL, SIGSTOP, libfaketime): the simulator's
    /// power loss, held links, simulated clock. Recorded in the event.
    fn fault_mechanism(&self, fault: Fault) -> Option<&'static str> {
        let _ = fault;
        None
    }
    /// Link faults this backend performs natively (a simulator's network,
    /// link proxies in front of local processes), or `None` to have the
    /// nemesis run iptables and tc inside the nodes.
    fn link_faults(&self) -> Option<&dyn LinkFaults> {
        None
    }
    /// The error a backend returns for something it cannot do.
    fn unsupported(&self, what: &str) -> ClusterError {
        ClusterError::Unsupported { backend: self.backend(), what: what.to_string() }
    }
}

/// Faults on the links between nodes, performed by the backend's own
/// network (the simulator's, or link proxies) instead of by commands inside
/// the nodes. Links are directed
/// (`from` -> `to`), as an iptables INPUT rule on `to` dropping `from` is.
/// Each call returns what was done, for the nemesis event.
#[async_trait::async_trait]
pub trait LinkFaults: Send + Sync {
    /// What performs these faults, recorded in every event (`"turmoil"`).
    fn mechanism(&self) -> &'static str;
    /// Drops every message on each directed link until [`LinkFaults::heal`].
    async fn cut(&self, links: &[(String, String)]) -> Result<serde_json::Value>;
    /// Removes every cut and hold: messages flow again, held ones are delivered.
    async fn heal(&self) -> Result<serde_json::Value>;
    /// Holds (queues, delivers nothing) every message between each pair,
    /// both ways, until [`LinkFaults::release`]: TCP after an iptables DROP
    /// retransmits across the heal, and that is what this models.
    async fn hold(&self, pairs: &[(String, String)]) -> Result<serde_json::Value>;
    /// Delivers every held message and lets the links flow again.
    async fn release(&self) -> Result<serde_json::Value>;
    /// Adds `delay_ms` (with `jitter_ms` of spread) and `loss_pct` loss on
    /// every link of each of `nodes`, both ways.
    async fn slow(&self, nodes: &[String], delay_ms: u64, jitter_ms: u64, loss_pct: u32) -> Result<serde_json::Value>;
    /// Adds `delay_ms` (with `jitter_ms` of spread) on each directed link
    /// given, and on no other: the WAN between datacenters, where a node's
    /// links inside its own DC keep their speed.
    async fn slow_links(&self, links: &[(String, String)], delay_ms: u64, jitter_ms: u64) -> Result<serde_json::Value>;
    /// Every link back to the backend's base latency and no loss.
    async fn unslow(&self) -> Result<serde_json::Value>;
}

/// For end-to-end tests: keeps the node logs, tears `cluster` down, then
/// reports the scenario's outcome (its report printed, or a panic that says
/// where the logs are), so a failing scenario never leaves containers behind.
pub async fn conclude_test(
    cluster: &dyn Cluster,
    log_dir: &std::path::Path,
    outcome: std::result::Result<std::result::Result<String, String>, tokio::task::JoinError>,
) {
    cluster.collect_logs().await.ok();
    cluster.teardown().await.expect("teardown");
    match outcome {
        Ok(Ok(report)) => eprintln!("{report}"),
        Ok(Err(failure)) => panic!("{failure} (node logs in {})", log_dir.display()),
        Err(panic) => std::panic::resume_unwind(panic.into_panic()),
    }
}

/// A lazily connected channel over TCP to `endpoint` (`http://ip:port`):
/// opening it dials nothing, so a node that is down is an error only when a
/// request is sent; connects and requests are each bounded by `timeout`.
pub fn tcp_channel(endpoint: &str, timeout: std::time::Duration) -> Result<tonic::transport::Channel> {
    proto::lazy_channel(endpoint, timeout).map_err(|e| ClusterError::Other(format!("bad endpoint {endpoint:?}: {e}")))
}

/// The libfaketime timestamp-file line for an offset: `+120s`, `-30s`, `+0s`.
pub fn faketime_offset_line(offset_secs: i64) -> String {
    if offset_secs < 0 {
        format!("{offset_secs}s")
    } else {
        format!("+{offset_secs}s")
    }
}
