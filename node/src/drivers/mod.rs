//! Drivers: the loops and RPC bodies that put a [`Node`] to work.
//!
//! Everything below this folder is written against inputs (time,
//! randomness, messages, a storage engine) and never names the node:
//! placement, versioning, coordination rounds, the gossip membership list,
//! hints, Merkle trees and the anti-entropy exchange protocol. `node.rs`
//! assembles those pieces into a [`Node`]. The modules here take an
//! `Arc<Node>` and drive it: the gossip loop and its RPC body
//! ([`gossiper`]), hint delivery ([`handoff`]), join and leave streaming
//! ([`streaming`]), the anti-entropy rounds ([`anti_entropy`]), and the one
//! place that starts and stops all of them ([`background`]).
//!
//! So the dependencies run one way: pure logic (and `net`'s outgoing half,
//! the dialer and the one peer channel cache, which the node holds), then
//! `node`, then the drivers, then `net`'s serving half (the tonic services,
//! which call into the drivers).
//! Nothing under `node.rs` imports a driver, which keeps the node free of
//! the import circle it once had (node, gossiper, handoff, streaming and
//! anti-entropy each importing the others), and tokio's timers and tonic's
//! clients stay in this folder and in `net/`.
//!
//! [`Node`]: crate::node::Node

pub mod anti_entropy;
pub mod background;
pub mod gossiper;
pub mod handoff;
pub mod streaming;
