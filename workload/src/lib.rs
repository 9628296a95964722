//! Workloads: seeded generators of client operations, the clients that send
//! them to a store, and the recording of every invocation and completion as a
//! history (`shared/spec/HISTORY.md`).
//!
//! The split follows Jepsen. A *generator* decides what each client process
//! does next, from the run's seed alone, so two runs with the same seed issue
//! the same op sequence per process. A *client* ([`Client`]) turns an op into
//! a request to one node and classifies the answer honestly: `ok`; `fail` only
//! where the store guarantees nothing was applied; `info` when it may have
//! been (a timeout, a lost connection, a write that gathered fewer than W
//! acks but may have reached a replica). The *runner* ([`register::run`])
//! drives C client tasks, each with one op outstanding, at a target rate.
//!
//! The workload knows node addresses, not containers: it never reaches Docker.

mod client;
mod dynamo;
pub mod register;
mod rng;

pub use client::{Client, ClientError, ReadReply, WriteReply};
pub use dynamo::DynamoClient;
pub use rng::seeded_rng;
