//! [`LocalReplica`]: this node's replica as the rest of the node reaches it.
//!
//! Every write into this node's share of the keys comes through here,
//! whoever sends it: the coordinator's own replica call, a peer's Store or
//! Fetch (the gRPC service only translates), a handed-off batch of hints,
//! a streamed range. It owns the replica store (merge rule and key locks),
//! the hints this node keeps for others, and the lateness baselines that
//! decide whether a peer's Store arrived after its coordinator stopped
//! waiting (judged here, where the Store is applied, not in the service).
//!
//! Storage work runs inline on memory engines, and on tokio's blocking pool
//! for a disk engine (which may block on disk and fsync), so a slow disk
//! does not stall every request of the node on a 2-core machine with 2
//! async workers. Engines with deferred durability are written on the async
//! worker (a memtable insert and a buffered log append) and their group
//! commit awaited: profiling showed a blocking-thread hop per store costing
//! a third of the node's CPU in futex wake-ups and context switches.
//!
//! The steady clock (wall clock at start plus monotonic time since) lives
//! here too: replica apply and read times, and the stamps of outgoing
//! requests, are read off it, so no clock bump moves them.

use std::sync::Arc;

use super::lateness::Lateness;
use super::{ReplicaError, ReplicaStore, StoreOutcome};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::node_id::NodeId;
use crate::repair::hints::{HintError, HintStore};
use crate::storage::{Storage, StorageError};
use crate::versioning::vclock::{Resolution, SiblingSet};
use crate::wire::{self, WireError};

/// Threads applying one batch of stores, or deleting a delivered batch of
/// hints: with a disk engine, concurrent writers share the commit log's
/// group-commit fsyncs instead of waiting for one each.
pub const WRITERS: usize = 64;

/// A storage task on the blocking pool that did not return (it panicked,
/// or the runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("storage task failed: {0}")]
pub struct TaskFailed(pub String);

/// Why this node's replica did not apply or answer a request.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The Store arrived after its coordinator stopped waiting: refused,
    /// not applied (the coordinator answered its client and kept a hint).
    #[error("deadline passed {late_ms} ms ago; {from} stopped waiting")]
    Late {
        /// The coordinator.
        from: String,
        /// How long after its deadline it arrived.
        late_ms: u64,
    },
    /// The siblings sent do not decode.
    #[error("bad siblings from {from}: {source}")]
    BadSiblings {
        /// The sender.
        from: String,
        /// Why they do not decode.
        source: WireError,
    },
    /// The replica store failed (engine, corruption, lock).
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The hint store failed.
    #[error(transparent)]
    Hint(#[from] HintError),
    /// The write did not become durable.
    #[error(transparent)]
    Durability(#[from] StorageError),
    /// The storage task did not return.
    #[error(transparent)]
    Task(#[from] TaskFailed),
    /// A thread applying part of a batch panicked.
    #[error("a store thread panicked")]
    Panicked,
}

/// This node's replica, its hints, and the replica side's judgement of
/// incoming requests.
#[derive(Debug)]
pub struct LocalReplica {
    /// This node.
    id: NodeId,
    /// How siblings are merged.
    resolution: Resolution,
    /// This node's replica of its share of the keys.
    store: ReplicaStore,
    /// Writes held for down home replicas (hinted handoff).
    hints: HintStore,
    /// True when both the replica's and the hints' engines are in memory:
    /// storage work then runs inline, never on a blocking thread.
    inline_storage: bool,
    /// Per-coordinator lag baselines: which Stores outlived their wait.
    lateness: Lateness,
    /// Counters (replica stores and fetches, late stores).
    metrics: Arc<Metrics>,
    /// Wall-clock time source (hint ages, uptime).
    clock: Arc<dyn Clock>,
    /// Monotonic time at start: with `started_us`, the steady clock.
    started: tokio::time::Instant,
    /// Wall-clock time at start, us: the steady clock's origin (in
    /// microseconds, so two nodes' steady clocks agree to the host clock's
    /// precision, not to a millisecond: the WARS timings split round trips
    /// of a few hundred microseconds by them).
    started_us: u64,
}

/// What a [`LocalReplica`] is made of.
#[derive(Debug)]
pub struct LocalParts {
    /// This node.
    pub id: NodeId,
    /// How siblings are merged.
    pub resolution: Resolution,
    /// The replica store (observed by anti-entropy's index).
    pub store: ReplicaStore,
    /// The hint store.
    pub hints: HintStore,
    /// Whether both engines are in memory.
    pub inline_storage: bool,
    /// The node's counters.
    pub metrics: Arc<Metrics>,
    /// The node's wall clock.
    pub clock: Arc<dyn Clock>,
}

impl LocalReplica {
    /// The replica made of `parts`; its steady clock starts now.
    pub fn new(parts: LocalParts) -> Self {
        let LocalParts { id, resolution, store, hints, inline_storage, metrics, clock } = parts;
        let started_us = clock.now_us();
        let started = tokio::time::Instant::now();
        LocalReplica {
            id,
            resolution,
            store,
            hints,
            inline_storage,
            lateness: Lateness::default(),
            metrics,
            clock,
            started,
            started_us,
        }
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

    /// Milliseconds since the node started, by the wall clock.
    pub fn uptime_ms(&self) -> u64 {
        self.clock.now_ms().saturating_sub(self.started_us / 1_000)
    }

    /// The replica store (merge rule, locks, engine).
    pub fn store(&self) -> &ReplicaStore {
        &self.store
    }

    /// The storage engine.
    pub fn storage(&self) -> &dyn Storage {
        self.store.storage()
    }

    /// The hints this node holds for others.
    pub fn hints(&self) -> &HintStore {
        &self.hints
    }

    /// Which replica requests arrive after their coordinator stopped waiting.
    pub fn lateness(&self) -> &Lateness {
        &self.lateness
    }

    /// True when storage work runs inline (memory engines), false when it
    /// goes to blocking threads (a disk engine).
    pub fn inline_storage(&self) -> bool {
        self.inline_storage
    }

    /// Runs storage work inline on memory engines, or on tokio's blocking
    /// pool for a disk engine (see the module's essay).
    pub async fn storage_work<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<TaskFailed> + Send + 'static,
        F: FnOnce() -> Result<T, E> + Send + 'static,
    {
        if self.inline_storage {
            return work();
        }
        tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| Err(TaskFailed(e.to_string()).into()))
    }

    /// Keeps `set` as a hint for `home` (this node stands in for it).
    pub fn store_hint(&self, home: &NodeId, key: &[u8], set: SiblingSet) -> Result<(), HintError> {
        self.hints.store(home, key, set, self.clock.now_ms())
    }

    /// The hint held for (home, key): a sloppy read of a stand-in.
    pub fn fetch_hint(&self, home: &NodeId, key: &[u8]) -> Result<SiblingSet, HintError> {
        self.hints.get(home, key)
    }

    /// Merges siblings into this node's replica (counted as a replica store).
    pub fn local_store(&self, key: &[u8], siblings: SiblingSet) -> Result<StoreOutcome, ReplicaError> {
        self.metrics.replica_stores.inc();
        self.store.store(key, siblings)
    }

    /// Reads this node's replica of a key (counted as a replica fetch).
    pub fn local_fetch(&self, key: &[u8]) -> Result<SiblingSet, ReplicaError> {
        self.metrics.replica_fetches.inc();
        self.store.fetch(key)
    }

    /// Reads this node's replica of a key for an operator (Admin.LocalGet);
    /// not counted as a replica fetch.
    pub fn local_peek(&self, key: &[u8]) -> Result<SiblingSet, ReplicaError> {
        self.store.fetch(key)
    }

    /// Merges siblings into this node's replica, or into its hint for
    /// `hint_for`, and returns once that is durable, with the steady-clock
    /// time (us) the merge became visible to reads, which for a deferred
    /// engine is before it is durable (PBS's W ends there, not at the
    /// fsync: a read sees the memtable).
    pub async fn store_replica(
        self: &Arc<Self>,
        key: Vec<u8>,
        set: SiblingSet,
        hint_for: Option<NodeId>,
    ) -> Result<u64, ApplyError> {
        if hint_for.is_none() && !self.storage().put_may_block() {
            self.metrics.replica_stores.inc();
            let (_, durability) = self.store.store_deferred(&key, set)?;
            let visible_us = self.steady_us();
            durability.wait().await?;
            return Ok(visible_us);
        }
        let replica = Arc::clone(self);
        self.storage_work(move || match &hint_for {
            Some(home) => replica.store_hint(home, &key, set).map_err(ApplyError::from),
            None => replica.local_store(&key, set).map(|_| ()).map_err(ApplyError::from),
        })
        .await?;
        Ok(self.steady_us())
    }

    /// Reads this node's replica of a key, or its hint for `hint_for`. The
    /// replica read runs on the async worker: it is a memtable, block-cache
    /// or page-cache lookup, never a wait on a lock held across I/O.
    pub async fn fetch_replica(
        self: &Arc<Self>,
        key: Vec<u8>,
        hint_for: Option<NodeId>,
    ) -> Result<SiblingSet, ApplyError> {
        let Some(home) = hint_for else {
            return Ok(self.local_fetch(&key)?);
        };
        let replica = Arc::clone(self);
        self.storage_work(move || replica.fetch_hint(&home, &key).map_err(ApplyError::from)).await
    }

    /// Applies a peer's Store (into the replica, or as a hint for a home
    /// node when the sender made this node a stand-in), unless it arrived
    /// after its coordinator stopped waiting; returns when it became
    /// visible (see [`Self::store_replica`]).
    pub async fn apply_store(self: &Arc<Self>, store: proto::StoreRequest) -> Result<u64, ApplyError> {
        let proto::StoreRequest { key, siblings, from, hint_for, sent_at_ms, budget_ms } = store;
        // Refused, not applied: the coordinator has answered its client and
        // kept a hint; applying now would be a write nobody waits for.
        if let Some(late_ms) = self.lateness.late_by_ms(&from, sent_at_ms, budget_ms, self.steady_ms()) {
            self.metrics.replica_stores_late.inc();
            tracing::debug!(%from, late_ms, "refused a store that arrived after its coordinator stopped waiting");
            return Err(ApplyError::Late { from, late_ms });
        }
        let set = wire::set_from_proto(siblings, self.resolution)
            .map_err(|source| ApplyError::BadSiblings { from: from.clone(), source })?;
        self.store_replica(key, set, self.stand_in_for(&hint_for)).await
    }

    /// Answers a peer's Fetch: the replica's set, or the hint the request
    /// names this node a stand-in for.
    pub async fn apply_fetch(self: &Arc<Self>, fetch: proto::FetchRequest) -> Result<SiblingSet, ApplyError> {
        let proto::FetchRequest { key, hint_for, .. } = fetch;
        self.fetch_replica(key, self.stand_in_for(&hint_for)).await
    }

    /// Applies a `StoreBatch` (hints handed off, ranges streamed); fails if
    /// any store fails. Inline on memory engines, else on [`WRITERS`]
    /// blocking threads.
    pub async fn apply_batch(self: &Arc<Self>, stores: Vec<proto::StoreRequest>) -> Result<(), ApplyError> {
        if self.inline_storage {
            return stores.iter().try_for_each(|s| self.apply_batched(s));
        }
        let replica = Arc::clone(self);
        self.storage_work(move || {
            let chunk = stores.len().div_ceil(WRITERS).max(1);
            std::thread::scope(|scope| {
                let parts: Vec<_> = stores
                    .chunks(chunk)
                    .map(|part| scope.spawn(|| part.iter().try_for_each(|s| replica.apply_batched(s))))
                    .collect();
                parts.into_iter().try_for_each(|part| part.join().unwrap_or(Err(ApplyError::Panicked)))
            })
        })
        .await
    }

    /// One store of a batch: into the replica, or as a hint when the sender
    /// made this node a stand-in for another home.
    fn apply_batched(&self, store: &proto::StoreRequest) -> Result<(), ApplyError> {
        let set = wire::set_from_proto(store.siblings.clone(), self.resolution)
            .map_err(|source| ApplyError::BadSiblings { from: store.from.clone(), source })?;
        match self.stand_in_for(&store.hint_for) {
            None => self.local_store(&store.key, set).map(|_| ()).map_err(ApplyError::from),
            Some(home) => self.store_hint(&home, &store.key, set).map_err(ApplyError::from),
        }
    }

    /// The home node a request's `hint_for` makes this node a stand-in for;
    /// `None` when it names no one or this node itself.
    fn stand_in_for(&self, hint_for: &str) -> Option<NodeId> {
        (!hint_for.is_empty() && hint_for != self.id.as_str()).then(|| NodeId::from(hint_for))
    }
}
