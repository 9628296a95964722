//! One round trip to a replica for everything a coordinator has queued for
//! it: its Stores and its Fetches together, as one `ReplicateManyRequest`
//! on the replica's `ReplicateStream` (see `Streams` below for why a stream).
//!
//! Replica batching first kept one queue per replica for Stores and another
//! for Fetches, so a coordinator serving a mix of reads and writes sent two
//! round trips to each replica where one would do: under 32 clients with
//! half of them reading, a 3-node cluster made about one round trip per
//! client op. Every round trip costs both ends an HTTP/2 frame exchange, a
//! write and a read syscall and a wake-up, which is where most of a 3-node
//! op's CPU went. One queue per replica halves the round trips whenever
//! both kinds are waiting.
//!
//! What the sharing costs: the reply is one message, so a fetch that rode
//! with stores is answered when those stores are durable (their group
//! commit), not as soon as it is read. Its `read_at_us` still says when it
//! was read, so PBS's R and S stay exact; only the round trip is longer.
//!
//! Each call is still answered on its own: a failed store fails alone, and
//! a round trip that fails fails every call in it (see `batcher.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use proto::replica_client::ReplicaClient;
use tonic::transport::Channel;

use super::batcher::SendFn;
use super::TransportError;
use crate::node_id::NodeId;

/// A request a coordinator queues for a remote replica.
#[derive(Debug)]
pub enum ReplicaCall {
    /// Merge these siblings into the replica's copy.
    Store(proto::StoreRequest),
    /// Read the replica's copy.
    Fetch(proto::FetchRequest),
}

/// A replica's answer to one [`ReplicaCall`].
#[derive(Debug)]
pub enum ReplicaAnswer {
    /// The store is applied and durable; when it was applied, us on the
    /// replica's steady clock (0: not reported).
    Stored(u64),
    /// What the replica read.
    Fetched(proto::FetchResponse),
}

impl ReplicaAnswer {
    /// The answer to a Store.
    pub fn stored(self) -> Result<u64, TransportError> {
        match self {
            ReplicaAnswer::Stored(applied_at_us) => Ok(applied_at_us),
            ReplicaAnswer::Fetched(_) => Err(TransportError::Stream("a store was answered as a fetch".into())),
        }
    }

    /// The answer to a Fetch.
    pub fn fetched(self) -> Result<proto::FetchResponse, TransportError> {
        match self {
            ReplicaAnswer::Fetched(response) => Ok(response),
            ReplicaAnswer::Stored(_) => Err(TransportError::Stream("a fetch was answered as a store".into())),
        }
    }
}

/// Round trips by what they carried, since start (the admin counters
/// `replica_{store,fetch}_round_trips` and `replica_{stores,fetches}_sent`):
/// a round trip carrying both kinds counts once for each.
#[derive(Debug, Default)]
pub struct KindCounts {
    /// Round trips that carried at least one Store.
    pub store_trips: AtomicU64,
    /// Stores sent.
    pub stores: AtomicU64,
    /// Round trips that carried at least one Fetch.
    pub fetch_trips: AtomicU64,
    /// Fetches sent.
    pub fetches: AtomicU64,
}

impl KindCounts {
    fn count(&self, stores: usize, fetches: usize) {
        if stores > 0 {
            self.store_trips.fetch_add(1, Ordering::Relaxed);
            self.stores.fetch_add(stores as u64, Ordering::Relaxed);
        }
        if fetches > 0 {
            self.fetch_trips.fetch_add(1, Ordering::Relaxed);
            self.fetches.fetch_add(fetches as u64, Ordering::Relaxed);
        }
    }

    /// (store round trips, stores, fetch round trips, fetches).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        (load(&self.store_trips), load(&self.stores), load(&self.fetch_trips), load(&self.fetches))
    }
}

/// The batcher's send: each batch is one message on the replica's
/// `ReplicateStream` ([`Streams`]), counted in `counts`.
pub fn sender(counts: Arc<KindCounts>) -> SendFn<ReplicaCall, ReplicaAnswer> {
    let streams = Arc::new(Streams::default());
    Arc::new(move |replica, client, calls| {
        let (streams, counts) = (Arc::clone(&streams), Arc::clone(&counts));
        Box::pin(async move {
            let (is_store, request) = request_of(calls, &counts);
            let reply = streams.exchange(&replica, client, request).await?;
            Ok(answers(&is_store, reply))
        })
    })
}

/// The calls as one request, and which of them were stores (to put the
/// answers back in order).
fn request_of(calls: Vec<ReplicaCall>, counts: &KindCounts) -> (Vec<bool>, proto::ReplicateManyRequest) {
    let is_store: Vec<bool> = calls.iter().map(|c| matches!(c, ReplicaCall::Store(_))).collect();
    let (mut stores, mut fetches) = (Vec::new(), Vec::new());
    for call in calls {
        match call {
            ReplicaCall::Store(store) => stores.push(store),
            ReplicaCall::Fetch(fetch) => fetches.push(fetch),
        }
    }
    counts.count(stores.len(), fetches.len());
    let request = proto::ReplicateManyRequest {
        stores: Some(proto::StoreManyRequest { stores }),
        fetches: Some(proto::FetchManyRequest { fetches }),
        batch_id: 0,
    };
    (is_store, request)
}

/// Batches a stream may hold unsent (HTTP/2 flow control holding them
/// back) before it counts as stalled and is reopened. The batcher sends one
/// batch at a time per replica, so a healthy stream holds at most one.
const STREAM_BACKLOG: usize = 2;

/// Answers to batches whose coordinator stopped waiting (a round trip that
/// timed out) a stream may pass over while waiting for the current one
/// before it is given up and reopened.
const MAX_STALE_ANSWERS: usize = 64;

/// The coordinator's open `ReplicateStream`s, one per replica.
///
/// Why a stream: a unary call is a new HTTP/2 stream each time, which
/// tonic and hyper write as three frames (HEADERS, DATA, an empty
/// END_STREAM DATA) with a flow-control hand-off between them, and answer
/// with two writes (HEADERS and DATA, then trailers). On a stream already
/// open, a batch is one DATA frame each way. A stream is opened on first
/// use and after any failure (the replica restarted, a partition's
/// keep-alive timeout closed the connection); the batch that meets the
/// failure fails, the next one opens a new stream.
#[derive(Default)]
struct Streams {
    /// Replica -> its stream, `None` until opened and after a failure. The
    /// async lock is held for a whole round trip; the batcher sends one
    /// batch at a time per replica (`MAX_IN_FLIGHT`), so it only orders a
    /// round trip after one that timed out.
    by_replica: std::sync::Mutex<BTreeMap<NodeId, Arc<tokio::sync::Mutex<Option<OpenStream>>>>>,
}

/// One open `ReplicateStream`.
struct OpenStream {
    /// Batches to send (the request body of the stream).
    outbound: futures::channel::mpsc::Sender<proto::ReplicateManyRequest>,
    /// The replica's answers, in the order of the batches.
    answers: tonic::Streaming<proto::ReplicateManyResponse>,
    /// The id of the last batch sent (ids start at 1).
    last_id: u64,
}

impl Streams {
    /// Sends `request` on `replica`'s stream (opening one with `client` if
    /// none is open) and returns its answer; a failure closes the stream.
    async fn exchange(
        &self,
        replica: &NodeId,
        mut client: ReplicaClient<Channel>,
        request: proto::ReplicateManyRequest,
    ) -> Result<proto::ReplicateManyResponse, TransportError> {
        let slot = {
            let mut by_replica = self.by_replica.lock().map_err(|_| TransportError::Poisoned("replica streams"))?;
            Arc::clone(by_replica.entry(replica.clone()).or_default())
        };
        let mut stream = slot.lock().await;
        // A stream the replica ended (it stopped gracefully) is reopened
        // before this batch, not failed by it.
        if stream.as_ref().is_some_and(|open| open.outbound.is_closed()) {
            *stream = None;
        }
        let answer = match stream.as_mut() {
            Some(open) => open.send(request),
            None => OpenStream::open(&mut client, request).await.map(|open| {
                let sent = open.last_id;
                *stream = Some(open);
                sent
            }),
        };
        let answer = match (answer, stream.as_mut()) {
            (Ok(sent), Some(open)) => open.answer(sent).await.inspect(|answer| {
                assert_eq!(answer.batch_id, sent, "a batch's answer carries its id");
            }),
            (Ok(_), None) => unreachable!("a batch was sent, so its stream is open"),
            (Err(e), _) => Err(e),
        };
        if answer.is_err() {
            *stream = None;
        }
        answer
    }
}

impl OpenStream {
    /// Opens a stream whose first message is `request` (it goes out with
    /// the stream's headers), batch 1.
    async fn open(
        client: &mut ReplicaClient<Channel>,
        request: proto::ReplicateManyRequest,
    ) -> Result<OpenStream, TransportError> {
        let (mut outbound, requests) = futures::channel::mpsc::channel(STREAM_BACKLOG);
        let first = proto::ReplicateManyRequest { batch_id: 1, ..request };
        let refused = |_| TransportError::Stream("a new replica stream refused its first batch".into());
        outbound.try_send(first).map_err(refused)?;
        let answers = client.replicate_stream(requests).await.map_err(|s| TransportError::status(&s))?.into_inner();
        Ok(OpenStream { outbound, answers, last_id: 1 })
    }

    /// Sends `request` as the next batch; returns its id.
    fn send(&mut self, request: proto::ReplicateManyRequest) -> Result<u64, TransportError> {
        let batch_id = self.last_id + 1;
        let request = proto::ReplicateManyRequest { batch_id, ..request };
        self.outbound.try_send(request).map_err(|e| {
            TransportError::Stream(match e.is_full() {
                true => format!("{STREAM_BACKLOG} batches already wait to be sent on this replica stream"),
                false => "the replica stream is closed".to_string(),
            })
        })?;
        self.last_id = batch_id;
        Ok(batch_id)
    }

    /// The answer to batch `batch_id`, passing over the answers to earlier
    /// batches whose callers stopped waiting.
    async fn answer(&mut self, batch_id: u64) -> Result<proto::ReplicateManyResponse, TransportError> {
        for _ in 0..=MAX_STALE_ANSWERS {
            match self.answers.message().await {
                Ok(Some(answer)) if answer.batch_id == batch_id => return Ok(answer),
                Ok(Some(answer)) if answer.batch_id < batch_id => continue,
                Ok(Some(answer)) => {
                    let got = answer.batch_id;
                    return Err(TransportError::Stream(format!("answer to batch {got} while waiting for {batch_id}")));
                }
                Ok(None) => return Err(TransportError::Stream("the replica closed its stream".into())),
                Err(status) => return Err(TransportError::status(&status)),
            }
        }
        Err(TransportError::Stream(format!("more than {MAX_STALE_ANSWERS} late answers on the replica stream")))
    }
}

/// The reply's answers put back in the order of the calls (`is_store` says
/// which kind each was); a call the replica left unanswered fails alone.
fn answers(is_store: &[bool], reply: proto::ReplicateManyResponse) -> Vec<Result<ReplicaAnswer, TransportError>> {
    let stores = reply.stores.unwrap_or_default();
    // A replica that reports no times gives 0, which the WARS recorder skips.
    let applied_at_us = stores.applied_at_us.into_iter().chain(std::iter::repeat(0));
    let mut stored = stores.errors.into_iter().zip(applied_at_us).map(|(error, at)| match error.is_empty() {
        true => Ok(ReplicaAnswer::Stored(at)),
        false => Err(TransportError::Refused(error)),
    });
    let mut fetched = reply.fetches.unwrap_or_default().results.into_iter().map(|r| match r.error.is_empty() {
        true => Ok(ReplicaAnswer::Fetched(proto::FetchResponse { siblings: r.siblings, read_at_us: r.read_at_us })),
        false => Err(TransportError::Refused(r.error)),
    });
    let missing = || Err(TransportError::Refused("the replica's batch answer left this request out".into()));
    is_store
        .iter()
        .map(|&store| match store {
            true => stored.next().unwrap_or_else(missing),
            false => fetched.next().unwrap_or_else(missing),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(store_errors: &[&str], fetch_errors: &[&str]) -> proto::ReplicateManyResponse {
        let stores = proto::StoreManyResponse {
            errors: store_errors.iter().map(|e| e.to_string()).collect(),
            applied_at_us: (1..=store_errors.len() as u64).collect(),
        };
        let results = fetch_errors
            .iter()
            .enumerate()
            .map(|(i, e)| proto::FetchResult { siblings: Vec::new(), error: e.to_string(), read_at_us: 100 + i as u64 })
            .collect();
        proto::ReplicateManyResponse {
            stores: Some(stores),
            fetches: Some(proto::FetchManyResponse { results }),
            batch_id: 1,
        }
    }

    #[test]
    fn answers_go_back_to_their_calls_in_order() {
        // Calls: store, fetch, store, fetch.
        let got = answers(&[true, false, true, false], reply(&["", "disk full"], &["", ""]));
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].as_ref().ok().map(|a| matches!(a, ReplicaAnswer::Stored(1))), Some(true));
        assert!(matches!(&got[1], Ok(ReplicaAnswer::Fetched(f)) if f.read_at_us == 100));
        assert_eq!(
            got[2].as_ref().err(),
            Some(&TransportError::Refused("disk full".into())),
            "a failed store fails alone"
        );
        assert!(matches!(&got[3], Ok(ReplicaAnswer::Fetched(f)) if f.read_at_us == 101));
    }

    #[test]
    fn an_unanswered_call_fails_alone() {
        let got = answers(&[true, false, false], reply(&[""], &[""]));
        assert!(got[0].is_ok() && got[1].is_ok());
        assert!(got[2].as_ref().unwrap_err().to_string().contains("left this request out"));
    }

    #[test]
    fn a_kind_mixup_is_an_error_not_a_panic() {
        assert!(ReplicaAnswer::Stored(1).fetched().is_err());
        assert!(ReplicaAnswer::Fetched(proto::FetchResponse::default()).stored().is_err());
    }
}
