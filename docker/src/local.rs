//! The local-process backend: nodes as child processes on loopback addresses.
//!
//! Why it exists: a laptop or CI runner without a Docker engine can still
//! run workloads, checkers and faults. Each node is a `dynamo-node` child
//! process on its own free loopback port with its own data directory (under
//! the system temp dir, wiped at start so a run never inherits another's
//! data); its stdout and stderr are appended to `<log_dir>/<node>.log`,
//! across restarts.
//!
//! What is real here: kill (SIGKILL), pause/resume (SIGSTOP/SIGCONT) through
//! `nix`, restart on the same port and data directory, and clock skew when
//! libfaketime is installed on the host (each node gets its own timestamp
//! file). Link faults (partitions of every scheme, one-way included,
//! latency and loss) need a cluster started with
//! [`ClusterSpec::link_proxy`]: then each node runs on its own loopback
//! address (127.0.0.11, .12, ...) and dials its peers from it, and an
//! in-process [`linkproxy::Proxy`] holds the node's public port on that
//! address, forwarding to the node's inner port; the proxy tells peers apart
//! by source address (the harness's own connections come from 127.0.0.1,
//! `client`), and [`links`] drives the proxies as [`crate::LinkFaults`].
//! Processes share the host's network stack, so there is no iptables or
//! netem per node; without a proxy those faults are reported unsupported
//! via [`Cluster::supports`] and [`Cluster::exec`] rather than faked.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use nix::sys::signal::{kill as send_signal, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::capabilities::{Capabilities, ALL_STORES, CORRUPT_DYNAMO_ONLY, PEER_STORES};
use crate::file_damage;
use crate::ready::{wait_ready, READY_TIMEOUT};
use crate::ring_change::{self, Joined, Left};
use crate::store::{wait_peer_ready, Member, StoreKind};
use crate::{
    faketime_offset_line, Cluster, ClusterError, ClusterSpec, CpuTime, DataFile, ExecOutput, Fault, FileDamage, Result,
    LIBFAKETIME,
};

mod links;
mod membership;
mod power;

use crate::link_plan::LINK_PROXY_FAULTS;

/// The last octet of the first node's loopback address behind proxies
/// (127.0.0.11): clear of 127.0.0.1, where the harness's connections come
/// from and are named `client`.
const FIRST_NODE_OCTET: u8 = 11;

/// The environment variable that overrides [`find_node_binary`].
pub const NODE_BINARY_ENV: &str = "DWB_NODE_BINARY";

/// One node process and everything needed to start it again.
struct LocalNode {
    /// Node id, e.g. `n1`.
    id: String,
    /// The node's loopback address: 127.0.0.1, or its own 127.0.0.x behind a proxy.
    ip: Ipv4Addr,
    /// Loopback port clients and peers dial (the proxy's, when there is
    /// one); kept across restarts.
    port: u16,
    /// The second port: etcd's peer URL; behind a proxy, the port our node
    /// itself listens on (the proxy forwards there); else unused.
    peer_port: u16,
    /// The link-fault proxy in front of the node, if the cluster has them;
    /// it outlives restarts of the node.
    proxy: Option<Arc<linkproxy::Proxy>>,
    /// The node's `--data-dir`; kept across restarts.
    data_dir: PathBuf,
    /// This node's libfaketime timestamp file.
    faketime_file: PathBuf,
    /// Where stdout and stderr are appended.
    log_path: PathBuf,
    /// The `--peers` value it starts with (the members when it was added).
    peers: String,
    /// Flags after the spec's (a joiner's `--join true --seed-node ...`),
    /// kept so a restart runs the same command line.
    extra_args: Vec<String>,
    /// The running (or killed but not yet restarted) process.
    child: Mutex<Option<Child>>,
    /// The lazy filesystem mounted at `data_dir`, in runs that lose power.
    lazy: Option<power::LazyMount>,
}

/// A cluster of local `dynamo-node` processes (see the module docs).
pub struct LocalCluster {
    /// What was asked for.
    spec: ClusterSpec,
    /// The node binary every process runs.
    binary: PathBuf,
    /// Root of this run's data directories and faketime files.
    base_dir: PathBuf,
    /// The current members, in start order then join order. Behind a lock
    /// because [`Cluster::join_node`] and [`Cluster::leave_node`] change it
    /// through `&self` while workloads and nemeses read it.
    nodes: std::sync::RwLock<Vec<Arc<LocalNode>>>,
    /// Held for a whole join or leave, so two changes never interleave.
    membership_change: Mutex<()>,
    /// Which server the processes run (our node, or a peer store).
    store: StoreKind,
    /// The last octet of the next node's loopback address behind proxies
    /// (never reused: a joiner must not take a leaver's source name).
    next_octet: std::sync::atomic::AtomicU8,
    /// The link faults in force, when the nodes are behind proxies.
    links: tokio::sync::Mutex<crate::link_plan::LinkPlan>,
}

/// The path of libfaketime on this host, if installed.
pub fn libfaketime_path() -> Option<PathBuf> {
    let path = PathBuf::from(LIBFAKETIME);
    path.exists().then_some(path)
}

/// Finds a built `dynamo-node`: `$DWB_NODE_BINARY`, else the newer of
/// `target/{release,debug}/dynamo-node` under the current directory or any
/// ancestor (then under this workspace), else `dynamo-node` on `PATH`.
pub fn find_node_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(NODE_BINARY_ENV).map(PathBuf::from) {
        return path.is_file().then_some(path);
    }
    search_roots().into_iter().find_map(|root| newest_built_binary(&root)).or_else(|| on_path("dynamo-node"))
}

/// Where to look for a workspace's `target/`: the current directory and its
/// ancestors, then the workspace this crate was built in.
pub(crate) fn search_roots() -> Vec<PathBuf> {
    let cwd = std::env::current_dir().ok();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf);
    cwd.iter().flat_map(|d| d.ancestors().map(Path::to_path_buf)).chain(workspace).collect()
}

fn newest_built_binary(root: &Path) -> Option<PathBuf> {
    ["release", "debug"]
        .iter()
        .map(|profile| root.join("target").join(profile).join("dynamo-node"))
        .filter(|p| p.is_file())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// Reserves `n` free ports on loopback address `ip` by binding to port 0
/// (all at once, so they differ), then releases them for the nodes.
fn free_ports(ip: Ipv4Addr, n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((ip, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|source| io_err("find free loopback ports", source))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|source| io_err("read a bound port", source))
}

fn io_err(context: impl Into<String>, source: std::io::Error) -> ClusterError {
    ClusterError::Io { context: context.into(), source }
}

fn pid_of(child: &Child) -> Option<Pid> {
    child.id().map(|id| Pid::from_raw(id as i32))
}

/// Why local processes get no power loss: a lazy filesystem per node
/// would need FUSE on the host, and mounting it is not done here yet.
const POWER_LOSS_PEERS: &str =
    "peer stores keep their data on the host's disk: no lazy filesystem is mounted under them";

impl LocalCluster {
    /// What local clusters can perform, before one is started: processes
    /// on one host share its network (no per-node iptables or netem), so
    /// link faults need link proxies, which go only in front of our node
    /// (and only when [`ClusterSpec::link_proxy`] asks); clock
    /// skew needs the host's libfaketime and is never applied to peer
    /// stores; peer stores have no join flags or `Admin.Leave`.
    pub fn capabilities() -> Capabilities {
        let shared = "processes on one host share its network stack, and link proxies go only in front of our node";
        let caps = Capabilities::all("local")
            .without(Fault::Partition, &PEER_STORES, shared)
            .without(Fault::Latency, &PEER_STORES, shared)
            .without(Fault::Membership, &PEER_STORES, "peer stores have no join flags or Admin.Leave")
            .without(Fault::Corrupt, &PEER_STORES, CORRUPT_DYNAMO_ONLY)
            .without(Fault::PowerLoss, &PEER_STORES, POWER_LOSS_PEERS);
        let caps = match power::unavailable(find_node_binary().as_deref()) {
            Some(why) => caps.without(Fault::PowerLoss, &[StoreKind::Dynamo], why),
            None => caps,
        };
        match libfaketime_path() {
            Some(_) => caps.without(Fault::Clock, &PEER_STORES, "peer stores never run under libfaketime"),
            None => caps.without(Fault::Clock, &ALL_STORES, "libfaketime is not installed on this host"),
        }
    }

    /// Whether a cluster that must perform `fault` on `store` needs
    /// [`ClusterSpec::link_proxy`].
    pub fn needs_link_proxy(fault: Fault, store: StoreKind) -> bool {
        store == StoreKind::Dynamo && LINK_PROXY_FAULTS.contains(&fault)
    }

    /// Spawns one `binary` process per node and waits until all answer.
    pub async fn start(spec: &ClusterSpec, binary: PathBuf) -> Result<LocalCluster> {
        Self::start_with(spec, binary, StoreKind::Dynamo).await
    }

    /// Spawns a peer store (etcd, Redis) from the host's own installation
    /// (Debian's `etcd-server` / `redis-server` packages).
    pub async fn start_store(spec: &ClusterSpec, store: StoreKind) -> Result<LocalCluster> {
        let program = match store {
            StoreKind::Dynamo => find_node_binary(),
            StoreKind::Etcd => on_path("etcd"),
            StoreKind::Redis => on_path("redis-server"),
        };
        let program = program.ok_or_else(|| {
            ClusterError::Other(format!(
                "no {} binary on PATH (apt-get install etcd-server redis-server)",
                store.name()
            ))
        })?;
        Self::start_with(spec, program, store).await
    }

    async fn start_with(spec: &ClusterSpec, binary: PathBuf, store: StoreKind) -> Result<LocalCluster> {
        if !binary.is_file() {
            return Err(ClusterError::Other(format!(
                "node binary {} not found; build it with `cargo build --release -p dynamo-node`",
                binary.display()
            )));
        }
        if spec.link_proxy.is_some() && store != StoreKind::Dynamo {
            return Err(ClusterError::Other(format!(
                "link proxies go only in front of dynamo-node, not {}",
                store.name()
            )));
        }
        let cluster = Self::prepare(spec, binary, store).await?;
        match cluster.spawn_all().await {
            Ok(()) => Ok(cluster),
            Err(e) => {
                if let Err(te) = cluster.teardown().await {
                    tracing::warn!(error = %te, "could not clean up the failed local start");
                }
                Err(e)
            }
        }
    }

    /// Lays out addresses, ports, directories, files and proxies; starts no node.
    async fn prepare(spec: &ClusterSpec, binary: PathBuf, store: StoreKind) -> Result<LocalCluster> {
        let base_dir = std::env::temp_dir().join(format!("dwb-{}", spec.name));
        power::detach_all_under(&base_dir.join("data"))?;
        if base_dir.exists() {
            std::fs::remove_dir_all(&base_dir)
                .map_err(|s| io_err(format!("wipe stale data {}", base_dir.display()), s))?;
        }
        std::fs::create_dir_all(&spec.log_dir)
            .map_err(|s| io_err(format!("create log dir {}", spec.log_dir.display()), s))?;
        let cluster = LocalCluster {
            spec: spec.clone(),
            binary,
            base_dir,
            nodes: std::sync::RwLock::new(Vec::new()),
            membership_change: Mutex::new(()),
            store,
            next_octet: std::sync::atomic::AtomicU8::new(FIRST_NODE_OCTET),
            links: tokio::sync::Mutex::new(crate::link_plan::LinkPlan::default()),
        };
        let mut places = Vec::new();
        for _ in &spec.nodes {
            let ip = cluster.next_ip();
            let ports = free_ports(ip, 2)?;
            places.push((ip, ports[0], ports[1]));
        }
        let peers = spec
            .nodes
            .iter()
            .zip(&places)
            .map(|(id, (ip, port, _))| format!("{id}={ip}:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        for (id, place) in spec.nodes.iter().zip(places) {
            let node = cluster.lay_out(id, place, peers.clone(), Vec::new()).await?;
            cluster.nodes.write().expect("the node list lock is never poisoned").push(Arc::new(node));
        }
        Ok(cluster)
    }

    /// The next node's loopback address: its own 127.0.0.x behind proxies,
    /// else the shared 127.0.0.1.
    fn next_ip(&self) -> Ipv4Addr {
        if self.spec.link_proxy.is_none() {
            return Ipv4Addr::LOCALHOST;
        }
        let octet = self.next_octet.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert!(octet < 255, "at most {} nodes get their own loopback address", 255 - FIRST_NODE_OCTET);
        Ipv4Addr::new(127, 0, 0, octet)
    }

    /// One node's data directory, faketime file (at offset zero) and, when
    /// the cluster has them, its link proxy on `(ip, port)`.
    async fn lay_out(
        &self,
        id: &str,
        (ip, port, peer_port): (Ipv4Addr, u16, u16),
        peers: String,
        extra_args: Vec<String>,
    ) -> Result<LocalNode> {
        let proxy = match self.spec.link_proxy {
            Some(seed) => Some(self.start_proxy(id, ip, (port, peer_port), seed).await?),
            None => None,
        };
        let node = LocalNode {
            id: id.to_string(),
            ip,
            port,
            peer_port,
            proxy,
            data_dir: self.base_dir.join("data").join(id),
            faketime_file: self.base_dir.join(format!("{id}.faketime")),
            log_path: self.spec.log_dir.join(format!("{id}.log")),
            peers,
            extra_args,
            child: Mutex::new(None),
            lazy: None,
        };
        std::fs::create_dir_all(&node.data_dir)
            .map_err(|s| io_err(format!("create data dir {}", node.data_dir.display()), s))?;
        let node = self.mount_lazyfs(node).await?;
        if self.faketime() {
            write_offset(&node.faketime_file, 0)?;
        }
        Ok(node)
    }

    /// Whether our nodes run on lazy filesystems: only in a run that may
    /// lose power, and only where the capability table allows it.
    fn on_lazyfs(&self) -> bool {
        self.supports(Fault::PowerLoss)
    }

    /// `node` with a lazy filesystem mounted at its data directory, in a
    /// run on lazy filesystems; else `node` as it is.
    async fn mount_lazyfs(&self, mut node: LocalNode) -> Result<LocalNode> {
        if !self.on_lazyfs() {
            return Ok(node);
        }
        let binary = power::lazyfs_binary(Some(&self.binary))
            .ok_or_else(|| ClusterError::Other("no dynamo-lazyfs binary beside dynamo-node or on PATH".into()))?;
        let backing = self.base_dir.join("backing").join(&node.id);
        let log = self.spec.log_dir.join(format!("{}.lazyfs.log", node.id));
        node.lazy = Some(power::LazyMount::start(&binary, &node.data_dir, &backing, &log).await?);
        Ok(node)
    }

    /// Whether our nodes run under libfaketime: only in a run that may skew
    /// clocks, and only where the capability table allows it (the host has
    /// the library; peer stores never run under it).
    fn faketime(&self) -> bool {
        self.supports(Fault::Clock)
    }

    /// A copy of the current members (the lock is never held across an await).
    fn roster(&self) -> Vec<Arc<LocalNode>> {
        self.nodes.read().expect("the node list lock is never poisoned").clone()
    }

    async fn spawn_all(&self) -> Result<()> {
        let nodes = self.roster();
        for node in &nodes {
            self.spawn(node).await?;
        }
        let waits = nodes.iter().map(|n| self.wait_node_ready(n));
        futures::future::try_join_all(waits).await?;
        tracing::info!(run = %self.spec.name, nodes = nodes.len(), "local cluster ready");
        Ok(())
    }

    /// The node's data directory (kept across restarts, removed at teardown).
    pub fn data_dir(&self, node: &str) -> Result<PathBuf> {
        Ok(self.node(node)?.data_dir.clone())
    }

    /// The link-fault proxy in front of `node`, when the cluster has them
    /// (for faults finer than [`crate::LinkFaults`] asks, and its counters).
    pub fn link_proxy(&self, node: &str) -> Result<Option<Arc<linkproxy::Proxy>>> {
        Ok(self.node(node)?.proxy.clone())
    }

    /// The pid of the node's process, if one is running (or stopped).
    pub async fn pid(&self, node: &str) -> Result<Option<u32>> {
        let node = self.node(node)?;
        let guard = node.child.lock().await;
        Ok(guard.as_ref().and_then(Child::id))
    }

    fn node(&self, node: &str) -> Result<Arc<LocalNode>> {
        self.roster().into_iter().find(|n| n.id == node).ok_or_else(|| ClusterError::UnknownNode(node.to_string()))
    }

    fn command(&self, node: &LocalNode, log: std::fs::File) -> Result<Command> {
        let log_err =
            log.try_clone().map_err(|s| io_err(format!("duplicate log handle {}", node.log_path.display()), s))?;
        if self.store != StoreKind::Dynamo {
            return Ok(self.peer_command(node, log, log_err));
        }
        // Behind a proxy the node listens on the inner port (and, on its
        // own loopback address, dials its peers from it: Config::dial_from).
        let listen_port = if node.proxy.is_some() { node.peer_port } else { node.port };
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--id")
            .arg(&node.id)
            .arg("--listen")
            .arg(format!("{}:{listen_port}", node.ip))
            .arg("--peers")
            .arg(&node.peers)
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(&self.spec.node_args)
            .args(&node.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        if self.faketime() {
            cmd.env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME_TIMESTAMP_FILE", &node.faketime_file)
                .env("FAKETIME_NO_CACHE", "1")
                .env("DONT_FAKE_MONOTONIC", "1");
        }
        Ok(cmd)
    }

    /// Starts the node's process (appending to its log) and records it.
    async fn spawn(&self, node: &LocalNode) -> Result<()> {
        let log = open_log(&node.log_path)?;
        let child = self
            .command(node, log)?
            .spawn()
            .map_err(|s| io_err(format!("spawn {} for {}", self.binary.display(), node.id), s))?;
        tracing::debug!(node = %node.id, port = node.port, pid = ?child.id(), "node process spawned");
        *node.child.lock().await = Some(child);
        Ok(())
    }

    /// Sends `signal` to the node's process.
    async fn signal(&self, node: &str, signal: Signal) -> Result<()> {
        let target = self.node(node)?;
        let guard = target.child.lock().await;
        let pid = guard
            .as_ref()
            .and_then(pid_of)
            .ok_or_else(|| ClusterError::Other(format!("node {node} has no running process")))?;
        send_signal(pid, signal)
            .map_err(|e| ClusterError::Other(format!("send {signal} to {node} (pid {pid}): {e}")))?;
        tracing::info!(node, %signal, %pid, "signal sent");
        Ok(())
    }

    /// SIGCONT then SIGKILL the node's process and reap it; fine if none.
    async fn stop_process(node: &LocalNode) -> Result<()> {
        let mut guard = node.child.lock().await;
        if let Some(mut child) = guard.take() {
            if let Some(pid) = pid_of(&child) {
                let _ = send_signal(pid, Signal::SIGCONT);
                let _ = send_signal(pid, Signal::SIGKILL);
            }
            child.wait().await.map_err(|s| io_err(format!("reap the process of {}", node.id), s))?;
        }
        Ok(())
    }
}

impl LocalCluster {
    /// Fails while the node's process is still running (restarts and file
    /// damage need it killed first).
    async fn ensure_down(&self, n: &LocalNode) -> Result<()> {
        let mut guard = n.child.lock().await;
        if let Some(child) = guard.as_mut() {
            let exited = child.try_wait().map_err(|s| io_err(format!("check the process of {}", n.id), s))?;
            if exited.is_none() {
                return Err(ClusterError::Other(format!("node {} is still running; kill it first", n.id)));
            }
        }
        Ok(())
    }

    fn endpoint_of(&self, node: &LocalNode) -> String {
        self.store.endpoint(&node.ip.to_string(), node.port)
    }

    /// `Admin.Status` for our node, the store's own health check for a peer.
    async fn wait_node_ready(&self, node: &LocalNode) -> Result<()> {
        match self.store {
            StoreKind::Dynamo => wait_ready(&node.id, &self.endpoint_of(node), READY_TIMEOUT).await.map(|_| ()),
            store => wait_peer_ready(store, &node.id, "127.0.0.1", node.port, READY_TIMEOUT).await,
        }
    }

    /// A peer store member's process: its own command line on loopback ports.
    fn peer_command(&self, node: &LocalNode, log: std::fs::File, log_err: std::fs::File) -> Command {
        let members: Vec<Member> = self
            .roster()
            .iter()
            .map(|n| Member { id: n.id.clone(), host: "127.0.0.1".into(), port: n.port, peer_port: n.peer_port })
            .collect();
        let index = self.roster().iter().position(|n| n.id == node.id).unwrap_or(0);
        let data_dir = node.data_dir.display().to_string();
        let argv = self.store.peer_argv(index, &members, &data_dir, "127.0.0.1");
        let mut cmd = Command::new(&self.binary);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        cmd
    }
}

fn open_log(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|s| io_err(format!("open node log {}", path.display()), s))
}

/// Atomically replaces a libfaketime timestamp file with an offset.
fn write_offset(file: &Path, offset_secs: i64) -> Result<()> {
    let tmp = file.with_extension("faketime.new");
    std::fs::write(&tmp, format!("{}\n", faketime_offset_line(offset_secs)))
        .map_err(|s| io_err(format!("write {}", tmp.display()), s))?;
    std::fs::rename(&tmp, file).map_err(|s| io_err(format!("replace {}", file.display()), s))
}

#[async_trait::async_trait]
impl Cluster for LocalCluster {
    fn backend(&self) -> &'static str {
        "local"
    }

    fn image(&self) -> String {
        self.binary.display().to_string()
    }

    fn nodes(&self) -> Vec<String> {
        self.roster().iter().map(|n| n.id.clone()).collect()
    }

    fn endpoint(&self, node: &str) -> Result<String> {
        Ok(self.endpoint_of(&*self.node(node)?))
    }

    fn peer_ip(&self, node: &str) -> Result<IpAddr> {
        Ok(IpAddr::V4(self.node(node)?.ip))
    }

    fn supports(&self, fault: Fault) -> bool {
        let proxied = self.spec.link_proxy.is_some() || !LINK_PROXY_FAULTS.contains(&fault);
        proxied && self.spec.prepared_for(fault) && LocalCluster::capabilities().supports(fault, self.store)
    }

    fn fault_mechanism(&self, fault: Fault) -> Option<&'static str> {
        if fault == Fault::PowerLoss {
            return self.on_lazyfs().then_some("lazyfs");
        }
        (self.spec.link_proxy.is_some() && LINK_PROXY_FAULTS.contains(&fault)).then_some(crate::link_plan::MECHANISM)
    }

    fn link_faults(&self) -> Option<&dyn crate::LinkFaults> {
        self.spec.link_proxy.map(|_| self as &dyn crate::LinkFaults)
    }

    async fn exec(&self, node: &str, argv: &[&str]) -> Result<ExecOutput> {
        self.node(node)?;
        Err(ClusterError::Unsupported {
            backend: "local",
            what: format!("run {argv:?} inside node {node} (no container)"),
        })
    }

    async fn kill(&self, node: &str) -> Result<serde_json::Value> {
        self.signal(node, Signal::SIGKILL).await?;
        let target = self.node(node)?;
        let mut guard = target.child.lock().await;
        if let Some(child) = guard.as_mut() {
            child.wait().await.map_err(|s| io_err(format!("reap the killed process of {node}"), s))?;
        }
        Ok(serde_json::json!({}))
    }

    async fn power_loss(&self, node: &str) -> Result<serde_json::Value> {
        let n = self.node(node)?;
        let Some(lazy) = n.lazy.as_ref() else {
            return Err(self.unsupported("cut a node's power: the cluster was started without lazyfs (power_loss)"));
        };
        self.kill(node).await?;
        lazy.lose_unsynced()
    }

    async fn restart(&self, node: &str) -> Result<()> {
        let n = self.node(node)?;
        self.ensure_down(&n).await?;
        self.spawn(&n).await?;
        self.wait_node_ready(&n).await?;
        tracing::info!(node, "node restarted");
        Ok(())
    }

    async fn data_files(&self, node: &str) -> Result<Vec<DataFile>> {
        let n = self.node(node)?;
        self.ensure_down(&n).await?;
        file_damage::list(&n.data_dir)
    }

    async fn damage_file(&self, node: &str, damage: &FileDamage) -> Result<()> {
        let n = self.node(node)?;
        self.ensure_down(&n).await?;
        file_damage::apply(&n.data_dir, damage)?;
        tracing::info!(node, ?damage, "data file damaged");
        Ok(())
    }

    async fn pause(&self, node: &str) -> Result<()> {
        self.signal(node, Signal::SIGSTOP).await
    }

    async fn resume(&self, node: &str) -> Result<()> {
        self.signal(node, Signal::SIGCONT).await
    }

    async fn cpu_time(&self) -> Result<CpuTime> {
        let mut sum = CpuTime::default();
        for node in &self.roster() {
            if let Some(pid) = node.child.lock().await.as_ref().and_then(Child::id) {
                sum = sum + crate::cpu::of_process(pid)?;
            }
        }
        Ok(sum)
    }

    async fn memory(&self) -> Result<Vec<crate::Memory>> {
        let mut members = Vec::new();
        for node in &self.roster() {
            if let Some(pid) = node.child.lock().await.as_ref().and_then(Child::id) {
                members.push(crate::memory::of_process(pid)?);
            }
        }
        Ok(members)
    }

    /// Nodes already write straight into `<log_dir>/<node>.log`.
    async fn collect_logs(&self) -> Result<()> {
        Ok(())
    }

    async fn teardown(&self) -> Result<()> {
        for node in &self.roster() {
            Self::stop_process(node).await?;
            if let Some(lazy) = &node.lazy {
                lazy.stop().await?;
            }
        }
        if self.base_dir.exists() {
            tokio::fs::remove_dir_all(&self.base_dir)
                .await
                .map_err(|s| io_err(format!("remove {}", self.base_dir.display()), s))?;
        }
        tracing::info!(run = %self.spec.name, "local cluster stopped");
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

    async fn set_clock_offset(&self, node: &str, offset_secs: i64) -> Result<()> {
        let n = self.node(node)?;
        if !self.faketime() {
            let why = match self.spec.clock_faults {
                true => format!("libfaketime is not installed at {LIBFAKETIME}"),
                false => "the cluster was started without clock faults (ClusterSpec::clock_faults)".to_string(),
            };
            return Err(ClusterError::Unsupported { backend: "local", what: format!("skew {node}'s clock ({why})") });
        }
        write_offset(&n.faketime_file, offset_secs)?;
        tracing::info!(node, offset_secs, "clock offset set");
        Ok(())
    }
}
