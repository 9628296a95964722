//! The network edge: how this node reaches its peers.
//!
//! Everything that knows about sockets lives here, so that a simulator can
//! replace the network in one place: [`dialer`] makes a channel from a
//! peer's address (TCP by default, a simulator's sockets otherwise) and
//! [`peers`] is the one cache of those channels, keyed by node id, with
//! addresses taken from membership. The servers take their connections as a
//! stream (`serve_incoming`), so the listening side is injectable too.

pub mod dialer;
pub mod peers;
