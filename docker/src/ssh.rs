//! The SSH backend: nodes as processes on real Linux hosts, driven over SSH.
//!
//! Jepsen's shape: this machine is the control node; each database node
//! runs on a host of its own, and every fault is a command on that host's
//! real kernel. Hosts come from `--hosts` ([`host`]); one [`SshClient`]
//! per host keeps one connection and runs each command on a fresh channel
//! with a deadline ([`client`]); every command line is built from quoted
//! arguments ([`quote`], [`remote`]); host keys are checked against
//! known_hosts ([`known_hosts`]).
//!
//! Starting a cluster ([`SshCluster::start`]), in order, each step on every
//! host at once and the next only when all succeeded:
//!
//! 1. **check** each host ([`prepare::check_host`]): Linux, this machine's
//!    architecture, root (or a user with passwordless sudo, when the host
//!    uses sudo), iptables, libfaketime. Any refusal stops the start
//!    before anything changed on any host, naming the host;
//! 2. **clean**: what an earlier, killed run left (processes by pid file,
//!    run directories, our iptables chain; [`remote::clean`]);
//! 3. **upload** `dynamo-node`, `dynamo-linkproxy` and `dynamo-lazyfs`, skipped where the
//!    host has the same bytes ([`prepare::upload`]);
//! 4. **start** node `i` on host `i` (`--hosts` may be longer than
//!    `--nodes`: the spare hosts take joiners), under `setsid` with a pid
//!    file and its log, its data directory per run, all under
//!    `/tmp/dynamo-workbench/<run>/`, and wait until every node answers.
//!
//! Faults: SIGKILL, SIGSTOP/SIGCONT and restart on the same data through
//! the pid file; partitions (every scheme, one-way included) as iptables
//! rules in a chain of our own on the receiving host, naming only the
//! cluster's addresses ([`links`]); clock skew through libfaketime, one
//! timestamp file per node; membership on spare hosts; file corruption on
//! a killed node's data directory, by the shell scripts the Docker backend
//! also uses ([`crate::file_damage`], `dd` and `truncate` on the host:
//! [`CORRUPT_MECHANISM`]); latency, loss and held links through a link
//! proxy in front of each node, in the runs that need one ([`proxies`]);
//! power loss on a lazy filesystem under each node's data directory, in
//! the runs that cut power ([`power`]). The backend runs our node only
//! ([`SshCluster::capabilities`]).
//!
//! At the end the logs are copied into the run's log directory, and
//! teardown kills every node, removes the chain and the run's directory
//! (the uploaded binaries stay, for the next run's hash check). With
//! `--keep-data` ([`SshConfig::keep_data`]) the run's directory stays,
//! marked so that the next start's clean spares it
//! ([`Cluster::kept_data`] says where); `workbench clean` removes it.
//!
//! What needs root (iptables, the clean, which may kill another user's
//! leftovers) goes through [`SshClient::run_as_root`]: `sudo -n -- sh -c
//! <quoted script>` for a login other than root with sudo on. The nodes
//! themselves run as the login user.
//!
//! Each host's address is resolved here, on the control machine, and used
//! both for SSH and as the node's address for its peers and for iptables:
//! the hosts must see each other at the addresses this machine sees them.

mod client;
mod error;
mod host;
mod known_hosts;
mod links;
mod power;
mod prepare;
mod proxies;
pub mod quote;
mod real_clock;
mod remote;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::try_join_all;
use tokio::sync::Mutex;

pub use client::{SshClient, SshOptions, CONNECT_ATTEMPTS};
pub use error::SshError;
pub use host::{check_distinct, parse_host, parse_hosts, HostDefaults, SshHost};
pub use known_hosts::{default_known_hosts, HostKeyPolicy};
pub use prepare::{HostNeeds, Refusal};
pub use remote::REMOTE_ROOT;

use crate::capabilities::{Capabilities, CORRUPT_DYNAMO_ONLY, PEER_STORES};
use crate::link_plan::{proxy_args, PROXIED_NODE_PORT};
use crate::ready::{wait_ready, READY_TIMEOUT};
use crate::ring_change::{self, Joined, Left, Members};
use crate::store::StoreKind;
use crate::{
    faketime_offset_line, file_damage, Cluster, ClusterError, ClusterSpec, DataFile, ExecOutput, Fault, FileDamage,
    Result, LIBFAKETIME, NODE_PORT,
};
use proxies::SshProxies;
use remote::NodePaths;

/// The deadline of a short command (a signal, a rule, a file).
const COMMAND_TIMEOUT_MS: u64 = 20_000;
/// The deadline of a kill, which waits for the process to be gone.
const KILL_TIMEOUT_MS: u64 = 30_000;
/// The deadline of reading one node's log.
const LOG_TIMEOUT_MS: u64 = 120_000;
/// The binaries every host gets: the node first, then those found beside it.
const BINARIES: [&str; 3] = ["dynamo-node", "dynamo-linkproxy", remote::LAZYFS];

/// Why a run without link proxies adds no latency.
const NO_LATENCY: &str = "latency on SSH hosts needs the link proxies, and this run was started without them";
/// What damages a killed node's files on its host, recorded in the event.
pub const CORRUPT_MECHANISM: &str = "dd over ssh";
/// Why the SSH backend hosts no peer store.
const DYNAMO_ONLY: &str = "the ssh backend runs dynamo-node only";

/// What an SSH cluster needs besides its [`ClusterSpec`].
#[derive(Debug, Clone)]
pub struct SshConfig {
    /// Every host, in order: node `i` starts on host `i`, the rest are spares.
    pub hosts: Vec<SshHost>,
    /// Key, known hosts, connect deadline.
    pub options: Arc<SshOptions>,
    /// The local `dynamo-node` to upload; `dynamo-linkproxy` and
    /// `dynamo-lazyfs` are taken from the same directory.
    pub node_binary: PathBuf,
    /// Leave the nodes' data directories on the hosts at teardown (`--keep-data`).
    pub keep_data: bool,
    /// Install what a host lacks with its apt before refusing it (`--ssh-install`).
    pub install: bool,
    /// Clock faults move the hosts' real clocks (`--ssh-real-clock`; see [`real_clock`]).
    pub real_clock: bool,
}

impl SshConfig {
    /// The local binaries to upload, by their name on the hosts.
    fn binaries(&self) -> Vec<(PathBuf, &'static str)> {
        let dir = self.node_binary.parent().unwrap_or(Path::new("."));
        let beside = BINARIES[1..].iter().map(|name| (dir.join(name), *name));
        std::iter::once((self.node_binary.clone(), BINARIES[0])).chain(beside).collect()
    }
}

/// One host, connected and checked, with the address the others see.
struct HostSlot {
    /// Its connection.
    client: SshClient,
    /// Its address (resolved on this machine).
    ip: IpAddr,
    /// Whether a node has run on it this run (a spare host that never
    /// took a joiner holds no data to keep).
    hosted: std::sync::atomic::AtomicBool,
}

/// One node: where it runs and how it is started again.
struct SshNode {
    /// Node id, e.g. `n1`.
    id: String,
    /// Its host.
    slot: Arc<HostSlot>,
    /// Its files on the host.
    paths: NodePaths,
    /// The `--peers` it starts with.
    peers: String,
    /// Flags after the spec's (a joiner's), kept for restarts.
    extra_args: Vec<String>,
}

/// An SSH cluster's members, shared by the cluster and its link proxies.
type Roster = Arc<std::sync::RwLock<Vec<Arc<SshNode>>>>;

/// A cluster of `dynamo-node` processes on SSH hosts (see the module docs).
pub struct SshCluster {
    /// What was asked for.
    spec: ClusterSpec,
    /// The hosts, connected and checked, in `--hosts` order.
    slots: Vec<Arc<HostSlot>>,
    /// The node binary's path and hash, for `run.json`.
    image: String,
    /// The current members, in start then join order (shared with the
    /// link proxies).
    nodes: Roster,
    /// Held for a whole join or leave.
    membership_change: Mutex<()>,
    /// Leave the run's directory on the hosts at teardown.
    keep_data: bool,
    /// The link proxies in front of the nodes, in a run that needs them.
    proxies: Option<SshProxies>,
    /// Clock faults move the hosts' real clocks (`--ssh-real-clock`).
    real_clock: bool,
    /// Per node, the real-clock offset in force (s), with `real_clock`.
    clock_offsets_s: Mutex<std::collections::BTreeMap<String, i64>>,
}

impl SshCluster {
    /// What SSH clusters can perform (see the module docs).
    pub fn capabilities() -> Capabilities {
        let mut caps = Capabilities::all("ssh").without(Fault::Corrupt, &PEER_STORES, CORRUPT_DYNAMO_ONLY).without(
            Fault::PowerLoss,
            &PEER_STORES,
            DYNAMO_ONLY,
        );
        for fault in [Fault::Partition, Fault::Kill, Fault::Pause, Fault::Clock, Fault::Latency, Fault::Membership] {
            caps = caps.without(fault, &PEER_STORES, DYNAMO_ONLY);
        }
        caps
    }

    /// Whether a run of `store` that must perform `fault` starts a link
    /// proxy in front of each node: for latency (loss included), which
    /// this backend adds only so ([`proxies`]).
    pub fn needs_link_proxy(fault: Fault, store: StoreKind) -> bool {
        store == StoreKind::Dynamo && fault == Fault::Latency
    }

    /// Connects to and checks every host, cleans them, uploads the
    /// binaries, starts the nodes and waits until all answer. A host that
    /// cannot serve is refused before any node starts.
    pub async fn start(spec: &ClusterSpec, config: &SshConfig) -> Result<SshCluster> {
        if spec.nodes.len() > config.hosts.len() {
            return Err(ClusterError::Other(format!(
                "{} nodes need {} hosts, but --hosts names {}",
                spec.nodes.len(),
                spec.nodes.len(),
                config.hosts.len()
            )));
        }
        if !remote::is_plain_name(&spec.name) {
            return Err(ClusterError::Other(format!("run name {:?} is not a plain name", spec.name)));
        }
        let real_clock = config.real_clock && spec.clock_faults;
        let needs = HostNeeds { fuse: spec.power_loss, sys_time: real_clock };
        let slots = connect_all(config, needs).await?;
        try_join_all(slots.iter().map(|s| clean_host(&s.client, true))).await?;
        upload_all(&slots, config).await?;
        let hash = prepare::local_sha256(&config.node_binary)
            .map_err(|s| ClusterError::Io { context: format!("read {}", config.node_binary.display()), source: s })?;
        let nodes = Roster::default();
        let cluster = SshCluster {
            spec: spec.clone(),
            slots,
            image: format!("{} (sha256 {})", config.node_binary.display(), &hash[..16]),
            keep_data: config.keep_data,
            proxies: spec.link_proxy.map(|_| SshProxies::new(Arc::clone(&nodes))),
            real_clock,
            clock_offsets_s: Mutex::new(Default::default()),
            nodes,
            membership_change: Mutex::new(()),
        };
        match cluster.start_all().await {
            Ok(()) => Ok(cluster),
            Err(e) => {
                if let Err(te) = cluster.teardown().await {
                    tracing::warn!(error = %te, "could not clean up the failed ssh start");
                }
                Err(e)
            }
        }
    }

    /// Removes what a killed run left on every host (`workbench clean
    /// --backend ssh`), and the data runs kept unless `config.keep_data`.
    pub async fn clean(config: &SshConfig) -> Result<usize> {
        let clients: Vec<SshClient> =
            config.hosts.iter().map(|h| SshClient::new(h.clone(), config.options.clone())).collect();
        try_join_all(clients.iter().map(|c| clean_host(c, config.keep_data))).await?;
        for client in &clients {
            client.close().await;
        }
        Ok(clients.len())
    }

    /// The hosts' labels (`user@address:port`), for `run.json`: no keys, no secrets.
    pub fn host_labels(config: &SshConfig) -> Vec<String> {
        config.hosts.iter().map(SshHost::label).collect()
    }

    async fn start_all(&self) -> Result<()> {
        let peers = self
            .spec
            .nodes
            .iter()
            .zip(&self.slots)
            .map(|(id, slot)| format!("{id}={}", socket(slot.ip)))
            .collect::<Vec<_>>()
            .join(",");
        let mut setup = remote::install_chain();
        if self.real_clock {
            setup = format!("{setup} && {}", real_clock::stop_ntp(&self.run_dir()));
        }
        try_join_all(self.slots.iter().map(|s| s.client.run_as_root(&setup, COMMAND_TIMEOUT_MS))).await?;
        for (id, slot) in self.spec.nodes.iter().zip(&self.slots) {
            let node = Arc::new(self.lay_out(id, slot.clone(), peers.clone(), Vec::new()));
            self.enroll(node);
        }
        try_join_all(self.roster().iter().map(|n| self.spawn(n))).await?;
        try_join_all(self.roster().iter().map(|n| self.wait_node_ready(n))).await?;
        tracing::info!(run = %self.spec.name, nodes = self.spec.nodes.len(), "ssh cluster ready");
        Ok(())
    }

    fn lay_out(&self, id: &str, slot: Arc<HostSlot>, peers: String, extra_args: Vec<String>) -> SshNode {
        SshNode { id: id.to_string(), slot, paths: NodePaths::new(&self.spec.name, id), peers, extra_args }
    }

    /// Makes `node` a member (and so its proxy's, in a run with proxies).
    fn enroll(&self, node: Arc<SshNode>) {
        let mut nodes = self.nodes.write().expect("never poisoned");
        assert!(!nodes.iter().any(|n| n.id == node.id), "{} is a member once", node.id);
        node.slot.hosted.store(true, std::sync::atomic::Ordering::Relaxed);
        nodes.push(node);
    }

    /// A copy of the current members.
    fn roster(&self) -> Vec<Arc<SshNode>> {
        self.nodes.read().expect("never poisoned").clone()
    }

    fn node(&self, node: &str) -> Result<Arc<SshNode>> {
        self.roster().into_iter().find(|n| n.id == node).ok_or_else(|| ClusterError::UnknownNode(node.to_string()))
    }

    /// The run's directory on every host.
    fn run_dir(&self) -> String {
        format!("{REMOTE_ROOT}/{}", self.spec.name)
    }

    /// Whether the nodes run under libfaketime (a run with clock faults,
    /// unless they move the real clocks).
    fn faketime(&self) -> bool {
        self.supports(Fault::Clock) && !self.real_clock
    }

    /// Starts the node's process (its faketime file first, at offset 0 if
    /// new); first, unless they run, its link proxy (a run with link
    /// proxies) and its lazy filesystem (a run that cuts power).
    async fn spawn(&self, node: &SshNode) -> Result<()> {
        if self.on_lazyfs() {
            self.mount_lazyfs(node).await?;
        }
        let listen = match &self.proxies {
            Some(proxies) => {
                self.spawn_proxy(node, &proxies.members()).await?;
                format!("127.0.0.1:{PROXIED_NODE_PORT}")
            }
            None => format!("0.0.0.0:{NODE_PORT}"),
        };
        let mut argv = vec![
            remote::binary_path(BINARIES[0]),
            "--id".into(),
            node.id.clone(),
            "--listen".into(),
            listen,
            "--peers".into(),
            node.peers.clone(),
            "--data-dir".into(),
            node.paths.data_dir.clone(),
        ];
        argv.extend(self.spec.node_args.iter().cloned());
        argv.extend(node.extra_args.iter().cloned());
        let mut env = Vec::new();
        if self.faketime() {
            let keep = format!(
                "[ -f {} ] || {{ {}; }}",
                quote::quote(&node.paths.faketime),
                remote::write_faketime(&node.paths, &faketime_offset_line(0))
            );
            node.slot.client.run_script(&keep, COMMAND_TIMEOUT_MS).await?;
            env = vec![
                ("LD_PRELOAD".to_string(), LIBFAKETIME.to_string()),
                ("FAKETIME_TIMESTAMP_FILE".to_string(), node.paths.faketime.clone()),
                ("FAKETIME_NO_CACHE".to_string(), "1".to_string()),
                ("DONT_FAKE_MONOTONIC".to_string(), "1".to_string()),
            ];
        }
        node.slot.client.run_script(&remote::start_node(&node.paths, &env, &argv), COMMAND_TIMEOUT_MS).await?;
        tracing::debug!(node = %node.id, host = %node.slot.client.host(), "node process started");
        Ok(())
    }

    /// Starts the link proxy in front of `node`, naming `members`, unless
    /// one already runs there (it outlives the node's kills).
    async fn spawn_proxy(&self, node: &SshNode, members: &[(String, IpAddr)]) -> Result<()> {
        let seed = self.spec.link_proxy.expect("only a run with link proxies starts them");
        let mut argv = vec![remote::binary_path(BINARIES[1])];
        argv.extend(proxy_args(&node.id, node.slot.ip, members, seed));
        node.slot.client.run_script(&remote::start_proxy(&node.paths, &argv), COMMAND_TIMEOUT_MS).await?;
        Ok(())
    }

    async fn wait_node_ready(&self, node: &SshNode) -> Result<()> {
        wait_ready(&node.id, &endpoint_of(node.slot.ip), READY_TIMEOUT).await.map(|_| ())
    }

    /// Sends `signal` to the node's process; an error if it is not running.
    async fn signal(&self, node: &str, signal: &str) -> Result<()> {
        let n = self.node(node)?;
        n.slot.client.run_script(&remote::signal_node(&n.paths, signal), COMMAND_TIMEOUT_MS).await?;
        tracing::info!(node, signal, host = %n.slot.client.host(), "signal sent");
        Ok(())
    }

    /// Kills the node's process (waiting until it is gone); fine if none.
    async fn stop_process(node: &SshNode) -> Result<()> {
        node.slot.client.run_script(&remote::kill_process(&node.paths.pid), KILL_TIMEOUT_MS).await?;
        Ok(())
    }

    /// Kills the node and its link proxy, then unmounts its lazy
    /// filesystem, those it has; fine if none runs.
    async fn stop_all_processes(node: &SshNode) -> Result<()> {
        let script = format!(
            "({}) && ({}) && ({})",
            remote::kill_process(&node.paths.pid),
            remote::kill_process(&node.paths.proxy_pid),
            remote::unmount_lazyfs(&node.paths)
        );
        node.slot.client.run_script(&script, KILL_TIMEOUT_MS).await?;
        Ok(())
    }

    /// Whether the node's process is running (or stopped).
    async fn running(node: &SshNode) -> Result<bool> {
        let out = node.slot.client.output(&remote::node_running(&node.paths), None, COMMAND_TIMEOUT_MS).await?;
        Ok(out.exit_code == 0)
    }

    /// Fails while the node's process runs (its files must not change under it).
    async fn ensure_down(node: &SshNode) -> Result<()> {
        if Self::running(node).await? {
            return Err(ClusterError::Other(format!("node {} is still running; kill it first", node.id)));
        }
        Ok(())
    }

    /// Copies `node`'s log into the spec's log directory.
    async fn copy_log(&self, node: &SshNode) -> Result<()> {
        let script = format!("cat -- {} 2>/dev/null || true", quote::quote(&node.paths.log));
        let out = node.slot.client.run_script(&script, LOG_TIMEOUT_MS).await?;
        let path = self.spec.log_dir.join(format!("{}.log", node.id));
        std::fs::write(&path, out.stdout)
            .map_err(|s| ClusterError::Io { context: format!("write {}", path.display()), source: s })
    }
}

/// Connects to every host at once, checks it and resolves its address;
/// the first refusal (naming its host) stops the start.
async fn connect_all(config: &SshConfig, needs: HostNeeds) -> Result<Vec<Arc<HostSlot>>> {
    let slots = config.hosts.iter().map(|host| async move {
        let ip = resolve(host).await?;
        let client = SshClient::new(host.clone(), config.options.clone());
        prepare::check_host(&client, needs, config.install)
            .await
            .map_err(|e| ClusterError::Other(format!("refused: {e}")))?;
        Ok::<_, ClusterError>(Arc::new(HostSlot { client, ip, hosted: Default::default() }))
    });
    try_join_all(slots).await
}

/// Removes what killed runs left on the host ([`remote::clean`], as root:
/// their processes may be another user's) and, for a login that uses sudo,
/// hands the workbench's directory to it.
async fn clean_host(client: &SshClient, spare_kept: bool) -> Result<()> {
    let mut script = remote::clean(spare_kept);
    if client.host().uses_sudo() {
        script = format!("{script} && {}", remote::hand_over(&client.host().user));
    }
    client.run_as_root(&script, COMMAND_TIMEOUT_MS).await?;
    Ok(())
}

/// Uploads every binary to every host (skipped where already there).
async fn upload_all(slots: &[Arc<HostSlot>], config: &SshConfig) -> Result<()> {
    let binaries = config.binaries();
    for (local, _) in &binaries {
        if !local.is_file() {
            return Err(ClusterError::Other(format!(
                "{} not found; build them with `cargo build --release --workspace`",
                local.display()
            )));
        }
    }
    let uploads = slots
        .iter()
        .flat_map(|slot| binaries.iter().map(move |(local, name)| prepare::upload(&slot.client, local, name)));
    try_join_all(uploads).await.map_err(|e| ClusterError::Other(format!("upload refused: {e}")))?;
    Ok(())
}

/// The host's address as this machine resolves it (IPv4 preferred).
async fn resolve(host: &SshHost) -> Result<IpAddr> {
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((host.address.as_str(), host.port))
        .await
        .map_err(|e| ClusterError::Other(format!("refused: {host}: cannot resolve {}: {e}", host.address)))?
        .map(|a| a.ip())
        .collect();
    addrs
        .iter()
        .find(|ip| ip.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| ClusterError::Other(format!("refused: {host}: {} has no address", host.address)))
}

/// `ip:port` of a node's service (IPv6 in brackets).
fn socket(ip: IpAddr) -> String {
    std::net::SocketAddr::new(ip, NODE_PORT).to_string()
}

fn endpoint_of(ip: IpAddr) -> String {
    format!("http://{}", socket(ip))
}

impl From<SshError> for ClusterError {
    fn from(e: SshError) -> Self {
        ClusterError::Other(e.to_string())
    }
}

#[async_trait::async_trait]
impl Cluster for SshCluster {
    fn backend(&self) -> &'static str {
        "ssh"
    }

    fn image(&self) -> String {
        self.image.clone()
    }

    fn nodes(&self) -> Vec<String> {
        self.roster().iter().map(|n| n.id.clone()).collect()
    }

    fn endpoint(&self, node: &str) -> Result<String> {
        Ok(endpoint_of(self.node(node)?.slot.ip))
    }

    fn peer_ip(&self, node: &str) -> Result<IpAddr> {
        Ok(self.node(node)?.slot.ip)
    }

    fn supports(&self, fault: Fault) -> bool {
        self.spec.prepared_for(fault) && SshCluster::capabilities().supports(fault, StoreKind::Dynamo)
    }

    fn link_faults(&self) -> Option<&dyn crate::LinkFaults> {
        match &self.proxies {
            Some(proxies) => Some(proxies),
            None => Some(self),
        }
    }

    fn fault_mechanism(&self, fault: Fault) -> Option<&'static str> {
        match fault {
            Fault::Corrupt => Some(CORRUPT_MECHANISM),
            Fault::PowerLoss => Some(power::MECHANISM),
            Fault::Clock if self.real_clock => Some(real_clock::MECHANISM),
            _ => None,
        }
    }

    fn faketime_file(&self, node: &str) -> Result<String> {
        Ok(self.node(node)?.paths.faketime.clone())
    }

    async fn exec(&self, node: &str, argv: &[&str]) -> Result<ExecOutput> {
        let n = self.node(node)?;
        Ok(n.slot.client.output(&quote::command(argv), None, COMMAND_TIMEOUT_MS).await?)
    }

    async fn kill(&self, node: &str) -> Result<serde_json::Value> {
        let n = self.node(node)?;
        Self::stop_process(&n).await?;
        tracing::info!(node, host = %n.slot.client.host(), "node killed (SIGKILL)");
        Ok(serde_json::json!({}))
    }

    async fn power_loss(&self, node: &str) -> Result<serde_json::Value> {
        if !self.on_lazyfs() {
            return Err(self.unsupported("cut a node's power: the cluster was started without lazyfs (power_loss)"));
        }
        self.cut_power(node).await
    }

    async fn restart(&self, node: &str) -> Result<()> {
        let n = self.node(node)?;
        if Self::running(&n).await? {
            return Err(ClusterError::Other(format!("node {node} is still running; kill it first")));
        }
        self.spawn(&n).await?;
        self.wait_node_ready(&n).await?;
        tracing::info!(node, "node restarted");
        Ok(())
    }

    async fn data_files(&self, node: &str) -> Result<Vec<DataFile>> {
        let n = self.node(node)?;
        Self::ensure_down(&n).await?;
        let out = n.slot.client.run_script(&file_damage::list_script(&n.paths.data_dir), COMMAND_TIMEOUT_MS).await?;
        file_damage::parse_listing(&out.stdout)
    }

    async fn damage_file(&self, node: &str, damage: &FileDamage) -> Result<()> {
        let n = self.node(node)?;
        Self::ensure_down(&n).await?;
        let script = file_damage::damage_script(&n.paths.data_dir, damage)?;
        let out = n.slot.client.run_script(&script, COMMAND_TIMEOUT_MS).await?;
        tracing::info!(node, ?damage, host = %n.slot.client.host(), done = out.stdout.trim(), "data file damaged");
        Ok(())
    }

    async fn pause(&self, node: &str) -> Result<()> {
        self.signal(node, "STOP").await
    }

    async fn resume(&self, node: &str) -> Result<()> {
        self.signal(node, "CONT").await
    }

    async fn collect_logs(&self) -> Result<()> {
        std::fs::create_dir_all(&self.spec.log_dir)
            .map_err(|s| ClusterError::Io { context: format!("create {}", self.spec.log_dir.display()), source: s })?;
        for node in &self.roster() {
            self.copy_log(node).await?;
        }
        Ok(())
    }

    async fn teardown(&self) -> Result<()> {
        let run_dir = self.run_dir();
        let keep = match self.keep_data {
            true => remote::mark_kept(&run_dir),
            false => quote::command(&["rm", "-rf", "--", &run_dir]),
        };
        let mut first_error = None;
        let restore = real_clock::restore(&quote::quote(&run_dir));
        for slot in &self.slots {
            let root = format!("{}; {restore}", remote::remove_chain());
            let script = format!("{}; {keep}", slot.client.root_script(&root));
            for node in self.roster().iter().filter(|n| Arc::ptr_eq(&n.slot, slot)) {
                if let Err(e) = Self::stop_all_processes(node).await {
                    first_error.get_or_insert(e);
                }
            }
            if let Err(e) = slot.client.run_script(&script, KILL_TIMEOUT_MS).await {
                first_error.get_or_insert(e.into());
            }
            slot.client.close().await;
        }
        tracing::info!(run = %self.spec.name, keep_data = self.keep_data, "ssh cluster stopped");
        first_error.map_or(Ok(()), Err)
    }

    fn kept_data(&self) -> Vec<String> {
        match self.keep_data {
            true => self
                .slots
                .iter()
                .filter(|s| s.hosted.load(std::sync::atomic::Ordering::Relaxed))
                .map(|s| format!("{}:{}/", s.client.host(), self.run_dir()))
                .collect(),
            false => Vec::new(),
        }
    }

    async fn set_clock_offset(&self, node: &str, offset_secs: i64) -> Result<()> {
        let n = self.node(node)?;
        if self.real_clock {
            return self.bump_real_clock(&n, offset_secs).await;
        }
        if !self.faketime() {
            return Err(self.unsupported(&format!("skew {node}'s clock (started without clock faults)")));
        }
        let line = faketime_offset_line(offset_secs);
        n.slot.client.run_script(&remote::write_faketime(&n.paths, &line), COMMAND_TIMEOUT_MS).await?;
        tracing::info!(node, offset_secs, "clock offset set");
        Ok(())
    }

    async fn join_node(&self, id: &str) -> Result<Joined> {
        ring_change::join(self, id).await
    }

    async fn leave_node(&self, node: &str) -> Result<Left> {
        ring_change::leave(self, node).await
    }

    async fn preference_list(&self, key: &str) -> Result<Vec<String>> {
        ring_change::preference_list(self, key).await
    }
}

#[async_trait::async_trait]
impl Members for SshCluster {
    fn store(&self) -> StoreKind {
        StoreKind::Dynamo
    }

    /// Starts node `id` on a host that runs no member (a spare, or one a
    /// leaver freed), with the members and itself as `--peers`.
    async fn start_member(&self, id: &str, extra_args: Vec<String>) -> Result<()> {
        if !remote::is_plain_name(id) {
            return Err(ClusterError::Other(format!("node id {id:?} is not a plain name")));
        }
        let node = {
            let _change = self.membership_change.lock().await;
            let members = self.roster();
            if members.iter().any(|n| n.id == id) {
                return Err(ClusterError::Other(format!("node {id} already exists")));
            }
            let slot =
                self.slots.iter().find(|s| !members.iter().any(|n| Arc::ptr_eq(&n.slot, s))).cloned().ok_or_else(
                    || ClusterError::Other(format!("no spare host for {id}: give --hosts more hosts than --nodes")),
                )?;
            let mut peers: Vec<String> = members.iter().map(|n| format!("{}={}", n.id, socket(n.slot.ip))).collect();
            peers.push(format!("{id}={}", socket(slot.ip)));
            let node = Arc::new(self.lay_out(id, slot, peers.join(","), extra_args));
            self.enroll(node.clone());
            self.spawn(&node).await?;
            node
        };
        if let Some(proxies) = &self.proxies {
            proxies.reinstall().await;
        }
        self.wait_node_ready(&node).await?;
        tracing::info!(run = %self.spec.name, node = id, host = %node.slot.client.host(), "node added");
        Ok(())
    }

    /// Kills the leaver's process (its log and data stay until teardown).
    async fn remove_member(&self, id: &str) -> Result<()> {
        let _change = self.membership_change.lock().await;
        let node = self.node(id)?;
        self.copy_log(&node).await?;
        Self::stop_all_processes(&node).await?;
        self.nodes.write().expect("never poisoned").retain(|n| n.id != id);
        tracing::info!(run = %self.spec.name, node = id, "node removed");
        Ok(())
    }
}
