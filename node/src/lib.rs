//! `dynamo-node`: a Dynamo-style leaderless key-value node served over gRPC.
//!
//! Any node coordinates any request. A key lives on the first N distinct
//! nodes clockwise on a consistent-hash ring (`ring`); a write gets a new
//! version (vector clock + timestamp, `vclock`, `coordinator::mint_version`)
//! and is sent to all N replicas, answering after W acks; a read asks all N
//! and answers after R replies with every concurrent sibling and a causal
//! context (`context`) for the client's next write. Quorum bookkeeping is a
//! pure state machine (`coordinator`); replicas merge under a per-key lock
//! (`replica`) into a pluggable engine (`storage`). `server` and `admin` are
//! thin tonic glue over the assembled `node`.
//!
//! Failures and membership: `gossip` (membership list, heartbeats, the
//! two-reporter failure detector, ring status) runs in `gossiper`;
//! `membership` turns it into the view a coordinator plans against (strict
//! or sloppy quorum, the extra replicas of a join or leave in progress);
//! `hints` and `handoff` keep and deliver writes for down home replicas;
//! `streaming` moves ranges when a node joins or leaves. Read repair,
//! Merkle anti-entropy and the storage engines reuse the same merge rule
//! (`SiblingSet::merge`) and replica store.
//!
//! Entry points: [`run`] (bind and serve), [`serve`] (serve on a bound
//! listener, used by the in-process cluster tests) and [`serve_incoming`]
//! (serve in an injected [`Environment`] on any stream of connections: the
//! seam a deterministic simulator uses to stand its clock, sockets, storage
//! and seed in for the machine's).

pub mod admin;
pub mod clock;
pub mod config;
pub mod coordinate;
pub mod environment;
pub mod membership;
pub mod metrics;
pub mod metrics_http;
pub mod node;
pub mod net;
pub mod node_id;
pub mod placement;
pub mod planted;
pub mod repair;
pub mod replica;
pub mod server;
pub mod storage;
pub mod versioning;
pub mod wire;

pub use clock::{Clock, SystemClock};
pub use config::{Args, Config};
pub use node_id::NodeId;
pub use environment::Environment;
pub use net::dialer::{tcp_dialer, Dialer};
pub use server::{run, serve, serve_incoming, serve_with_clock, ServeError};
pub use versioning::vclock::Resolution;
