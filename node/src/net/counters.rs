//! Every named counter of a node, gathered in one place.
//!
//! `Admin.Status` and the Prometheus endpoint both show the same figures:
//! the request and repair counters ([`Metrics`]), the storage engine's
//! own, the hint store's, the transport's and admission control's. Each
//! part names its own counters; [`Counters::snapshot`] only joins them, so
//! a counter added to a part shows up in both places without a copy here.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::Clock;
use crate::coordinate::admission::Admission;
use crate::metrics::Metrics;
use crate::replica::local::LocalReplica;
use crate::transport::Transport;

/// The parts of a node that keep counters.
#[derive(Debug, Clone)]
pub struct Counters {
    /// Request, repair and exchange counters.
    pub metrics: Arc<Metrics>,
    /// The replica: its storage engine's figures and its hints'.
    pub local: Arc<LocalReplica>,
    /// Peer connections and batches.
    pub transport: Arc<dyn Transport>,
    /// Client requests refused and in flight, and the limit.
    pub admission: Arc<Admission>,
    /// Wall clock: hint ages are reported against it.
    pub clock: Arc<dyn Clock>,
}

impl Counters {
    /// Every named counter now.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let mut all = self.metrics.snapshot();
        all.extend(self.local.storage().stats());
        all.extend(self.local.hints().snapshot(self.clock.now_ms()));
        all.extend(self.transport.counters());
        all.extend(self.admission.counters().map(|(name, value)| (name.to_string(), value)));
        all
    }
}
