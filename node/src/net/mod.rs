//! The network edge: the tonic servers and the clients to peers.
//!
//! Everything that knows about sockets lives here, so that a simulator can
//! replace the network in one place. Outgoing: [`dialer`] makes a channel
//! from a peer's address (TCP by default, a simulator's sockets otherwise)
//! and [`peers`] is the one cache of those channels, keyed by node id, with
//! addresses taken from membership. Incoming: [`server`] serves the `Kv`,
//! `Replica`, `AntiEntropy` and [`admin`] services on a stream of
//! connections (`serve_incoming`), so the listening side is injectable
//! too; [`metrics_http`] is the optional Prometheus endpoint, the one
//! socket a node binds itself (only when `--metrics-listen` names one).

pub mod admin;
pub mod anti_entropy;
pub mod dialer;
pub mod metrics_http;
pub mod peers;
pub mod server;
