//! gRPC over the simulator's sockets: the node's incoming stream, and
//! channels that dial turmoil TCP instead of the kernel's.
//!
//! tonic takes both ends as seams: a server serves any stream of accepted
//! connections ([`incoming`]), a channel any connector ([`channel`]). The
//! names are the hosts' (`n1:7000`), resolved by the simulator's DNS.
//!
//! A dial never sends a SYN across a link that cannot carry it or its
//! answer (cut one way or the other, or held): it waits, a millisecond at a
//! time, until the link flows, or until the channel's connect timeout drops
//! it, which is what a real SYN into a partition gets. Why: turmoil frees a
//! socket's port only when its stream closes, and a connect dropped before
//! the handshake ends never opens a stream, so every connect attempted into
//! a partition held an ephemeral port for good. At 1,000 ops/s under
//! partitions a node ran out of its 16k ports in two simulated minutes.
//!
//! Every channel keeps HTTP/2 keep-alive pings going. Why: the simulator
//! drops the messages of a cut link, and a turmoil TCP stream has no
//! retransmission, so a stream that lost a segment stalls for good. Real TCP
//! retransmits across the heal; here the keep-alive notices the stall, the
//! connection is dropped and the channel dials afresh (as a long partition
//! resets a real connection). Hold-then-release faults keep every segment
//! and need no such help.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Channel, Endpoint, Uri};
use turmoil::net::{TcpListener, TcpStream};

use crate::links::LinkOp;

/// Interval of the HTTP/2 keep-alive pings on every channel.
pub const KEEPALIVE_INTERVAL_MS: u64 = 1_000;
/// A ping unanswered this long drops the connection.
pub const KEEPALIVE_TIMEOUT_MS: u64 = 1_000;

/// How often a dial waiting on a blocked link looks again, ms.
const BLOCKED_POLL_MS: u64 = 1;

/// The longest a dial waits on a blocked link, ms: far past any connect
/// timeout, so only a channel without one ever meets it.
const BLOCKED_WAIT_MAX_MS: u64 = 600_000;

/// The directed links no segment crosses now (`(from, to)`: cut that way,
/// or held), as the step loop last applied them: shared by every host's
/// dials, changed only between steps, so what a dial sees is the same in
/// every replay.
#[derive(Debug, Clone, Default)]
pub struct Blocked(Arc<Mutex<BTreeSet<(String, String)>>>);

impl Blocked {
    /// Follows one operation on the network, as turmoil applies it.
    pub fn apply(&self, op: &LinkOp) {
        let mut blocked = self.0.lock().expect("blocked links lock poisoned");
        match op {
            LinkOp::Hold((a, b)) => {
                blocked.insert((a.clone(), b.clone()));
                blocked.insert((b.clone(), a.clone()));
            }
            LinkOp::Release((a, b)) | LinkOp::Repair((a, b)) => {
                blocked.remove(&(a.clone(), b.clone()));
                blocked.remove(&(b.clone(), a.clone()));
            }
            LinkOp::CutOneWay(from, to) => {
                blocked.insert((from.clone(), to.clone()));
            }
            LinkOp::Latency { .. } | LinkOp::FailRate { .. } => {}
        }
    }

    /// Whether a connect between `a` and `b` could not complete: its SYN
    /// or its SYN-ACK would be dropped or held.
    fn either_way(&self, a: &str, b: &str) -> bool {
        let blocked = self.0.lock().expect("blocked links lock poisoned");
        blocked.contains(&(a.to_string(), b.to_string())) || blocked.contains(&(b.to_string(), a.to_string()))
    }
}

/// Who dials, and the links it must not send a SYN across.
#[derive(Debug, Clone)]
pub struct Gate {
    /// The dialing host's name.
    pub from: String,
    /// The network's blocked links.
    pub blocked: Blocked,
}

/// One accepted simulated connection, as tonic's server wants it.
pub struct Accepted(pub TcpStream);

impl Connected for Accepted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        TcpConnectInfo { local_addr: self.0.local_addr().ok(), remote_addr: self.0.peer_addr().ok() }
    }
}

impl AsyncRead for Accepted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The connections accepted on `listener`, for `serve_incoming`.
pub fn incoming(listener: TcpListener) -> impl Stream<Item = std::io::Result<Accepted>> + Send + 'static {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| Accepted(stream));
        Some((accepted, listener))
    })
}

/// A lazily connected channel from `gate`'s host to `address` (`host:port`
/// or `http://host:port`) over simulated TCP; connects bounded by
/// `connect_timeout`, each request by `request_timeout` if given (the node
/// bounds its own requests).
pub fn channel(
    gate: &Gate,
    address: &str,
    connect_timeout: Duration,
    request_timeout: Option<Duration>,
) -> Result<Channel, tonic::transport::Error> {
    let uri = if address.contains("://") { address.to_string() } else { format!("http://{address}") };
    let mut endpoint = Endpoint::from_shared(uri)?
        .connect_timeout(connect_timeout)
        .http2_keep_alive_interval(Duration::from_millis(KEEPALIVE_INTERVAL_MS))
        .keep_alive_timeout(Duration::from_millis(KEEPALIVE_TIMEOUT_MS))
        .keep_alive_while_idle(true);
    if let Some(timeout) = request_timeout {
        endpoint = endpoint.timeout(timeout);
    }
    let gate = gate.clone();
    Ok(endpoint.connect_with_connector_lazy(tower::service_fn(move |uri| dial(gate.clone(), uri))))
}

/// One simulated TCP connect to the URI's authority, once the link to it
/// flows both ways (see the module documentation).
async fn dial(gate: Gate, uri: Uri) -> std::io::Result<TokioIo<TcpStream>> {
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("no host:port in {uri}")))?;
    let host = authority.split(':').next().unwrap_or_default().to_string();
    for _ in 0..BLOCKED_WAIT_MAX_MS / BLOCKED_POLL_MS {
        if !gate.blocked.either_way(&gate.from, &host) {
            return Ok(TokioIo::new(TcpStream::connect(authority).await?));
        }
        tokio::time::sleep(Duration::from_millis(BLOCKED_POLL_MS)).await;
    }
    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("the link {} -> {host} never flowed", gate.from)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::{pair, Links};

    fn cut(from: &str, to: &str) -> (String, String) {
        (from.to_string(), to.to_string())
    }

    /// The blocked links follow what `Links` tells turmoil, through cuts
    /// one way, holds, releases and heals.
    #[test]
    fn blocked_links_follow_the_operations_applied() {
        let (blocked, mut links) = (Blocked::default(), Links::default());
        let apply = |ops: Vec<LinkOp>| ops.iter().for_each(|op| blocked.apply(op));
        assert!(!blocked.either_way("n1", "n2"), "nothing is blocked at first");
        apply(links.cut(&[cut("n1", "n2")]));
        assert!(
            blocked.either_way("n1", "n2") && blocked.either_way("n2", "n1"),
            "a one-way cut stops a handshake both ways"
        );
        assert!(!blocked.either_way("n1", "n3"), "other links flow");
        apply(links.heal_cuts());
        assert!(!blocked.either_way("n1", "n2"), "a heal unblocks");
        blocked.apply(&LinkOp::Hold(pair("n1", "n3")));
        assert!(blocked.either_way("n3", "n1"), "a held link is blocked");
        blocked.apply(&LinkOp::Release(pair("n1", "n3")));
        assert!(!blocked.either_way("n3", "n1"), "a released link flows");
    }
}
