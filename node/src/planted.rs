//! Planted bugs: deliberate faults compiled in only by test-only cargo
//! features, so that the workbench can prove its checkers catch them.
//!
//! A checker that never flags anything is indistinguishable from one that
//! works on a correct system. The workbench therefore runs a simulated
//! sweep against a node with a known bug planted and expects it flagged,
//! and against the unplanted build and expects silence. Each bug here is a
//! cargo feature of `dynamo-node`, off by default:
//! - `planted-bug-one-ack`: the write coordinator answers after the first
//!   replica ack, whatever W says (a strict quorum silently becomes W=1, so
//!   a partition then serves stale reads that R+W>N promised away).
//!
//! Guards against a planted bug reaching a real cluster: [`PLANTED_BUGS`]
//! lists the features compiled in; `Admin.Status` reports them
//! (`planted_bugs`), `dynamo-node --version` prints them, and the binary
//! refuses to serve when any is present (the simulator links the library,
//! never the binary). `tests/planted_bug.rs` checks both builds: the
//! default one waits for W acks and reports no planted bug (binary and
//! `Admin.Status`); the planted one answers after one ack, says so, and its
//! binary refuses to serve.

use std::collections::BTreeSet;

use crate::node_id::NodeId;
use crate::placement::quorum::Requirement;

/// The feature name of the one-ack coordinator bug.
pub const ONE_ACK: &str = "planted-bug-one-ack";

/// The planted bugs compiled into this build (empty in a release build).
pub const PLANTED_BUGS: &[&str] = &[
    #[cfg(feature = "planted-bug-one-ack")]
    ONE_ACK,
];

/// `--version` text: the crate version and the planted bugs.
#[cfg(not(feature = "planted-bug-one-ack"))]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (planted bugs: none)");
/// `--version` text: the crate version and the planted bugs.
#[cfg(feature = "planted-bug-one-ack")]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (planted bugs: planted-bug-one-ack)");

/// The acks a write round waits for when the caller asked for `need`:
/// `need`, or any one ack of the replicas it counts with the one-ack bug
/// planted.
pub fn write_requirement(need: Requirement) -> Requirement {
    assert!(need.total() >= 1, "a write quorum of 0 is meaningless");
    if cfg!(feature = "planted-bug-one-ack") {
        let counted: BTreeSet<NodeId> = need.groups.into_iter().flat_map(|g| g.members).collect();
        Requirement::count(counted.into_iter().collect(), 1)
    } else {
        need
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_the_version_and_the_quorum_agree() {
        let planted = cfg!(feature = "planted-bug-one-ack");
        assert_eq!(PLANTED_BUGS.contains(&ONE_ACK), planted);
        assert_eq!(VERSION.contains(ONE_ACK), planted);
        let three: Vec<NodeId> = ["a", "b", "c"].iter().map(|n| NodeId::from(*n)).collect();
        assert_eq!(write_requirement(Requirement::count(three.clone(), 3)).total(), if planted { 1 } else { 3 });
        assert_eq!(write_requirement(Requirement::count(three, 1)).total(), 1);
    }
}
