//! The operators' API: status and counters, the ring, and replica-local
//! reads that bypass the coordinator.
//!
//! The workbench's checkers use `LocalGet` to see what each replica really
//! holds (e.g. "nothing was stored for an invalid request", "all N replicas
//! converged"), which the coordinated `Get` would hide by merging. Like
//! `server.rs`, this is translation only.

use std::sync::Arc;

use proto::admin_server::Admin;
use tonic::{Request, Response, Status};

use crate::node::Node;
use crate::wire;

/// The Admin gRPC service.
#[derive(Debug)]
pub struct AdminService {
    /// The node being reported on.
    node: Arc<Node>,
}

impl AdminService {
    /// Admin for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        AdminService { node }
    }
}

fn as_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(
        &self,
        _: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusResponse>, Status> {
        let node = &self.node;
        let c = node.config();
        let keys = node
            .storage()
            .len()
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(proto::StatusResponse {
            node_id: c.id.to_string(),
            n: as_u32(c.n),
            w: as_u32(c.w),
            r: as_u32(c.r),
            resolution: c.resolution.to_string(),
            uptime_ms: node.uptime_ms(),
            load_max_over_mean: node.ring().load_max_over_mean(),
            counters: node.metrics().snapshot().into_iter().collect(),
            storage: node.storage().name().to_string(),
            keys,
        }))
    }

    async fn ring(
        &self,
        _: Request<proto::RingRequest>,
    ) -> Result<Response<proto::RingResponse>, Status> {
        let node = &self.node;
        let ownership = node.ring().ownership();
        let members = node
            .ring()
            .members()
            .iter()
            .map(|m| proto::RingMember {
                node_id: m.id.to_string(),
                address: node
                    .config()
                    .peer_address(&m.id)
                    .unwrap_or_default()
                    .to_string(),
                vnodes: m.vnodes,
                ownership: ownership.get(&m.id).copied().unwrap_or(0.0),
            })
            .collect();
        Ok(Response::new(proto::RingResponse {
            members,
            total_vnodes: node.ring().total_vnodes(),
        }))
    }

    async fn local_get(
        &self,
        request: Request<proto::LocalGetRequest>,
    ) -> Result<Response<proto::FetchResponse>, Status> {
        let key = request.into_inner().key;
        let set = self
            .node
            .local_peek(&key)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(proto::FetchResponse {
            siblings: wire::set_to_proto(&set),
        }))
    }
}
