//! Placement: which nodes hold a key, and which of them a request uses.
//!
//! [`ring`] is the consistent-hash ring (vnodes, weights, preference lists,
//! the replica sets anti-entropy groups keys by); [`view`] turns gossip's
//! membership list into the snapshot a coordinator plans one request
//! against (strict or sloppy quorum, the extra replicas of a join or leave
//! in progress); [`quorum`] is the words a quorum may be (a number, `one`,
//! `all`, `local`, `each`) and the groups of answers they come to across
//! datacenters. All pure: no sockets, no clock, no tokio.

pub mod quorum;
pub mod ring;
pub mod view;
