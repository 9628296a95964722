//! Membership changes at run time: joining and leaving with range streaming.
//!
//! **Join.** A node started with `--join true` gossips itself as *joining*.
//! Coordinators that see it joining send it the writes of the ranges it
//! will own (as an extra replica, with the quorum raised by one; see
//! `placement/view.rs`), but do not read from it. After the ring delay (time
//! for gossip to reach every node), it pulls its future ranges from every
//! current member, page by page (`StreamRange`: the holder filters its keys
//! by the future ring the joiner sends), merging each entry through the
//! normal replica path. Only then does it declare itself *normal*, so
//! ownership switches after the data is in place and no acknowledged write
//! becomes unreadable.
//!
//! **Leave.** `Admin.Leave` declares the node *leaving*: coordinators add
//! the new owners of its ranges as extra replicas. After the ring delay the
//! node scans its storage and pushes every key to the nodes that own it on
//! the future ring but not on the current one (`StoreBatch`), hands off the
//! hints it holds, then declares itself *left* and stays up a few gossip
//! rounds so that everyone hears it.
//!
//! Every loop here is bounded: pages have a fixed size, pulls and pushes
//! retry a fixed number of times, and a source that stays down is skipped
//! (the other replicas of its keys still stream them).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use crate::drivers::handoff::Handoff;
use crate::membership::gossip::RingStatus;
use crate::node_id::NodeId;
use crate::placement::ring::{Ring, RingError, RingMember};
use crate::placement::view::Membership;
use crate::replica::local::LocalReplica;
use crate::storage::StorageError;
use crate::transport::{Transport, TransportError};
use crate::versioning::vclock::Resolution;
use crate::wire::{self, WireError};

/// Keys per streaming page.
pub const PAGE: u32 = 512;

/// Attempts per page before a source or target is skipped.
const ATTEMPTS: usize = 5;

/// Most pages streamed from one source (bounds a runaway scan).
const MAX_PAGES: usize = 1_000_000;

/// Why a membership change failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// This node is not in a state where the change makes sense.
    #[error("cannot {0}: this node is {1}")]
    BadState(&'static str, &'static str),
    /// No ring to compute placement on.
    #[error("no ring members known")]
    NoRing,
    /// Reading local storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A stored value does not decode.
    #[error("stored value is corrupt: {0}")]
    Corrupt(#[from] WireError),
    /// The ring a joiner sent does not form one.
    #[error("cannot build the ring: {0}")]
    Ring(#[from] RingError),
    /// A target kept refusing a batch.
    #[error("streaming to {0} failed: {1}")]
    Push(NodeId, String),
}

/// The members of a ring on the wire.
fn ring_spec(ring: &Ring) -> Vec<proto::RingSpecMember> {
    ring.members()
        .iter()
        .map(|m| proto::RingSpecMember { node_id: m.id.to_string(), vnodes: m.vnodes, dc: m.dc.clone() })
        .collect()
}

/// The replicas per DC of a ring on the wire (empty: N over the whole ring).
fn per_dc_spec(ring: &Ring) -> std::collections::HashMap<String, u32> {
    let counts = ring.replicas_per_dc().into_iter().flatten();
    counts.map(|(dc, k)| (dc.clone(), u32::try_from(*k).unwrap_or(u32::MAX))).collect()
}

/// The ring a `StreamRange` request describes, placed per DC as it says.
fn ring_from_spec(request: &proto::StreamRangeRequest) -> Result<Ring, StreamError> {
    let members: Vec<RingMember> = request
        .ring
        .iter()
        .map(|m| {
            let dc = if m.dc.is_empty() { crate::placement::quorum::DEFAULT_DC.to_string() } else { m.dc.clone() };
            RingMember { id: NodeId::from(m.node_id.as_str()), vnodes: m.vnodes.max(1), dc }
        })
        .collect();
    let per_dc: std::collections::BTreeMap<String, usize> =
        request.replicas_per_dc.iter().map(|(dc, k)| (dc.clone(), *k as usize)).collect();
    let per_dc = (!per_dc.is_empty()).then(|| std::sync::Arc::new(per_dc));
    Ok(Ring::new(members)?.with_replicas_per_dc(per_dc))
}

/// Serves one `StreamRange` page: the keys held in `local` that `ring`
/// places on `for_node`, scanning at most `limit` keys from `from_key`.
pub fn serve_range(
    local: &LocalReplica,
    resolution: Resolution,
    request: &proto::StreamRangeRequest,
) -> Result<proto::StreamRangeResponse, StreamError> {
    let ring = ring_from_spec(request)?;
    let for_node = NodeId::from(request.for_node.as_str());
    let limit = request.limit.clamp(1, 4 * PAGE) as usize;
    let page = local.storage().scan(&request.from_key, limit)?;
    let n = (request.n as usize).max(1);
    let mut entries = Vec::new();
    for (key, value) in &page {
        if ring.preference_list(key, n).contains(&for_node) {
            let set = wire::decode_set(value, resolution)?;
            entries.push(proto::StreamEntry { key: key.clone(), siblings: wire::set_to_proto(&set) });
        }
    }
    let next_key = match page.last() {
        Some((last, _)) if page.len() == limit => successor(last),
        _ => Vec::new(),
    };
    Ok(proto::StreamRangeResponse { entries, next_key, scanned: page.len() as u32 })
}

fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// What joining and leaving use of a node.
#[derive(Debug, Clone)]
pub struct Streamer {
    /// This node's id.
    pub id: NodeId,
    /// Replicas per key: placement on the future ring.
    pub n: usize,
    /// How stored siblings decode and merge.
    pub resolution: Resolution,
    /// Time between gossip rounds: the pace of waiting for contact.
    pub gossip_interval_ms: u64,
    /// Time for gossip to reach every node (`--ring-delay-ms`).
    pub ring_delay_ms: u64,
    /// Bound on one RPC (the request timeout); pages get four times it.
    pub request_timeout: Duration,
    /// The ring now and after the change; this node's ring status.
    pub membership: Arc<Membership>,
    /// Where pulls and pushes go.
    pub transport: Arc<dyn Transport>,
    /// This node's replica: what is pushed, and where pulled entries merge.
    pub local: Arc<LocalReplica>,
    /// Delivers the hints this node holds before it leaves.
    pub handoff: Handoff,
}

impl Streamer {
    /// Joins: wait for gossip, pull the future ranges, then become normal.
    pub async fn join(&self) -> Result<u64, StreamError> {
        let started = Instant::now();
        self.wait_for_contact().await;
        tokio::time::sleep(self.ring_delay()).await;
        let view = self.membership.view();
        let future = view.future.clone().ok_or(StreamError::NoRing)?;
        let sources: Vec<NodeId> = view
            .current
            .as_ref()
            .map(|r| r.members().iter().map(|m| m.id.clone()).filter(|id| *id != self.id).collect())
            .unwrap_or_default();
        let mut keys = 0;
        for source in &sources {
            keys += self.pull_from(source, &future).await;
        }
        self.membership.set_ring_status(RingStatus::Normal);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        info!(keys, sources = sources.len(), elapsed_ms, "joined: ranges streamed in, now normal");
        Ok(keys)
    }

    /// [`Streamer::join`] as a background loop (`crate::drivers::background`): a failure is logged.
    pub async fn run_join(self) {
        if let Err(error) = self.join().await {
            warn!(%error, "join failed");
        }
    }

    /// Waits (bounded) until gossip has heard from at least one other member.
    async fn wait_for_contact(&self) {
        for _ in 0..200 {
            let heard = self.membership.read(|g| g.members().iter().any(|(id, m)| *id != self.id && m.heartbeat > 0));
            if heard {
                return;
            }
            tokio::time::sleep(Duration::from_millis(self.gossip_interval_ms)).await;
        }
        warn!("no member answered gossip; joining with what is known");
    }

    fn ring_delay(&self) -> Duration {
        Duration::from_millis(self.ring_delay_ms)
    }

    /// Pulls every page `source` holds for this node; returns keys merged.
    async fn pull_from(&self, source: &NodeId, future: &Ring) -> u64 {
        let mut request = proto::StreamRangeRequest {
            for_node: self.id.to_string(),
            ring: ring_spec(future),
            n: self.n as u32,
            from_key: Vec::new(),
            limit: PAGE,
            replicas_per_dc: per_dc_spec(future),
        };
        let mut merged = 0;
        for _ in 0..MAX_PAGES {
            let Some(page) = self.fetch_page(source, &request).await else {
                warn!(%source, "source unreachable; its keys come from the other replicas");
                return merged;
            };
            for entry in page.entries {
                let Ok(set) = wire::set_from_proto(entry.siblings, self.resolution) else { continue };
                if self.local.local_store(&entry.key, set).is_ok() {
                    merged += 1;
                }
            }
            if page.next_key.is_empty() {
                break;
            }
            request.from_key = page.next_key;
        }
        merged
    }

    async fn fetch_page(
        &self,
        source: &NodeId,
        request: &proto::StreamRangeRequest,
    ) -> Option<proto::StreamRangeResponse> {
        for attempt in 0..ATTEMPTS {
            let timeout = self.request_timeout * 4;
            if let Ok(reply) = self.transport.stream_range(source, request.clone(), timeout).await {
                return Some(reply);
            }
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        None
    }

    /// Decommissions this node; returns (keys pushed, elapsed).
    pub async fn leave(&self) -> Result<(u64, Duration), StreamError> {
        let started = Instant::now();
        let status = self.membership.read(|g| g.member(&self.id).map(|m| m.ring_status));
        if status != Some(RingStatus::Normal) {
            return Err(StreamError::BadState("leave", status.map_or("unknown", RingStatus::as_str)));
        }
        self.membership.set_ring_status(RingStatus::Leaving);
        info!("leaving: waiting for the ring delay");
        tokio::time::sleep(self.ring_delay()).await;
        let view = self.membership.view();
        let (current, future) = match (&view.current, &view.future) {
            (Some(c), Some(f)) => (Arc::clone(c), Arc::clone(f)),
            _ => return Err(StreamError::NoRing),
        };
        let pushed = self.push_all(&current, &future).await?;
        for home in self.local.hints().homes().unwrap_or_default() {
            self.handoff.deliver_to(&home).await;
        }
        self.membership.set_ring_status(RingStatus::Left);
        // Stay a few rounds so that gossip carries "left" to everyone.
        tokio::time::sleep(Duration::from_millis(self.gossip_interval_ms * 5)).await;
        info!(keys = pushed, elapsed_ms = started.elapsed().as_millis() as u64, "left the ring");
        Ok((pushed, started.elapsed()))
    }

    /// Pushes every local key to its owners on `future` that are not owners on
    /// `current`, page by page.
    async fn push_all(&self, current: &Ring, future: &Ring) -> Result<u64, StreamError> {
        let mut from = Vec::new();
        let mut pushed = 0;
        for _ in 0..MAX_PAGES {
            let page = self.local.storage().scan(&from, PAGE as usize).map_err(StreamError::from)?;
            let mut batches: BTreeMap<NodeId, Vec<proto::StoreRequest>> = BTreeMap::new();
            for (key, value) in &page {
                let old = current.preference_list(key, self.n);
                for target in future.preference_list(key, self.n).into_iter().filter(|t| !old.contains(t)) {
                    let set = wire::decode_set(value, self.resolution).map_err(StreamError::from)?;
                    batches.entry(target).or_default().push(proto::StoreRequest {
                        key: key.clone(),
                        siblings: wire::set_to_proto(&set),
                        from: self.id.to_string(),
                        hint_for: String::new(),
                        ..Default::default()
                    });
                }
            }
            for (target, stores) in batches {
                pushed += stores.len() as u64;
                self.push_batch(&target, stores).await?;
            }
            match page.last() {
                Some((last, _)) if page.len() == PAGE as usize => from = successor(last),
                _ => break,
            }
        }
        Ok(pushed)
    }

    async fn push_batch(&self, target: &NodeId, stores: Vec<proto::StoreRequest>) -> Result<(), StreamError> {
        let request = proto::StoreBatchRequest { stores, from: self.id.to_string() };
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            let timeout = self.request_timeout * 4;
            match self.transport.store_batch(target, request.clone(), timeout).await {
                Ok(()) => return Ok(()),
                Err(TransportError::Status { message, .. }) => last = message,
                Err(TransportError::TimedOut { .. }) => last = "timed out".to_string(),
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        Err(StreamError::Push(target.clone(), last))
    }
}
