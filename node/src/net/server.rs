//! The gRPC glue: the `Kv` and `Replica` services and the server itself.
//!
//! Thin on purpose: each handler validates (`versioning/validate.rs`), calls the
//! [`Node`], and translates the result into a reply or a `Status`
//! (`INVALID_ARGUMENT` for bad input, `UNAVAILABLE` for a missed quorum,
//! `INTERNAL` for storage failures). One tonic server on one port serves
//! `Kv`, `Replica` and `Admin`, and stops gracefully when the shutdown
//! future completes. Every request runs in a span carrying the node id, so
//! the logs of several in-process nodes (tests) stay attributable.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use proto::admin_server::AdminServer;
use proto::anti_entropy_server::AntiEntropyServer;
use proto::kv_server::{Kv, KvServer};
use proto::replica_server::{Replica, ReplicaServer};
use tokio::net::TcpListener;
use tonic::transport::server::{Connected, TcpIncoming};
use tonic::transport::Server;
use tonic::{Request, Response, Status};
use tracing::{debug, error_span, info, Instrument};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, StorageKind};
use crate::coordinate::admission::Admission;
use crate::coordinate::{Coordinator, WriteOutcome};
use crate::drivers::background::Background;
use crate::environment::Environment;
use crate::metrics::{Metrics, RequestMetrics};
use crate::net::admin::AdminService;
use crate::net::anti_entropy::AntiEntropyService;
use crate::net::status::outcome_label;
use crate::node::Node;
use crate::placement::ring::RingError;
use crate::replica::local::LocalReplica;
use crate::storage::lsm::{LsmError, LsmOptions};
use crate::storage::{LsmStorage, MemoryStorage, Storage};
use crate::transport::peers::MAX_PEER_MESSAGE_BYTES;
use crate::versioning::context;
use crate::versioning::validate::{self, InvalidRequest};
use crate::wire;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The membership does not form a ring.
    #[error("cannot build the ring: {0}")]
    Ring(#[from] RingError),
    /// The node could not be assembled (ring or hint store).
    #[error("cannot start the node: {0}")]
    Start(#[from] crate::node::StartError),
    /// The listen address could not be bound.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The storage engine could not be opened (data dir, corruption, ...).
    #[error("cannot open storage: {0}")]
    Storage(#[from] LsmError),
}

/// Binds `config.listen` and serves until `shutdown` completes, in the real
/// environment (the dialer's connect timeout is the request timeout).
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(config.listen).await?;
    serve(config, listener, shutdown).await
}

/// Serves a node with the real clock on an already bound listener (tests
/// bind port 0 first to learn their addresses) until `shutdown` completes.
pub async fn serve<F>(config: Config, listener: TcpListener, shutdown: F) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_with_clock(config, listener, Arc::new(SystemClock), shutdown).await
}

/// [`serve`] with an injected clock.
pub async fn serve_with_clock<F>(
    config: Config,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let env = Environment { clock, ..Environment::real().with_tcp(config.request_timeout(), config.dial_from()) };
    info!(addr = %listener.local_addr()?, "listening");
    serve_incoming(config, env, tcp_incoming(listener), shutdown).await
}

/// Assembles a node in `env` and serves it on the connections `incoming`
/// yields (TCP, or a simulator's sockets) until `shutdown` completes.
/// Storage is `env.storage` if given (its hints in `env.hint_storage`, or
/// in memory), else the engine the configuration names, with its hints
/// beside it.
pub async fn serve_incoming<I, IO, IE, F>(
    config: Config,
    env: Environment,
    incoming: I,
    shutdown: F,
) -> Result<(), ServeError>
where
    I: futures::Stream<Item = Result<IO, IE>> + Send + 'static,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: Future<Output = ()> + Send,
{
    // Error level so the span (and the node id in every line) stays enabled
    // whatever the log filter; the level of a span only gates its existence.
    let span = error_span!("node", id = %config.id);
    async move {
        let (storage, hint_storage) = match &env.storage {
            Some(storage) => {
                let hints = env.hint_storage.clone().unwrap_or_else(|| Arc::new(MemoryStorage::new()));
                (Arc::clone(storage), hints)
            }
            None => (open_storage(&config, &env.clock)?, open_hint_storage(&config, &env.clock)?),
        };
        let node = Arc::new(Node::assemble(config, &env, storage, hint_storage)?);
        serve_node_incoming(node, incoming, shutdown).await
    }
    .instrument(span)
    .await
}

/// Serves an assembled node on `listener` until `shutdown` completes.
pub async fn serve_node<F>(node: Arc<Node>, listener: TcpListener, shutdown: F) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_node_incoming(node, tcp_incoming(listener), shutdown).await
}

/// Serves an assembled node on the connections `incoming` yields until
/// `shutdown` completes, then stops the background loops and waits for
/// them (`crate::drivers::background`).
pub async fn serve_node_incoming<I, IO, IE, F>(node: Arc<Node>, incoming: I, shutdown: F) -> Result<(), ServeError>
where
    I: futures::Stream<Item = Result<IO, IE>> + Send + 'static,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: Future<Output = ()> + Send,
{
    let id = node.config().id.clone();
    let c = node.config();
    info!(n = c.n, w = c.w, r = c.r, resolution = %c.resolution, "serving");
    let background = Background::start(&node);
    let node_for_shutdown = Arc::clone(&node);
    // Stopping is announced as soon as the signal comes, not once serving
    // ended: the server's graceful stop waits for every open stream, and a
    // peer's `ReplicateStream` ends only when this node says it stops.
    let announcing = Arc::clone(&node);
    let shutdown = async move {
        shutdown.await;
        announcing.shut_down();
    };
    let served = Server::builder()
        .trace_fn(move |_| error_span!("node", id = %id))
        .add_service(KvServer::new(KvService::new(&node)))
        .add_service(
            ReplicaServer::new(ReplicaService::new(&node))
                // Hint batches and streamed ranges carry up to ~500 values.
                .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES),
        )
        .add_service(
            AntiEntropyServer::new(AntiEntropyService::new(Arc::clone(&node)))
                .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES),
        )
        .add_service(AdminServer::new(AdminService::new(Arc::clone(&node))))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    background.stop(&node_for_shutdown).await;
    served?;
    info!("stopped");
    Ok(())
}

/// The hint store's engine: built like the main one, under `<data-dir>/hints`.
fn open_hint_storage(config: &Config, clock: &Arc<dyn Clock>) -> Result<Arc<dyn Storage>, ServeError> {
    let mut hints = config.clone();
    hints.data_dir = config.data_dir.join("hints");
    open_storage(&hints, clock)
}

/// The engine the configuration names; an LSM engine stamps and ages its
/// tombstones by the node's clock.
fn open_storage(config: &Config, clock: &Arc<dyn Clock>) -> Result<Arc<dyn Storage>, ServeError> {
    Ok(match config.storage {
        StorageKind::Memory => Arc::new(MemoryStorage::new()),
        StorageKind::Lsm => {
            let options = LsmOptions { clock: Arc::clone(clock), ..config.lsm.clone() };
            Arc::new(LsmStorage::open(&config.data_dir, options)?)
        }
    })
}

/// The client API: validates, then hands the request to the coordinator.
#[derive(Debug)]
pub struct KvService {
    /// The request path.
    coordinator: Arc<Coordinator>,
    /// Which requests the coordinator takes.
    admission: Arc<Admission>,
    /// Request counters (puts, gets, deletes, invalid requests).
    metrics: Arc<Metrics>,
    /// Request counts and latencies for Prometheus.
    requests: Arc<RequestMetrics>,
}

impl KvService {
    /// The client service of `node`.
    pub fn new(node: &Node) -> Self {
        KvService {
            coordinator: Arc::clone(node.coordinator()),
            admission: Arc::clone(node.admission()),
            metrics: Arc::clone(node.metrics()),
            requests: Arc::clone(node.requests()),
        }
    }

    /// Counts and converts a validation failure.
    fn invalid(&self, error: InvalidRequest) -> Status {
        self.metrics.invalid_requests.inc();
        debug!(%error, "invalid request");
        Status::from(error)
    }

    async fn write(
        &self,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        ctx: &[u8],
        w: Option<u32>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let limits = self.coordinator.limits();
        let request = validate::write(&limits, &key, value.as_deref(), ctx, w).map_err(|e| self.invalid(e))?;
        let WriteOutcome { version, acks, hinted_for } = self.coordinator.write(key, value, request).await?;
        let acks = u32::try_from(acks).unwrap_or(u32::MAX);
        Ok(Response::new(proto::WriteResponse {
            version: Some(wire::version_to_proto(&version)),
            acks,
            hinted_for: hinted_for.iter().map(ToString::to_string).collect(),
        }))
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn get(&self, request: Request<proto::GetRequest>) -> Result<Response<proto::GetResponse>, Status> {
        self.admitted("get", self.get_untimed(request)).await
    }

    async fn put(&self, request: Request<proto::PutRequest>) -> Result<Response<proto::WriteResponse>, Status> {
        self.admitted("put", self.put_untimed(request)).await
    }

    async fn delete(&self, request: Request<proto::DeleteRequest>) -> Result<Response<proto::WriteResponse>, Status> {
        self.admitted("delete", self.delete_untimed(request)).await
    }
}

/// The handlers proper; the trait methods above admit and time them.
impl KvService {
    /// Runs `handler` if admission control takes the request, else refuses
    /// it at once (`RESOURCE_EXHAUSTED`, `overloaded`); times either for
    /// Prometheus.
    async fn admitted<T>(&self, op: &str, handler: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
        let started = tokio::time::Instant::now();
        let result = match self.admission.admit() {
            Ok(permit) => {
                let result = handler.await;
                permit.finish(result.is_err());
                result
            }
            Err(overloaded) => {
                debug!(%overloaded, op, "refused a client request");
                Err(Status::from(overloaded))
            }
        };
        self.observe(op, &result, started);
        result
    }

    /// Records a finished request for Prometheus.
    fn observe<T>(&self, op: &str, result: &Result<T, Status>, started: tokio::time::Instant) {
        self.requests.observe(op, outcome_label(result), started.elapsed());
    }

    async fn get_untimed(&self, request: Request<proto::GetRequest>) -> Result<Response<proto::GetResponse>, Status> {
        self.metrics.gets.inc();
        let proto::GetRequest { key, r } = request.into_inner();
        let read = validate::read(&self.coordinator.limits(), &key, r).map_err(|e| self.invalid(e))?;
        let outcome = self.coordinator.read(key, read).await?;
        Ok(Response::new(proto::GetResponse {
            siblings: wire::set_to_proto(&outcome.siblings),
            context: context::encode(&outcome.siblings.merged_clock()),
            replies: u32::try_from(outcome.replies).unwrap_or(u32::MAX),
            answered_by: outcome.answered_by.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn put_untimed(&self, request: Request<proto::PutRequest>) -> Result<Response<proto::WriteResponse>, Status> {
        self.metrics.puts.inc();
        let proto::PutRequest { key, value, context, w } = request.into_inner();
        self.write(key, Some(value), &context, w).await
    }

    async fn delete_untimed(
        &self,
        request: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.metrics.deletes.inc();
        let proto::DeleteRequest { key, context, w } = request.into_inner();
        self.write(key, None, &context, w).await
    }
}

/// A replica's answers on a coordinator's `ReplicateStream`, in the order of
/// its batches.
pub type ReplicateAnswers =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<proto::ReplicateManyResponse, Status>> + Send>>;

/// The coordinator-to-replica API: Stores and Fetches go to this node's
/// replica ([`LocalReplica`], which judges and applies them); gossip,
/// handed-off batches and streamed ranges to their drivers.
#[derive(Debug, Clone)]
pub struct ReplicaService {
    /// This node's replica.
    replica: Arc<LocalReplica>,
    /// The node, for the drivers that answer gossip and range pulls.
    node: Arc<Node>,
}

impl ReplicaService {
    /// The replica service of `node`.
    pub fn new(node: &Arc<Node>) -> Self {
        ReplicaService { replica: Arc::clone(node.local()), node: Arc::clone(node) }
    }

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
        Ok(Response::new(crate::drivers::gossiper::on_message(&self.node, &request.into_inner())))
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
        let mut stopping = self.node.stopping();
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
        crate::drivers::streaming::serve_range(&self.node, &request.into_inner())
            .map(Response::new)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

/// Accepted connections with Nagle off: every RPC here is a small request
/// and response, which Nagle plus delayed ACKs would hold back for ~40 ms.
fn tcp_incoming(listener: tokio::net::TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}
