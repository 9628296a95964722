//! The proxy in front of one node: accepts, names each connection's
//! source, dials the node, and runs one [`crate::pump`] per direction.
//!
//! A connection from source S into node T carries two directed links:
//! S's bytes belong to S->T and T's replies to T->S. S is the name the
//! source address maps to in [`ProxyConfig::sources`], or [`CLIENT`] for
//! any other address. The fault table and the counters are keyed by
//! directed link and shared by every connection (`Shared`, in
//! [`crate::shared`], which the pumps read too), so a fault set through
//! [`Proxy::set`] bites the connections already open; [`Proxy::reset`]
//! closes the connections that carry a link.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::fault::LinkFault;
use crate::shared::{lock, Connection, Counters, Shared};
use crate::{pump, Link, ProxyError};

/// The name of every source address not listed in [`ProxyConfig::sources`].
pub const CLIENT: &str = "client";

/// The most connections one proxy carries at once; more are refused (closed
/// at accept) so a connection storm cannot grow the proxy without bound.
pub const MAX_CONNECTIONS: usize = 1024;

/// What one proxy is put in front of.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The name of the node behind the proxy (the `to` of inbound links).
    pub node: String,
    /// Where the proxy listens: the node's public address.
    pub listen: SocketAddr,
    /// Where the node really listens.
    pub upstream: SocketAddr,
    /// Source address -> peer name; every other source is [`CLIENT`].
    pub sources: BTreeMap<IpAddr, String>,
    /// Seeds the latency and loss draws.
    pub seed: u64,
}

/// What [`Proxy::status`] reports for one link.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LinkStatus {
    /// Sending side.
    pub from: String,
    /// Receiving side.
    pub to: String,
    /// The fault in force, if any.
    pub fault: Option<LinkFault>,
    /// What went through it.
    #[serde(flatten)]
    pub counters: Counters,
}

/// A snapshot of one proxy.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    /// The node behind it.
    pub node: String,
    /// Connections open now.
    pub connections: usize,
    /// Bytes held in queues now.
    pub buffered_bytes: u64,
    /// Every link with a fault or traffic.
    pub links: Vec<LinkStatus>,
}

/// A running proxy; dropping it stops accepting (open connections end with
/// the runtime or a [`Proxy::reset`]).
pub struct Proxy {
    /// The state its connections share.
    shared: Arc<Shared>,
    /// The address it really listens on (port 0 resolved).
    local_addr: SocketAddr,
    /// The accept loop.
    accept: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for (_, conn) in std::mem::take(&mut *lock(&self.shared.connections)) {
            conn.abort.abort();
        }
    }
}

impl Proxy {
    /// Binds `config.listen` and starts accepting (inside a tokio runtime).
    pub async fn start(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| ProxyError::Io { context: format!("listen on {}", config.listen), source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ProxyError::Io { context: "read the bound address".into(), source })?;
        let shared = Arc::new(Shared {
            node: config.node.clone(),
            sources: Mutex::new(config.sources.clone()),
            faults: Mutex::new(BTreeMap::new()),
            counters: Mutex::new(BTreeMap::new()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed)),
            connections: Mutex::new(BTreeMap::new()),
            buffered_bytes: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared), config));
        Ok(Proxy { shared, local_addr, accept })
    }

    /// Where the proxy listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections from `ip` are `name`'s from now on (a node that joined).
    pub fn name_source(&self, ip: IpAddr, name: &str) {
        assert_ne!(name, CLIENT, "{CLIENT} is every unnamed source");
        lock(&self.shared.sources).insert(ip, name.to_string());
    }

    /// Installs `fault` on `link` (replacing what was there); a healthy
    /// fault clears it.
    pub fn set(&self, link: Link, fault: LinkFault) -> Result<(), ProxyError> {
        fault.validate()?;
        let mut faults = lock(&self.shared.faults);
        if fault.is_healthy() {
            faults.remove(&link);
        } else {
            faults.insert(link, fault);
        }
        Ok(())
    }

    /// The fault on `link` now (healthy if none).
    pub fn fault(&self, link: &Link) -> LinkFault {
        lock(&self.shared.faults).get(link).cloned().unwrap_or_default()
    }

    /// Clears the fault of `link`, or of every link.
    pub fn clear(&self, link: Option<&Link>) {
        let mut faults = lock(&self.shared.faults);
        match link {
            Some(link) => {
                faults.remove(link);
            }
            None => faults.clear(),
        }
    }

    /// Closes every open connection that carries `link` (either
    /// direction of the connection); returns how many.
    pub fn reset(&self, link: &Link) -> usize {
        let peer = if link.to == self.shared.node {
            &link.from
        } else if link.from == self.shared.node {
            &link.to
        } else {
            return 0; // no connection of this proxy carries it
        };
        let mut conns = lock(&self.shared.connections);
        let ids: Vec<u64> = conns.iter().filter(|(_, c)| &c.source == peer).map(|(id, _)| *id).collect();
        for id in &ids {
            if let Some(conn) = conns.remove(id) {
                conn.abort.abort();
            }
        }
        drop(conns);
        self.shared.count(link, |c| c.connections_reset += ids.len() as u64);
        ids.len()
    }

    /// Bytes held in queues now, over every connection.
    pub fn buffered_bytes(&self) -> u64 {
        self.shared.buffered_bytes.load(Ordering::SeqCst)
    }

    /// Counters and faults of every link seen or faulted.
    pub fn status(&self) -> Status {
        let faults = lock(&self.shared.faults).clone();
        let counters = lock(&self.shared.counters).clone();
        let mut links: BTreeMap<Link, LinkStatus> = BTreeMap::new();
        for link in faults.keys().chain(counters.keys()) {
            links.entry(link.clone()).or_insert_with(|| LinkStatus {
                from: link.from.clone(),
                to: link.to.clone(),
                fault: faults.get(link).cloned(),
                counters: counters.get(link).cloned().unwrap_or_default(),
            });
        }
        Status {
            node: self.shared.node.clone(),
            connections: lock(&self.shared.connections).len(),
            buffered_bytes: self.buffered_bytes(),
            links: links.into_values().collect(),
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, config: ProxyConfig) {
    loop {
        let (inbound, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait, never spin.
                tracing::warn!(error = %e, "linkproxy accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if lock(&shared.connections).len() >= MAX_CONNECTIONS {
            tracing::warn!(%peer, "linkproxy at its connection limit; refusing");
            continue;
        }
        let source = lock(&shared.sources).get(&peer.ip()).cloned().unwrap_or_else(|| CLIENT.to_string());
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        // Registered under the lock the task removes itself with, so a
        // quick connection cannot finish before it is registered.
        let mut conns = lock(&shared.connections);
        let task = tokio::spawn(carry(Arc::clone(&shared), id, source.clone(), inbound, config.upstream));
        conns.insert(id, Connection { source, abort: task.abort_handle() });
    }
}

/// One connection, both directions, until both ends are done.
async fn carry(shared: Arc<Shared>, id: u64, source: String, inbound: TcpStream, upstream: SocketAddr) {
    if let Ok(outbound) = TcpStream::connect(upstream).await {
        let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
        let (in_read, in_write) = inbound.into_split();
        let (out_read, out_write) = outbound.into_split();
        let inward = Link::new(&source, &shared.node);
        let outward = Link::new(&shared.node, &source);
        tokio::join!(
            pump::pump(Arc::clone(&shared), inward, in_read, out_write),
            pump::pump(Arc::clone(&shared), outward, out_read, in_write),
        );
    }
    lock(&shared.connections).remove(&id);
}
