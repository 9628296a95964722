//! The client for etcd, a peer store (Raft, linearizable by default).
//!
//! Mapping onto the register workload, honestly: a write is a `Put`; the
//! version it gets is the cluster revision etcd assigned to it, recorded as
//! the clock `{"rev": <revision>}`. A read is a `Range` of the key; its one
//! sibling carries the key's `mod_revision` the same way. Revisions are a
//! single total order, so "read covers write" (the checkers' clock descent)
//! is exactly "the read returned the write or a later one": stale reads and
//! read-your-writes are decidable for etcd.
//!
//! Reads are `linearizable` (through the leader's read index: never stale)
//! or `serializable` (served from the member's local state: may be stale,
//! especially on a member cut off from the leader), a flag of the run.

use std::collections::BTreeMap;
use std::time::Duration;

use history::Version;
use proto::etcd::kv_client::KvClient;
use proto::etcd::{PutRequest, RangeRequest};
use tonic::transport::Channel;

use crate::channel::lazy_channel;
use crate::{Client, ClientError, ReadReply, WriteReply};

/// How a read is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtcdRead {
    /// Through the Raft read index: sees every write acknowledged before it.
    Linearizable,
    /// From the member's local state: fast, possibly stale.
    Serializable,
}

impl std::str::FromStr for EtcdRead {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "linearizable" => Ok(EtcdRead::Linearizable),
            "serializable" => Ok(EtcdRead::Serializable),
            other => Err(format!("unknown etcd read mode {other:?} (expected linearizable or serializable)")),
        }
    }
}

/// A client of one etcd member's KV service, on the protox-compiled slice of
/// etcd's API (`proto/etcd/kv.proto`).
pub struct EtcdClient {
    /// The member this client talks to (and only it: no client-side
    /// failover, so a partitioned member's behaviour is what is measured).
    /// The channel is lazy: a member that is down at start-up is an op
    /// outcome, not a setup error; it reconnects by itself after a restart.
    kv: KvClient<Channel>,
    /// Linearizable or serializable ranges.
    read_mode: EtcdRead,
    /// Per-request deadline.
    timeout: Duration,
}

impl EtcdClient {
    /// A client of the member at `endpoint` (`http://host:port`).
    pub fn new(endpoint: &str, read_mode: EtcdRead, timeout_ms: u64) -> Result<EtcdClient, ClientError> {
        let timeout = Duration::from_millis(timeout_ms);
        let channel = lazy_channel(endpoint, timeout)?;
        Ok(EtcdClient { kv: KvClient::new(channel), read_mode, timeout })
    }
}

fn revision_version(revision: i64) -> Version {
    Version { clock: BTreeMap::from([("rev".to_string(), revision.max(0) as u64)]), ts: 0, dot: None }
}

/// A read changes nothing, so only a timeout leaves its outcome unknown.
fn read_error(e: String, timed_out: bool) -> ClientError {
    if timed_out {
        ClientError::Indefinite(format!("timeout: {e}"))
    } else {
        ClientError::Definite(e)
    }
}

#[async_trait::async_trait]
impl Client for EtcdClient {
    async fn read(&self, key: &str) -> Result<ReadReply, ClientError> {
        let request = RangeRequest {
            key: key.as_bytes().to_vec(),
            serializable: self.read_mode == EtcdRead::Serializable,
            ..RangeRequest::default()
        };
        let resp = match tokio::time::timeout(self.timeout, self.kv.clone().range(request)).await {
            Ok(Ok(resp)) => resp.into_inner(),
            Ok(Err(status)) => {
                let timed_out = status.code() == tonic::Code::DeadlineExceeded || e_is_timeout(status.message());
                return Err(read_error(status.to_string(), timed_out));
            }
            Err(_) => return Err(read_error("no answer".into(), true)),
        };
        let siblings = resp
            .kvs
            .iter()
            .map(|kv| (Some(String::from_utf8_lossy(&kv.value).into_owned()), revision_version(kv.mod_revision)))
            .collect();
        Ok(ReadReply { siblings, context: Vec::new(), answered_by: None })
    }

    async fn write(&self, key: &str, value: &str, _context: &[u8]) -> Result<WriteReply, ClientError> {
        let request =
            PutRequest { key: key.as_bytes().to_vec(), value: value.as_bytes().to_vec(), ..PutRequest::default() };
        // Any failure of a put may still commit (the proposal can be in the
        // Raft log): indefinite.
        let resp = match tokio::time::timeout(self.timeout, self.kv.clone().put(request)).await {
            Ok(Ok(resp)) => resp.into_inner(),
            Ok(Err(status)) => return Err(ClientError::Indefinite(status.to_string())),
            Err(_) => return Err(ClientError::Indefinite("timeout: no answer".into())),
        };
        let revision = resp
            .header
            .map(|h| h.revision)
            .ok_or_else(|| ClientError::Indefinite("put answered without a header (no revision)".to_string()))?;
        Ok(WriteReply { version: revision_version(revision), hinted_for: Vec::new() })
    }
}

fn e_is_timeout(e: &str) -> bool {
    let e = e.to_ascii_lowercase();
    e.contains("deadline") || e.contains("timeout") || e.contains("timed out")
}
