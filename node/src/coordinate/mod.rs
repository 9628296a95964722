//! Coordinating a client request across its replicas.
//!
//! [`rounds`] holds the pure quorum state machines (a write waits for W
//! acks, a read for R replies); [`mint`] the minting of a new version from
//! the node-wide counter; [`inflight`] the versions this node is still
//! replicating, shipped along with newer ones of the same key; [`batcher`]
//! coalesces a coordinator's stores and fetches per replica into one round
//! trip, which [`replicate`] sends as one message on the replica's `ReplicateStream`; [`lateness`] tells a replica that a request outlived its
//! coordinator's wait; [`wars`] keeps the per-replica timings of its
//! requests (PBS's W, A, R and S). The fan-out itself (a task per replica, the
//! deadline) is driven by `node.rs`.

pub mod batcher;
pub mod inflight;
pub mod lateness;
pub mod mint;
pub mod replicate;
pub mod rounds;
pub mod wars;
