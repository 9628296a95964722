//! Drivers: the loops and RPC bodies that put a node to work.
//!
//! Everything below this folder is written against inputs (time,
//! randomness, messages, a storage engine): placement, versioning,
//! coordination rounds, the gossip membership list, hints, Merkle trees
//! and the anti-entropy exchange protocol. The modules here drive those
//! pieces: the gossip loop and its RPC body ([`gossiper`]), hint delivery
//! ([`handoff`]), join and leave streaming ([`streaming`]), the
//! anti-entropy rounds ([`anti_entropy`]), and the one place that starts
//! and stops all of them ([`background`]).
//!
//! Each driver is a struct of the handles it uses and nothing more: the
//! gossiper holds the membership, the transport, the local replica (its
//! steady clock stamps messages) and the hint delivery's wake-up; hint
//! delivery holds the hints' replica, the membership and the transport;
//! and so on. Knobs come as plain fields (`interval_ms`, `request_timeout`)
//! rather than the whole configuration. `node.rs` builds them, so the
//! dependencies run one way: pure logic, the coordinator, the local
//! replica and the transport, then the drivers, then `net` (the services),
//! then `node`, which assembles everything, and `net/server.rs`, which
//! serves it. A driver can be built and stepped in a test from its parts
//! alone, and what one can touch is written in its fields. The drivers
//! reach peers only through the transport, so they never name tonic.

pub mod anti_entropy;
pub mod background;
pub mod gossiper;
pub mod handoff;
pub mod streaming;
