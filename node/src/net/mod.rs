//! The serving edge: the tonic servers.
//!
//! [`server`] serves the [`kv`], [`replica`], [`anti_entropy`] and
//! [`admin`] services on a stream of connections (`serve_incoming`), so
//! the listening side is injectable (a simulator's sockets); each service
//! holds only the handles it uses (built by `Node`), translates messages
//! and calls the part of the node it serves. [`status`] is the one place
//! errors become gRPC statuses, [`counters`] the one place every part's
//! counters are joined. [`metrics_http`] is the
//! optional Prometheus endpoint, the one socket a node binds itself (only
//! when `--metrics-listen` names one). The calling side (the dialer, the
//! channel cache, every peer RPC) is `transport/`.

pub mod admin;
pub mod anti_entropy;
pub mod counters;
pub mod kv;
pub mod metrics_http;
pub mod replica;
pub mod server;
pub mod status;
