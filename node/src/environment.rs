//! `Environment`: what the host of a node provides, injected in one piece.
//!
//! A node touches the world in four ways: it reads the wall clock (version
//! timestamps, hint ages, tombstone grace), it dials its peers, it keeps its
//! bytes in a storage engine, and it makes random choices (gossip peers).
//! A real process takes the machine's clock, TCP and the engine its flags
//! name ([`Environment::real`]); a deterministic simulator passes its own
//! clock, a dialer over its simulated sockets, a storage engine it keeps
//! across a simulated crash, and a seed derived from the run's seed, and
//! serves the node on its own listener (`serve_incoming`). Nothing else in
//! the node reaches past these four.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::storage::Storage;
use crate::transport::dialer::{tcp_dialer, tcp_dialer_from, Dialer};

/// Connect timeout of [`Environment::real`]'s dialer; `run` and `serve`
/// use the configured request timeout instead.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// What the host of a node provides; `Environment::real()` is what `run` uses.
#[derive(Clone)]
pub struct Environment {
    /// Wall clock (LWW timestamps, hint ages, tombstone grace, uptime).
    pub clock: Arc<dyn Clock>,
    /// Every peer connection goes through it.
    pub dialer: Dialer,
    /// Pre-opened storage (a simulator keeps it across a crash); `None`:
    /// open the engine the configuration names.
    pub storage: Option<Arc<dyn Storage>>,
    /// Pre-opened storage for the hint log, kept across a crash like
    /// `storage` (a simulator's power loss then drops unsynced hints as it
    /// drops unsynced data); `None`: beside the data (the configured engine
    /// under `<data-dir>/hints`), or in memory when `storage` is given.
    pub hint_storage: Option<Arc<dyn Storage>>,
    /// Every random choice of the node comes from it.
    pub seed: u64,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("clock", &self.clock)
            .field("storage", &self.storage.as_ref().map(|s| s.name()))
            .field("hint_storage", &self.hint_storage.as_ref().map(|s| s.name()))
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Environment {
    /// The machine's clock, TCP, storage per the configuration, and a seed
    /// taken from the clock at start (a real process is not replayable
    /// anyway; the seed only has to differ between restarts).
    pub fn real() -> Environment {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Environment {
            seed: clock.now_us(),
            clock,
            dialer: tcp_dialer(DEFAULT_CONNECT_TIMEOUT),
            storage: None,
            hint_storage: None,
        }
    }

    /// This environment with a TCP dialer whose connect timeout is
    /// `connect_timeout`, dialing from `source` when given (see
    /// [`crate::Config::dial_from`]).
    pub fn with_tcp(mut self, connect_timeout: Duration, source: Option<std::net::IpAddr>) -> Environment {
        self.dialer = tcp_dialer_from(connect_timeout, source);
        self
    }
}
