//! The assembled node: ring, replica store, peer clients, counters and the
//! coordinator's fan-out, wired together.
//!
//! This is where a client request becomes N replica operations: the
//! preference list comes from the ring, one task per remote replica sends
//! the operation through the cached `ReplicaClient`s (each bounded by the
//! request timeout), the coordinator's own replica is a direct call it
//! polls itself while waiting (no task, no RPC: `FanOut`), and the pure
//! round from `coordinate/rounds.rs` decides when W acks or R replies are
//! enough. Replica operations are not cancelled by the answer: once the
//! client has it the remaining writes still run to completion (a local call
//! still running is handed to a task then), so a write that met W still
//! reaches all N replicas that are up. Tasks are spawned only where
//! something must outlive the client's answer: no task holds a write's
//! in-flight version once every replica answered (or under LWW, which has
//! none), and a read whose replicas all answered alike starts no read
//! repair. With N=1 that took `make bench-instructions` from ~132k to ~111k
//! instructions per put and ~112k to ~92k per get (a spawn moves the whole
//! future, several KiB, into its task: memcpy was a fifth of the node's
//! instructions).
//!
//! Wall-clock time (version timestamps, the counter seed, uptime) comes from
//! the injected [`Clock`]; request deadlines use tokio's monotonic timer,
//! which tests can pause and advance. The tonic glue (`net/server.rs`,
//! `net/admin.rs`) only translates messages and statuses.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;
use tracing::{debug, warn, Instrument};

use crate::clock::Clock;
use crate::config::Config;
use crate::coordinate::batcher::Batcher;
use crate::coordinate::inflight::{Flight, InFlight};
use crate::coordinate::lateness::Lateness;
use crate::coordinate::mint::{mint_version, NodeCounter};
use crate::coordinate::replicate::{self, status_reason, KindCounts, ReplicaAnswer, ReplicaCall};
use crate::coordinate::rounds::{Decision, ReadRound, Round, WriteRound};
use crate::coordinate::wars::{Kind, Timing, Wars};
use crate::environment::Environment;
use crate::membership::gossip::{Digest, Gossip, GossipConfig, RingStatus};
use crate::metrics::{Metrics, RequestMetrics};
use crate::net::peers::PeerClients;
use crate::node_id::NodeId;
use crate::placement::ring::{Ring, RingError, RingMember};
use crate::placement::view::{Membership, Plan};
use crate::planted;
use crate::repair::anti_entropy::{AaeIndex, AntiEntropy, Replica as AaeReplica};
use crate::repair::hints::{HintError, HintStore};
use crate::repair::read_repair;
use crate::replica::{ReplicaError, ReplicaStore, StoreOutcome};
use crate::storage::{MemoryStorage, Storage};
use crate::versioning::validate::{Limits, ValidRead, ValidWrite};
use crate::versioning::vclock::{Resolution, Sibling, SiblingSet, Version};
use crate::wire;

/// A request that could not gather its quorum in time.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuorumError {
    /// Fewer than W replicas acknowledged a write.
    #[error("only {acks} of {required} required replicas acknowledged the write (n={n})")]
    Write {
        /// Acks received.
        acks: usize,
        /// W.
        required: usize,
        /// N.
        n: usize,
    },
    /// Fewer than R replicas replied to a read.
    #[error("only {replies} of {required} required replicas replied (n={n})")]
    Read {
        /// Replies received.
        replies: usize,
        /// R.
        required: usize,
        /// N.
        n: usize,
    },
}

/// A write that met its quorum.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    /// The version the write created.
    pub version: Version,
    /// Replicas that acknowledged before the reply.
    pub acks: usize,
    /// Home replicas a stand-in held the write for (sloppy quorum).
    pub hinted_for: Vec<NodeId>,
}

/// A read that met its quorum.
#[derive(Debug, Clone)]
pub struct ReadOutcome {
    /// The merged siblings of the replies.
    pub siblings: SiblingSet,
    /// Replicas that replied before the answer.
    pub replies: usize,
    /// Which replicas those were, in node-id order: the trace a client
    /// records to say whom a stale read met.
    pub answered_by: Vec<NodeId>,
}

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
    config: Config,
    /// Gossip membership and the ring view coordinators plan against;
    /// shared with the peer clients, which take addresses from it.
    membership: Arc<Membership>,
    /// Writes held for down home replicas (hinted handoff).
    hints: HintStore,
    /// Set to true when the node shuts down; background loops watch it.
    stop: tokio::sync::watch::Sender<bool>,
    /// Wakes the hint delivery loop (a member came back up).
    handoff: tokio::sync::Notify,
    /// This node's replica of its share of the keys.
    replica: ReplicaStore,
    /// The one channel cache every peer RPC goes through.
    peers: PeerClients,
    /// True when both the replica's and the hints' engines are in memory:
    /// storage work then runs inline, never on a blocking thread.
    inline_storage: bool,
    /// This node's versions still replicating, shipped with newer ones of
    /// the same key (see `inflight.rs`).
    inflight: Arc<InFlight>,
    /// Coalesces this node's Stores and Fetches to each replica into
    /// batches on each replica's `ReplicateStream` (see `replicate.rs`).
    replica_batcher: Batcher<ReplicaCall, ReplicaAnswer>,
    /// What the replica batcher's round trips carried, by kind.
    replica_trips: Arc<KindCounts>,
    /// Counters for `Admin.Status`.
    metrics: Metrics,
    /// The latest per-replica timings of the requests this node coordinated
    /// (PBS's W, A, R, S), for `Admin.Wars`.
    wars: Wars,
    /// Monotonic time at start: with `started_us`, the steady clock
    /// replica requests are stamped with (`steady_ms`).
    started: tokio::time::Instant,
    /// Per-coordinator lag baselines: which Stores outlived their wait.
    lateness: Lateness,
    /// Client request counts and latencies for Prometheus.
    requests: RequestMetrics,
    /// Merkle trees of this node's ranges and the exchange schedule.
    anti_entropy: AntiEntropy,
    /// Wall-clock time source (injected for tests).
    clock: Arc<dyn Clock>,
    /// Node-wide counter behind this node's clock entry.
    counter: NodeCounter,
    /// Wall-clock time at start, us: uptime, and the steady clock's origin
    /// (in microseconds, so two nodes' steady clocks agree to the host
    /// clock's precision, not to a millisecond: the WARS timings split
    /// round trips of a few hundred microseconds by them).
    started_us: u64,
}

impl Node {
    /// Assembles a node with TCP peers and memory hints; the version
    /// counter is seeded from the clock in microseconds (see
    /// [`NodeCounter`] for why), and so is the random seed.
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
        Ring::new(config.ring_members())?;
        let clock = Arc::clone(&env.clock);
        let gossip = initial_gossip(&config, clock.now_ms(), env.seed);
        let membership = Arc::new(Membership::new(gossip, config.n, config.sloppy_quorum));
        let peers = PeerClients::new(Arc::clone(&membership), env.dialer.clone());
        let inline_storage = storage.is_in_memory() && hint_storage.is_in_memory();
        let hints = HintStore::open(hint_storage, config.resolution, config.hint_window_ms)?;
        let aae_index = Arc::new(AaeIndex::new(
            config.id.clone(),
            config.n,
            config.merkle_buckets,
            Ring::new(config.ring_members())?,
        ));
        let replica = ReplicaStore::new(storage, config.resolution).observed_by(aae_index.clone());
        match aae_index.rebuild(replica.storage(), config.resolution) {
            Ok(0) => {}
            Ok(skipped) => warn!(skipped, "merkle rebuild skipped undecodable entries"),
            Err(error) => warn!(%error, "merkle rebuild failed; anti-entropy will repair"),
        }
        let anti_entropy = AntiEntropy::new(aae_index, config.aae_concurrency);
        let counter = NodeCounter::starting_at(clock.now_us());
        let started_us = clock.now_us();
        let timeout = config.request_timeout();
        let replica_trips = Arc::new(KindCounts::default());
        Ok(Node {
            config,
            membership,
            hints,
            stop: tokio::sync::watch::channel(false).0,
            handoff: tokio::sync::Notify::new(),
            replica,
            peers,
            inline_storage,
            inflight: Arc::default(),
            replica_batcher: Batcher::new(replicate::sender(Arc::clone(&replica_trips)), timeout),
            replica_trips,
            metrics: Metrics::default(),
            started: tokio::time::Instant::now(),
            lateness: Lateness::default(),
            requests: RequestMetrics::new(),
            wars: Wars::default(),
            anti_entropy,
            clock,
            counter,
            started_us,
        })
    }

    /// This node's steady clock, ms: its wall clock at start plus monotonic
    /// time since, so that no clock bump moves it (replica request stamps).
    pub fn steady_ms(&self) -> u64 {
        self.steady_us() / 1_000
    }

    /// The same steady clock in microseconds (replica apply and read times
    /// for the WARS timings).
    pub fn steady_us(&self) -> u64 {
        self.started_us + self.started.elapsed().as_micros() as u64
    }

    /// The per-replica timings of the requests this node coordinated.
    pub fn wars(&self) -> &Wars {
        &self.wars
    }

    /// Which replica requests arrive after their coordinator stopped waiting.
    pub fn lateness(&self) -> &Lateness {
        &self.lateness
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

    /// The hints this node holds for others.
    pub fn hints(&self) -> &HintStore {
        &self.hints
    }

    /// Every named counter (`Admin.Status` and Prometheus): the metrics,
    /// the storage engine's figures and the hint counters.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let mut all = self.metrics.snapshot();
        all.extend(self.replica.storage().stats());
        all.extend(self.hints.snapshot(self.clock.now_ms()));
        let (store_trips, stores, fetch_trips, fetches) = self.replica_trips.snapshot();
        all.insert("replica_round_trips".into(), self.replica_batcher.sent().0);
        all.insert("replica_store_round_trips".into(), store_trips);
        all.insert("replica_stores_sent".into(), stores);
        all.insert("replica_fetch_round_trips".into(), fetch_trips);
        all.insert("replica_fetches_sent".into(), fetches);
        all
    }

    /// The channels to the other members (every peer RPC).
    pub fn peers(&self) -> &PeerClients {
        &self.peers
    }

    /// True when storage work runs inline (memory engines), false when it
    /// goes to blocking threads (a disk engine).
    pub fn inline_storage(&self) -> bool {
        self.inline_storage
    }

    /// Runs storage work inline on memory engines, or on tokio's blocking
    /// pool for a disk engine (which may block on disk and fsync), so a
    /// slow disk does not stall every request of the node on a 2-core
    /// machine with 2 async workers.
    pub async fn storage_work<T, F>(&self, work: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, String> + Send + 'static,
    {
        if self.inline_storage {
            return work();
        }
        tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| Err(format!("storage task failed: {e}")))
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

    /// Keeps `set` as a hint for `home` (this node stands in for it).
    pub fn store_hint(&self, home: &NodeId, key: &[u8], set: SiblingSet) -> Result<(), HintError> {
        self.hints.store(home, key, set, self.clock.now_ms())
    }

    /// The hint held for (home, key): a sloppy read of a stand-in.
    pub fn fetch_hint(&self, home: &NodeId, key: &[u8]) -> Result<SiblingSet, HintError> {
        self.hints.get(home, key)
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Client request counts and latencies (Prometheus).
    pub fn requests(&self) -> &RequestMetrics {
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
            store: &self.replica,
            metrics: &self.metrics,
            mode: self.config.resolution,
        }
    }

    /// The storage engine.
    pub fn storage(&self) -> &dyn Storage {
        self.replica.storage()
    }

    /// Milliseconds since the node started.
    pub fn uptime_ms(&self) -> u64 {
        self.clock.now_ms().saturating_sub(self.started_us / 1_000)
    }

    /// The limits client requests are validated against.
    pub fn limits(&self) -> Limits {
        let c = &self.config;
        Limits { n: c.n, w: c.w, r: c.r, max_value_bytes: c.max_value_bytes }
    }

    /// Coordinates a Put (`value: Some`) or Delete (`value: None`, a
    /// tombstone): mints the version and waits for W replicas.
    pub async fn write(
        self: &Arc<Self>,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        request: ValidWrite,
    ) -> Result<WriteOutcome, QuorumError> {
        let now_ms = self.clock.now_ms();
        let minted =
            mint_version(request.context, &self.config.id, &self.counter, now_ms, self.config.max_clock_entries);
        self.metrics.clock_prunings.add(minted.pruned as u64);
        let sibling = Sibling { value, version: minted.version.clone() };
        let (set, flight) = match self.config.resolution {
            Resolution::Siblings => {
                let (set, flight) = self.inflight.begin(&key, sibling, Resolution::Siblings);
                (set, Some(flight))
            }
            Resolution::Lww => (SiblingSet::from_siblings(vec![sibling], Resolution::Lww), None),
        };
        let (acks, hinted_for) = self.replicate(key, set, request.w, flight).await?;
        Ok(WriteOutcome { version: minted.version, acks, hinted_for })
    }

    /// Coordinates a Get: waits for R replicas and merges their siblings.
    pub async fn read(self: &Arc<Self>, key: Vec<u8>, request: ValidRead) -> Result<ReadOutcome, QuorumError> {
        let plan = self.membership.view().read_plan(&key, request.r);
        if plan.targets.is_empty() {
            return Err(QuorumError::Read { replies: 0, required: request.r, n: self.config.n });
        }
        let replicas = plan.nodes();
        let mut round = ReadRound::new(replicas.clone(), plan.required, self.config.resolution);
        let mut fan = fan_out(&self.config.id, &replicas, |target| {
            let hint_for = plan.hint_for(&target);
            Arc::clone(self).fetch_on(target, key.clone(), hint_for)
        });
        let outcome = await_quorum(&mut round, &mut fan, self.deadline()).await;
        let replies = fan.finish();
        match outcome {
            Ok(answers) => {
                let siblings = round.merged().clone();
                let answered_by = round.answered_by();
                debug_assert_eq!(answered_by.len(), answers, "every counted answer is a reply");
                self.metrics.record_read_siblings(siblings.len());
                if self.config.read_repair && !read_repair::settled(&round) {
                    let hints = replicas.iter().map(|t| (t.clone(), plan.hint_for(t))).collect();
                    let repair = Arc::clone(self).repair_read(key, round, replies, hints);
                    if self.config.read_repair_blocking {
                        repair.await;
                    } else {
                        tokio::spawn(repair.in_current_span());
                    }
                }
                Ok(ReadOutcome { siblings, replies: answers, answered_by })
            }
            Err(Shortfall { answers, required }) => {
                self.metrics.unavailable_reads.inc();
                warn!(replies = answers, required, "read failed: quorum not met");
                Err(QuorumError::Read { replies: answers, required, n: self.config.n })
            }
        }
    }

    /// Read repair once a read met its quorum: waits up to
    /// `--read-repair-wait-ms` for the other replies, then stores the merge
    /// on the stale replicas (see `read_repair.rs`) and counts.
    async fn repair_read(
        self: Arc<Self>,
        key: Vec<u8>,
        round: ReadRound,
        late: UnboundedReceiver<(NodeId, Result<SiblingSet, String>)>,
        hints: BTreeMap<NodeId, Option<NodeId>>,
    ) {
        let wait = std::time::Duration::from_millis(self.config.read_repair_wait_ms);
        let report = read_repair::finish_and_repair(round, late, wait, |target, set| {
            let hint_for = hints.get(&target).cloned().flatten();
            Arc::clone(&self).store_on(target, key.clone(), set, hint_for)
        })
        .await;
        if !report.targets.is_empty() {
            debug!(?report, "read repair");
            self.metrics.read_repair_reads.inc();
            self.metrics.read_repairs.add(report.repaired as u64);
            self.metrics.read_repair_failures.add(report.failed as u64);
        }
    }

    /// Merges siblings into this node's replica (a Replica.Store).
    pub fn local_store(&self, key: &[u8], siblings: SiblingSet) -> Result<StoreOutcome, ReplicaError> {
        self.metrics.replica_stores.inc();
        self.replica.store(key, siblings)
    }

    /// Merges siblings into this node's replica, or into its hint for
    /// `hint_for`, and returns once that is durable, with the steady-clock
    /// time (us) the merge became visible to reads, which for a deferred
    /// engine is before it is durable (PBS's W ends there, not at the
    /// fsync: a read sees the memtable). Engines with deferred
    /// durability are written right here on the async worker (a memtable
    /// insert and a buffered log append) and their group commit awaited;
    /// engines that fsync inline, and hints, go through
    /// [`Node::storage_work`] (a blocking thread unless the engines are in
    /// memory). (Profiling showed a blocking-thread hop per store costing a third of
    /// the node's CPU in futex wake-ups and context switches.)
    pub async fn store_replica(
        self: &Arc<Self>,
        key: Vec<u8>,
        set: SiblingSet,
        hint_for: Option<NodeId>,
    ) -> Result<u64, String> {
        if hint_for.is_none() && !self.storage().put_may_block() {
            self.metrics.replica_stores.inc();
            let (_, durability) = self.replica.store_deferred(&key, set).map_err(|e| e.to_string())?;
            let visible_us = self.steady_us();
            durability.wait().await.map_err(|e| e.to_string())?;
            return Ok(visible_us);
        }
        let node = Arc::clone(self);
        self.storage_work(move || match &hint_for {
            Some(home) => node.store_hint(home, &key, set).map_err(|e| e.to_string()),
            None => node.local_store(&key, set).map(|_| ()).map_err(|e| e.to_string()),
        })
        .await?;
        Ok(self.steady_us())
    }

    /// Reads this node's replica of a key, or its hint for `hint_for`. The
    /// replica read runs on the async worker: it is a memtable, block-cache
    /// or page-cache lookup, never a wait on a lock held across I/O.
    pub async fn fetch_replica(self: &Arc<Self>, key: Vec<u8>, hint_for: Option<NodeId>) -> Result<SiblingSet, String> {
        let Some(home) = hint_for else {
            return self.local_fetch(&key).map_err(|e| e.to_string());
        };
        let node = Arc::clone(self);
        self.storage_work(move || node.fetch_hint(&home, &key).map_err(|e| e.to_string())).await
    }

    /// Reads this node's replica of a key (a Replica.Fetch).
    pub fn local_fetch(&self, key: &[u8]) -> Result<SiblingSet, ReplicaError> {
        self.metrics.replica_fetches.inc();
        self.replica.fetch(key)
    }

    /// Reads this node's replica of a key for an operator (Admin.LocalGet);
    /// not counted as a replica fetch.
    pub fn local_peek(&self, key: &[u8]) -> Result<SiblingSet, ReplicaError> {
        self.replica.fetch(key)
    }

    /// Sends the set to the key's N replicas; returns the acks once W came,
    /// and the home replicas hinted handoff owes the write to (see
    /// [`Self::owed_homes`]).
    /// `flight` is released once every replica answered or failed.
    async fn replicate(
        self: &Arc<Self>,
        key: Vec<u8>,
        set: SiblingSet,
        w: usize,
        flight: Option<Flight>,
    ) -> Result<(usize, Vec<NodeId>), QuorumError> {
        let plan = self.membership.view().write_plan(&key, w);
        if plan.targets.is_empty() {
            return Err(QuorumError::Write { acks: 0, required: w, n: self.config.n });
        }
        let replicas = plan.nodes();
        let mut round = WriteRound::new(replicas.clone(), planted::write_acks_required(plan.required));
        let mut fan = fan_out(&self.config.id, &replicas, |target| {
            let hint_for = plan.hint_for(&target);
            Arc::clone(self).store_on(target, key.clone(), set.clone(), hint_for)
        });
        let outcome = await_quorum(&mut round, &mut fan, self.deadline()).await;
        release_when_answered(fan.finish(), flight);
        match outcome {
            Ok(answers) => Ok((answers, self.owed_homes(&plan, &round))),
            Err(Shortfall { answers, required }) => {
                self.metrics.unavailable_writes.inc();
                warn!(acks = answers, required, failures = ?round.failures(), "write failed: quorum not met");
                Err(QuorumError::Write { acks: answers, required, n: self.config.n })
            }
        }
    }

    /// The home replicas a hint exists for when the write is acknowledged:
    /// those a stand-in was sent the write for (sloppy quorum), and, with
    /// hinted handoff on, those whose store already failed (the coordinator
    /// kept the hint before the failure reached the round). Failures after
    /// the reply are not known here; the workbench checks what it is told.
    fn owed_homes(&self, plan: &Plan, round: &WriteRound) -> Vec<NodeId> {
        let mut homes: Vec<NodeId> = plan.targets.iter().filter_map(|t| t.hint_for.clone()).collect();
        if self.config.hinted_handoff {
            let failed_homes = round.failures().keys().filter(|n| plan.hint_for(n).is_none());
            homes.extend(failed_homes.cloned());
        }
        homes.sort();
        homes.dedup();
        homes
    }

    /// Stores on one replica: directly if it is this node, else by RPC. A
    /// stand-in (`hint_for`) keeps the write as a hint. When a home
    /// replica's store fails and hinted handoff is on, the coordinator keeps
    /// a hint for it itself (not counted towards W).
    async fn store_on(
        self: Arc<Self>,
        target: NodeId,
        key: Vec<u8>,
        set: SiblingSet,
        hint_for: Option<NodeId>,
    ) -> Result<(), String> {
        let sent_us = self.steady_us();
        if target == self.config.id {
            let visible_us = self.store_replica(key, set, hint_for).await?;
            self.wars.record(
                Kind::Store,
                true,
                Timing { sent_us, replica_us: visible_us, received_us: self.steady_us() },
            );
            return Ok(());
        }
        let mut client = self.peers.client(&target).map_err(|e| e.to_string())?;
        let request = proto::StoreRequest {
            key: key.clone(),
            siblings: wire::set_to_proto(&set),
            from: self.config.id.to_string(),
            hint_for: hint_for.as_ref().map(NodeId::to_string).unwrap_or_default(),
            sent_at_ms: self.steady_ms(),
            budget_ms: self.config.request_timeout().as_millis() as u64,
        };
        let outcome = if self.config.replica_batching {
            self.replica_batcher
                .call(&target, client, ReplicaCall::Store(request))
                .await
                .and_then(ReplicaAnswer::stored)
        } else {
            unbatched(self.config.request_timeout(), client.store(request)).await.map(|r| r.applied_at_us)
        };
        let outcome = outcome.map(|replica_us| {
            self.wars.record(Kind::Store, false, Timing { sent_us, replica_us, received_us: self.steady_us() });
        });
        if outcome.is_err() && hint_for.is_none() && self.config.hinted_handoff {
            if let Err(error) = self.store_hint(&target, &key, set) {
                warn!(%target, %error, "cannot keep a hint for a failed replica");
            }
        }
        outcome
    }

    /// Fetches from one replica: directly if it is this node, else by RPC;
    /// a stand-in (`hint_for`) answers from its hint for the home node.
    async fn fetch_on(
        self: Arc<Self>,
        target: NodeId,
        key: Vec<u8>,
        hint_for: Option<NodeId>,
    ) -> Result<SiblingSet, String> {
        let sent_us = self.steady_us();
        if target == self.config.id {
            let set = self.fetch_replica(key, hint_for).await?;
            let now_us = self.steady_us();
            self.wars.record(Kind::Fetch, true, Timing { sent_us, replica_us: now_us, received_us: now_us });
            return Ok(set);
        }
        let mut client = self.peers.client(&target).map_err(|e| e.to_string())?;
        let request = proto::FetchRequest {
            key,
            from: self.config.id.to_string(),
            hint_for: hint_for.as_ref().map(NodeId::to_string).unwrap_or_default(),
        };
        let response = if self.config.replica_batching {
            self.replica_batcher
                .call(&target, client, ReplicaCall::Fetch(request))
                .await
                .and_then(ReplicaAnswer::fetched)?
        } else {
            unbatched(self.config.request_timeout(), client.fetch(request)).await?
        };
        let timing = Timing { sent_us, replica_us: response.read_at_us, received_us: self.steady_us() };
        self.wars.record(Kind::Fetch, false, timing);
        wire::set_from_proto(response.siblings, self.config.resolution).map_err(|e| e.to_string())
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.config.request_timeout()
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

/// One replica RPC on its own, bounded by the request timeout.
async fn unbatched<T>(
    timeout: std::time::Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(status_reason(&status)),
        Err(_) => Err("timed out".to_string()),
    }
}

/// A round that failed: how many answered, how many were needed.
#[derive(Debug, Clone, Copy)]
struct Shortfall {
    /// Successful answers.
    answers: usize,
    /// W or R.
    required: usize,
}

/// A replica's answer, as the fan-out delivers it.
type Answer<T> = (NodeId, Result<T, String>);

/// The replica operations of one request under way. Each remote replica's
/// is its own task, answering on `results`. The coordinator's own replica
/// is a direct call that the coordinator polls itself while it waits for
/// the quorum (no task, no channel hop: for N=1 the whole request stays on
/// one task); should the round decide while that call still runs, it is
/// handed to a task then ([`FanOut::finish`]), so it completes all the same.
struct FanOut<T, Fut> {
    /// Answers of the remote replicas' tasks (and of a handed-off local call).
    results: UnboundedReceiver<Answer<T>>,
    /// Sender for a local call handed off to a task. Held until
    /// [`FanOut::finish`], so `results` never reports closed while the
    /// local call may still answer.
    local_tx: UnboundedSender<Answer<T>>,
    /// The coordinator's own replica operation, until it answered.
    local: Option<(NodeId, Pin<Box<Fut>>)>,
}

impl<T: Send + 'static, Fut: Future<Output = Result<T, String>> + Send + 'static> FanOut<T, Fut> {
    /// After the round decided: hands a local call still running to a task
    /// and returns the channel of the answers still to come, which closes
    /// once every replica's operation finished.
    fn finish(self) -> UnboundedReceiver<Answer<T>> {
        let FanOut { results, local_tx, local } = self;
        if let Some((node, call)) = local {
            let task = async move {
                let result = call.await;
                let _ = local_tx.send((node, result));
            };
            tokio::spawn(task.in_current_span());
        }
        results
    }
}

/// Starts `call` for every remote replica as its own task and keeps the
/// one for `me`, if it is a replica, as a direct call (see [`FanOut`]).
/// Tasks outlive the receiver: late results are dropped but the operations
/// themselves complete.
fn fan_out<T, F, Fut>(me: &NodeId, replicas: &[NodeId], call: F) -> FanOut<T, Fut>
where
    T: Send + 'static,
    F: Fn(NodeId) -> Fut,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
{
    let (tx, results) = unbounded_channel();
    let mut local = None;
    for target in replicas {
        if target == me {
            local = Some((target.clone(), Box::pin(call(target.clone()))));
            continue;
        }
        let (tx, target, operation) = (tx.clone(), target.clone(), call(target.clone()));
        let task = async move {
            let result = operation.await;
            let _ = tx.send((target, result));
        };
        tokio::spawn(task.in_current_span());
    }
    FanOut { results, local_tx: tx, local }
}

/// What the coordinator heard next while waiting for its quorum.
enum Heard<T> {
    /// Its own replica's direct call answered.
    Local(Result<T, String>),
    /// A remote replica's task answered (`None`: every sender is gone).
    Remote(Option<Answer<T>>),
}

/// Feeds results into the round until it decides or the deadline passes,
/// polling the local call (if any) alongside; returns the number of
/// successful answers.
async fn await_quorum<R, Fut>(
    round: &mut R,
    fan: &mut FanOut<R::Reply, Fut>,
    deadline: Instant,
) -> Result<usize, Shortfall>
where
    R: Round,
    Fut: Future<Output = Result<R::Reply, String>>,
{
    loop {
        match round.decision() {
            Decision::Done { answers } => return Ok(answers),
            Decision::Failed { answers, required } => return Err(Shortfall { answers, required }),
            Decision::Pending => {}
        }
        let next = async {
            match fan.local.as_mut() {
                Some((_, call)) => tokio::select! {
                    biased;
                    result = call.as_mut() => Heard::Local(result),
                    answer = fan.results.recv() => Heard::Remote(answer),
                },
                None => Heard::Remote(fan.results.recv().await),
            }
        };
        match tokio::time::timeout_at(deadline, next).await {
            Ok(Heard::Local(result)) => {
                let (node, _) = fan.local.take().expect("the local call was polled, so it exists");
                round.on_result(&node, result);
            }
            Ok(Heard::Remote(Some((node, result)))) => {
                round.on_result(&node, result);
            }
            Ok(Heard::Remote(None)) | Err(_) => round.on_deadline(),
        }
    }
}

/// Keeps a write's version in flight (`flight`, siblings only) until every
/// replica answered, which is when `answers` closes: by a task only when
/// some replica still has to answer (LWW has no flight to hold, and a
/// write whose replicas all answered has nothing left to wait for).
fn release_when_answered<T: Send + 'static>(mut answers: UnboundedReceiver<Answer<T>>, flight: Option<Flight>) {
    let Some(flight) = flight else { return };
    loop {
        match answers.try_recv() {
            Ok(_) => continue,
            Err(TryRecvError::Disconnected) => return drop(flight),
            Err(TryRecvError::Empty) => break,
        }
    }
    tokio::spawn(async move {
        while answers.recv().await.is_some() {}
        drop(flight);
    });
}
