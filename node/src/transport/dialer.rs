//! `Dialer`: the one door through which this node opens connections to peers.
//!
//! Every peer RPC (replica stores and fetches, gossip, hint handoff, range
//! streaming, anti-entropy) rides a tonic `Channel` made by the node's
//! dialer from the peer's `host:port` as membership knows it. The default,
//! [`tcp_dialer`], dials TCP; a deterministic simulator passes a dialer that
//! builds the channel over its own sockets with
//! `Endpoint::connect_with_connector_lazy`, so nothing else in the node knows
//! which network it runs on.
//!
//! On one host, a link-fault proxy in front of each node tells peers apart
//! by source address, so each node listens on its own loopback address
//! (127.0.0.x) and must also dial from it: [`tcp_dialer_from`] binds every
//! outgoing socket to the address [`crate::Config::dial_from`] names (the
//! listen address when it is a loopback address other than 127.0.0.1;
//! otherwise the kernel picks, as it always did).
//!
//! Channels are lazy: making one opens no socket (it must be made inside a
//! tokio runtime, which runs the channel's worker task). A node therefore
//! starts while its peers are still down, and a dead peer costs a failed RPC
//! rather than a failed start; a channel reconnects by itself once the peer
//! answers again.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// Makes the (lazy) channel to a peer at `host:port`. The default dials TCP; a simulator passes
/// one that dials its own sockets (tonic's `Endpoint::connect_with_connector_lazy`).
pub type Dialer = Arc<dyn Fn(&str) -> Result<Channel, tonic::transport::Error> + Send + Sync>;

/// HTTP/2 ping period and ping-ack timeout on every peer channel: a
/// partition leaves a connection hung rather than reset, and pings notice
/// within seconds, so the channel reconnects soon after a heal instead of
/// waiting out TCP's retransmission backoff.
pub const KEEPALIVE: Duration = Duration::from_secs(1);

/// The dialer of a real node: lazy TCP channels with Nagle off (every peer
/// RPC is a small request and response, which Nagle plus delayed ACKs would
/// hold back for ~40 ms), HTTP/2 keep-alive pings, and `connect_timeout` on
/// establishing each connection.
pub fn tcp_dialer(connect_timeout: Duration) -> Dialer {
    tcp_dialer_from(connect_timeout, None)
}

/// [`tcp_dialer`], with every outgoing socket bound to `source` when given.
pub fn tcp_dialer_from(connect_timeout: Duration, source: Option<IpAddr>) -> Dialer {
    Arc::new(move |address: &str| {
        let endpoint = Endpoint::from_shared(format!("http://{address}"))?;
        Ok(endpoint
            .local_address(source)
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_timeout(KEEPALIVE)
            .keep_alive_while_idle(true)
            .connect_lazy())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tcp_dialer_makes_lazy_channels_and_rejects_bad_addresses() {
        let dial = tcp_dialer(Duration::from_millis(100));
        // Nothing listens there: a lazy channel is still made, no socket opened.
        assert!(dial("127.0.0.1:9").is_ok());
        assert!(dial("not a host:port").is_err(), "an invalid URI is an error");
    }

    #[tokio::test]
    async fn a_dialer_from_a_loopback_address_connects_from_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let source: IpAddr = "127.0.0.3".parse().unwrap();
        let channel = tcp_dialer_from(Duration::from_secs(1), Some(source))(&address).unwrap();
        // The lazy channel connects on its first request; the request itself fails (no HTTP/2 here).
        let mut client = proto::replica_client::ReplicaClient::new(channel);
        let ready = tokio::spawn(async move { client.fetch(proto::FetchRequest::default()).await });
        let (_, peer) = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await.unwrap().unwrap();
        assert_eq!(peer.ip(), source);
        ready.abort();
    }
}
