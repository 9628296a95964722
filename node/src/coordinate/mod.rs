//! Coordinating a client request across its replicas.
//!
//! [`coordinator`] is the request path itself ([`Coordinator`]: write,
//! read, fan-out, quorum wait, the hand-off to read repair and hints);
//! [`admission`] decides which client requests it takes at all (the
//! excess is refused within a few ms); [`fan_out`] runs one call per replica and waits for the quorum;
//! [`rounds`] holds the pure quorum state machines (a write waits for W
//! acks, a read for R replies); [`mint`] the minting of a new version from
//! the node-wide counter; [`inflight`] the versions this node is still
//! replicating, shipped along with newer ones of the same key; [`wars`]
//! keeps the per-replica timings of its requests (PBS's W, A, R and S);
//! [`error`] says why a replica call or a request failed. Remote replicas
//! are reached through `transport/`, this node's own through
//! `replica::local`.

pub mod admission;
pub mod coordinator;
pub mod error;
pub mod fan_out;
pub mod inflight;
pub mod mint;
pub mod rounds;
pub mod wars;

pub use coordinator::{Coordinator, CoordinatorParts, ReadOutcome, WriteOutcome};
pub use error::{CallError, QuorumError};
