//! The Docker backend: one container per node on a bridge network we own.
//!
//! Why containers: every fault the workbench injects must be real and local
//! to one node. A container gives each node its own network namespace (so
//! `iptables -A INPUT -s <peer> -j DROP` inside it partitions exactly that
//! node, and `tc netem` slows exactly its traffic, without touching the
//! host's firewall), its own process tree (SIGKILL/SIGSTOP reach just the
//! node) and its own filesystem (so `/data` survives a kill and restart).
//! On a kernel without `sch_netem` (this project's machines) `tc netem`
//! fails, and latency is performed instead by a link proxy inside each
//! container, in front of the node (`links.rs`; the campaign asks for it
//! through [`ClusterSpec::link_proxy`] when [`kernel_has_netem`] says no).
//!
//! Shape of a cluster named `run1` with nodes n1..n3:
//! - network `dwb-run1`: a user-defined bridge with an explicit subnet
//!   `10.213.<k>.0/24` (k from a hash of the name, retried on overlap), so
//!   node addresses are fixed before any container starts and every node can
//!   be given the full `--peers` list on its command line;
//! - containers `dwb-run1-n1`..: address `10.213.<k>.<11+i>`, `NET_ADMIN`,
//!   hostname = node id, the node on port [`NODE_PORT`]. The harness reaches
//!   nodes directly at `http://<ip>:7000` (the host routes to the bridge), so
//!   nothing is published on host ports.
//! - everything labeled [`LABEL`]`=1` and `dynamo-workbench.run=<name>`.
//!
//! The entrypoint is a tiny `sh -c` wrapper that creates the libfaketime
//! timestamp file (`+0s`) if it is missing and then `exec`s the node with
//! `LD_PRELOAD` set, so PID 1 is the node itself: `docker kill -s SIGSTOP`
//! stops exactly it, and [`Cluster::set_clock_offset`] only has to rewrite
//! the file. `LD_PRELOAD` is exported by the wrapper rather than set in the
//! container environment, so `docker exec` tools (iptables, tc) run unfaked.
//!
//! A run that may cut a node's power puts the node's data directory on a
//! lazy filesystem and the node behind a shell as PID 1 (`power.rs`).
//!
//! The engine here is old (20.10, API 1.41) while bollard speaks 1.5x, so
//! [`connect`] negotiates the API version down before anything else.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerStatsResponse, EndpointIpamConfig, EndpointSettings, ExecConfig, HostConfig, Ipam,
    IpamConfig, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder, StatsOptions,
};
use bollard::Docker;
use futures::StreamExt;

use crate::capabilities::{Capabilities, CORRUPT_DYNAMO_ONLY, PEER_STORES, POWER_LOSS_DYNAMO_ONLY};
use crate::ready::{wait_ready, READY_TIMEOUT};
use crate::store::{wait_peer_ready, Member, StoreKind};
use crate::{
    faketime_offset_line, Cluster, ClusterError, ClusterSpec, CpuTime, DataFile, ExecOutput, Fault, FileDamage, Joined,
    Left, Result, LABEL, LIBFAKETIME, NODE_PORT,
};

mod data_files;
mod links;
mod membership;
mod power;

pub use links::{CONTROL_PORT, PROXIED_NODE_PORT};

/// The label carrying the run (cluster) name.
const RUN_LABEL: &str = "dynamo-workbench.run";

/// The libfaketime timestamp file inside each container. It lives on its
/// own volume, not in the container's root filesystem: with
/// `FAKETIME_NO_CACHE=1` libfaketime opens and reads it on every clock call,
/// and where Docker's storage driver is fuse-overlayfs each open is a round
/// trip through a FUSE daemon (measured: it halved the node's throughput).
pub const FAKETIME_FILE: &str = "/faketime/offset";

/// Directories every container gets as anonymous volumes: plain host
/// directories that bypass the storage driver (the node's data and WAL
/// fsyncs included, as a real deployment puts data on a volume), kept
/// across a kill and restart of the container, and removed with it
/// (`force_remove_container` passes `v`).
const VOLUMES: [&str; 2] = ["/data", "/faketime"];

/// How long a ping may take before the engine counts as absent.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// How many subnets to try when the hashed one overlaps an existing network.
const SUBNET_ATTEMPTS: u32 = 20;

/// The entrypoint wrapper when the run may skew clocks (`ClusterSpec::clock_faults`):
/// create the faketime file once, then become the node under libfaketime.
const FAKETIME_WRAPPER: &str = concat!(
    "[ -f /faketime/offset ] || echo +0s > /faketime/offset; ",
    "export LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1; ",
    "exec /usr/local/bin/dynamo-node \"$@\""
);

/// The entrypoint wrapper otherwise: the node on the real clock, with no
/// library intercepting its clock reads.
const WRAPPER: &str = "exec /usr/local/bin/dynamo-node \"$@\"";

/// The wrapper for a peer store: `$0` is the program (etcd, redis-server),
/// found on PATH, run as PID 1. No libfaketime here: Redis with jemalloc
/// recurses inside libfaketime's clock_gettime and dies, and Go (etcd) reads
/// the clock through the vDSO, so the preload would not skew it anyway;
/// clock faults are reported unsupported for peer stores instead.
const PEER_WRAPPER: &str = "mkdir -p /data; exec \"$0\" \"$@\"";

/// One node's container.
#[derive(Debug, Clone)]
struct NodeContainer {
    /// Node id, e.g. `n1`.
    id: String,
    /// Container name, `dwb-<run>-<node>`.
    container: String,
    /// Fixed address on the run's bridge network.
    ip: Ipv4Addr,
}

/// A running cluster of node containers (see the module docs).
pub struct DockerCluster {
    /// Connection to the engine, API version negotiated.
    docker: Docker,
    /// What was asked for.
    spec: ClusterSpec,
    /// The image reference given to [`DockerCluster::start`].
    image_tag: String,
    /// The image id the reference resolved to at start (`sha256:...`).
    image_id: String,
    /// The bridge network's name, `dwb-<run>`.
    network: String,
    /// The network's subnet, e.g. `10.213.17.0/24`.
    subnet: String,
    /// The current members, in start order then join order. Behind a lock
    /// because [`Cluster::join_node`] and [`Cluster::leave_node`] change it
    /// through `&self` while workloads and nemeses read it.
    nodes: std::sync::RwLock<Vec<NodeContainer>>,
    /// The highest address ever given to a node: a joiner gets the next one,
    /// never a departed node's (peers may still hold connections to it).
    highest_ip: std::sync::Mutex<Ipv4Addr>,
    /// Held for a whole join or leave, so two changes never interleave.
    membership_change: tokio::sync::Mutex<()>,
    /// Which server the containers run (our node, or a peer store).
    store: StoreKind,
    /// The link faults in force, when the nodes run behind link proxies
    /// ([`ClusterSpec::link_proxy`]).
    links: tokio::sync::Mutex<crate::link_plan::LinkPlan>,
}

/// Connects to the local engine and negotiates the API version down to what
/// it speaks; a dead daemon becomes [`ClusterError::DockerUnavailable`].
pub async fn connect() -> Result<Docker> {
    let unavailable = |e: &dyn std::fmt::Display| ClusterError::DockerUnavailable(e.to_string());
    let docker = Docker::connect_with_local_defaults().map_err(|e| unavailable(&e))?;
    let docker = tokio::time::timeout(PING_TIMEOUT, docker.negotiate_version())
        .await
        .map_err(|_| unavailable(&"version negotiation timed out"))?
        .map_err(|e| unavailable(&e))?;
    tokio::time::timeout(PING_TIMEOUT, docker.ping())
        .await
        .map_err(|_| unavailable(&"ping timed out"))?
        .map_err(|e| unavailable(&e))?;
    Ok(docker)
}

/// The image tag `make image` recorded in `target/dynamo-node.image` (looked
/// up from the current directory upwards, then in this workspace).
pub fn built_image_tag() -> Option<String> {
    crate::local::search_roots().into_iter().find_map(|root| {
        let text = std::fs::read_to_string(root.join("target").join("dynamo-node.image")).ok()?;
        let tag = text.trim();
        (!tag.is_empty()).then(|| tag.to_string())
    })
}

/// For end-to-end tests: the locally built node image when a Docker engine
/// answers, else `None` after printing why (the test then skips, saying so).
pub async fn image_for_tests() -> Option<String> {
    if !docker_available().await {
        eprintln!("SKIP: no Docker engine answers");
        return None;
    }
    let image = built_image_tag();
    if image.is_none() {
        eprintln!("SKIP: target/dynamo-node.image is missing; run `make image`");
    }
    image
}

/// Whether a Docker engine answers a ping within a couple of seconds.
pub async fn docker_available() -> bool {
    connect().await.is_ok()
}

/// Removes the containers and networks labeled [`LABEL`] whose owning
/// workbench process is gone: what a crashed or killed workbench left
/// behind. Objects of a workbench that is still running (another campaign,
/// a concurrent test) are left alone. Returns how many objects were removed.
pub async fn remove_leftovers() -> Result<usize> {
    let docker = connect().await?;
    remove_labeled(&docker, LABEL, is_orphan).await
}

/// Removes every container and network labeled [`LABEL`], running owner or
/// not (`workbench clean --all`).
pub async fn remove_all_labeled() -> Result<usize> {
    let docker = connect().await?;
    remove_labeled(&docker, LABEL, |_| true).await
}

/// The label naming the process that created an object, and the boot it ran in.
const OWNER_PID_LABEL: &str = "dynamo-workbench.owner-pid";
const OWNER_BOOT_LABEL: &str = "dynamo-workbench.owner-boot";

/// This machine's boot id: a pid is only meaningful within one boot.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// An object is an orphan unless its owner label names a live process of this boot.
fn is_orphan(labels: &HashMap<String, String>) -> bool {
    let (Some(pid), Some(boot)) = (labels.get(OWNER_PID_LABEL), labels.get(OWNER_BOOT_LABEL)) else {
        return true;
    };
    let alive = pid.parse::<u32>().is_ok_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
    !(alive && *boot == boot_id())
}

/// Removes the containers and network of one run, by its label; works
/// without a [`DockerCluster`] handle (e.g. after an interrupted start).
pub async fn remove_run(run: &str) -> Result<usize> {
    let docker = connect().await?;
    remove_labeled(&docker, &format!("{RUN_LABEL}={run}"), |_| true).await
}

/// Force-removes containers, then networks, matching a label filter and `pick`.
async fn remove_labeled(
    docker: &Docker,
    label_filter: &str,
    pick: impl Fn(&HashMap<String, String>) -> bool,
) -> Result<usize> {
    let filters = HashMap::from([("label".to_string(), vec![label_filter.to_string()])]);
    let containers = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .map_err(|e| docker_err(format!("list containers labeled {label_filter}"), e))?;
    let mut removed = 0;
    let picked = |labels: &Option<HashMap<String, String>>| pick(labels.as_ref().unwrap_or(&HashMap::new()));
    for c in containers.iter().filter(|c| picked(&c.labels)).filter_map(|c| c.id.as_deref()) {
        removed += usize::from(force_remove_container(docker, c).await?);
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(|e| docker_err(format!("list networks labeled {label_filter}"), e))?;
    for n in networks.iter().filter(|n| picked(&n.labels)).filter_map(|n| n.id.as_deref()) {
        removed += usize::from(remove_network(docker, n).await?);
    }
    if removed > 0 {
        tracing::info!(removed, label_filter, "removed leftover containers and networks");
    }
    Ok(removed)
}

/// Force-removes a container and its volumes; `false` if it was already gone.
async fn force_remove_container(docker: &Docker, container: &str) -> Result<bool> {
    let opts = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    match docker.remove_container(container, Some(opts)).await {
        Ok(()) => Ok(true),
        Err(e) if is_status(&e, 404) => Ok(false),
        Err(e) => Err(docker_err(format!("remove container {container}"), e)),
    }
}

/// Removes a network; `false` if it was already gone.
async fn remove_network(docker: &Docker, network: &str) -> Result<bool> {
    match docker.remove_network(network).await {
        Ok(()) => Ok(true),
        Err(e) if is_status(&e, 404) => Ok(false),
        Err(e) => Err(docker_err(format!("remove network {network}"), e)),
    }
}

fn is_status(e: &bollard::errors::Error, code: u16) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code, .. } if *status_code == code)
}

fn docker_err(context: impl Into<String>, source: bollard::errors::Error) -> ClusterError {
    ClusterError::Docker { context: context.into(), source }
}

/// The labels every object of run `run` carries.
fn labels(run: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL.to_string(), "1".to_string()),
        (RUN_LABEL.to_string(), run.to_string()),
        (OWNER_PID_LABEL.to_string(), std::process::id().to_string()),
        (OWNER_BOOT_LABEL.to_string(), boot_id()),
    ])
}

/// A stable small hash of the run name (FNV-1a), to spread runs over subnets.
fn name_hash(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// The `attempt`-th candidate third octet for run `name`.
fn subnet_octet(name: &str, attempt: u32) -> u8 {
    ((name_hash(name).wrapping_add(attempt.wrapping_mul(37))) % 254 + 1) as u8
}

/// Node `index`'s fixed address in subnet `10.213.<k>.0/24`.
fn node_ip(k: u8, index: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 213, k, 11 + index as u8)
}

/// The `--peers` value: `n1=10.213.k.11:7000,n2=...`.
fn peers_arg(nodes: &[NodeContainer]) -> String {
    let peers: Vec<String> = nodes.iter().map(|n| format!("{}={}:{NODE_PORT}", n.id, n.ip)).collect();
    peers.join(",")
}

impl DockerCluster {
    /// What Docker clusters can perform, before one is started: everything
    /// on our node; peer stores run without libfaketime (see PEER_WRAPPER)
    /// and have no join flags or `Admin.Leave`.
    pub fn capabilities() -> Capabilities {
        Capabilities::all("docker")
            .without(Fault::Clock, &PEER_STORES, "peer stores run without libfaketime")
            .without(Fault::Membership, &PEER_STORES, "peer stores have no join flags or Admin.Leave")
            .without(Fault::Corrupt, &PEER_STORES, CORRUPT_DYNAMO_ONLY)
            .without(Fault::PowerLoss, &PEER_STORES, POWER_LOSS_DYNAMO_ONLY)
    }

    /// Whether a cluster that must perform `fault` on `store` needs
    /// [`ClusterSpec::link_proxy`]: latency on our node where the kernel
    /// cannot perform it ([`kernel_has_netem`]). Partitions stay iptables
    /// rules inside the nodes unless the proxies are there anyway.
    pub fn needs_link_proxy(fault: Fault, store: StoreKind) -> bool {
        store == StoreKind::Dynamo && fault == Fault::Latency && !kernel_has_netem()
    }

    /// Creates the network and one container per node from `image`, starts
    /// them and waits until every node answers its admin status. On failure
    /// the node logs are collected (if any) and everything is removed.
    pub async fn start(spec: &ClusterSpec, image: &str) -> Result<DockerCluster> {
        Self::start_store(spec, image, StoreKind::Dynamo).await
    }

    /// Like [`DockerCluster::start`], for any [`StoreKind`]: a peer store
    /// (etcd, Redis) runs from the same image with its own command line, and
    /// is ready when its own protocol says so.
    pub async fn start_store(spec: &ClusterSpec, image: &str, store: StoreKind) -> Result<DockerCluster> {
        if spec.nodes.is_empty() || spec.nodes.len() > 200 {
            return Err(ClusterError::Other(format!("a docker cluster needs 1..=200 nodes, got {}", spec.nodes.len())));
        }
        if spec.power_loss && store == StoreKind::Dynamo {
            power::check_host()?;
        }
        let docker = connect().await?;
        let image_id = resolve_image(&docker, image).await?;
        let network = format!("dwb-{}", spec.name);
        let k = create_network(&docker, &network, &spec.name).await?;
        let nodes: Vec<NodeContainer> = spec
            .nodes
            .iter()
            .enumerate()
            .map(|(i, id)| NodeContainer {
                id: id.clone(),
                container: format!("dwb-{}-{id}", spec.name),
                ip: node_ip(k, i),
            })
            .collect();
        let highest_ip = node_ip(k, nodes.len() - 1);
        let cluster = DockerCluster {
            docker,
            spec: spec.clone(),
            image_tag: image.to_string(),
            image_id,
            network,
            subnet: format!("10.213.{k}.0/24"),
            nodes: std::sync::RwLock::new(nodes),
            highest_ip: std::sync::Mutex::new(highest_ip),
            membership_change: tokio::sync::Mutex::new(()),
            store,
            links: tokio::sync::Mutex::new(crate::link_plan::LinkPlan::default()),
        };
        match cluster.create_and_start_all().await {
            Ok(()) => Ok(cluster),
            Err(e) => Err(cluster.abandon(e).await),
        }
    }

    /// The bridge network's name.
    pub fn network_name(&self) -> &str {
        &self.network
    }

    /// The bridge network's subnet, e.g. `10.213.17.0/24`.
    pub fn subnet(&self) -> &str {
        &self.subnet
    }

    /// The image reference the cluster was started from.
    pub fn image_tag(&self) -> &str {
        &self.image_tag
    }

    /// The container name of `node`.
    pub fn container_name(&self, node: &str) -> Result<String> {
        Ok(self.node(node)?.container)
    }

    async fn create_and_start_all(&self) -> Result<()> {
        let nodes = self.roster();
        let peers = peers_arg(&nodes);
        for node in &nodes {
            self.create_container(node, &peers).await?;
            self.start_container(node).await?;
            if self.on_lazyfs() {
                self.wait_mounted(node).await?;
            }
        }
        let waits = nodes.iter().map(|n| self.wait_node_ready(n));
        futures::future::try_join_all(waits).await?;
        tracing::info!(run = %self.spec.name, nodes = nodes.len(), subnet = %self.subnet, "docker cluster ready");
        Ok(())
    }

    /// Start failed: keep what the nodes printed, remove everything, and
    /// return the original error (a teardown failure is only logged).
    async fn abandon(&self, error: ClusterError) -> ClusterError {
        tracing::warn!(run = %self.spec.name, %error, "docker cluster failed to start; removing it");
        if let Err(e) = self.collect_logs().await {
            tracing::warn!(error = %e, "could not collect logs of the failed start");
        }
        if let Err(e) = self.teardown().await {
            tracing::warn!(error = %e, "could not remove the failed cluster");
        }
        error
    }

    /// A copy of the current members (the lock is never held across an await).
    fn roster(&self) -> Vec<NodeContainer> {
        self.nodes.read().expect("the node list lock is never poisoned").clone()
    }

    fn node(&self, node: &str) -> Result<NodeContainer> {
        self.roster().into_iter().find(|n| n.id == node).ok_or_else(|| ClusterError::UnknownNode(node.to_string()))
    }

    /// `dynamo-node`'s arguments: identity, the static peer list, the spec's flags.
    fn node_cmd(&self, node: &NodeContainer, peers: &str) -> Vec<String> {
        let mut cmd = vec![
            "--id".to_string(),
            node.id.clone(),
            "--listen".to_string(),
            self.listen_address(),
            "--peers".to_string(),
            peers.to_string(),
            "--data-dir".to_string(),
            "/data".to_string(),
        ];
        cmd.extend(self.spec.node_args.iter().cloned());
        cmd
    }

    /// Where the node listens: its public port, or behind its link proxy
    /// only on the container's loopback.
    fn listen_address(&self) -> String {
        if self.proxied() {
            format!("127.0.0.1:{PROXIED_NODE_PORT}")
        } else {
            format!("0.0.0.0:{NODE_PORT}")
        }
    }

    fn container_body(&self, node: &NodeContainer, peers: &str) -> ContainerCreateBody {
        let (entrypoint, cmd) = self.entry_and_cmd(node, peers);
        let endpoint = EndpointSettings {
            ipam_config: Some(EndpointIpamConfig { ipv4_address: Some(node.ip.to_string()), ..Default::default() }),
            ..Default::default()
        };
        let mut host = HostConfig {
            cap_add: Some(vec!["NET_ADMIN".to_string()]),
            network_mode: Some(self.network.clone()),
            ..Default::default()
        };
        let mut volumes: Vec<String> = VOLUMES.iter().map(|v| v.to_string()).collect();
        if self.on_lazyfs() {
            power::allow_fuse(&mut host);
            // The disk is the backing directory; /data is the mount over it.
            volumes.push(power::BACKING_DIR.to_string());
        }
        ContainerCreateBody {
            image: Some(self.image_tag.clone()),
            hostname: Some(node.id.clone()),
            entrypoint: Some(entrypoint),
            cmd: Some(cmd),
            env: Some(self.env()),
            labels: Some(labels(&self.spec.name)),
            volumes: Some(volumes),
            host_config: Some(host),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(self.network.clone(), endpoint)])),
            }),
            ..Default::default()
        }
    }

    async fn create_container(&self, node: &NodeContainer, peers: &str) -> Result<()> {
        let opts = CreateContainerOptionsBuilder::new().name(&node.container).build();
        self.docker
            .create_container(Some(opts), self.container_body(node, peers))
            .await
            .map_err(|e| docker_err(format!("create container {}", node.container), e))?;
        tracing::debug!(container = %node.container, ip = %node.ip, "container created");
        Ok(())
    }

    async fn start_container(&self, node: &NodeContainer) -> Result<()> {
        self.docker
            .start_container(&node.container, None)
            .await
            .map_err(|e| docker_err(format!("start container {}", node.container), e))
    }

    /// Sends `signal` to the node: the container's PID 1, which is the node
    /// itself, except on a lazy filesystem (`power.rs`).
    async fn signal(&self, node: &str, signal: &str) -> Result<()> {
        if self.on_lazyfs() {
            return self.signal_node_process(node, signal).await;
        }
        let node = self.node(node)?;
        let opts = KillContainerOptionsBuilder::new().signal(signal).build();
        self.docker
            .kill_container(&node.container, Some(opts))
            .await
            .map_err(|e| docker_err(format!("send {signal} to {}", node.container), e))?;
        tracing::info!(node = %node.id, signal, "signal sent");
        Ok(())
    }

    /// Everything the container printed (stdout and stderr, interleaved).
    async fn container_logs(&self, node: &NodeContainer) -> Result<Vec<u8>> {
        self.logs_of(&node.container).await
    }

    /// Everything container `container` printed (stdout and stderr, interleaved).
    async fn logs_of(&self, container: &str) -> Result<Vec<u8>> {
        let opts = LogsOptionsBuilder::new().stdout(true).stderr(true).tail("all").build();
        let mut stream = self.docker.logs(container, Some(opts));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| docker_err(format!("read logs of {container}"), e))?;
            out.extend_from_slice(chunk.as_ref());
        }
        Ok(out)
    }
}

impl DockerCluster {
    fn endpoint_of(&self, ip: Ipv4Addr) -> String {
        self.store.endpoint(&ip.to_string(), self.store.client_port())
    }

    /// Waits until `node` answers: `Admin.Status` for our node, the store's
    /// own health check for a peer store.
    async fn wait_node_ready(&self, node: &NodeContainer) -> Result<()> {
        match self.store {
            StoreKind::Dynamo => wait_ready(&node.id, &self.endpoint_of(node.ip), READY_TIMEOUT).await.map(|_| ()),
            store => wait_peer_ready(store, &node.id, &node.ip.to_string(), store.client_port(), READY_TIMEOUT).await,
        }
    }

    /// The members, with `node` among them (a joiner is not yet).
    fn roster_with(&self, node: &NodeContainer) -> Vec<NodeContainer> {
        let mut members = self.roster();
        if !members.iter().any(|m| m.id == node.id) {
            members.push(node.clone());
        }
        members
    }

    /// Every member as the others address it (peer stores' command lines).
    fn members(&self) -> Vec<Member> {
        let store = self.store;
        self.roster()
            .iter()
            .map(|n| Member {
                id: n.id.clone(),
                host: n.ip.to_string(),
                port: store.client_port(),
                peer_port: store.peer_port(),
            })
            .collect()
    }

    /// Entrypoint and command of `node`: the faketime wrapper around either
    /// Every container's environment: libfaketime's settings only when the
    /// run may skew clocks (`FAKETIME_WRAPPER` preloads it then).
    fn env(&self) -> Vec<String> {
        let mut env = vec!["RUST_BACKTRACE=1".to_string()];
        if self.spec.clock_faults {
            env.extend([
                format!("FAKETIME_TIMESTAMP_FILE={FAKETIME_FILE}"),
                "FAKETIME_NO_CACHE=1".to_string(),
                "DONT_FAKE_MONOTONIC=1".to_string(),
            ]);
        }
        env
    }

    /// The script that execs our node: under libfaketime when the run may skew clocks.
    fn node_wrapper(&self) -> &'static str {
        if self.spec.clock_faults {
            FAKETIME_WRAPPER
        } else {
            WRAPPER
        }
    }

    /// `dynamo-node --peers ...` or the peer store's own command line.
    fn entry_and_cmd(&self, node: &NodeContainer, peers: &str) -> (Vec<String>, Vec<String>) {
        if self.store == StoreKind::Dynamo {
            // The store is ours here, so `proxied()` comes down to whether
            // the spec asks for a proxy: its seed, if it does.
            let node_wrapper = self.node_wrapper();
            if self.on_lazyfs() {
                let proxy = self.spec.link_proxy.map(|seed| links::proxy_command(node, &self.roster_with(node), seed));
                let entry = vec!["/bin/sh".into(), "-c".into(), power::entry_script(node_wrapper, proxy), "sh".into()];
                return (entry, self.node_cmd(node, peers));
            }
            let wrapper = match self.spec.link_proxy {
                // The proxy starts before LD_PRELOAD is exported: its clock is the host's.
                Some(seed) => format!("{} & {node_wrapper}", links::proxy_command(node, &self.roster_with(node), seed)),
                None => node_wrapper.to_string(),
            };
            let entry = vec!["/bin/sh".into(), "-c".into(), wrapper, "dynamo-node".into()];
            return (entry, self.node_cmd(node, peers));
        }
        let index = self.roster().iter().position(|n| n.id == node.id).unwrap_or(0);
        let mut argv = self.store.peer_argv(index, &self.members(), "/data", "0.0.0.0");
        let program = argv.remove(0);
        (vec!["/bin/sh".into(), "-c".into(), PEER_WRAPPER.into(), program], argv)
    }
}

/// Whether this host's kernel can run `tc ... netem` in a container: the
/// module is loaded, built in, or on disk to be loaded on demand. Containers
/// share the host's kernel, so the host's answer is theirs.
pub fn kernel_has_netem() -> bool {
    if Path::new("/sys/module/sch_netem").exists() {
        return true;
    }
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else { return false };
    let modules = Path::new("/lib/modules").join(release.trim());
    let builtin = std::fs::read_to_string(modules.join("modules.builtin")).unwrap_or_default();
    let listed = std::fs::read_to_string(modules.join("modules.dep")).unwrap_or_default();
    builtin.lines().chain(listed.lines()).any(|line| line.contains("/sch_netem.ko"))
}

/// Checks that `image` is present on the local engine (nothing can be
/// pulled), so a campaign can refuse a missing image before any run.
pub async fn check_image(image: &str) -> Result<()> {
    let docker = connect().await?;
    resolve_image(&docker, image).await.map(|_| ())
}

/// Checks the image exists locally (nothing can be pulled) and returns its id.
async fn resolve_image(docker: &Docker, image: &str) -> Result<String> {
    match docker.inspect_image(image).await {
        Ok(inspect) => Ok(inspect.id.unwrap_or_else(|| image.to_string())),
        Err(e) if is_status(&e, 404) => Err(ClusterError::MissingImage(image.to_string())),
        Err(e) => Err(docker_err(format!("inspect image {image}"), e)),
    }
}

/// Creates the run's bridge network, trying other subnets when the hashed one
/// overlaps an existing network. Returns the chosen third octet.
async fn create_network(docker: &Docker, network: &str, run: &str) -> Result<u8> {
    let mut last = None;
    for attempt in 0..SUBNET_ATTEMPTS {
        let k = subnet_octet(run, attempt);
        match docker.create_network(network_request(network, run, k)).await {
            Ok(_) => {
                tracing::debug!(network, subnet = %format!("10.213.{k}.0/24"), "network created");
                return Ok(k);
            }
            Err(e) if e.to_string().contains("overlap") => {
                tracing::debug!(network, k, "subnet overlaps another network; trying the next");
                last = Some(e);
            }
            Err(e) => return Err(docker_err(format!("create network {network}"), e)),
        }
    }
    let context = format!("create network {network}: {SUBNET_ATTEMPTS} subnets 10.213.x.0/24 all overlap");
    Err(match last {
        Some(e) => docker_err(context, e),
        None => ClusterError::Other(context),
    })
}

fn network_request(network: &str, run: &str, k: u8) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: network.to_string(),
        driver: Some("bridge".to_string()),
        ipam: Some(Ipam {
            driver: Some("default".to_string()),
            config: Some(vec![IpamConfig {
                subnet: Some(format!("10.213.{k}.0/24")),
                gateway: Some(format!("10.213.{k}.1")),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        labels: Some(labels(run)),
        ..Default::default()
    }
}

/// Runs `argv` in a container and collects its output and exit code.
async fn exec_in(docker: &Docker, container: &str, argv: &[&str]) -> Result<ExecOutput> {
    let config = ExecConfig {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(argv.iter().map(|a| a.to_string()).collect()),
        ..Default::default()
    };
    let context = || format!("exec {argv:?} in {container}");
    let created = docker.create_exec(container, config).await.map_err(|e| docker_err(context(), e))?;
    let started =
        docker.start_exec(&created.id, None::<StartExecOptions>).await.map_err(|e| docker_err(context(), e))?;
    let mut out = ExecOutput::default();
    if let StartExecResults::Attached { mut output, .. } = started {
        while let Some(chunk) = output.next().await {
            match chunk.map_err(|e| docker_err(context(), e))? {
                LogOutput::StdErr { message } => out.stderr.push_str(&String::from_utf8_lossy(&message)),
                other => out.stdout.push_str(&String::from_utf8_lossy(other.as_ref())),
            }
        }
    }
    let inspect = docker.inspect_exec(&created.id).await.map_err(|e| docker_err(context(), e))?;
    out.exit_code = inspect.exit_code.unwrap_or(-1);
    Ok(out)
}

async fn write_log(path: &Path, bytes: &[u8]) -> Result<()> {
    tokio::fs::write(path, bytes)
        .await
        .map_err(|source| ClusterError::Io { context: format!("write node log {}", path.display()), source })
}

#[async_trait::async_trait]
impl Cluster for DockerCluster {
    fn backend(&self) -> &'static str {
        "docker"
    }

    fn image(&self) -> String {
        self.image_id.clone()
    }

    fn nodes(&self) -> Vec<String> {
        self.roster().into_iter().map(|n| n.id).collect()
    }

    fn endpoint(&self, node: &str) -> Result<String> {
        Ok(self.endpoint_of(self.node(node)?.ip))
    }

    fn peer_ip(&self, node: &str) -> Result<IpAddr> {
        Ok(IpAddr::V4(self.node(node)?.ip))
    }

    fn supports(&self, fault: Fault) -> bool {
        self.spec.prepared_for(fault) && DockerCluster::capabilities().supports(fault, self.store)
    }

    fn fault_mechanism(&self, fault: Fault) -> Option<&'static str> {
        if fault == Fault::PowerLoss {
            return self.on_lazyfs().then_some("lazyfs");
        }
        (self.proxied() && crate::link_plan::LINK_PROXY_FAULTS.contains(&fault)).then_some(crate::link_plan::MECHANISM)
    }

    fn link_faults(&self) -> Option<&dyn crate::LinkFaults> {
        self.proxied().then_some(self as &dyn crate::LinkFaults)
    }

    async fn exec(&self, node: &str, argv: &[&str]) -> Result<ExecOutput> {
        exec_in(&self.docker, &self.node(node)?.container, argv).await
    }

    async fn kill(&self, node: &str) -> Result<serde_json::Value> {
        self.signal(node, "SIGKILL").await?;
        Ok(serde_json::json!({}))
    }

    async fn power_loss(&self, node: &str) -> Result<serde_json::Value> {
        if !self.supports(Fault::PowerLoss) {
            return Err(self.unsupported("cut a node's power: the cluster was started without lazyfs (power_loss)"));
        }
        self.signal_node_process(node, "SIGKILL").await?;
        let loss = self.lose_unsynced(node).await?;
        tracing::info!(node, dropped_bytes = loss.dropped_bytes, files = loss.files.len(), "power lost");
        Ok(serde_json::to_value(loss).expect("a loss report serializes"))
    }

    async fn restart(&self, node: &str) -> Result<()> {
        let n = self.node(node)?;
        if self.on_lazyfs() {
            self.start_node_process(&n).await?;
        } else {
            self.start_container(&n).await?;
        }
        self.wait_node_ready(&n).await?;
        self.reinstall_links().await;
        tracing::info!(node, "node restarted");
        Ok(())
    }

    async fn data_files(&self, node: &str) -> Result<Vec<DataFile>> {
        self.volume_files(node).await
    }

    async fn damage_file(&self, node: &str, damage: &FileDamage) -> Result<()> {
        self.damage_volume(node, damage).await
    }

    async fn pause(&self, node: &str) -> Result<()> {
        self.signal(node, "SIGSTOP").await
    }

    async fn resume(&self, node: &str) -> Result<()> {
        self.signal(node, "SIGCONT").await
    }

    async fn cpu_time(&self) -> Result<CpuTime> {
        let mut sum = CpuTime::default();
        for node in &self.roster() {
            sum = sum + container_cpu_time(&self.docker, &node.container).await?;
        }
        Ok(sum)
    }

    async fn memory(&self) -> Result<Vec<crate::Memory>> {
        let mut members = Vec::new();
        for node in &self.roster() {
            members.push(container_memory(&self.docker, &node.container).await?);
        }
        Ok(members)
    }

    async fn collect_logs(&self) -> Result<()> {
        for node in &self.roster() {
            self.save_log(node).await?;
        }
        Ok(())
    }

    async fn teardown(&self) -> Result<()> {
        for node in &self.roster() {
            force_remove_container(&self.docker, &node.container).await?;
        }
        remove_network(&self.docker, &self.network).await?;
        tracing::info!(run = %self.spec.name, "docker cluster removed");
        Ok(())
    }

    async fn join_node(&self, id: &str) -> Result<Joined> {
        crate::ring_change::join(self, id).await
    }

    async fn leave_node(&self, node: &str) -> Result<Left> {
        crate::ring_change::leave(self, node).await
    }

    async fn preference_list(&self, key: &str) -> Result<Vec<String>> {
        crate::ring_change::preference_list(self, key).await
    }

    async fn set_clock_offset(&self, node: &str, offset_secs: i64) -> Result<()> {
        if !self.supports(Fault::Clock) {
            let why = match self.spec.clock_faults {
                true => format!("a {} member has no libfaketime", self.store.name()),
                false => "the cluster was started without clock faults (ClusterSpec::clock_faults)".to_string(),
            };
            return Err(ClusterError::Unsupported { backend: "docker", what: format!("skew {node}'s clock ({why})") });
        }
        let line = faketime_offset_line(offset_secs);
        // Write a temp file and rename it, so libfaketime never reads half a line.
        let script = format!("echo '{line}' > {FAKETIME_FILE}.new && mv {FAKETIME_FILE}.new {FAKETIME_FILE}");
        let out = self.exec(node, &["sh", "-c", &script]).await?;
        if out.exit_code != 0 {
            return Err(ClusterError::Other(format!(
                "set clock offset {line} on {node}: exit {}: {}",
                out.exit_code, out.stderr
            )));
        }
        tracing::info!(node, offset = %line, lib = LIBFAKETIME, "clock offset set");
        Ok(())
    }
}

/// One `docker stats` sample of a container's cgroup CPU usage.
async fn container_cpu_time(docker: &Docker, container: &str) -> Result<CpuTime> {
    let stats = container_stats(docker, container, "CPU usage").await?;
    crate::cpu::of_container_stats(&stats)
        .ok_or_else(|| ClusterError::Other(format!("read the CPU usage of {container}: the sample has no CPU usage")))
}

/// A container's memory now and at its peak, from one stats sample.
async fn container_memory(docker: &Docker, container: &str) -> Result<crate::Memory> {
    let stats = container_stats(docker, container, "memory").await?;
    crate::memory::of_container_stats(&stats)
        .ok_or_else(|| ClusterError::Other(format!("read the memory of {container}: the sample has no memory usage")))
}

/// One stats sample of a container (`what` names the figure wanted, for errors).
async fn container_stats(docker: &Docker, container: &str, what: &str) -> Result<ContainerStatsResponse> {
    let options = StatsOptions { stream: false, one_shot: true };
    let context = || format!("read the {what} of {container}");
    docker
        .stats(container, Some(options))
        .next()
        .await
        .ok_or_else(|| ClusterError::Other(format!("{}: the engine sent no sample", context())))?
        .map_err(|source| ClusterError::Docker { context: context(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_spread_and_stay_in_range() {
        let first: Vec<u8> = (0..SUBNET_ATTEMPTS).map(|a| subnet_octet("run-a", a)).collect();
        let distinct: std::collections::HashSet<_> = first.iter().collect();
        assert_eq!(distinct.len(), first.len(), "retries try distinct subnets");
        assert!(first.iter().all(|k| *k >= 1 && *k <= 254));
        assert_eq!(subnet_octet("run-a", 0), subnet_octet("run-a", 0), "stable per name");
        assert_ne!(subnet_octet("run-a", 0), subnet_octet("run-b", 0));
    }

    #[test]
    fn peers_list_names_every_node_with_its_fixed_address() {
        let nodes: Vec<NodeContainer> = ["n1", "n2"]
            .iter()
            .enumerate()
            .map(|(i, id)| NodeContainer { id: id.to_string(), container: format!("dwb-r-{id}"), ip: node_ip(7, i) })
            .collect();
        assert_eq!(peers_arg(&nodes), "n1=10.213.7.11:7000,n2=10.213.7.12:7000");
    }

    /// A labeled network left behind by a "crashed" run is found and removed.
    #[tokio::test]
    async fn remove_leftovers_removes_orphans_and_spares_live_owners() {
        let Ok(docker) = connect().await else {
            eprintln!("SKIP: no Docker engine answers");
            return;
        };
        let run = format!("leftover-{}", std::process::id());
        let orphan = format!("dwb-{run}-orphan");
        let live = format!("dwb-{run}-live");
        let mut dead_owner = labels(&run);
        // No process has this pid: the owner is gone.
        dead_owner.insert(OWNER_PID_LABEL.to_string(), "4000000000".to_string());
        for (name, labels) in [(&orphan, dead_owner), (&live, labels(&run))] {
            let request = NetworkCreateRequest { name: name.clone(), labels: Some(labels), ..Default::default() };
            docker.create_network(request).await.expect("create a labeled network");
        }
        let removed = remove_leftovers().await.expect("remove leftovers");
        assert!(removed >= 1, "removed {removed}");
        let inspect = |name: String| {
            let docker = docker.clone();
            async move { docker.inspect_network(&name, None::<bollard::query_parameters::InspectNetworkOptions>).await }
        };
        let gone = inspect(orphan.clone()).await;
        assert!(matches!(gone, Err(ref e) if is_status(e, 404)), "orphan still there: {gone:?}");
        assert!(inspect(live.clone()).await.is_ok(), "a live owner's network was removed");
        assert_eq!(remove_run(&run).await.expect("remove the live one"), 1);
    }
}
