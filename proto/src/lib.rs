//! The wire contracts between `dynamo-node`, the peer stores and everything
//! that talks to them.
//!
//! Three services share one port of our node: `Kv` is what clients call (any
//! node coordinates any request), `Replica` is what a coordinator calls on the
//! replicas of a key's preference list, and `Admin` is for operators and the
//! workbench's checkers (status, ring, replica-local reads that bypass the
//! coordinator). The definitions live in `proto/dynamo.proto`.
//!
//! [`etcd`] is the slice of etcd's v3 KV API the workbench's etcd client
//! needs (`proto/etcd/kv.proto`, etcd's field numbers). Both are compiled with
//! protox, so no system `protoc` is needed to build the workspace.

#![allow(clippy::all)]

use std::time::Duration;

/// The harness's one way to reach a store over TCP: a lazily connected
/// channel to `endpoint` (`http://host:port`) with `timeout` as both the
/// connect and the request timeout, Nagle off. Lazy, so a node that is down
/// is an error only when a request is sent, and tonic reconnects by itself
/// once it answers. The workload's clients and the cluster backends both
/// call this; the node's own peer channels are its dialer's.
pub fn lazy_channel(endpoint: &str, timeout: Duration) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    Ok(tonic::transport::Endpoint::from_shared(endpoint.to_string())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

tonic::include_proto!("dynamo");

/// etcd's `etcdserverpb` KV service: `Range` and `Put` only.
pub mod etcd {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("etcdserverpb");
}
