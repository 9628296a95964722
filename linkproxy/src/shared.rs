//! What every connection of one proxy shares: the fault table, the
//! counters and the seeded RNG, keyed by directed link, and the open
//! connections.
//!
//! The proxy ([`crate::Proxy`], in `proxy.rs`) creates it, names sources
//! into it and reads it for its status; each direction's pump
//! ([`crate::pump`]) draws every chunk's fate from it and counts what it
//! did. Both import it from here, and it imports neither, so the proxy
//! depends on the pump and not the other way round.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::task::AbortHandle;

use crate::fault::{Fate, LinkFault};
use crate::Link;

/// Bytes counted on one directed link since the proxy started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Bytes written through to the other side.
    pub bytes_passed: u64,
    /// Bytes thrown away (blackhole, or loss in drop mode).
    pub bytes_dropped: u64,
    /// Bytes held back by latency, loss in delay mode or bandwidth.
    pub bytes_delayed: u64,
    /// Connections closed by a reset of this link.
    pub connections_reset: u64,
}

/// One open connection, for resets.
pub(crate) struct Connection {
    /// Its source's name.
    pub(crate) source: String,
    /// Aborting it drops both sockets: the connection closes.
    pub(crate) abort: AbortHandle,
}

/// What every connection of one proxy shares.
pub(crate) struct Shared {
    /// The node behind the proxy.
    pub(crate) node: String,
    /// Source address -> peer name (see [`crate::ProxyConfig::sources`]);
    /// grows as nodes join ([`crate::Proxy::name_source`]).
    pub(crate) sources: Mutex<BTreeMap<IpAddr, String>>,
    /// Fault per directed link; a missing link is healthy.
    pub(crate) faults: Mutex<BTreeMap<Link, LinkFault>>,
    /// Counters per directed link.
    pub(crate) counters: Mutex<BTreeMap<Link, Counters>>,
    /// The seeded RNG every draw takes.
    pub(crate) rng: Mutex<ChaCha8Rng>,
    /// Open connections by id.
    pub(crate) connections: Mutex<BTreeMap<u64, Connection>>,
    /// Bytes read and not yet written or dropped, over all connections.
    pub(crate) buffered_bytes: AtomicU64,
    /// The next connection id.
    pub(crate) next_id: AtomicU64,
}

/// Locks one of the shared maps (no code panics while holding one).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().expect("no code panics while holding a proxy lock")
}

impl Shared {
    /// The next chunk's fate on `link` and the link's bandwidth limit.
    pub(crate) fn fate(&self, link: &Link) -> (Fate, Option<u64>) {
        let faults = lock(&self.faults);
        match faults.get(link) {
            None => (Fate::Deliver { delay_ms: 0 }, None),
            Some(fault) => (fault.draw(&mut *lock(&self.rng)), fault.bandwidth_bytes_per_s),
        }
    }

    /// Whether `link` is held now.
    pub(crate) fn held(&self, link: &Link) -> bool {
        lock(&self.faults).get(link).is_some_and(|f| f.hold)
    }

    /// Updates `link`'s counters.
    pub(crate) fn count(&self, link: &Link, update: impl FnOnce(&mut Counters)) {
        update(lock(&self.counters).entry(link.clone()).or_default());
    }
}
