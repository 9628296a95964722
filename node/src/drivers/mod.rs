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
//! So the dependencies run one way: pure logic, the coordinator, the local
//! replica and the transport (every peer RPC, behind the `Transport`
//! trait), then `node`, then the drivers, then `net` (the tonic services,
//! which call into the coordinator, the local replica and the drivers).
//! Nothing under `node.rs` imports a driver, which keeps the node free of
//! the import circle it once had (node, gossiper, handoff, streaming and
//! anti-entropy each importing the others). The drivers reach peers only
//! through the transport, so they never name tonic.
//!
//! They take the whole node rather than a handle each: between them the
//! loops use nearly every part it holds (membership, the local replica and
//! its hints, the transport, anti-entropy, the counters, the stop signal
//! and the hint delivery's wake-up), and a struct of those handles per
//! loop would be the node by another name.
//!
//! [`Node`]: crate::node::Node

pub mod anti_entropy;
pub mod background;
pub mod gossiper;
pub mod handoff;
pub mod streaming;
