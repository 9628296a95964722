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

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn, Instrument};

use std::collections::BTreeMap;

use crate::membership::gossip::RingStatus;
use crate::node::Node;
use crate::node_id::NodeId;
use crate::repair::hints::Hint;
use crate::replica::local::{ApplyError, WRITERS};
use crate::transport::TransportError;
use crate::wire;

/// Hints per `StoreBatch` RPC.
pub const BATCH: usize = 1_000;

/// Most batches sent to one home per wake-up, so one home with a huge
/// backlog cannot starve the others (the next wake-up continues).
const MAX_BATCHES_PER_PASS: usize = 200;

/// Runs delivery passes until the node stops.
pub async fn run(node: Arc<Node>) {
    let mut stopping = node.stopping();
    let period = Duration::from_millis(node.config().gossip_interval_ms);
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = node.handoff_woken() => {}
            _ = stopping.changed() => break,
        }
        if *stopping.borrow() {
            break;
        }
        pass(&node).await;
    }
    debug!("handoff loop stopped");
}

/// One pass: expire, then deliver to every home that is up.
pub async fn pass(node: &Arc<Node>) {
    let hints = node.local().hints();
    match hints.expire(node.now_ms()) {
        Ok(0) => {}
        Ok(dropped) => warn!(dropped, "hints older than the window dropped"),
        Err(error) => warn!(%error, "cannot expire hints"),
    }
    if !node.config().hinted_handoff {
        return;
    }
    let homes = match hints.homes() {
        Ok(homes) => homes,
        Err(error) => return warn!(%error, "cannot list hinted homes"),
    };
    for home in homes {
        let left = node.membership().read(|g| g.member(&home).map(|m| m.ring_status)) == Some(RingStatus::Left);
        if left {
            reroute(node, &home).await;
        } else if home == node.config().id || node.membership().is_up(&home) {
            deliver_to(node, &home).await;
        }
    }
}

/// Sends the hints of a departed home to each key's current home replicas;
/// a hint is deleted once every one of them acknowledged it.
async fn reroute(node: &Arc<Node>, home: &NodeId) {
    for _ in 0..MAX_BATCHES_PER_PASS {
        let batch = match node.local().hints().batch(home, BATCH, node.now_ms()) {
            Ok(batch) if batch.is_empty() => return,
            Ok(batch) => batch,
            Err(error) => return warn!(%home, %error, "cannot read hints"),
        };
        let view = node.membership().view();
        let mut by_target: BTreeMap<NodeId, Vec<Hint>> = BTreeMap::new();
        for hint in &batch {
            for target in view.homes(&hint.key).0.into_iter().filter(|t| t != home) {
                by_target.entry(target).or_default().push(hint.clone());
            }
        }
        for (target, hints) in &by_target {
            if let Err(reason) = send(node, target, hints).await {
                return debug!(%home, %target, %reason, "re-routing hints failed; retrying later");
            }
        }
        match delete_delivered(Arc::clone(node), batch).await {
            Ok(n) => info!(%home, rerouted = n, "hints of a departed node re-routed to the current replicas"),
            Err(error) => return warn!(%home, %error, "cannot delete re-routed hints"),
        }
    }
}

/// Sends `home` its hints batch by batch until none are left, a batch
/// fails, or the per-pass bound is reached. Returns hints delivered.
pub async fn deliver_to(node: &Arc<Node>, home: &NodeId) -> u64 {
    let mut delivered = 0;
    // Batch k is deleted here while batch k+1 travels to the home node; a
    // cursor keeps the next batch clear of the one still being deleted.
    let mut cursor: Option<Vec<u8>> = None;
    let mut deleting: Option<tokio::task::JoinHandle<Result<u64, DeliveryError>>> = None;
    for _ in 0..MAX_BATCHES_PER_PASS {
        let batch = match node.local().hints().batch_after(home, cursor.as_deref(), BATCH, node.now_ms()) {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => batch,
            Err(error) => {
                warn!(%home, %error, "cannot read hints");
                break;
            }
        };
        cursor = batch.last().map(|h| h.key.clone());
        let sent = send(node, home, &batch).await;
        delivered += finish(deleting.take(), home).await;
        if let Err(reason) = sent {
            debug!(%home, %reason, "hint delivery failed; retrying later");
            break;
        }
        deleting = Some(tokio::spawn(delete_delivered(Arc::clone(node), batch).in_current_span()));
    }
    delivered += finish(deleting, home).await;
    if delivered > 0 {
        info!(%home, delivered, pending = node.local().hints().pending(), "hints handed off");
    }
    delivered
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
async fn delete_delivered(node: Arc<Node>, batch: Vec<Hint>) -> Result<u64, DeliveryError> {
    let local = Arc::clone(node.local());
    if local.inline_storage() {
        return Ok(local.hints().delivered(&batch).map_err(ApplyError::from)?);
    }
    let worker = Arc::clone(&local);
    let delete = move || worker.hints().delivered_parallel(&batch, WRITERS).map_err(ApplyError::from);
    Ok(local.storage_work(delete).await?)
}

/// Stores one batch on the home node (or locally if the home is us).
async fn send(node: &Arc<Node>, home: &NodeId, batch: &[Hint]) -> Result<(), DeliveryError> {
    if *home == node.config().id {
        for hint in batch {
            node.local().local_store(&hint.key, hint.siblings.clone()).map_err(ApplyError::from)?;
        }
        return Ok(());
    }
    let stores = batch
        .iter()
        .map(|h| proto::StoreRequest {
            key: h.key.clone(),
            siblings: wire::set_to_proto(&h.siblings),
            from: node.config().id.to_string(),
            hint_for: String::new(),
            ..Default::default()
        })
        .collect();
    let request = proto::StoreBatchRequest { stores, from: node.config().id.to_string() };
    let timeout = node.config().request_timeout() * 4;
    Ok(node.transport().store_batch(home, request, timeout).await?)
}
