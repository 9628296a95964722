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
use crate::wire;

/// Hints per `StoreBatch` RPC.
pub const BATCH: usize = 1_000;

/// Threads applying one batch on the home node, or deleting a delivered
/// batch on the stand-in: with a disk engine, concurrent writers share the
/// commit log's group-commit fsyncs instead of waiting for one each.
pub const WRITERS: usize = 64;

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
    let hints = node.hints();
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
        let batch = match node.hints().batch(home, BATCH, node.now_ms()) {
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
    let mut deleting: Option<tokio::task::JoinHandle<Result<u64, String>>> = None;
    for _ in 0..MAX_BATCHES_PER_PASS {
        let batch = match node.hints().batch_after(home, cursor.as_deref(), BATCH, node.now_ms()) {
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
        info!(%home, delivered, pending = node.hints().pending(), "hints handed off");
    }
    delivered
}

/// Waits for a batch deletion, if any; returns hints deleted.
async fn finish(deleting: Option<tokio::task::JoinHandle<Result<u64, String>>>, home: &NodeId) -> u64 {
    let Some(task) = deleting else { return 0 };
    match task.await.map_err(|e| e.to_string()).and_then(|r| r) {
        Ok(deleted) => deleted,
        Err(error) => {
            warn!(%home, %error, "cannot delete delivered hints");
            0
        }
    }
}

/// Deletes an acknowledged batch: inline on memory engines, else on
/// [`WRITERS`] blocking threads.
async fn delete_delivered(node: Arc<Node>, batch: Vec<Hint>) -> Result<u64, String> {
    if node.inline_storage() {
        return node.hints().delivered(&batch).map_err(|e| e.to_string());
    }
    let worker = Arc::clone(&node);
    let delete = move || worker.hints().delivered_parallel(&batch, WRITERS).map_err(|e| e.to_string());
    node.storage_work(delete).await
}

/// Applies a `StoreBatch` (hints handed off, ranges streamed); fails if
/// any store fails. Inline on memory engines, else on [`WRITERS`] blocking
/// threads.
pub async fn apply_batch(node: Arc<Node>, stores: Vec<proto::StoreRequest>) -> Result<(), String> {
    if node.inline_storage() {
        return stores.iter().try_for_each(|s| apply_store(&node, s));
    }
    let worker = Arc::clone(&node);
    node.storage_work(move || {
        let chunk = stores.len().div_ceil(WRITERS).max(1);
        std::thread::scope(|scope| {
            let parts: Vec<_> = stores
                .chunks(chunk)
                .map(|part| scope.spawn(|| part.iter().try_for_each(|s| apply_store(&worker, s))))
                .collect();
            let joined = parts.into_iter().map(|p| p.join().unwrap_or_else(|_| Err("a store thread panicked".into())));
            joined.collect::<Result<Vec<()>, String>>().map(|_| ())
        })
    })
    .await
}

/// One store of a batch: into the replica, or as a hint when the sender
/// made this node a stand-in for another home.
fn apply_store(node: &Node, store: &proto::StoreRequest) -> Result<(), String> {
    let set = wire::set_from_proto(store.siblings.clone(), node.config().resolution)
        .map_err(|e| format!("bad siblings from {}: {e}", store.from))?;
    if store.hint_for.is_empty() || store.hint_for == node.config().id.as_str() {
        node.local_store(&store.key, set).map(|_| ()).map_err(|e| e.to_string())
    } else {
        let home = NodeId::from(store.hint_for.as_str());
        node.store_hint(&home, &store.key, set).map_err(|e| e.to_string())
    }
}

/// Stores one batch on the home node (or locally if the home is us).
async fn send(node: &Arc<Node>, home: &NodeId, batch: &[Hint]) -> Result<(), String> {
    if *home == node.config().id {
        for hint in batch {
            node.local_store(&hint.key, hint.siblings.clone()).map_err(|e| e.to_string())?;
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
    let mut client = node.peers().client(home).map_err(|e| e.to_string())?;
    let timeout = node.config().request_timeout() * 4;
    match tokio::time::timeout(timeout, client.store_batch(request)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Err(_) => Err("timed out".to_string()),
    }
}
