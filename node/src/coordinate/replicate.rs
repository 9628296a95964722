//! One round trip to a replica for everything a coordinator has queued for
//! it: its Stores and its Fetches together, as one `ReplicateMany`.
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

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use proto::replica_client::ReplicaClient;
use tonic::transport::Channel;

use super::batcher::{BatchResult, SendFn};

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
    pub fn stored(self) -> Result<u64, String> {
        match self {
            ReplicaAnswer::Stored(applied_at_us) => Ok(applied_at_us),
            ReplicaAnswer::Fetched(_) => Err("a store was answered as a fetch".to_string()),
        }
    }

    /// The answer to a Fetch.
    pub fn fetched(self) -> Result<proto::FetchResponse, String> {
        match self {
            ReplicaAnswer::Fetched(response) => Ok(response),
            ReplicaAnswer::Stored(_) => Err("a fetch was answered as a store".to_string()),
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

/// The batcher's send: one `ReplicateMany` per batch, counted in `counts`.
pub fn sender(counts: Arc<KindCounts>) -> SendFn<ReplicaCall, ReplicaAnswer> {
    Arc::new(move |client, calls| replicate_many(client, calls, Arc::clone(&counts)))
}

/// A failed replica RPC as a one-line reason (code and message).
pub fn status_reason(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

type BoxedBatch = Pin<Box<dyn Future<Output = BatchResult<ReplicaAnswer>> + Send>>;

fn replicate_many(mut client: ReplicaClient<Channel>, calls: Vec<ReplicaCall>, counts: Arc<KindCounts>) -> BoxedBatch {
    Box::pin(async move {
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
        };
        let reply = client.replicate_many(request).await.map_err(|status| status_reason(&status))?.into_inner();
        Ok(answers(&is_store, reply))
    })
}

/// The reply's answers put back in the order of the calls (`is_store` says
/// which kind each was); a call the replica left unanswered fails alone.
fn answers(is_store: &[bool], reply: proto::ReplicateManyResponse) -> Vec<Result<ReplicaAnswer, String>> {
    let stores = reply.stores.unwrap_or_default();
    // A replica that reports no times gives 0, which the WARS recorder skips.
    let applied_at_us = stores.applied_at_us.into_iter().chain(std::iter::repeat(0));
    let mut stored = stores.errors.into_iter().zip(applied_at_us).map(|(error, at)| match error.is_empty() {
        true => Ok(ReplicaAnswer::Stored(at)),
        false => Err(error),
    });
    let mut fetched = reply.fetches.unwrap_or_default().results.into_iter().map(|r| match r.error.is_empty() {
        true => Ok(ReplicaAnswer::Fetched(proto::FetchResponse { siblings: r.siblings, read_at_us: r.read_at_us })),
        false => Err(r.error),
    });
    let missing = || Err("the replica's batch answer left this request out".to_string());
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
        proto::ReplicateManyResponse { stores: Some(stores), fetches: Some(proto::FetchManyResponse { results }) }
    }

    #[test]
    fn answers_go_back_to_their_calls_in_order() {
        // Calls: store, fetch, store, fetch.
        let got = answers(&[true, false, true, false], reply(&["", "disk full"], &["", ""]));
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].as_ref().ok().map(|a| matches!(a, ReplicaAnswer::Stored(1))), Some(true));
        assert!(matches!(&got[1], Ok(ReplicaAnswer::Fetched(f)) if f.read_at_us == 100));
        assert_eq!(got[2].as_ref().err().map(String::as_str), Some("disk full"), "a failed store fails alone");
        assert!(matches!(&got[3], Ok(ReplicaAnswer::Fetched(f)) if f.read_at_us == 101));
    }

    #[test]
    fn an_unanswered_call_fails_alone() {
        let got = answers(&[true, false, false], reply(&[""], &[""]));
        assert!(got[0].is_ok() && got[1].is_ok());
        assert!(got[2].as_ref().unwrap_err().contains("left this request out"));
    }

    #[test]
    fn a_kind_mixup_is_an_error_not_a_panic() {
        assert!(ReplicaAnswer::Stored(1).fetched().is_err());
        assert!(ReplicaAnswer::Fetched(proto::FetchResponse::default()).stored().is_err());
    }
}
