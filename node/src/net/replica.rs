//! The `Replica` gRPC service: what coordinators and peers call.
//!
//! Stores, fetches, hint batches and the coordinators' replicate streams go
//! to this node's replica ([`LocalReplica`], which judges lateness and
//! applies them); gossip to the gossiper (`drivers/gossiper.rs`) and range
//! pulls to the streaming code (`drivers/streaming.rs`). Translation only.

use std::sync::Arc;

use futures::StreamExt;
use proto::replica_server::Replica;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::drivers::gossiper::Gossiper;
use crate::replica::local::LocalReplica;
use crate::versioning::vclock::Resolution;
use crate::wire;

/// A replica's answers on a coordinator's `ReplicateStream`, in the order of
/// its batches.
pub type ReplicateAnswers =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<proto::ReplicateManyResponse, Status>> + Send>>;

/// The coordinator-to-replica API: Stores, Fetches and handed-off batches
/// go to this node's replica ([`LocalReplica`], which judges and applies
/// them); gossip to the gossiper, range pulls to the streaming code.
#[derive(Debug, Clone)]
pub struct ReplicaService {
    /// This node's replica.
    pub replica: Arc<LocalReplica>,
    /// How stored siblings decode, for streamed ranges.
    pub resolution: Resolution,
    /// Answers gossip.
    pub gossiper: Gossiper,
    /// Turns true when the node stops: replicate streams end then.
    pub stopping: watch::Receiver<bool>,
}

impl ReplicaService {
    /// Applies stores, each answered on its own, concurrently so that all of
    /// them share one group commit.
    async fn store_all(&self, stores: Vec<proto::StoreRequest>) -> proto::StoreManyResponse {
        let each = stores.into_iter().map(|store| self.replica.apply_store(store));
        let done = futures::future::join_all(each).await;
        let (mut errors, mut applied_at_us) = (Vec::with_capacity(done.len()), Vec::with_capacity(done.len()));
        for result in done {
            applied_at_us.push(*result.as_ref().unwrap_or(&0));
            errors.push(result.err().map(|e| e.to_string()).unwrap_or_default());
        }
        proto::StoreManyResponse { errors, applied_at_us }
    }

    /// Reads fetches, each answered on its own.
    async fn fetch_all(&self, fetches: Vec<proto::FetchRequest>) -> proto::FetchManyResponse {
        let mut results = Vec::with_capacity(fetches.len());
        for fetch in fetches {
            let result = match self.replica.apply_fetch(fetch).await {
                Ok(set) => proto::FetchResult {
                    siblings: wire::set_to_proto(&set),
                    error: String::new(),
                    read_at_us: self.replica.steady_us(),
                },
                Err(error) => proto::FetchResult { siblings: Vec::new(), error: error.to_string(), read_at_us: 0 },
            };
            results.push(result);
        }
        proto::FetchManyResponse { results }
    }

    /// Applies one batch: its fetches are read while its stores wait for
    /// their group commit.
    async fn replicate_batch(&self, batch: proto::ReplicateManyRequest) -> proto::ReplicateManyResponse {
        let proto::ReplicateManyRequest { stores, fetches, batch_id } = batch;
        let stores = stores.map_or_else(Vec::new, |s| s.stores);
        let fetches = fetches.map_or_else(Vec::new, |f| f.fetches);
        let (stores, fetches) = tokio::join!(self.store_all(stores), self.fetch_all(fetches));
        assert_eq!(stores.errors.len(), stores.applied_at_us.len(), "one answer per store");
        proto::ReplicateManyResponse { stores: Some(stores), fetches: Some(fetches), batch_id }
    }
}

#[tonic::async_trait]
impl Replica for ReplicaService {
    async fn store(&self, request: Request<proto::StoreRequest>) -> Result<Response<proto::StoreResponse>, Status> {
        let applied_at_us = self.replica.apply_store(request.into_inner()).await?;
        Ok(Response::new(proto::StoreResponse { applied_at_us }))
    }

    async fn fetch(&self, request: Request<proto::FetchRequest>) -> Result<Response<proto::FetchResponse>, Status> {
        let set = self.replica.apply_fetch(request.into_inner()).await?;
        Ok(Response::new(proto::FetchResponse {
            siblings: wire::set_to_proto(&set),
            read_at_us: self.replica.steady_us(),
        }))
    }

    async fn gossip(&self, request: Request<proto::GossipMessage>) -> Result<Response<proto::GossipMessage>, Status> {
        Ok(Response::new(self.gossiper.on_message(&request.into_inner())))
    }

    async fn store_batch(
        &self,
        request: Request<proto::StoreBatchRequest>,
    ) -> Result<Response<proto::StoreResponse>, Status> {
        self.replica.apply_batch(request.into_inner().stores).await?;
        Ok(Response::new(proto::StoreResponse { applied_at_us: self.replica.steady_us() }))
    }

    type ReplicateStreamStream = ReplicateAnswers;

    /// Answers a coordinator's batches one after another, in the task that
    /// sends the answers (no task per batch): its coordinator sends the next
    /// batch only once this one is answered (`transport/batcher.rs`). The
    /// stream ends when this node stops (so a graceful stop is not held up
    /// by it), after the batch under way is answered.
    async fn replicate_stream(
        &self,
        request: Request<tonic::Streaming<proto::ReplicateManyRequest>>,
    ) -> Result<Response<Self::ReplicateStreamStream>, Status> {
        let service = self.clone();
        let mut stopping = self.stopping.clone();
        let stopped = async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        };
        let answers = request.into_inner().take_until(stopped).then(move |batch| {
            let service = service.clone();
            async move { Ok(service.replicate_batch(batch?).await) }
        });
        Ok(Response::new(Box::pin(answers)))
    }

    async fn stream_range(
        &self,
        request: Request<proto::StreamRangeRequest>,
    ) -> Result<Response<proto::StreamRangeResponse>, Status> {
        crate::drivers::streaming::serve_range(&self.replica, self.resolution, &request.into_inner())
            .map(Response::new)
            .map_err(|e| Status::internal(e.to_string()))
    }
}
