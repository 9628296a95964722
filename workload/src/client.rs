//! The client abstraction: one store, one request at a time, honest outcomes.
//!
//! A [`Target`] pairs a node's name with the [`Client`] bound to it: what
//! every workload (and the shared worker core, [`crate::worker`]) sends to.
//! It lives here, beside the client it wraps, so that the workloads and the
//! worker core import it from below rather than from each other.

use std::sync::Arc;

use history::Version;

/// A read's answer: every sibling (value or tombstone) and the opaque
/// context to write back with.
#[derive(Debug, Clone, Default)]
pub struct ReadReply {
    /// `(value, version)`; `None` is a tombstone.
    pub siblings: Vec<(Option<String>, Version)>,
    /// Opaque causal context for a later read-modify-write.
    pub context: Vec<u8>,
    /// The replicas whose answers the coordinator merged (our store);
    /// `None` when the store does not say, so the history can tell "not
    /// reported" from any answer. Recorded on the read's `ok` as `answered_by`.
    pub answered_by: Option<Vec<String>>,
}

/// A write's answer: the version the store assigned.
#[derive(Debug, Clone)]
pub struct WriteReply {
    /// The version the store assigned.
    pub version: Version,
    /// Home replicas a stand-in was asked to hold the write for (our store
    /// under a sloppy quorum); empty for every other store.
    pub hinted_for: Vec<String>,
}

/// Why a request did not succeed, classified by what it tells us about the
/// store's state.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The store guarantees nothing was applied (e.g. rejected input).
    #[error("{0}")]
    Definite(String),
    /// Unknown: a timeout, a lost connection, or too few acks; it may have
    /// been applied on some replicas and show up later.
    #[error("{0}")]
    Indefinite(String),
    /// The store refused the request for its load before any replica saw
    /// it (our node's `RESOURCE_EXHAUSTED`, reason `overloaded`): nothing
    /// was applied, and the client backs off before its next op.
    #[error("{0}")]
    Refused(String),
}

/// A store client bound to one node.
#[async_trait::async_trait]
pub trait Client: Send + Sync {
    /// Reads `key`: every sibling the store returned, and the context to
    /// write back with.
    async fn read(&self, key: &str) -> Result<ReadReply, ClientError>;
    /// Writes `value` under `key`. `context` is a [`ReadReply::context`] for
    /// a read-modify-write (the write then supersedes what that read saw),
    /// or empty for a blind write; stores without one ignore it.
    async fn write(&self, key: &str, value: &str, context: &[u8]) -> Result<WriteReply, ClientError>;
}

/// A node the workload can send to.
#[derive(Clone)]
pub struct Target {
    /// The node's name, as the history records it.
    pub node: String,
    /// The client bound to that node.
    pub client: Arc<dyn Client>,
}
