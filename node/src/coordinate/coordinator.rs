//! [`Coordinator`]: the request path, from a validated client request to
//! its answer.
//!
//! Any node coordinates any request. A write mints a new version
//! (`mint.rs`), joins the versions of the key this node still replicates
//! (`inflight.rs`, siblings only), plans the replicas against the
//! membership view (strict or sloppy quorum, the extra replicas of a join
//! or leave), and fans the Store out to them (`fan_out.rs`), answering once
//! W acknowledged. A read fans a Fetch out the same way, answers with the
//! merge once R replied, and hands the replies still to come to read
//! repair. A replica that is this node is called directly
//! ([`LocalReplica`]); every other one through the [`Transport`]. When a
//! home replica's Store fails and hinted handoff is on, the coordinator
//! keeps a hint for it itself.
//!
//! The coordinator holds its own handles (membership, transport, the local
//! replica, counters) and never calls back into the node that assembled
//! it: the node builds it and the client service calls it, nothing else.
//!
//! Wall-clock time (version timestamps) comes from the injected [`Clock`];
//! request deadlines use tokio's monotonic timer, which tests can pause and
//! advance.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{debug, warn, Instrument};

use super::error::{CallError, QuorumError};
use super::fan_out::{await_quorum, fan_out, release_when_answered, Shortfall};
use super::inflight::{Flight, InFlight};
use super::mint::{mint_version, NodeCounter};
use super::rounds::{ReadRound, WriteRound};
use super::wars::{Kind, Timing, Wars};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::node_id::NodeId;
use crate::placement::quorum::Quorum;
use crate::placement::view::{Membership, Plan};
use crate::planted;
use crate::repair::read_repair;
use crate::replica::local::LocalReplica;
use crate::transport::{Transport, TransportError};
use crate::versioning::validate::{Limits, ValidRead, ValidWrite};
use crate::versioning::vclock::{Resolution, Sibling, SiblingSet, Version};
use crate::wire;

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

/// What a [`Coordinator`] is made of: the handles it holds.
#[derive(Debug)]
pub struct CoordinatorParts {
    /// The node's configuration (N, W, R, timeouts, repair switches).
    pub config: Arc<Config>,
    /// Gossip membership and the ring view requests are planned against.
    pub membership: Arc<Membership>,
    /// Every call to a remote replica.
    pub transport: Arc<dyn Transport>,
    /// This node's replica.
    pub local: Arc<LocalReplica>,
    /// The node's counters.
    pub metrics: Arc<Metrics>,
    /// The node's wall clock (version timestamps).
    pub clock: Arc<dyn Clock>,
}

/// The request path of one node.
#[derive(Debug)]
pub struct Coordinator {
    /// The node's configuration.
    config: Arc<Config>,
    /// Gossip membership and the ring view requests are planned against.
    membership: Arc<Membership>,
    /// Every call to a remote replica.
    transport: Arc<dyn Transport>,
    /// This node's replica (called directly when it is one of the N).
    local: Arc<LocalReplica>,
    /// Counters for `Admin.Status`.
    metrics: Arc<Metrics>,
    /// Wall-clock time source (version timestamps).
    clock: Arc<dyn Clock>,
    /// This node's versions still replicating, shipped with newer ones of
    /// the same key (see `inflight.rs`).
    inflight: Arc<InFlight>,
    /// Node-wide counter behind this node's clock entry.
    counter: NodeCounter,
    /// The latest per-replica timings of the requests this node coordinated
    /// (PBS's W, A, R, S), for `Admin.Wars`.
    wars: Wars,
    /// Slots for read repairs running after their read answered: at most
    /// [`MAX_REPAIRS_IN_FLIGHT`]; past that a repair is dropped and counted.
    repairs: Arc<Semaphore>,
}

/// Read repairs that may run at once after their reads answered. Under
/// overload every read may find a stale replica, and a repair per read
/// spawned without bound would hold memory and replica bandwidth the
/// client requests need; a dropped repair is counted
/// (`read_repairs_dropped`), and the next read of the key or anti-entropy
/// repairs the replica.
pub const MAX_REPAIRS_IN_FLIGHT: usize = 1_024;

impl Coordinator {
    /// A coordinator over `parts`; its version counter is seeded from the
    /// clock in microseconds (see [`NodeCounter`] for why).
    pub fn new(parts: CoordinatorParts) -> Self {
        let CoordinatorParts { config, membership, transport, local, metrics, clock } = parts;
        let counter = NodeCounter::starting_at(clock.now_us());
        Coordinator {
            config,
            membership,
            transport,
            local,
            metrics,
            clock,
            inflight: Arc::default(),
            counter,
            wars: Wars::default(),
            repairs: Arc::new(Semaphore::new(MAX_REPAIRS_IN_FLIGHT)),
        }
    }

    /// The per-replica timings of the requests this node coordinated.
    pub fn wars(&self) -> &Wars {
        &self.wars
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
        assert!(request.w.count().is_none_or(|w| (1..=self.config.n).contains(&w)), "W={} outside 1..=N", request.w);
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
        assert!(request.r.count().is_none_or(|r| (1..=self.config.n).contains(&r)), "R={} outside 1..=N", request.r);
        let plan = self.membership.view().read_plan_for(&key, request.r);
        if plan.targets.is_empty() || !plan.need.satisfiable() {
            self.metrics.unavailable_reads.inc();
            return Err(QuorumError::Read { replies: 0, required: plan.required(), n: self.config.n });
        }
        let replicas = plan.nodes();
        let mut round = ReadRound::needing(replicas.clone(), plan.need.clone(), self.config.resolution);
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
                assert_eq!(answered_by.len(), answers, "every counted answer is a reply");
                assert!(answers >= plan.required() && answers <= replicas.len(), "a read answers with R..=N replies");
                self.metrics.record_read_siblings(siblings.len());
                if self.config.read_repair && !read_repair::settled(&round) {
                    let hints = replicas.iter().map(|t| (t.clone(), plan.hint_for(t))).collect();
                    let repair = Arc::clone(self).repair_read(key, round, replies, hints);
                    if self.config.read_repair_blocking {
                        repair.await;
                    } else if let Ok(slot) = Arc::clone(&self.repairs).try_acquire_owned() {
                        tokio::spawn(async move { (repair.await, drop(slot)) }.in_current_span());
                    } else {
                        self.metrics.read_repairs_dropped.inc();
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
        late: UnboundedReceiver<(NodeId, Result<SiblingSet, CallError>)>,
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

    /// Sends the set to the key's N replicas; returns the acks once W came,
    /// and the home replicas hinted handoff owes the write to (see
    /// [`Self::owed_homes`]).
    /// `flight` is released once every replica answered or failed.
    async fn replicate(
        self: &Arc<Self>,
        key: Vec<u8>,
        set: SiblingSet,
        w: Quorum,
        flight: Option<Flight>,
    ) -> Result<(usize, Vec<NodeId>), QuorumError> {
        let plan = self.membership.view().write_plan_for(&key, w);
        if plan.targets.is_empty() || !plan.need.satisfiable() {
            self.metrics.unavailable_writes.inc();
            return Err(QuorumError::Write { acks: 0, required: plan.required(), n: self.config.n });
        }
        let replicas = plan.nodes();
        let mut round = WriteRound::needing(replicas.clone(), planted::write_requirement(plan.need.clone()));
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

    /// Stores on one replica: directly if it is this node, else through the
    /// transport. A stand-in (`hint_for`) keeps the write as a hint. When a
    /// home replica's store fails and hinted handoff is on, the coordinator
    /// keeps a hint for it itself (not counted towards W).
    async fn store_on(
        self: Arc<Self>,
        target: NodeId,
        key: Vec<u8>,
        set: SiblingSet,
        hint_for: Option<NodeId>,
    ) -> Result<(), CallError> {
        let sent_us = self.local.steady_us();
        if target == self.config.id {
            let visible_us = self.local.store_replica(key, set, hint_for).await?;
            let timing = Timing { sent_us, replica_us: visible_us, received_us: self.local.steady_us() };
            self.wars.record(Kind::Store, true, timing);
            return Ok(());
        }
        let request = proto::StoreRequest {
            key: key.clone(),
            siblings: wire::set_to_proto(&set),
            from: self.config.id.to_string(),
            hint_for: hint_for.as_ref().map(NodeId::to_string).unwrap_or_default(),
            sent_at_ms: self.local.steady_ms(),
            budget_ms: self.config.request_timeout().as_millis() as u64,
        };
        let outcome = self.transport.store(&target, request).await.map(|replica_us| {
            let timing = Timing { sent_us, replica_us, received_us: self.local.steady_us() };
            self.wars.record(Kind::Store, false, timing);
        });
        // A replica with no known address was never sent the write and
        // gets no hint from here (as before the transport was a trait).
        let undialled = matches!(outcome, Err(TransportError::UnknownPeer(_) | TransportError::BadAddress { .. }));
        if outcome.is_err() && !undialled && hint_for.is_none() && self.config.hinted_handoff {
            if let Err(error) = self.local.store_hint(&target, &key, set) {
                warn!(%target, %error, "cannot keep a hint for a failed replica");
            }
        }
        Ok(outcome?)
    }

    /// Fetches from one replica: directly if it is this node, else through
    /// the transport; a stand-in (`hint_for`) answers from its hint for the
    /// home node.
    async fn fetch_on(
        self: Arc<Self>,
        target: NodeId,
        key: Vec<u8>,
        hint_for: Option<NodeId>,
    ) -> Result<SiblingSet, CallError> {
        let sent_us = self.local.steady_us();
        if target == self.config.id {
            let set = self.local.fetch_replica(key, hint_for).await?;
            let now_us = self.local.steady_us();
            self.wars.record(Kind::Fetch, true, Timing { sent_us, replica_us: now_us, received_us: now_us });
            return Ok(set);
        }
        let request = proto::FetchRequest {
            key,
            from: self.config.id.to_string(),
            hint_for: hint_for.as_ref().map(NodeId::to_string).unwrap_or_default(),
        };
        let response = self.transport.fetch(&target, request).await?;
        let timing = Timing { sent_us, replica_us: response.read_at_us, received_us: self.local.steady_us() };
        self.wars.record(Kind::Fetch, false, timing);
        wire::set_from_proto(response.siblings, self.config.resolution)
            .map_err(|source| CallError::BadSiblings { from: target, source })
    }

    /// When a request started now stops waiting for its replicas.
    fn deadline(&self) -> Instant {
        Instant::now() + self.config.request_timeout()
    }
}
