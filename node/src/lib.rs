//! `dynamo-node`: a Dynamo-style leaderless key-value node served over gRPC.
//!
//! Any node coordinates any request. A key lives on the first N distinct
//! nodes clockwise on a consistent-hash ring (`placement::ring`); a write
//! gets a new version (dotted version vector + timestamp,
//! `versioning::vclock`, minted by `coordinate::mint::mint_version`) and
//! is sent to all N replicas, answering after W acks; a read asks all N and
//! answers after R replies with every concurrent sibling and a causal
//! context (`versioning::context`) for the client's next write. Quorum
//! bookkeeping is a pure state machine (`coordinate::rounds`) that the
//! [`coordinate::Coordinator`] feeds; replicas merge under a per-key lock
//! (`replica`) into a pluggable engine (`storage`). `node` only assembles
//! the pieces.
//!
//! A write's path, file by file: `net/server.rs` (the `Kv` service
//! validates with `versioning/validate.rs`) → `coordinate/coordinator.rs`
//! (mint, in-flight versions, plan against `placement/view.rs`) →
//! `coordinate/fan_out.rs` (one call per replica, the quorum wait over
//! `coordinate/rounds.rs`) → for this node's replica
//! `replica/local.rs` → `replica/mod.rs` (merge under the key's lock,
//! observed by `repair/anti_entropy/index.rs`) → `storage/`; for a remote
//! one `transport/grpc.rs` → `transport/batcher.rs` →
//! `transport/replicate.rs`, and on the peer `net/server.rs` (the
//! `Replica` service translates) → `replica/local.rs` (where lateness is
//! judged) and on as above.
//!
//! The folders follow the concerns:
//! - `placement/`: the ring, and the view a request is planned against
//!   (strict or sloppy quorum, the extra replicas of a join or leave);
//! - `versioning/`: version vectors and sibling sets, the client context,
//!   request validation;
//! - `coordinate/`: the request path: the coordinator, its fan-out and
//!   rounds, minting, in-flight versions, the WARS timings;
//! - `replica/`: this node's replica (merge rule, key locks), as the rest
//!   of the node reaches it (`local`), and the lateness of incoming Stores;
//! - `transport/`: every peer RPC behind the `Transport` trait, and its
//!   tonic implementation (the dialer, the one channel cache, replica
//!   batching on the `ReplicateStream`);
//! - `membership/`: gossip (membership list, heartbeats, the two-reporter
//!   failure detector, ring status);
//! - `repair/`: hints, read repair, Merkle trees and anti-entropy (index,
//!   exchange, schedule, the initiator's peer over the transport), all reusing the one
//!   merge rule (`SiblingSet::merge`) and replica store;
//! - `storage/`: the engine trait, the memory engine, the LSM engine;
//! - `drivers/`: the loops that put a node to work, each a struct of the
//!   handles it uses: the gossip loop and RPC body, hint delivery,
//!   join/leave streaming, the anti-entropy rounds, and `background`,
//!   which starts every loop together and stops them through one path;
//! - `net/`: the tonic services, each a struct of the handles it uses
//!   (`kv`, `replica`, anti-entropy's responder, `admin`), the one mapping
//!   of errors to gRPC statuses, the counters joined, and the Prometheus
//!   endpoint;
//! - `node`: assembles the parts and hands each loop and service its
//!   handles; `net/server.rs` serves an assembled node. Nothing else
//!   names the node.
//!
//! tonic lives in `net/` (serving) and `transport/` (calling); the rest takes
//! time, randomness and messages as inputs. What the host provides comes in
//! as one [`Environment`]: the clock, the [`Dialer`], optionally the storage,
//! and the seed of every random choice.
//!
//! Entry points: [`run`] (bind and serve), [`serve`] (serve on a bound
//! listener, used by the in-process cluster tests) and [`serve_incoming`]
//! (serve in an injected [`Environment`] on any stream of connections: the
//! seam a deterministic simulator uses to stand its clock, sockets, storage
//! and seed in for the machine's).

pub mod clock;
pub mod config;
pub mod coordinate;
pub mod drivers;
pub mod environment;
pub mod membership;
pub mod metrics;
pub mod net;
pub mod node;
pub mod node_id;
pub mod placement;
pub mod planted;
pub mod repair;
pub mod replica;
pub mod storage;
pub mod transport;
pub mod versioning;
pub mod wire;

pub use clock::{Clock, SystemClock};
pub use config::{Args, Config};
pub use environment::Environment;
pub use net::server::{run, serve, serve_incoming, serve_with_clock, ServeError};
pub use node_id::NodeId;
pub use transport::dialer::{tcp_dialer, Dialer};
pub use versioning::vclock::Resolution;
