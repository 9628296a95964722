//! Hinted handoff: delivering the hints this node holds to their home nodes.
//!
//! A background loop wakes every gossip interval, and at once when gossip
//! sees a member come back up. It drops hints older than the window, then,
//! for every home node that gossip sees *up*, sends its hints in batches
//! (one `StoreBatch` RPC per [`BATCH`] hints; the home merges them through
//! its normal replica path) and deletes each acknowledged hint unless a
//! newer write was merged into it meanwhile (`HintStore::delivered`). A
//! failed batch stops delivery to that home until the next wake-up; nothing
//! is deleted that was not acknowledged. With `--hinted-handoff false` the
//! hints are kept (sloppy reads still see them) and only expire.
//!
//! A home node that left the ring for good will never come back for its
//! hints; they are re-routed to the key's current home replicas instead
//! (each hint to every one of them), so a write acknowledged while the
//! home was down is not lost with the home's departure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn, Instrument};

use crate::clock::Clock;
use crate::membership::gossip::RingStatus;
use crate::node_id::NodeId;
use crate::placement::view::Membership;
use crate::repair::hints::Hint;
use crate::replica::local::{ApplyError, LocalReplica, WRITERS};
use crate::transport::{Transport, TransportError};
use crate::wire;

/// Hints per `StoreBatch` RPC.
pub const BATCH: usize = 1_000;

/// Most batches sent to one home per wake-up, so one home with a huge
/// backlog cannot starve the others (the next wake-up continues).
const MAX_BATCHES_PER_PASS: usize = 200;

/// What hint delivery uses of a node.
#[derive(Debug, Clone)]
pub struct Handoff {
    /// This node's id: hints for it are stored locally.
    pub id: NodeId,
    /// Whether hints are delivered at all (`--hinted-handoff`); expired either way.
    pub enabled: bool,
    /// Time between passes when nothing wakes the loop (the gossip interval).
    pub period_ms: u64,
    /// Bound on one batch's RPC (the request timeout).
    pub request_timeout: Duration,
    /// Who is up, who left, and each key's current homes.
    pub membership: Arc<Membership>,
    /// Where batches go.
    pub transport: Arc<dyn Transport>,
    /// This node's replica and its hint store.
    pub local: Arc<LocalReplica>,
    /// Wall clock: hints expire by it.
    pub clock: Arc<dyn Clock>,
    /// Notified when a member comes back up (gossip).
    pub wake: Arc<Notify>,
}

impl Handoff {
    /// Runs delivery passes until `stopping` turns true.
    pub async fn run(self, mut stopping: watch::Receiver<bool>) {
        let period = Duration::from_millis(self.period_ms);
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = self.wake.notified() => {}
                _ = stopping.changed() => break,
            }
            if *stopping.borrow() {
                break;
            }
            self.pass().await;
        }
        debug!("handoff loop stopped");
    }

    /// One pass: expire, then deliver to every home that is up.
    pub async fn pass(&self) {
        let hints = self.local.hints();
        match hints.expire(self.clock.now_ms()) {
            Ok(0) => {}
            Ok(dropped) => warn!(dropped, "hints older than the window dropped"),
            Err(error) => warn!(%error, "cannot expire hints"),
        }
        if !self.enabled {
            return;
        }
        let homes = match hints.homes() {
            Ok(homes) => homes,
            Err(error) => return warn!(%error, "cannot list hinted homes"),
        };
        for home in homes {
            let left = self.membership.read(|g| g.member(&home).map(|m| m.ring_status)) == Some(RingStatus::Left);
            if left {
                self.reroute(&home).await;
            } else if home == self.id || self.membership.is_up(&home) {
                self.deliver_to(&home).await;
            }
        }
    }

    /// Sends the hints of a departed home to each key's current home replicas;
    /// a hint is deleted once every one of them acknowledged it.
    async fn reroute(&self, home: &NodeId) {
        for _ in 0..MAX_BATCHES_PER_PASS {
            let batch = match self.local.hints().batch(home, BATCH, self.clock.now_ms()) {
                Ok(batch) if batch.is_empty() => return,
                Ok(batch) => batch,
                Err(error) => return warn!(%home, %error, "cannot read hints"),
            };
            let view = self.membership.view();
            let mut by_target: BTreeMap<NodeId, Vec<Hint>> = BTreeMap::new();
            for hint in &batch {
                for target in view.homes(&hint.key).0.into_iter().filter(|t| t != home) {
                    by_target.entry(target).or_default().push(hint.clone());
                }
            }
            for (target, hints) in &by_target {
                if let Err(reason) = self.send(target, hints).await {
                    return debug!(%home, %target, %reason, "re-routing hints failed; retrying later");
                }
            }
            match delete_delivered(Arc::clone(&self.local), batch).await {
                Ok(n) => info!(%home, rerouted = n, "hints of a departed node re-routed to the current replicas"),
                Err(error) => return warn!(%home, %error, "cannot delete re-routed hints"),
            }
        }
    }

    /// Sends `home` its hints batch by batch until none are left, a batch
    /// fails, or the per-pass bound is reached. Returns hints delivered.
    pub async fn deliver_to(&self, home: &NodeId) -> u64 {
        let mut delivered = 0;
        // Batch k is deleted here while batch k+1 travels to the home node; a
        // cursor keeps the next batch clear of the one still being deleted.
        let mut cursor: Option<Vec<u8>> = None;
        let mut deleting: Option<tokio::task::JoinHandle<Result<u64, DeliveryError>>> = None;
        for _ in 0..MAX_BATCHES_PER_PASS {
            let batch = match self.local.hints().batch_after(home, cursor.as_deref(), BATCH, self.clock.now_ms()) {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => batch,
                Err(error) => {
                    warn!(%home, %error, "cannot read hints");
                    break;
                }
            };
            cursor = batch.last().map(|h| h.key.clone());
            let sent = self.send(home, &batch).await;
            delivered += finish(deleting.take(), home).await;
            if let Err(reason) = sent {
                debug!(%home, %reason, "hint delivery failed; retrying later");
                break;
            }
            let local = Arc::clone(&self.local);
            deleting = Some(tokio::spawn(delete_delivered(local, batch).in_current_span()));
        }
        delivered += finish(deleting, home).await;
        if delivered > 0 {
            info!(%home, delivered, pending = self.local.hints().pending(), "hints handed off");
        }
        delivered
    }

    /// Stores one batch on the home node (or locally if the home is us).
    async fn send(&self, home: &NodeId, batch: &[Hint]) -> Result<(), DeliveryError> {
        if *home == self.id {
            for hint in batch {
                self.local.local_store(&hint.key, hint.siblings.clone()).map_err(ApplyError::from)?;
            }
            return Ok(());
        }
        let from = self.id.to_string();
        let stores = batch
            .iter()
            .map(|h| proto::StoreRequest {
                key: h.key.clone(),
                siblings: wire::set_to_proto(&h.siblings),
                from: from.clone(),
                hint_for: String::new(),
                ..Default::default()
            })
            .collect();
        let request = proto::StoreBatchRequest { stores, from };
        let timeout = self.request_timeout * 4;
        Ok(self.transport.store_batch(home, request, timeout).await?)
    }
}

/// Waits for a batch deletion, if any; returns hints deleted.
async fn finish(deleting: Option<tokio::task::JoinHandle<Result<u64, DeliveryError>>>, home: &NodeId) -> u64 {
    let Some(task) = deleting else { return 0 };
    match task.await.map_err(|e| DeliveryError::Task(e.to_string())).and_then(|r| r) {
        Ok(deleted) => deleted,
        Err(error) => {
            warn!(%home, %error, "cannot delete delivered hints");
            0
        }
    }
}

/// Why a batch of hints was not handed off or not deleted after.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// This node's replica or hint store failed.
    #[error(transparent)]
    Local(#[from] ApplyError),
    /// The home node was not reached or refused the batch.
    #[error(transparent)]
    Remote(#[from] TransportError),
    /// The deleting task did not return.
    #[error("hint deletion task failed: {0}")]
    Task(String),
}

/// Deletes an acknowledged batch: inline on memory engines, else on
/// [`WRITERS`] blocking threads.
async fn delete_delivered(local: Arc<LocalReplica>, batch: Vec<Hint>) -> Result<u64, DeliveryError> {
    if local.inline_storage() {
        return Ok(local.hints().delivered(&batch).map_err(ApplyError::from)?);
    }
    let worker = Arc::clone(&local);
    let delete = move || worker.hints().delivered_parallel(&batch, WRITERS).map_err(ApplyError::from);
    Ok(local.storage_work(delete).await?)
}
