//! The server: a node assembled, its services served, its loops run.
//!
//! One tonic server on one port serves `Kv` (`kv.rs`), `Replica`
//! (`replica.rs`), `AntiEntropy` and `Admin`, each built by the [`Node`]
//! with the handles it uses, and stops gracefully when the shutdown future
//! completes; the background loops (`drivers/background.rs`) start with it
//! and are stopped and joined after it. Every request runs in a span
//! carrying the node id, so the logs of several in-process nodes (tests)
//! stay attributable.

use std::future::Future;
use std::sync::Arc;

use proto::admin_server::AdminServer;
use proto::anti_entropy_server::AntiEntropyServer;
use proto::kv_server::KvServer;
use proto::replica_server::ReplicaServer;
use tokio::net::TcpListener;
use tonic::transport::server::{Connected, TcpIncoming};
use tonic::transport::Server;
use tracing::{error_span, info, Instrument};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, StorageKind};
use crate::drivers::background::Background;
use crate::environment::Environment;
use crate::node::Node;
use crate::placement::ring::RingError;
use crate::storage::lsm::{LsmError, LsmOptions};
use crate::storage::{LsmStorage, MemoryStorage, Storage};
use crate::transport::peers::MAX_PEER_MESSAGE_BYTES;

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
    info!(n = c.n, w = %c.w, r = %c.r, dc = %c.dc, resolution = %c.resolution, "serving");
    let background = Background::start(&node.stopping(), node.loops());
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
        .add_service(KvServer::new(node.kv_service()))
        .add_service(
            ReplicaServer::new(node.replica_service())
                // Hint batches and streamed ranges carry up to ~500 values.
                .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES),
        )
        .add_service(
            AntiEntropyServer::new(node.anti_entropy_service()).max_decoding_message_size(MAX_PEER_MESSAGE_BYTES),
        )
        .add_service(AdminServer::new(node.admin_service()))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    background.stop(node.stop_signal()).await;
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

/// Accepted connections with Nagle off: every RPC here is a small request
/// and response, which Nagle plus delayed ACKs would hold back for ~40 ms.
fn tcp_incoming(listener: tokio::net::TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}
