//! Repair: how replicas converge after the failures quorums tolerate.
//!
//! [`hints`] keeps the writes a stand-in took for a down home replica and
//! `drivers::handoff` delivers them once the home is back (or re-routes
//! them when it left for good); [`read_repair`] stores the merge on the stale
//! replicas a read saw; [`merkle`] and [`anti_entropy`] compare replicas in
//! the background and exchange only the keys that differ, the backstop for
//! keys nobody touches again. All of them merge through the replica store's
//! one merge rule.

pub mod anti_entropy;
pub mod hints;
pub mod merkle;
pub mod read_repair;
