//! Coalescing a coordinator's replica requests: one round trip carries
//! every Store and Fetch queued for the same replica (sent by `replicate.rs`).
//!
//! A profile of a 3-node cluster under 32 concurrent clients found the
//! node's CPU spread thin over HTTP/2 framing, the kernel's network stack
//! and wake-ups: about 330 us of CPU per client operation, almost all of it
//! per-RPC overhead, since every operation made one RPC to each remote
//! replica. Raft stores such as etcd batch their replication; Dynamo's
//! coordinators can do the same without changing any guarantee, because
//! each Store or Fetch is answered on its own inside the batch.
//!
//! The batching is natural (as in group commit): a request to an idle
//! replica goes out at once, alone, so a lone client sees no added latency;
//! while `MAX_IN_FLIGHT` round trips to that replica are under way, new
//! requests wait in the replica's queue and the next round trip takes all
//! of them (up to `MAX_BATCH`). The queue is bounded: when it is full the
//! request fails at once (the coordinator counts it like any failed
//! replica) instead of growing without limit behind a slow peer. Every
//! request keeps its own deadline (the request timeout, as an unbatched RPC
//! had): its caller stops waiting then, and a request found still queued
//! past it is answered "timed out" and never sent.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::replica_client::ReplicaClient;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;
use tonic::transport::Channel;

use super::TransportError;
use crate::node_id::NodeId;

/// Most requests one round trip carries.
pub const MAX_BATCH: usize = 64;

/// Round trips to one replica that may be under way at once. One: requests
/// that arrive while it is out ride the next one together. With two, a
/// 3-node cluster under 32 clients (`workbench bench-peers --backend local
/// --only dynamo3`) carried 1.6 fetches and 2.0 stores per round trip and
/// spent 311-321 us of CPU per client operation; with one, 285-296 us, at
/// the same p99 (27-30 ms on a loaded machine).
pub const MAX_IN_FLIGHT: usize = 1;

/// Requests that may wait for one replica before new ones are refused.
pub const QUEUE_CAPACITY: usize = 4096;

/// What one round trip answers: per request, its reply or why it failed;
/// or why the whole round trip failed.
pub type BatchResult<Resp> = Result<Vec<Result<Resp, TransportError>>, TransportError>;

/// Sends one batch to a replica (one message on its `ReplicateStream`,
/// `replicate.rs`): the replica, a client for it, the batch.
pub type SendFn<Req, Resp> = Arc<
    dyn Fn(NodeId, ReplicaClient<Channel>, Vec<Req>) -> Pin<Box<dyn Future<Output = BatchResult<Resp>> + Send>>
        + Send
        + Sync,
>;

/// A request waiting for its batch.
struct Pending<Req, Resp> {
    /// The request.
    request: Req,
    /// A client for the replica (cheap to clone: it shares the channel).
    client: ReplicaClient<Channel>,
    /// When the caller stops waiting: not sent after it.
    deadline: Instant,
    /// Where its answer goes.
    reply: oneshot::Sender<Result<Resp, TransportError>>,
}

/// Per-replica queues and the tasks that drain them.
pub struct Batcher<Req, Resp> {
    /// Replica -> its queue; a drain task per queue, started on first use.
    queues: Mutex<BTreeMap<NodeId, mpsc::Sender<Pending<Req, Resp>>>>,
    /// The RPC a batch goes out as.
    send: SendFn<Req, Resp>,
    /// How long one round trip may take before all its requests fail.
    timeout: Duration,
    /// Round trips sent and the requests they carried: their ratio is the
    /// mean batch size, reported so a profile can be read against it.
    sent: Arc<SentCounts>,
}

/// Round trips and the requests they carried, since start.
#[derive(Debug, Default)]
pub struct SentCounts {
    /// Batches sent.
    pub round_trips: AtomicU64,
    /// Requests in them.
    pub requests: AtomicU64,
}

impl<Req, Resp> std::fmt::Debug for Batcher<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> Batcher<Req, Resp> {
    /// A batcher whose round trips are `send`, each bounded by `timeout`.
    pub fn new(send: SendFn<Req, Resp>, timeout: Duration) -> Self {
        Batcher { queues: Mutex::new(BTreeMap::new()), send, timeout, sent: Arc::default() }
    }

    /// (round trips, requests carried) so far.
    pub fn sent(&self) -> (u64, u64) {
        (self.sent.round_trips.load(Ordering::Relaxed), self.sent.requests.load(Ordering::Relaxed))
    }

    /// Queues `request` for `replica` and returns its own answer.
    pub async fn call(
        &self,
        replica: &NodeId,
        client: ReplicaClient<Channel>,
        request: Req,
    ) -> Result<Resp, TransportError> {
        let queue = self.queue(replica)?;
        let (reply, answer) = oneshot::channel();
        let deadline = Instant::now() + self.timeout;
        queue
            .try_send(Pending { request, client, deadline, reply })
            .map_err(|_| TransportError::QueueFull { replica: replica.clone(), capacity: QUEUE_CAPACITY })?;
        match tokio::time::timeout_at(deadline, answer).await {
            Err(_) => Err(TransportError::TimedOut { after_ms: self.timeout.as_millis() as u64 }),
            Ok(answer) => answer.map_err(|_| {
                TransportError::Dropped(format!("{replica}: the batch carrying the request was dropped"))
            })?,
        }
    }

    fn queue(&self, replica: &NodeId) -> Result<mpsc::Sender<Pending<Req, Resp>>, TransportError> {
        let mut queues = self.queues.lock().map_err(|_| TransportError::Poisoned("replica batcher"))?;
        if let Some(queue) = queues.get(replica).filter(|q| !q.is_closed()) {
            return Ok(queue.clone());
        }
        let (queue, waiting) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(drain(replica.clone(), waiting, Arc::clone(&self.send), Arc::clone(&self.sent)));
        queues.insert(replica.clone(), queue.clone());
        Ok(queue)
    }
}

/// Takes what is queued for one replica, up to `MAX_BATCH` at a time, as
/// soon as one of its `MAX_IN_FLIGHT` round trips is free.
async fn drain<Req: Send + 'static, Resp: Send + 'static>(
    replica: NodeId,
    mut waiting: mpsc::Receiver<Pending<Req, Resp>>,
    send: SendFn<Req, Resp>,
    sent: Arc<SentCounts>,
) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
        let Some(first) = waiting.recv().await else { return };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut next = Some(first);
        while let Some(pending) = next.take() {
            if pending.deadline <= Instant::now() {
                let _ = pending.reply.send(Err(TransportError::Dropped("timed out waiting for a round trip".into())));
            } else {
                batch.push(pending);
            }
            if batch.len() < MAX_BATCH {
                next = waiting.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        sent.round_trips.fetch_add(1, Ordering::Relaxed);
        sent.requests.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let (send, replica) = (Arc::clone(&send), replica.clone());
        tokio::spawn(async move {
            round_trip(replica, batch, send).await;
            drop(slot);
        });
    }
}

/// Sends one batch and hands every request its answer; the round trip
/// ends when the last of its requests' deadlines passes.
async fn round_trip<Req, Resp>(replica: NodeId, batch: Vec<Pending<Req, Resp>>, send: SendFn<Req, Resp>) {
    assert!(!batch.is_empty(), "an empty batch is never sent");
    let client = batch[0].client.clone();
    let deadline = batch.iter().map(|p| p.deadline).max().expect("non-empty");
    let (requests, replies): (Vec<Req>, Vec<_>) = batch.into_iter().map(|p| (p.request, p.reply)).unzip();
    let count = requests.len();
    let answers = match tokio::time::timeout_at(deadline, send(replica, client, requests)).await {
        Err(_) => Err(TransportError::Dropped(format!("batch of {count} timed out"))),
        Ok(Ok(answers)) if answers.len() != count => {
            Err(TransportError::Stream(format!("batch of {count} answered {} times", answers.len())))
        }
        Ok(result) => result,
    };
    match answers {
        Ok(answers) => replies.into_iter().zip(answers).for_each(|(reply, answer)| {
            let _ = reply.send(answer);
        }),
        Err(reason) => replies.into_iter().for_each(|reply| {
            let _ = reply.send(Err(reason.clone()));
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn client() -> ReplicaClient<Channel> {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        ReplicaClient::new(channel)
    }

    /// A send that doubles each number after a pause, counting round trips.
    fn doubling(trips: Arc<AtomicUsize>, fail: bool) -> SendFn<u32, u32> {
        Arc::new(move |_, _, batch: Vec<u32>| {
            trips.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if fail {
                    return Err(TransportError::Stream("peer down".to_string()));
                }
                Ok(batch
                    .into_iter()
                    .map(|n| if n == 13 { Err(TransportError::Refused("unlucky".into())) } else { Ok(n * 2) })
                    .collect())
            })
        })
    }

    #[tokio::test]
    async fn concurrent_requests_share_round_trips_and_get_their_own_answers() {
        let trips = Arc::new(AtomicUsize::new(0));
        let batcher = Arc::new(Batcher::new(doubling(Arc::clone(&trips), false), Duration::from_secs(5)));
        let peer = NodeId::from("n2");
        let calls = (0..100u32).map(|n| {
            let (batcher, peer) = (Arc::clone(&batcher), peer.clone());
            tokio::spawn(async move { (n, batcher.call(&peer, client(), n).await) })
        });
        for call in futures::future::join_all(calls).await {
            let (n, answer) = call.unwrap();
            match n {
                13 => assert_eq!(answer, Err(TransportError::Refused("unlucky".into())), "a failed item fails alone"),
                n => assert_eq!(answer, Ok(n * 2)),
            }
        }
        let trips = trips.load(Ordering::SeqCst);
        assert!(trips < 100 / 4, "{trips} round trips for 100 concurrent requests: not coalesced");
        assert_eq!(batcher.sent(), (trips as u64, 100), "every request counted once");
    }

    #[tokio::test]
    async fn a_failed_round_trip_fails_every_request_in_it() {
        let batcher = Batcher::new(doubling(Arc::new(AtomicUsize::new(0)), true), Duration::from_secs(5));
        let answer = batcher.call(&NodeId::from("n3"), client(), 1).await;
        assert_eq!(answer, Err(TransportError::Stream("peer down".to_string())));
    }

    #[tokio::test]
    async fn a_slow_replica_times_the_batch_out() {
        let slow: SendFn<u32, u32> = Arc::new(|_, _, _| Box::pin(std::future::pending()));
        let batcher = Batcher::new(slow, Duration::from_millis(30));
        let answer = batcher.call(&NodeId::from("n3"), client(), 1).await;
        assert!(answer.unwrap_err().to_string().contains("timed out"));
    }
}
