//! The wire contract between `dynamo-node` and everything that talks to it.
//!
//! Three services share one port: `Kv` is what clients call (any node
//! coordinates any request), `Replica` is what a coordinator calls on the
//! replicas of a key's preference list, and `Admin` is for operators and the
//! workbench's checkers (status, ring, replica-local reads that bypass the
//! coordinator). The definitions live in `proto/dynamo.proto`; they are
//! compiled with protox, so no system `protoc` is needed.

#![allow(clippy::all)]

tonic::include_proto!("dynamo");
