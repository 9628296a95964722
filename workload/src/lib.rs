//! Workloads: seeded generators of client operations, the clients that send
//! them to a store, and the recording of every invocation and completion as a
//! history (`docs/history-format.md`).
//!
//! The split follows Jepsen. A *generator* decides what each client process
//! does next, from the run's seed alone, so two runs with the same seed issue
//! the same op sequence per process. A *client* ([`Client`]) turns an op into
//! a request to one node and classifies the answer honestly: `ok`; `fail` only
//! where the store guarantees nothing was applied; `info` when it may have
//! been (a timeout, a lost connection, a write that gathered fewer than W
//! acks but may have reached a replica). The *runners* drive C client tasks,
//! each with one op outstanding, at a target rate.
//!
//! Three workloads: [`register`] (reads and writes of unique values: stale
//! reads, read-your-writes, monotonic reads, t-visibility), [`set`]
//! (read-merge-write adds of unique elements: lost writes) and [`prefix`]
//! (a question, then its answer after reading the question, on two keys;
//! readers read the answer, then the question: consistent-prefix reads).
//! Keys follow a [`KeyDist`] (uniform or zipfian); all end with
//! [`final_reads`] on every node after the heal, and for our store
//! [`replica_reads`] first: each home replica's own copy of every key a
//! hinted write touched.
//!
//! The workload knows node addresses, not containers: it never reaches Docker.

pub mod arrival;
pub mod bench;
mod channel;
mod client;
mod config;
mod dynamo;
mod etcd;
mod final_reads;
mod keys;
pub mod prefix;
mod redis_client;
pub mod register;
mod replica_reads;
mod rng;
pub mod set;
mod worker;

pub use arrival::Arrival;
pub use client::{Client, ClientError, ReadReply, WriteReply};
pub use config::WorkloadConfig;
pub use dynamo::DynamoClient;
pub use etcd::{EtcdClient, EtcdRead};
pub use final_reads::{final_reads, Decode};
pub use keys::{key_name, KeyDist, KeyShape};
pub use redis_client::RedisClient;
pub use replica_reads::{hinted_keys, replica_reads, ReplicaReadSummary, TIMEOUT_MS as REPLICA_READ_TIMEOUT_MS};
pub use rng::seeded_rng;
