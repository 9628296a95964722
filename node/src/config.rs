//! Command-line flags and the validated configuration of one node.
//!
//! [`Args`] is what clap parses; [`Config`] is what the node runs with,
//! built by [`Config::from_args`], which rejects anything inconsistent
//! (unknown own id, quorums that cannot be met) before a socket is opened,
//! so a misconfigured container exits at once with a clear message instead
//! of failing requests later. `--peers` lists the members known at start,
//! this one included; gossip discovers the rest (a node started with
//! `--join true` may know only itself and a `--seed-node`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

use crate::node_id::NodeId;
use crate::placement::quorum::{self, Quorum, DEFAULT_DC};
use crate::placement::ring::RingMember;
use crate::storage::lsm::{Compression, FsyncPolicy, LsmOptions};
use crate::versioning::vclock::Resolution;

/// Most `--runtime-threads` a node takes: far more workers than any machine
/// has cores only adds stealing and wake-ups, and a count the system cannot
/// make threads for would fail at start instead of at flag parsing.
pub const MAX_RUNTIME_THREADS: usize = 1024;

/// Which storage engine holds the replica's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageKind {
    /// In memory; lost on restart.
    Memory,
    /// The LSM engine under `--data-dir` (commit log, SSTables).
    Lsm,
}

impl StorageKind {
    /// The name reported by `Admin.Status`.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageKind::Memory => "memory",
            StorageKind::Lsm => "lsm",
        }
    }
}

/// The flags of `dynamo-node`, as parsed.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "dynamo-node",
    version = crate::planted::VERSION,
    about = "A Dynamo-style leaderless key-value node"
)]
pub struct Args {
    /// This node's id; must appear in --peers.
    #[arg(long)]
    pub id: String,
    /// Address to serve the Kv, Replica and Admin gRPC services on.
    #[arg(long, default_value = "0.0.0.0:7000")]
    pub listen: SocketAddr,
    /// Every cluster member, this node included: id=host:port,id=host:port,...
    #[arg(long, value_delimiter = ',', required = true)]
    pub peers: Vec<String>,
    /// Directory for persistent data (the LSM engine's files; created if missing).
    #[arg(long, default_value = "/data")]
    pub data_dir: PathBuf,
    /// Replicas per key (N); 3 unless `--replicas-per-dc` gives them per
    /// datacenter, whose sum it must then equal.
    #[arg(long)]
    pub n: Option<usize>,
    /// Default write quorum (W): a number of replicas, or one, all, local
    /// (a majority of this node's DC's replicas) or each (a majority in every DC).
    #[arg(long, default_value = "2")]
    pub w: Quorum,
    /// Default read quorum (R), as `--w`.
    #[arg(long, default_value = "2")]
    pub r: Quorum,
    /// This node's datacenter. Default: its entry in `--peer-dc`, else dc1.
    #[arg(long)]
    pub dc: Option<String>,
    /// The datacenter of each configured member: id=dc,id=dc,... (members
    /// not named are in dc1 until gossip says otherwise).
    #[arg(long = "peer-dc", value_delimiter = ',')]
    pub peer_dcs: Vec<String>,
    /// Replicas per datacenter, Cassandra's NetworkTopologyStrategy:
    /// dc1=2,dc2=1. Empty: N replicas over the whole ring.
    #[arg(long, value_delimiter = ',')]
    pub replicas_per_dc: Vec<String>,
    /// Conflict resolution: siblings (keep concurrent versions) or lww.
    #[arg(long, default_value = "siblings")]
    pub resolution: Resolution,
    /// How long a coordinator waits for W acks or R replies.
    #[arg(long, default_value_t = 500)]
    pub request_timeout_ms: u64,
    /// Virtual nodes per physical node (before weights).
    #[arg(long, default_value_t = 64)]
    pub vnodes: u32,
    /// A node's weight, multiplying its vnodes: id=weight. Repeatable.
    #[arg(long = "weight", value_delimiter = ',')]
    pub weights: Vec<String>,
    /// Largest accepted value.
    #[arg(long, default_value_t = 10_240)]
    pub max_value_bytes: usize,
    /// Vector clock entries kept before the oldest are pruned.
    #[arg(long, default_value_t = 10)]
    pub max_clock_entries: usize,
    /// Storage engine.
    #[arg(long, value_enum, default_value = "lsm")]
    pub storage: StorageKind,
    /// LSM commit log fsync policy: always, batch (group commit) or never.
    #[arg(long, value_enum, default_value = "batch")]
    pub fsync: FsyncPolicy,
    /// LSM SSTable block compression.
    #[arg(long, value_enum, default_value = "lz4")]
    pub compression: Compression,
    /// LSM Bloom filter bits per key (10 gives about 1% false positives).
    #[arg(long, default_value_t = 10)]
    pub bloom_bits_per_key: u32,
    /// LSM memtable size at which it is flushed to an SSTable.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub memtable_bytes: usize,
    /// Read repair: after a read, write the merged version to replicas
    /// whose reply was stale.
    #[arg(long, action = ArgAction::Set, default_value_t = true)]
    pub read_repair: bool,
    /// Finish read repair before replying to the client (default: after).
    #[arg(long, action = ArgAction::Set, default_value_t = false)]
    pub read_repair_blocking: bool,
    /// How long read repair waits for the replies beyond the quorum.
    #[arg(long, default_value_t = 200)]
    pub read_repair_wait_ms: u64,
    /// Merkle-tree anti-entropy between the replicas of each range.
    #[arg(long, action = ArgAction::Set, default_value_t = true)]
    pub anti_entropy: bool,
    /// Period of anti-entropy rounds (one exchange per range each).
    #[arg(long, default_value_t = 2_000)]
    pub aae_interval_ms: u64,
    /// Leaves of each range's Merkle tree (a power of two).
    #[arg(long, default_value_t = 1_024)]
    pub merkle_buckets: usize,
    /// Most anti-entropy exchanges running at once.
    #[arg(long, default_value_t = 1)]
    pub aae_concurrency: usize,
    /// Address of the Prometheus metrics HTTP endpoint; empty disables it.
    #[arg(long, default_value = "0.0.0.0:9100")]
    pub metrics_listen: String,
    /// Sloppy quorum: a down home replica's writes and reads go to the next
    /// healthy node on the ring, which keeps a hint.
    #[arg(long, action = ArgAction::Set, default_value_t = false)]
    pub sloppy_quorum: bool,
    /// Hinted handoff: deliver hints to their home node when it is up again.
    #[arg(long, action = ArgAction::Set, default_value_t = true)]
    pub hinted_handoff: bool,
    /// Coalesce this coordinator's Stores and Fetches per replica into
    /// round trips, each one message on the replica's `ReplicateStream`
    /// (`batcher.rs`, `replicate.rs`). The late delivery
    /// after a heal that kept it off was not batching's: TCP retransmits the
    /// Stores an iptables DROP swallowed, batched or not (the simulator's
    /// `partition-hold` shows it both ways); replicas now refuse Stores that
    /// outlived their coordinator's wait (`coordinate/lateness.rs`).
    #[arg(long, action = ArgAction::Set, default_value_t = true)]
    pub replica_batching: bool,
    /// Client requests this node coordinates at once: `adaptive` (a limit
    /// that follows their latency, between 64 and 4,096), a number (a fixed
    /// limit), or `off`. A request over the limit waits up to 5 ms for a
    /// permit; the excess is then refused with RESOURCE_EXHAUSTED, reason
    /// `overloaded` (`coordinate/admission.rs`);
    /// replica requests from peers are never refused for it.
    #[arg(long, default_value = "adaptive")]
    pub client_limit: ClientLimit,
    /// Threads that run the node's tasks: 0 (the default), one per core
    /// (tokio's multi-thread runtime); 1, a single-threaded runtime, where
    /// no task is ever stolen by or woken across to another worker, which
    /// suits a node given one core (several nodes sharing a machine, or a
    /// thread-per-core deployment); N, a multi-thread runtime of N workers.
    /// A 3-node cluster on 2 cores (`workbench bench-peers --backend local
    /// --only dynamo3`) used 167-175 us of CPU per op with 1 against
    /// 232-243 with one per core, and served 7,198-7,474 ops/s against
    /// 5,187-6,039. The WAL syncer and blocking storage work keep their own
    /// threads either way. At most `MAX_RUNTIME_THREADS`: a larger count
    /// is refused with the other flags, before any thread is made.
    #[arg(long, default_value_t = 0,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=MAX_RUNTIME_THREADS as u64))]
    pub runtime_threads: usize,
    /// Gossip round period.
    #[arg(long, default_value_t = 200)]
    pub gossip_interval_ms: u64,
    /// Peers each gossip round sends to.
    #[arg(long, default_value_t = 2)]
    pub gossip_fanout: usize,
    /// Heartbeat silence after which a member is suspected.
    #[arg(long, default_value_t = 1_000)]
    pub fail_after_ms: u64,
    /// Hints older than this are dropped (Cassandra's max_hint_window: 3 h).
    #[arg(long, default_value_t = 10_800_000)]
    pub hint_window_ms: u64,
    /// A node to announce this one to when joining: id=host:port. Repeatable.
    #[arg(long = "seed-node", value_delimiter = ',')]
    pub seed_nodes: Vec<String>,
    /// Join a running cluster: stream this node's future ranges in before
    /// taking ownership of them.
    #[arg(long, action = ArgAction::Set, default_value_t = false)]
    pub join: bool,
    /// How long a membership change waits for gossip to tell every node
    /// before data moves (Cassandra's ring delay).
    #[arg(long, default_value_t = 2_000)]
    pub ring_delay_ms: u64,
}

/// One cluster member and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The member's id.
    pub id: NodeId,
    /// `host:port` of its gRPC server.
    pub address: String,
}

/// A configuration that is invalid, with the reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A --peers entry is not `id=host:port`.
    #[error("peer {0:?} is not of the form id=host:port")]
    BadPeer(String),
    /// The same id appears twice in --peers.
    #[error("peer {0} is listed twice in --peers")]
    DuplicatePeer(NodeId),
    /// --id is not in --peers.
    #[error("--id {0} does not appear in --peers (peers must include this node)")]
    SelfNotInPeers(NodeId),
    /// The quorum settings cannot be met.
    #[error("need 1 <= w, r <= n <= number of peers; got n={n}, w={w}, r={r} with {peers} peers")]
    BadQuorum {
        /// --n
        n: usize,
        /// --w
        w: Quorum,
        /// --r
        r: Quorum,
        /// number of --peers
        peers: usize,
    },
    /// A datacenter flag that does not parse or does not add up.
    #[error("{0}")]
    BadDatacenters(String),
    /// A --weight entry is not `id=positive integer`.
    #[error("weight {0:?} is not of the form id=weight with weight >= 1")]
    BadWeight(String),
    /// A --weight names a node that is not a peer.
    #[error("weight given for {0}, which is not in --peers")]
    WeightForStranger(NodeId),
    /// A numeric flag that must be positive is 0.
    #[error("--{0} must be at least 1")]
    Zero(&'static str),
    /// --merkle-buckets is not a power of two in range.
    #[error("--merkle-buckets must be a power of two between 1 and 1048576, got {0}")]
    BadBuckets(usize),
    /// --metrics-listen is neither empty nor host:port.
    #[error("--metrics-listen {0:?} is not an ip:port address (empty disables it)")]
    BadMetricsListen(String),
}

/// The validated configuration of a node.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's id.
    pub id: NodeId,
    /// Where the gRPC server listens.
    pub listen: SocketAddr,
    /// Every member, this node included, in the order given.
    pub peers: Vec<Peer>,
    /// Directory for persistent data (future disk engines).
    pub data_dir: PathBuf,
    /// Replicas per key (the sum of `replicas_per_dc` when that is set).
    pub n: usize,
    /// Default write quorum.
    pub w: Quorum,
    /// Default read quorum.
    pub r: Quorum,
    /// This node's datacenter.
    pub dc: String,
    /// The datacenter of each configured member (this node included).
    pub peer_dcs: BTreeMap<NodeId, String>,
    /// Replicas per datacenter; `None`: N over the whole ring.
    pub replicas_per_dc: Option<std::sync::Arc<BTreeMap<String, usize>>>,
    /// How concurrent versions are resolved.
    pub resolution: Resolution,
    /// Coordinator wait for W/R, and each replica RPC's timeout.
    pub request_timeout_ms: u64,
    /// Base vnodes per node.
    pub vnodes: u32,
    /// Weight per node (absent = 1).
    pub weights: BTreeMap<NodeId, u32>,
    /// Largest accepted value.
    pub max_value_bytes: usize,
    /// Clock entries kept before pruning.
    pub max_clock_entries: usize,
    /// Storage engine.
    pub storage: StorageKind,
    /// Tunables of the LSM engine (when `storage` is `Lsm`).
    pub lsm: LsmOptions,
    /// Read repair on.
    pub read_repair: bool,
    /// Read repair before the reply.
    pub read_repair_blocking: bool,
    /// Read repair's wait for late replies.
    pub read_repair_wait_ms: u64,
    /// Anti-entropy on.
    pub anti_entropy: bool,
    /// Period of anti-entropy rounds.
    pub aae_interval_ms: u64,
    /// Leaves per Merkle tree (power of two, <= `merkle::MAX_BUCKETS`).
    pub merkle_buckets: usize,
    /// Concurrent anti-entropy exchanges.
    pub aae_concurrency: usize,
    /// Prometheus endpoint address; `None` disables it.
    pub metrics_listen: Option<SocketAddr>,
    /// Down home replicas are replaced by stand-ins holding hints.
    pub sloppy_quorum: bool,
    /// Hints are delivered to their home node when it is up.
    pub hinted_handoff: bool,
    /// Coalesce replica requests into batches on replica streams.
    pub replica_batching: bool,
    /// Client requests admitted at once.
    pub client_limit: ClientLimit,
    /// Gossip round period.
    pub gossip_interval_ms: u64,
    /// Peers per gossip round.
    pub gossip_fanout: usize,
    /// Heartbeat silence before suspicion.
    pub fail_after_ms: u64,
    /// Age past which hints are dropped.
    pub hint_window_ms: u64,
    /// Nodes to announce this one to (joining).
    pub seed_nodes: Vec<Peer>,
    /// Start as a joining node.
    pub join: bool,
    /// Wait for gossip to spread a ring status change before moving data.
    pub ring_delay_ms: u64,
}

impl Config {
    /// Validates parsed flags.
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let id = NodeId::from(args.id.as_str());
        let peers = parse_peers(&args.peers)?;
        if !peers.iter().any(|p| p.id == id) {
            return Err(ConfigError::SelfNotInPeers(id));
        }
        let seed_nodes = parse_peers(&args.seed_nodes)?;
        // A joining node learns the cluster from gossip: it may know fewer
        // than N members at start, so only W, R <= N is checked then.
        let known = peers.len() + seed_nodes.iter().filter(|s| !peers.iter().any(|p| p.id == s.id)).count();
        let datacenters = Datacenters::from_args(&args, &id, &peers)?;
        let n = datacenters.n;
        check_quorum(n, args.w, args.r, if args.join { known.max(n) } else { known })?;
        check_positive("gossip-interval-ms", args.gossip_interval_ms)?;
        check_positive("gossip-fanout", args.gossip_fanout as u64)?;
        check_positive("fail-after-ms", args.fail_after_ms)?;
        check_positive("hint-window-ms", args.hint_window_ms)?;
        let weights = parse_weights(&args.weights, &peers)?;
        check_positive("vnodes", u64::from(args.vnodes))?;
        check_positive("max-clock-entries", args.max_clock_entries as u64)?;
        check_positive("request-timeout-ms", args.request_timeout_ms)?;
        check_positive("bloom-bits-per-key", u64::from(args.bloom_bits_per_key))?;
        check_positive("memtable-bytes", args.memtable_bytes as u64)?;
        check_positive("aae-interval-ms", args.aae_interval_ms)?;
        check_positive("aae-concurrency", args.aae_concurrency as u64)?;
        check_buckets(args.merkle_buckets)?;
        Ok(Config {
            id,
            listen: args.listen,
            peers,
            data_dir: args.data_dir,
            n,
            w: args.w,
            r: args.r,
            dc: datacenters.dc,
            peer_dcs: datacenters.peer_dcs,
            replicas_per_dc: datacenters.replicas_per_dc,
            resolution: args.resolution,
            request_timeout_ms: args.request_timeout_ms,
            vnodes: args.vnodes,
            weights,
            max_value_bytes: args.max_value_bytes,
            max_clock_entries: args.max_clock_entries,
            storage: args.storage,
            lsm: LsmOptions {
                fsync: args.fsync,
                compression: args.compression,
                bloom_bits_per_key: args.bloom_bits_per_key,
                memtable_bytes: args.memtable_bytes,
                ..LsmOptions::default()
            },
            read_repair: args.read_repair,
            read_repair_blocking: args.read_repair_blocking,
            read_repair_wait_ms: args.read_repair_wait_ms,
            anti_entropy: args.anti_entropy,
            aae_interval_ms: args.aae_interval_ms,
            merkle_buckets: args.merkle_buckets,
            aae_concurrency: args.aae_concurrency,
            metrics_listen: parse_metrics_listen(&args.metrics_listen)?,
            sloppy_quorum: args.sloppy_quorum,
            hinted_handoff: args.hinted_handoff,
            replica_batching: args.replica_batching,
            client_limit: args.client_limit,
            gossip_interval_ms: args.gossip_interval_ms,
            gossip_fanout: args.gossip_fanout,
            fail_after_ms: args.fail_after_ms,
            hint_window_ms: args.hint_window_ms,
            seed_nodes,
            join: args.join,
            ring_delay_ms: args.ring_delay_ms,
        })
    }

    /// Parses and validates a command line (first item: program name).
    pub fn from_cli<I, T>(argv: I) -> Result<Config, String>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args = Args::try_parse_from(argv).map_err(|e| e.to_string())?;
        Config::from_args(args).map_err(|e| e.to_string())
    }

    /// The ring members: every peer with vnodes times its weight.
    pub fn ring_members(&self) -> Vec<RingMember> {
        self.peers
            .iter()
            .map(|p| {
                let weight = self.weights.get(&p.id).copied().unwrap_or(1);
                let vnodes = self.vnodes.saturating_mul(weight);
                RingMember { id: p.id.clone(), vnodes, dc: self.dc_of(&p.id).to_string() }
            })
            .collect()
    }

    /// The datacenter a configured member is in: its `--peer-dc`, this
    /// node's `--dc`, else the default.
    pub fn dc_of(&self, id: &NodeId) -> &str {
        if id == &self.id {
            return &self.dc;
        }
        self.peer_dcs.get(id).map_or(DEFAULT_DC, String::as_str)
    }

    /// The answers W comes to for this node's datacenter.
    pub fn w_answers(&self) -> usize {
        self.w.answers_of(self.n, &self.per_dc_counts(), &self.dc)
    }

    /// The answers R comes to for this node's datacenter.
    pub fn r_answers(&self) -> usize {
        self.r.answers_of(self.n, &self.per_dc_counts(), &self.dc)
    }

    /// Replicas per DC: the configured counts, or all N in this node's DC.
    fn per_dc_counts(&self) -> BTreeMap<String, usize> {
        match &self.replicas_per_dc {
            Some(counts) => counts.as_ref().clone(),
            None => [(self.dc.clone(), self.n)].into(),
        }
    }

    /// The address of a member.
    pub fn peer_address(&self, id: &NodeId) -> Option<&str> {
        self.peers.iter().find(|p| &p.id == id).map(|p| p.address.as_str())
    }

    /// The request timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The address peer connections are dialed from: the listen address
    /// when it is a loopback address other than 127.0.0.1 (nodes sharing
    /// one host, each on its own 127.0.0.x, so a link-fault proxy can tell
    /// them apart by source), else none (the kernel picks the route's).
    pub fn dial_from(&self) -> Option<std::net::IpAddr> {
        let ip = self.listen.ip();
        (ip.is_loopback() && ip != std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)).then_some(ip)
    }
}

fn parse_peers(entries: &[String]) -> Result<Vec<Peer>, ConfigError> {
    let mut peers: Vec<Peer> = Vec::with_capacity(entries.len());
    for entry in entries.iter().filter(|e| !e.trim().is_empty()) {
        let peer = parse_peer(entry.trim())?;
        if peers.iter().any(|p| p.id == peer.id) {
            return Err(ConfigError::DuplicatePeer(peer.id));
        }
        peers.push(peer);
    }
    Ok(peers)
}

fn parse_peer(entry: &str) -> Result<Peer, ConfigError> {
    let bad = || ConfigError::BadPeer(entry.to_string());
    let (id, address) = entry.split_once('=').ok_or_else(bad)?;
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    if id.is_empty() || host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(Peer { id: NodeId::from(id), address: address.to_string() })
}

/// The datacenter flags, parsed and checked against each other.
struct Datacenters {
    /// This node's DC.
    dc: String,
    /// Every configured member's DC.
    peer_dcs: BTreeMap<NodeId, String>,
    /// Replicas per DC, if given.
    replicas_per_dc: Option<std::sync::Arc<BTreeMap<String, usize>>>,
    /// N: `--n`, or the sum of the per-DC counts.
    n: usize,
}

impl Datacenters {
    fn from_args(args: &Args, id: &NodeId, peers: &[Peer]) -> Result<Datacenters, ConfigError> {
        let bad = ConfigError::BadDatacenters;
        let mut peer_dcs = BTreeMap::new();
        for entry in args.peer_dcs.iter().filter(|e| !e.trim().is_empty()) {
            let (node, dc) = entry.split_once('=').ok_or_else(|| bad(format!("--peer-dc {entry:?} is not id=dc")))?;
            quorum::check_dc_name(dc).map_err(bad)?;
            peer_dcs.insert(NodeId::from(node), dc.to_string());
        }
        let dc = match (&args.dc, peer_dcs.get(id)) {
            (Some(dc), Some(listed)) if dc != listed => {
                return Err(bad(format!("--dc {dc} disagrees with --peer-dc {id}={listed}")));
            }
            (Some(dc), _) => dc.clone(),
            (None, Some(listed)) => listed.clone(),
            (None, None) => DEFAULT_DC.to_string(),
        };
        quorum::check_dc_name(&dc).map_err(bad)?;
        peer_dcs.insert(id.clone(), dc.clone());
        if let Some(stranger) = peer_dcs.keys().find(|p| !peers.iter().any(|q| &q.id == *p)) {
            return Err(bad(format!("--peer-dc names {stranger}, which is not in --peers")));
        }
        let replicas_per_dc = if args.replicas_per_dc.is_empty() {
            None
        } else {
            Some(std::sync::Arc::new(quorum::parse_per_dc(&args.replicas_per_dc).map_err(bad)?))
        };
        let n = Self::n(args.n, replicas_per_dc.as_deref())?;
        Ok(Datacenters { dc, peer_dcs, replicas_per_dc, n })
    }

    /// N: as given, or the sum of the per-DC counts (which `--n` must match).
    fn n(given: Option<usize>, per_dc: Option<&BTreeMap<String, usize>>) -> Result<usize, ConfigError> {
        let Some(counts) = per_dc else { return Ok(given.unwrap_or(3)) };
        let sum = counts.values().sum();
        match given {
            Some(n) if n != sum => Err(ConfigError::BadDatacenters(format!(
                "--n {n} disagrees with --replicas-per-dc, which places {sum} replicas"
            ))),
            _ => Ok(sum),
        }
    }
}

fn check_quorum(n: usize, w: Quorum, r: Quorum, peers: usize) -> Result<(), ConfigError> {
    let fits = |q: Quorum| q.count().is_none_or(|k| (1..=n).contains(&k));
    let ok = n >= 1 && fits(w) && fits(r) && n <= peers;
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadQuorum { n, w, r, peers })
    }
}

fn parse_weights(entries: &[String], peers: &[Peer]) -> Result<BTreeMap<NodeId, u32>, ConfigError> {
    let mut weights = BTreeMap::new();
    for entry in entries {
        let bad = || ConfigError::BadWeight(entry.clone());
        let (id, weight) = entry.split_once('=').ok_or_else(bad)?;
        let weight: u32 = weight.parse().map_err(|_| bad())?;
        if weight == 0 {
            return Err(bad());
        }
        let id = NodeId::from(id);
        if !peers.iter().any(|p| p.id == id) {
            return Err(ConfigError::WeightForStranger(id));
        }
        weights.insert(id, weight);
    }
    Ok(weights)
}

fn check_buckets(buckets: usize) -> Result<(), ConfigError> {
    if buckets.is_power_of_two() && buckets <= crate::repair::merkle::MAX_BUCKETS {
        Ok(())
    } else {
        Err(ConfigError::BadBuckets(buckets))
    }
}

fn parse_metrics_listen(value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| ConfigError::BadMetricsListen(value.to_string()))
}

fn check_positive(flag: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::Zero(flag))
    } else {
        Ok(())
    }
}

/// How many client requests a node admits at once (`--client-limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientLimit {
    /// A limit that follows the admitted requests' latency.
    Adaptive,
    /// At most this many.
    Fixed(usize),
    /// No limit.
    Off,
}

impl std::str::FromStr for ClientLimit {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "adaptive" => Ok(ClientLimit::Adaptive),
            "off" => Ok(ClientLimit::Off),
            number => match number.parse::<usize>() {
                Ok(0) | Err(_) => Err(format!("'{value}' is not adaptive, off, or a limit of at least 1")),
                Ok(limit) => Ok(ClientLimit::Fixed(limit)),
            },
        }
    }
}

impl std::fmt::Display for ClientLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientLimit::Adaptive => f.write_str("adaptive"),
            ClientLimit::Fixed(limit) => write!(f, "{limit}"),
            ClientLimit::Off => f.write_str("off"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEERS: &str = "n1=10.91.0.11:7000,n2=10.91.0.12:7000,n3=10.91.0.13:7000";

    fn parse(extra: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["dynamo-node", "--id", "n1", "--peers", PEERS];
        argv.extend_from_slice(extra);
        Config::from_args(Args::try_parse_from(argv).unwrap())
    }

    #[test]
    fn an_absurd_runtime_thread_count_is_refused_at_parsing() {
        let argv = |threads: &str| {
            ["dynamo-node", "--id", "n1", "--peers", PEERS, "--runtime-threads", threads].map(String::from)
        };
        assert_eq!(Args::try_parse_from(argv("1")).unwrap().runtime_threads, 1);
        let limit = MAX_RUNTIME_THREADS.to_string();
        assert_eq!(Args::try_parse_from(argv(&limit)).unwrap().runtime_threads, MAX_RUNTIME_THREADS);
        let error = Args::try_parse_from(argv("100000")).unwrap_err().to_string();
        assert!(error.contains("--runtime-threads"), "{error}");
    }

    #[test]
    fn nodes_on_their_own_loopback_address_dial_from_it() {
        let dial_from = |listen: &str| parse(&["--listen", listen]).unwrap().dial_from();
        assert_eq!(dial_from("127.0.0.12:7000"), Some("127.0.0.12".parse().unwrap()));
        assert_eq!(dial_from("127.0.0.1:7000"), None, "the shared loopback address is the kernel's pick anyway");
        assert_eq!(dial_from("0.0.0.0:7000"), None);
        assert_eq!(dial_from("10.91.0.11:7000"), None, "only loopback: a container's routes stay the kernel's");
    }

    #[test]
    fn full_command_line() {
        let c = parse(&[
            "--listen",
            "0.0.0.0:7000",
            "--data-dir",
            "/data",
            "--n",
            "3",
            "--w",
            "2",
            "--r",
            "2",
            "--resolution",
            "lww",
            "--request-timeout-ms",
            "300",
            "--vnodes",
            "32",
            "--weight",
            "n1=2",
            "--weight",
            "n3=3",
            "--max-value-bytes",
            "100",
            "--max-clock-entries",
            "4",
            "--storage",
            "memory",
        ])
        .unwrap();
        assert_eq!(c.id, NodeId::from("n1"));
        assert_eq!(c.peers.len(), 3);
        assert_eq!(c.peer_address(&NodeId::from("n2")), Some("10.91.0.12:7000"));
        assert_eq!(c.resolution, Resolution::Lww);
        assert_eq!(c.request_timeout(), Duration::from_millis(300));
        let vnodes: Vec<u32> = c.ring_members().iter().map(|m| m.vnodes).collect();
        assert_eq!(vnodes, vec![64, 32, 96]);
        assert_eq!((c.max_value_bytes, c.max_clock_entries), (100, 4));
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!((c.n, c.w, c.r), (3, Quorum::Count(2), Quorum::Count(2)));
        assert_eq!((c.dc.as_str(), c.replicas_per_dc.is_none()), ("dc1", true));
        assert_eq!(c.resolution, Resolution::Siblings);
        assert_eq!((c.vnodes, c.max_value_bytes, c.max_clock_entries), (64, 10_240, 10));
        assert_eq!(c.storage, StorageKind::Lsm);
        assert_eq!(c.lsm.fsync, FsyncPolicy::Batch);
    }

    #[test]
    fn failure_handling_flags() {
        let c = parse(&[]).unwrap();
        assert!(!c.sloppy_quorum && c.hinted_handoff && !c.join);
        assert_eq!((c.gossip_interval_ms, c.gossip_fanout, c.fail_after_ms), (200, 2, 1_000));
        assert_eq!(c.hint_window_ms, 10_800_000);
        let c = parse(&[
            "--sloppy-quorum",
            "true",
            "--hinted-handoff",
            "false",
            "--join",
            "true",
            "--seed-node",
            "n2=10.91.0.12:7000",
            "--gossip-fanout",
            "3",
            "--hint-window-ms",
            "50",
        ])
        .unwrap();
        assert!(c.sloppy_quorum && !c.hinted_handoff && c.join);
        assert_eq!(c.seed_nodes[0].id, NodeId::from("n2"));
        assert_eq!((c.gossip_fanout, c.hint_window_ms), (3, 50));
        assert!(matches!(parse(&["--gossip-fanout", "0"]), Err(ConfigError::Zero("gossip-fanout"))));
        let joiner = Config::from_cli([
            "dynamo-node",
            "--id",
            "n4",
            "--peers",
            "n4=h:1",
            "--join",
            "true",
            "--seed-node",
            "n1=h:2",
        ]);
        assert!(joiner.is_ok(), "a joiner may know only itself and a seed: {joiner:?}");
    }

    #[test]
    fn repair_anti_entropy_and_metrics_flags() {
        let c = parse(&[]).unwrap();
        assert!(c.read_repair && !c.read_repair_blocking && c.anti_entropy);
        assert_eq!((c.read_repair_wait_ms, c.aae_interval_ms), (200, 2_000));
        assert_eq!((c.merkle_buckets, c.aae_concurrency), (1_024, 1));
        assert_eq!(c.metrics_listen, Some("0.0.0.0:9100".parse().unwrap()));
        let c = parse(&[
            "--read-repair",
            "false",
            "--read-repair-blocking",
            "true",
            "--read-repair-wait-ms",
            "50",
            "--anti-entropy",
            "false",
            "--aae-interval-ms",
            "300",
            "--merkle-buckets",
            "4096",
            "--aae-concurrency",
            "2",
            "--metrics-listen",
            "",
        ])
        .unwrap();
        assert!(!c.read_repair && c.read_repair_blocking && !c.anti_entropy);
        assert_eq!((c.read_repair_wait_ms, c.aae_interval_ms), (50, 300));
        assert_eq!((c.merkle_buckets, c.aae_concurrency, c.metrics_listen), (4_096, 2, None));
        assert!(matches!(parse(&["--merkle-buckets", "1000"]), Err(ConfigError::BadBuckets(1000))));
        assert!(matches!(parse(&["--metrics-listen", "nowhere"]), Err(ConfigError::BadMetricsListen(_))));
        assert!(matches!(parse(&["--aae-concurrency", "0"]), Err(ConfigError::Zero("aae-concurrency"))));
    }

    #[test]
    fn rejects_inconsistent_settings() {
        let err = Config::from_cli(["dynamo-node", "--id", "n9", "--peers", PEERS]).unwrap_err();
        assert!(err.contains("does not appear in --peers"), "{err}");
        assert!(matches!(parse(&["--w", "4", "--n", "3"]), Err(ConfigError::BadQuorum { .. })));
        assert!(matches!(parse(&["--n", "4"]), Err(ConfigError::BadQuorum { .. })));
        let zero = Config::from_cli(["dynamo-node", "--id", "n1", "--peers", PEERS, "--r", "0"]).unwrap_err();
        assert!(zero.contains("neither a number of replicas"), "{zero}");
        assert!(matches!(parse(&["--weight", "n7=2"]), Err(ConfigError::WeightForStranger(_))));
        assert!(matches!(parse(&["--weight", "n1=0"]), Err(ConfigError::BadWeight(_))));
        assert!(matches!(parse(&["--vnodes", "0"]), Err(ConfigError::Zero("vnodes"))));
        let bad_peer = Config::from_cli(["dynamo-node", "--id", "n1", "--peers", "n1=nowhere"]);
        assert!(bad_peer.unwrap_err().contains("id=host:port"));
        let dup = Config::from_cli(["dynamo-node", "--id", "n1", "--peers", "n1=a:1,n1=b:2"]);
        assert!(dup.unwrap_err().contains("twice"));
        assert!(Config::from_cli(["dynamo-node", "--id", "n1", "--peers", PEERS, "--resolution", "x"]).is_err());
    }

    #[test]
    fn datacenters_come_from_the_flags_and_must_add_up() {
        let dcs = ["--peer-dc", "n1=east,n2=east,n3=west", "--replicas-per-dc", "east=2,west=1"];
        let c = parse(&[&dcs[..], &["--w", "local", "--r", "each"]].concat()).unwrap();
        assert_eq!((c.n, c.dc.as_str(), c.w, c.r), (3, "east", Quorum::Local, Quorum::Each));
        assert_eq!((c.w_answers(), c.r_answers()), (2, 3), "local: 2 of east's 2; each: 2 + 1");
        let members: Vec<String> = c.ring_members().iter().map(|m| m.dc.clone()).collect();
        assert_eq!(members, ["east", "east", "west"]);
        let refused = |extra: &[&str]| parse(&[&dcs[..], extra].concat()).unwrap_err();
        assert!(matches!(refused(&["--n", "2"]), ConfigError::BadDatacenters(m) if m.contains("places 3")));
        assert!(matches!(refused(&["--dc", "west"]), ConfigError::BadDatacenters(m) if m.contains("disagrees")));
        assert!(matches!(refused(&["--peer-dc", "n9=x"]), ConfigError::BadDatacenters(m) if m.contains("n9")));
        assert!(matches!(parse(&["--peer-dc", "n1=a b"]), Err(ConfigError::BadDatacenters(_))));
        assert_eq!(parse(&["--dc", "west"]).unwrap().dc_of(&NodeId::from("n2")), "dc1", "unnamed peers: dc1");
    }
}
