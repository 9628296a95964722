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

use etcd_client::{Client as Etcd, ConnectOptions, GetOptions};
use history::Version;
use tokio::sync::Mutex;

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

pub struct EtcdClient {
    /// The member this client talks to (and only it: no client-side
    /// failover, so a partitioned member's behaviour is what is measured).
    endpoint: String,
    /// Connected on first use, so a member that is down at start-up is an
    /// op outcome, not a setup error. etcd-client's KV calls take `&mut`.
    client: Mutex<Option<Etcd>>,
    read_mode: EtcdRead,
    /// Per-request deadline.
    timeout: Duration,
}

impl EtcdClient {
    pub fn new(endpoint: &str, read_mode: EtcdRead, timeout_ms: u64) -> EtcdClient {
        EtcdClient {
            endpoint: endpoint.to_string(),
            client: Mutex::new(None),
            read_mode,
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    async fn connected(&self) -> Result<Etcd, String> {
        let mut guard = self.client.lock().await;
        if let Some(client) = guard.as_ref() {
            return Ok(client.clone());
        }
        let options = ConnectOptions::new().with_connect_timeout(self.timeout).with_timeout(self.timeout);
        let client = Etcd::connect([self.endpoint.as_str()], Some(options)).await.map_err(|e| e.to_string())?;
        *guard = Some(client.clone());
        Ok(client)
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
        let call = async {
            let mut kv = self.connected().await?.kv_client();
            let options = match self.read_mode {
                EtcdRead::Serializable => Some(GetOptions::new().with_serializable()),
                EtcdRead::Linearizable => None,
            };
            kv.get(key, options).await.map_err(|e| e.to_string())
        };
        let resp = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                let timed_out = e_is_timeout(&e);
                return Err(read_error(e, timed_out));
            }
            Err(_) => return Err(read_error("no answer".into(), true)),
        };
        let siblings = resp
            .kvs()
            .iter()
            .map(|kv| (Some(String::from_utf8_lossy(kv.value()).into_owned()), revision_version(kv.mod_revision())))
            .collect();
        Ok(ReadReply { siblings, context: Vec::new() })
    }

    async fn write(&self, key: &str, value: &str, _context: &[u8]) -> Result<WriteReply, ClientError> {
        let call = async {
            let mut kv = self.connected().await?.kv_client();
            kv.put(key, value, None).await.map_err(|e| e.to_string())
        };
        // Any failure of a put may still commit (the proposal can be in the
        // Raft log): indefinite.
        let resp = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return Err(ClientError::Indefinite(e)),
            Err(_) => return Err(ClientError::Indefinite("timeout: no answer".into())),
        };
        let revision = resp.header().map(|h| h.revision()).ok_or_else(|| {
            ClientError::Indefinite("put answered without a header (no revision)".to_string())
        })?;
        Ok(WriteReply { version: revision_version(revision), hinted_for: Vec::new() })
    }
}

fn e_is_timeout(e: &str) -> bool {
    let e = e.to_ascii_lowercase();
    e.contains("deadline") || e.contains("timeout") || e.contains("timed out")
}
