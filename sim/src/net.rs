//! gRPC over the simulator's sockets: the node's incoming stream, and
//! channels that dial turmoil TCP instead of the kernel's.
//!
//! tonic takes both ends as seams: a server serves any stream of accepted
//! connections ([`incoming`]), a channel any connector ([`channel`]). The
//! names are the hosts' (`n1:7000`), resolved by the simulator's DNS.
//!
//! Every channel keeps HTTP/2 keep-alive pings going. Why: the simulator
//! drops the messages of a cut link, and a turmoil TCP stream has no
//! retransmission, so a stream that lost a segment stalls for good. Real TCP
//! retransmits across the heal; here the keep-alive notices the stall, the
//! connection is dropped and the channel dials afresh (as a long partition
//! resets a real connection). Hold-then-release faults keep every segment
//! and need no such help.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Channel, Endpoint, Uri};
use turmoil::net::{TcpListener, TcpStream};

/// Interval of the HTTP/2 keep-alive pings on every channel.
pub const KEEPALIVE_INTERVAL_MS: u64 = 1_000;
/// A ping unanswered this long drops the connection.
pub const KEEPALIVE_TIMEOUT_MS: u64 = 1_000;

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

/// A lazily connected channel to `address` (`host:port` or `http://host:port`)
/// over simulated TCP; connects bounded by `connect_timeout`, each request
/// by `request_timeout` if given (the node bounds its own requests).
pub fn channel(
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
    Ok(endpoint.connect_with_connector_lazy(tower::service_fn(dial)))
}

/// One simulated TCP connect to the URI's authority.
async fn dial(uri: Uri) -> std::io::Result<TokioIo<TcpStream>> {
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("no host:port in {uri}")))?;
    Ok(TokioIo::new(TcpStream::connect(authority).await?))
}
