//! The client for our own store, over the node's gRPC `Kv` service.
//!
//! Classification of errors, which is what every checker downstream trusts:
//! `INVALID_ARGUMENT` is definite (the node validates before storing
//! anything). For a read, `UNAVAILABLE` from the coordinator is definite too:
//! a read changes nothing. For a write, `UNAVAILABLE` means fewer than W
//! replicas acknowledged in time, but some may have stored it: indefinite.
//! Timeouts and transport errors are always indefinite.
//!
//! A write's answer also names the home replicas a stand-in held it for
//! (`hinted_for`, under a sloppy quorum); the runners record it on the `ok`
//! so the hint-delivery checker knows which home owes which write.

use std::collections::BTreeMap;
use std::time::Duration;

use history::{Dot, Version};
use proto::kv_client::KvClient;
use tonic::transport::Channel;
use tonic::Code;

use crate::channel::lazy_channel;
use crate::{Client, ClientError, ReadReply, WriteReply};

/// A client of our node's `Kv` service, bound to one node (its coordinator
/// for every request).
pub struct DynamoClient {
    /// A lazily connected channel: a node that is down at start-up is not an
    /// error until a request is sent to it.
    kv: KvClient<Channel>,
    /// Per-request deadline; longer than the node's own request timeout so the
    /// coordinator's verdict (acks counted) normally arrives first.
    timeout: Duration,
}

impl DynamoClient {
    /// A client of the node at `endpoint` (`http://host:port`), with a
    /// deadline of `timeout_ms` per request. It connects on the first request,
    /// so the only error is a malformed endpoint.
    pub fn new(endpoint: &str, timeout_ms: u64) -> Result<DynamoClient, ClientError> {
        let channel = lazy_channel(endpoint, Duration::from_millis(timeout_ms))?;
        Ok(DynamoClient::from_channel(channel, timeout_ms))
    }

    /// A client over a channel the caller dialed (e.g. a simulator's sockets).
    pub fn from_channel(channel: Channel, timeout_ms: u64) -> DynamoClient {
        DynamoClient { kv: KvClient::new(channel), timeout: Duration::from_millis(timeout_ms) }
    }

    /// Runs `call` under the client's own deadline. The `grpc-timeout` header
    /// only tells the server; a request to a node that vanished (killed
    /// container: SYNs unanswered) or is paused must still end, as `info`.
    async fn deadline<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Indefinite(format!("client deadline of {:?} passed", self.timeout))),
        }
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(self.timeout);
        req
    }
}

/// The history's form of a node version: the same clock map (for a dotted
/// version, its causal context), timestamp and dot, so that the checkers'
/// `covers` decides exactly as the node's merge does.
fn version_of(v: Option<proto::Version>) -> Version {
    let v = v.unwrap_or_default();
    let dot = v.dot.map(|d| Dot { node: d.node, counter: d.counter });
    Version { clock: v.clock.into_iter().collect::<BTreeMap<_, _>>(), ts: v.ts_ms, dot }
}

/// A stored sibling as the workload sees it: `None` is a tombstone.
pub(crate) fn sibling_of(s: proto::Sibling) -> (Option<String>, Version) {
    let value = (!s.tombstone).then(|| String::from_utf8_lossy(&s.value).into_owned());
    (value, version_of(s.version))
}

fn classify(status: tonic::Status, is_read: bool) -> ClientError {
    let msg = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::InvalidArgument => ClientError::Definite(msg),
        // Admission control's refusal; tonic's own RESOURCE_EXHAUSTED (an
        // h2 protocol error) says nothing of what the store did.
        Code::ResourceExhausted if status.message().starts_with("overloaded") => ClientError::Refused(msg),
        Code::Unavailable if is_read && status.message().contains("replicas") => ClientError::Definite(msg),
        _ => ClientError::Indefinite(msg),
    }
}

#[async_trait::async_trait]
impl Client for DynamoClient {
    async fn read(&self, key: &str) -> Result<ReadReply, ClientError> {
        let req = proto::GetRequest { key: key.as_bytes().to_vec(), r: None, r_quorum: None };
        let call = async { self.kv.clone().get(self.request(req)).await.map_err(|s| classify(s, true)) };
        let resp = self.deadline(call).await?.into_inner();
        let siblings = resp.siblings.into_iter().map(sibling_of).collect();
        // A read that met its quorum had answers; none listed: a node that does not report them.
        let answered_by = (!resp.answered_by.is_empty()).then_some(resp.answered_by);
        Ok(ReadReply { siblings, context: resp.context, answered_by })
    }

    async fn write(&self, key: &str, value: &str, context: &[u8]) -> Result<WriteReply, ClientError> {
        let req = proto::PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            context: context.to_vec(),
            w: None,
            w_quorum: None,
        };
        let call = async { self.kv.clone().put(self.request(req)).await.map_err(|s| classify(s, false)) };
        let resp = self.deadline(call).await?.into_inner();
        Ok(WriteReply { version: version_of(resp.version), hinted_for: resp.hinted_for })
    }
}
