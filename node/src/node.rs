//! The assembled node: the parts of one node process, built and wired
//! together, and nothing else.
//!
//! [`Node::assemble`] opens the hint store, builds the anti-entropy index
//! over the replica, the membership view from the configuration, the
//! transport to the peers, the local replica and the [`Coordinator`], each
//! with the handles it uses. The request path lives in the coordinator
//! (`coordinate/coordinator.rs`), the replica side in
//! `replica/local.rs`, every peer RPC behind `transport/`. What a node
//! holds here is what the background loops (`drivers/`) and the services
//! (`net/`) are started with: the handles, a stop signal and the hint
//! delivery's wake-up. Each loop and service gets a struct of only the
//! handles it uses (`Node::gossiper`, `Node::admin_service`, ...), built
//! here, so no driver and no service names the node: the node is the one
//! place that knows every part.

use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tracing::warn;

use crate::clock::Clock;
use crate::config::Config;
use crate::coordinate::admission::Admission;
use crate::coordinate::{Coordinator, CoordinatorParts};
use crate::drivers::anti_entropy::AaeDriver;
use crate::drivers::background::Loop;
use crate::drivers::gossiper::Gossiper;
use crate::drivers::handoff::Handoff;
use crate::drivers::streaming::Streamer;
use crate::environment::Environment;
use crate::membership::gossip::{Digest, Gossip, GossipConfig, RingStatus};
use crate::metrics::{Metrics, RequestMetrics};
use crate::net::admin::AdminService;
use crate::net::anti_entropy::AntiEntropyService;
use crate::net::counters::Counters;
use crate::net::kv::KvService;
use crate::net::metrics_http::{self, Exported};
use crate::net::replica::ReplicaService;
use crate::node_id::NodeId;
use crate::placement::ring::{Ring, RingError, RingMember};
use crate::placement::view::{Membership, Rules};
use crate::repair::anti_entropy::{AaeIndex, AntiEntropy};
use crate::repair::hints::{HintError, HintStore};
use crate::replica::local::{LocalParts, LocalReplica};
use crate::replica::ReplicaStore;
use crate::storage::{MemoryStorage, Storage};
use crate::transport::grpc::GrpcTransport;
use crate::transport::peers::PeerClients;
use crate::transport::Transport;

/// Why a node could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configured membership does not form a ring.
    #[error(transparent)]
    Ring(#[from] RingError),
    /// The hint store could not be opened.
    #[error("cannot open hints: {0}")]
    Hints(#[from] HintError),
}

/// Everything one node process holds.
#[derive(Debug)]
pub struct Node {
    /// The validated configuration.
    config: Arc<Config>,
    /// Gossip membership and the ring view coordinators plan against;
    /// shared with the transport, which takes addresses from it.
    membership: Arc<Membership>,
    /// This node's replica, its hints and its steady clock.
    local: Arc<LocalReplica>,
    /// The request path.
    coordinator: Arc<Coordinator>,
    /// Which client requests the coordinator takes.
    admission: Arc<Admission>,
    /// Every peer RPC.
    transport: Arc<dyn Transport>,
    /// Counters for `Admin.Status`.
    metrics: Arc<Metrics>,
    /// Client request counts and latencies for Prometheus.
    requests: Arc<RequestMetrics>,
    /// Merkle trees of this node's ranges and the exchange schedule.
    anti_entropy: Arc<AntiEntropy>,
    /// Set to true when the node shuts down; background loops watch it.
    stop: watch::Sender<bool>,
    /// Wakes the hint delivery loop (gossip saw a member come back up).
    handoff: Arc<Notify>,
    /// Wall-clock time source (injected for tests).
    clock: Arc<dyn Clock>,
}

impl Node {
    /// Assembles a node with TCP peers and memory hints; the random seed is
    /// taken from the clock in microseconds.
    pub fn new(config: Config, clock: Arc<dyn Clock>, storage: Arc<dyn Storage>) -> Result<Node, RingError> {
        let env = Environment {
            seed: clock.now_us(),
            clock,
            storage: None,
            ..Environment::real().with_tcp(config.request_timeout(), config.dial_from())
        };
        match Node::assemble(config, &env, storage, Arc::new(MemoryStorage::new())) {
            Ok(node) => Ok(node),
            Err(StartError::Ring(e)) => Err(e),
            Err(StartError::Hints(e)) => unreachable!("an empty memory hint store opens: {e}"),
        }
    }

    /// Assembles a node on `env`'s clock, dialer and seed, keeping its
    /// replica in `storage` and its hints in `hint_storage` (`env.storage`
    /// is not looked at: the caller resolved it into `storage`).
    pub fn assemble(
        config: Config,
        env: &Environment,
        storage: Arc<dyn Storage>,
        hint_storage: Arc<dyn Storage>,
    ) -> Result<Node, StartError> {
        let config = Arc::new(config);
        let ring = Ring::new(config.ring_members())?.with_replicas_per_dc(config.replicas_per_dc.clone());
        let clock = Arc::clone(&env.clock);
        let gossip = initial_gossip(&config, clock.now_ms(), env.seed);
        let rules = Rules { n: config.n, per_dc: config.replicas_per_dc.clone(), sloppy: config.sloppy_quorum };
        let membership = Arc::new(Membership::new(gossip, rules, ring.clone()));
        let peers = PeerClients::new(Arc::clone(&membership), env.dialer.clone());
        let inline_storage = storage.is_in_memory() && hint_storage.is_in_memory();
        let hints = HintStore::open(hint_storage, config.resolution, config.hint_window_ms)?;
        let aae_index = Arc::new(AaeIndex::new(config.id.clone(), config.n, config.merkle_buckets, ring));
        let store = ReplicaStore::new(storage, config.resolution).observed_by(aae_index.clone());
        match aae_index.rebuild(store.storage(), config.resolution) {
            Ok(0) => {}
            Ok(skipped) => warn!(skipped, "merkle rebuild skipped undecodable entries"),
            Err(error) => warn!(%error, "merkle rebuild failed; anti-entropy will repair"),
        }
        let anti_entropy = AntiEntropy::new(aae_index, config.aae_concurrency);
        let metrics = Arc::new(Metrics::default());
        let transport: Arc<dyn Transport> =
            Arc::new(GrpcTransport::new(peers, config.request_timeout(), config.replica_batching));
        let (id, resolution) = (config.id.clone(), config.resolution);
        let local_parts = LocalParts {
            id,
            resolution,
            store,
            hints,
            inline_storage,
            metrics: Arc::clone(&metrics),
            clock: Arc::clone(&clock),
        };
        let local = Arc::new(LocalReplica::new(local_parts));
        let coordinator = Arc::new(Coordinator::new(CoordinatorParts {
            config: Arc::clone(&config),
            membership: Arc::clone(&membership),
            transport: Arc::clone(&transport),
            local: Arc::clone(&local),
            metrics: Arc::clone(&metrics),
            clock: Arc::clone(&clock),
        }));
        Ok(Node {
            admission: Arc::new(Admission::new(config.client_limit)),
            config,
            membership,
            local,
            coordinator,
            transport,
            metrics,
            requests: Arc::new(RequestMetrics::new()),
            anti_entropy: Arc::new(anti_entropy),
            stop: watch::channel(false).0,
            handoff: Arc::new(Notify::new()),
            clock,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current ring (normal and leaving members) as gossip sees it.
    pub fn ring(&self) -> Arc<Ring> {
        self.membership.ring()
    }

    /// Gossip membership and the derived view.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// This node's replica: the store, the hints, the steady clock.
    pub fn local(&self) -> &Arc<LocalReplica> {
        &self.local
    }

    /// The request path.
    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coordinator
    }

    /// Every peer RPC.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Anti-entropy: Merkle trees and exchange state.
    pub fn anti_entropy(&self) -> &Arc<AntiEntropy> {
        &self.anti_entropy
    }

    /// A receiver that turns true when the node shuts down.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// The stop signal itself, for the one place that stops the loops.
    pub fn stop_signal(&self) -> &watch::Sender<bool> {
        &self.stop
    }

    /// Tells the background loops and the replicate streams to stop.
    pub fn shut_down(&self) {
        self.stop.send_replace(true);
    }
}

/// The handles each driver and service is started with: only the parts it
/// uses, so none of them names the node.
impl Node {
    /// Every named counter's source.
    pub fn counters(&self) -> Counters {
        Counters {
            metrics: Arc::clone(&self.metrics),
            local: Arc::clone(&self.local),
            transport: Arc::clone(&self.transport),
            admission: Arc::clone(&self.admission),
            clock: Arc::clone(&self.clock),
        }
    }

    /// The gossip loop and the Gossip RPC.
    pub fn gossiper(&self) -> Gossiper {
        Gossiper {
            id: self.config.id.clone(),
            interval_ms: self.config.gossip_interval_ms,
            timeout: self.config.request_timeout(),
            membership: Arc::clone(&self.membership),
            transport: Arc::clone(&self.transport),
            local: Arc::clone(&self.local),
            clock: Arc::clone(&self.clock),
            wake_handoff: Arc::clone(&self.handoff),
        }
    }

    /// Hint delivery.
    pub fn handoff(&self) -> Handoff {
        Handoff {
            id: self.config.id.clone(),
            enabled: self.config.hinted_handoff,
            period_ms: self.config.gossip_interval_ms,
            request_timeout: self.config.request_timeout(),
            membership: Arc::clone(&self.membership),
            transport: Arc::clone(&self.transport),
            local: Arc::clone(&self.local),
            clock: Arc::clone(&self.clock),
            wake: Arc::clone(&self.handoff),
        }
    }

    /// Joining and leaving.
    pub fn streamer(&self) -> Streamer {
        Streamer {
            id: self.config.id.clone(),
            n: self.config.n,
            resolution: self.config.resolution,
            gossip_interval_ms: self.config.gossip_interval_ms,
            ring_delay_ms: self.config.ring_delay_ms,
            request_timeout: self.config.request_timeout(),
            membership: Arc::clone(&self.membership),
            transport: Arc::clone(&self.transport),
            local: Arc::clone(&self.local),
            handoff: self.handoff(),
        }
    }

    /// The anti-entropy rounds.
    pub fn aae_driver(&self) -> AaeDriver {
        AaeDriver {
            id: self.config.id.clone(),
            interval_ms: self.config.aae_interval_ms,
            request_timeout_ms: self.config.request_timeout_ms,
            resolution: self.config.resolution,
            anti_entropy: Arc::clone(&self.anti_entropy),
            membership: Arc::clone(&self.membership),
            transport: Arc::clone(&self.transport),
            local: Arc::clone(&self.local),
            metrics: Arc::clone(&self.metrics),
            clock: Arc::clone(&self.clock),
        }
    }

    /// What the Prometheus endpoint shows.
    pub fn exported(&self) -> Exported {
        Exported { requests: Arc::clone(&self.requests), counters: self.counters() }
    }

    /// Every background loop the configuration switches on, in start order.
    pub fn loops(&self) -> Vec<Loop> {
        let c = &self.config;
        let stopping = self.stopping();
        let mut loops: Vec<Loop> = vec![
            ("gossip", Box::pin(self.gossiper().run(stopping.clone()))),
            ("hint delivery", Box::pin(self.handoff().run(stopping))),
        ];
        if c.join {
            loops.push(("join", Box::pin(self.streamer().run_join())));
        }
        if c.anti_entropy {
            loops.push(("anti-entropy", Box::pin(self.aae_driver().run())));
        }
        if let Some(addr) = c.metrics_listen {
            loops.push(("metrics", Box::pin(metrics_http::run(self.exported(), addr))));
        }
        loops
    }

    /// The client service.
    pub fn kv_service(&self) -> KvService {
        KvService {
            coordinator: Arc::clone(&self.coordinator),
            admission: Arc::clone(&self.admission),
            metrics: Arc::clone(&self.metrics),
            requests: Arc::clone(&self.requests),
        }
    }

    /// The coordinator-to-replica service.
    pub fn replica_service(&self) -> ReplicaService {
        ReplicaService {
            replica: Arc::clone(&self.local),
            resolution: self.config.resolution,
            gossiper: self.gossiper(),
            stopping: self.stopping(),
        }
    }

    /// The responder side of anti-entropy exchanges.
    pub fn anti_entropy_service(&self) -> AntiEntropyService {
        AntiEntropyService {
            anti_entropy: Arc::clone(&self.anti_entropy),
            local: Arc::clone(&self.local),
            metrics: Arc::clone(&self.metrics),
            resolution: self.config.resolution,
        }
    }

    /// The operators' service.
    pub fn admin_service(&self) -> AdminService {
        AdminService {
            config: Arc::clone(&self.config),
            local: Arc::clone(&self.local),
            membership: Arc::clone(&self.membership),
            transport: Arc::clone(&self.transport),
            anti_entropy: Arc::clone(&self.anti_entropy),
            coordinator: Arc::clone(&self.coordinator),
            counters: self.counters(),
            clock: Arc::clone(&self.clock),
            streamer: self.streamer(),
        }
    }
}

/// This node's gossip list at start: itself (joining or normal) and every
/// configured peer and seed as a normal member not yet heard from. Peer
/// choice is seeded from the node's seed mixed with its id (nodes given
/// one seed still pick differently).
fn initial_gossip(config: &Config, now_ms: u64, seed: u64) -> Gossip {
    let vnodes_of =
        |members: &[RingMember], id: &NodeId| members.iter().find(|m| &m.id == id).map_or(config.vnodes, |m| m.vnodes);
    let members = config.ring_members();
    let dc_of = |id: &NodeId| config.dc_of(id).to_string();
    let me = Digest {
        id: config.id.clone(),
        address: config.peer_address(&config.id).unwrap_or_default().to_string(),
        generation: now_ms,
        heartbeat: 0,
        ring_status: if config.join { RingStatus::Joining } else { RingStatus::Normal },
        vnodes: vnodes_of(&members, &config.id),
        dc: config.dc.clone(),
        suspected: false,
    };
    let gossip_config = GossipConfig { fanout: config.gossip_fanout, fail_after_ms: config.fail_after_ms };
    let seed = xxhash_rust::xxh3::xxh3_64(config.id.as_str().as_bytes()) ^ seed;
    let mut gossip = Gossip::new(me, gossip_config, seed, now_ms);
    for peer in config.peers.iter().chain(&config.seed_nodes) {
        if peer.id != config.id {
            let vnodes = vnodes_of(&members, &peer.id);
            gossip.add_known(peer.id.clone(), peer.address.clone(), vnodes, dc_of(&peer.id), now_ms);
        }
    }
    gossip
}
