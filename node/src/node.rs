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
//! delivery's wake-up.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::warn;

use crate::clock::Clock;
use crate::config::Config;
use crate::coordinate::admission::Admission;
use crate::coordinate::{Coordinator, CoordinatorParts};
use crate::environment::Environment;
use crate::membership::gossip::{Digest, Gossip, GossipConfig, RingStatus};
use crate::metrics::{Metrics, RequestMetrics};
use crate::node_id::NodeId;
use crate::placement::ring::{Ring, RingError, RingMember};
use crate::placement::view::Membership;
use crate::repair::anti_entropy::{AaeIndex, AntiEntropy, Replica as AaeReplica};
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
    anti_entropy: AntiEntropy,
    /// Set to true when the node shuts down; background loops watch it.
    stop: tokio::sync::watch::Sender<bool>,
    /// Wakes the hint delivery loop (a member came back up).
    handoff: tokio::sync::Notify,
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
        let ring = Ring::new(config.ring_members())?;
        let clock = Arc::clone(&env.clock);
        let gossip = initial_gossip(&config, clock.now_ms(), env.seed);
        let membership = Arc::new(Membership::new(gossip, config.n, config.sloppy_quorum));
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
            anti_entropy,
            stop: tokio::sync::watch::channel(false).0,
            handoff: tokio::sync::Notify::new(),
            clock,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current ring (normal and leaving members) as gossip sees it.
    pub fn ring(&self) -> Arc<Ring> {
        let view = self.membership.view();
        view.current
            .clone()
            .or_else(|| view.future.clone())
            .unwrap_or_else(|| Arc::new(Ring::new(self.config.ring_members()).expect("validated at start")))
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

    /// Which client requests the coordinator takes.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    /// Every peer RPC.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Client request counts and latencies (Prometheus).
    pub fn requests(&self) -> &Arc<RequestMetrics> {
        &self.requests
    }

    /// Anti-entropy: Merkle trees and exchange state.
    pub fn anti_entropy(&self) -> &AntiEntropy {
        &self.anti_entropy
    }

    /// This node's replica as anti-entropy exchanges see it.
    pub fn aae_replica(&self) -> AaeReplica<'_> {
        AaeReplica {
            index: self.anti_entropy.index(),
            store: self.local.store(),
            metrics: &self.metrics,
            mode: self.config.resolution,
        }
    }

    /// Every named counter (`Admin.Status` and Prometheus): the metrics,
    /// the storage engine's figures, the hint counters and the transport's.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let mut all = self.metrics.snapshot();
        all.extend(self.local.storage().stats());
        all.extend(self.local.hints().snapshot(self.clock.now_ms()));
        all.extend(self.transport.counters());
        all.insert("client_requests_refused".into(), self.admission.refused());
        all.insert("client_requests_in_flight".into(), self.admission.in_flight() as u64);
        all.insert("client_limit".into(), self.admission.limit().min(u64::MAX as usize) as u64);
        all
    }

    /// Wall-clock now, in ms.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// A receiver that turns true when the node shuts down.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Tells the background loops to stop.
    pub fn shut_down(&self) {
        self.stop.send_replace(true);
    }

    /// Wakes the hint delivery loop now.
    pub fn wake_handoff(&self) {
        self.handoff.notify_one();
    }

    /// Completes when [`Node::wake_handoff`] is called.
    pub async fn handoff_woken(&self) {
        self.handoff.notified().await;
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
    let me = Digest {
        id: config.id.clone(),
        address: config.peer_address(&config.id).unwrap_or_default().to_string(),
        generation: now_ms,
        heartbeat: 0,
        ring_status: if config.join { RingStatus::Joining } else { RingStatus::Normal },
        vnodes: vnodes_of(&members, &config.id),
        suspected: false,
    };
    let gossip_config = GossipConfig { fanout: config.gossip_fanout, fail_after_ms: config.fail_after_ms };
    let seed = xxhash_rust::xxh3::xxh3_64(config.id.as_str().as_bytes()) ^ seed;
    let mut gossip = Gossip::new(me, gossip_config, seed, now_ms);
    for peer in config.peers.iter().chain(&config.seed_nodes) {
        if peer.id != config.id {
            gossip.add_known(peer.id.clone(), peer.address.clone(), vnodes_of(&members, &peer.id), now_ms);
        }
    }
    gossip
}
