//! A userspace link-fault proxy: the Toxiproxy idea, for real clusters on a
//! kernel without `sch_netem` and for nodes that share one host's network.
//!
//! One [`Proxy`] sits in front of one node's listening port. It accepts a
//! connection, names its source by address ([`ProxyConfig::sources`]: a
//! peer's name, else [`CLIENT`]), dials the node's real (inner) port, and
//! copies both ways. A connection from S into node T carries two directed
//! links, S->T (what S sends) and T->S (what T answers), and each link has
//! its own [`LinkFault`]: latency with jitter drawn from a seeded RNG
//! (normal, exponential or uniform), loss (a chunk dropped, or delayed by a
//! retransmission timeout), a bandwidth limit, a blackhole (every byte
//! dropped, the connection kept open, as an iptables DROP), and a reset
//! (the link's connections closed). Faults apply per chunk as it is read,
//! so one installed mid-connection bites the connections already open.
//!
//! The proxy is bounded: each direction of each connection queues at most
//! [`pump::BUFFER_BOUND_PER_DIRECTION`] bytes (a slow link back-pressures
//! the sender through TCP, a blackhole drops as it reads), and at most
//! [`MAX_CONNECTIONS`] connections are carried at once.
//!
//! A directed link A->B appears in two proxies: in B's (A's requests to B)
//! and in A's (A's answers on the connections B opened). Whoever drives the
//! proxies sets a link's fault in both; the proxy only knows its own node.
//!
//! Control is in-process (the local backend holds its proxies as values)
//! or over the line-JSON [`control`] socket (the `dynamo-linkproxy` binary
//! inside a container); both go through [`control::apply`], one code path.

pub mod control;
mod error;
pub mod fault;
mod link;
mod proxy;
pub mod pump;
mod shared;

pub use control::{ControlServer, Request};
pub use error::ProxyError;
pub use fault::{Distribution, LinkFault, LossMode};
pub use link::Link;
pub use proxy::{LinkStatus, Proxy, ProxyConfig, Status, CLIENT, MAX_CONNECTIONS};
pub use shared::Counters;
