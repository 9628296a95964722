//! What a backend can perform, as one table per backend kind.
//!
//! A campaign must know before it starts a cluster whether a run's faults
//! can be done at all (partitions of a peer store on local processes cannot:
//! there is no network namespace per node, and link proxies go only in
//! front of our node), and a running cluster must answer the same
//! question for the nemesis. Both ask the same [`Capabilities`] value, which
//! each backend type returns from an associated function usable without a
//! cluster (`DockerCluster::capabilities()`, `LocalCluster::capabilities()`);
//! [`crate::Cluster::supports`] is that table's answer for the cluster's own
//! store, so there is no second list to drift from the first.
//!
//! The table is keyed by fault and store: everything is performed unless a
//! row says it cannot be, and why (the reason goes into the run's
//! `results.json` as it is). A new backend kind is one more function that
//! lists its rows.

use crate::{Fault, StoreKind};

/// Every store kind a backend may start.
pub const ALL_STORES: [StoreKind; 3] = [StoreKind::Dynamo, StoreKind::Etcd, StoreKind::Redis];
/// The peer stores (everything but our node).
pub const PEER_STORES: [StoreKind; 2] = [StoreKind::Etcd, StoreKind::Redis];

/// Why no backend corrupts a peer store's files: the `corrupt` nemesis
/// aims at our engine's WAL segments and SSTables.
pub const CORRUPT_DYNAMO_ONLY: &str = "the corrupt nemesis damages dynamo-node's WAL segments and SSTables only";

/// Why no backend cuts a peer store's power: the lazy filesystem is
/// mounted under dynamo-node's data directory only.
pub const POWER_LOSS_DYNAMO_ONLY: &str =
    "the power-loss nemesis mounts its lazy filesystem under dynamo-node's data only";

/// One thing a backend cannot do.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cannot {
    /// The fault.
    fault: Fault,
    /// The store it cannot be done to.
    store: StoreKind,
    /// Why, for the run's results.
    why: &'static str,
}

/// What one backend kind can perform, keyed by fault and store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The backend's name (`docker`, `local`), for messages.
    pub backend: &'static str,
    /// The (fault, store) pairs it cannot perform; all others it can.
    cannot: Vec<Cannot>,
}

impl Capabilities {
    /// A backend that performs every fault on every store, until told otherwise.
    pub fn all(backend: &'static str) -> Capabilities {
        Capabilities { backend, cannot: Vec::new() }
    }

    /// The same, but `fault` cannot be performed on `stores`, because `why`.
    pub fn without(mut self, fault: Fault, stores: &[StoreKind], why: &'static str) -> Capabilities {
        for store in stores {
            assert!(
                self.why_not(fault, *store).is_none(),
                "{fault:?} on {store:?} is listed twice for {}",
                self.backend
            );
            self.cannot.push(Cannot { fault, store: *store, why });
        }
        self
    }

    /// Why `fault` cannot be performed on a cluster of `store`; None if it can.
    pub fn why_not(&self, fault: Fault, store: StoreKind) -> Option<&'static str> {
        self.cannot.iter().find(|c| c.fault == fault && c.store == store).map(|c| c.why)
    }

    /// Whether `fault` can be performed on a cluster of `store`.
    pub fn supports(&self, fault: Fault, store: StoreKind) -> bool {
        self.why_not(fault, store).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_say_what_cannot_be_done_and_everything_else_can() {
        let caps = Capabilities::all("test").without(Fault::Clock, &PEER_STORES, "no libfaketime");
        assert!(caps.supports(Fault::Clock, StoreKind::Dynamo));
        assert_eq!(caps.why_not(Fault::Clock, StoreKind::Redis), Some("no libfaketime"));
        assert!(caps.supports(Fault::Partition, StoreKind::Etcd));
    }

    #[test]
    #[should_panic(expected = "listed twice")]
    fn a_pair_is_listed_once() {
        let _ = Capabilities::all("test").without(Fault::Kill, &ALL_STORES, "a").without(
            Fault::Kill,
            &[StoreKind::Etcd],
            "b",
        );
    }
}
