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

use crate::clock::Clock;
use crate::config::Config;
use crate::coordinate::Coordinator;
use crate::drivers::streaming::Streamer;
use crate::net::counters::Counters;
use crate::placement::view::Membership;
use crate::repair::anti_entropy::AntiEntropy;
use crate::replica::local::LocalReplica;
use crate::transport::Transport;
use crate::wire;

/// The Admin gRPC service: what it reports on, and the leave it runs.
#[derive(Debug)]
pub struct AdminService {
    /// The node's configuration (id, quorums, switches).
    pub config: Arc<Config>,
    /// The replica: its storage, uptime and replica-local reads.
    pub local: Arc<LocalReplica>,
    /// The membership list and the ring.
    pub membership: Arc<Membership>,
    /// Members' addresses.
    pub transport: Arc<dyn Transport>,
    /// Merkle roots and exchange times.
    pub anti_entropy: Arc<AntiEntropy>,
    /// The request path: its W, A, R, S timings.
    pub coordinator: Arc<Coordinator>,
    /// Every named counter.
    pub counters: Counters,
    /// Wall clock: how long each member has been silent.
    pub clock: Arc<dyn Clock>,
    /// Runs `Admin.Leave`.
    pub streamer: Streamer,
}

fn as_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(&self, _: Request<proto::StatusRequest>) -> Result<Response<proto::StatusResponse>, Status> {
        let c = &self.config;
        let keys = self.local.storage().len().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(proto::StatusResponse {
            node_id: c.id.to_string(),
            n: as_u32(c.n),
            w: as_u32(c.w_answers()),
            r: as_u32(c.r_answers()),
            w_quorum: c.w.to_string(),
            r_quorum: c.r.to_string(),
            dc: c.dc.clone(),
            replicas_per_dc: c
                .replicas_per_dc
                .iter()
                .flat_map(|counts| counts.iter().map(|(dc, k)| (dc.clone(), as_u32(*k))))
                .collect(),
            resolution: c.resolution.to_string(),
            uptime_ms: self.local.uptime_ms(),
            load_max_over_mean: self.membership.ring().load_max_over_mean(),
            counters: self.counters.snapshot().into_iter().collect(),
            storage: self.local.storage().name().to_string(),
            keys,
            merkle_roots: self.anti_entropy.index().roots().into_iter().collect(),
            aae_last_exchange_ms: self.anti_entropy.last_exchange_ms().into_iter().collect(),
            planted_bugs: crate::planted::PLANTED_BUGS.iter().map(|b| b.to_string()).collect(),
            sloppy_quorum: Some(c.sloppy_quorum),
            hinted_handoff: Some(c.hinted_handoff),
            read_repair: Some(c.read_repair),
            anti_entropy: Some(c.anti_entropy),
        }))
    }

    async fn ring(&self, _: Request<proto::RingRequest>) -> Result<Response<proto::RingResponse>, Status> {
        let ring = self.membership.ring();
        let ownership = ring.ownership();
        let members = ring
            .members()
            .iter()
            .map(|m| proto::RingMember {
                node_id: m.id.to_string(),
                address: self.transport.address(&m.id).unwrap_or_default(),
                vnodes: m.vnodes,
                ownership: ownership.get(&m.id).copied().unwrap_or(0.0),
                dc: m.dc.clone(),
            })
            .collect();
        Ok(Response::new(proto::RingResponse { members, total_vnodes: ring.total_vnodes() }))
    }

    async fn preference_list(
        &self,
        request: Request<proto::PreferenceListRequest>,
    ) -> Result<Response<proto::PreferenceListResponse>, Status> {
        let key = request.into_inner().key;
        let ring = self.membership.ring();
        let replicas = ring.preference_list(&key, self.config.n);
        Ok(Response::new(proto::PreferenceListResponse {
            replicas: replicas.iter().map(ToString::to_string).collect(),
            dcs: replicas.iter().map(|id| ring.dc_of(id).unwrap_or_default().to_string()).collect(),
        }))
    }

    async fn local_get(
        &self,
        request: Request<proto::LocalGetRequest>,
    ) -> Result<Response<proto::FetchResponse>, Status> {
        let key = request.into_inner().key;
        let set = self.local.local_peek(&key).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(proto::FetchResponse { siblings: wire::set_to_proto(&set), read_at_us: 0 }))
    }

    async fn wars(&self, _request: Request<proto::WarsRequest>) -> Result<Response<proto::WarsResponse>, Status> {
        Ok(Response::new(self.coordinator.wars().snapshot()))
    }

    async fn membership(
        &self,
        _: Request<proto::MembershipRequest>,
    ) -> Result<Response<proto::MembershipResponse>, Status> {
        let now_ms = self.clock.now_ms();
        let members = self.membership.read(|g| {
            g.members()
                .iter()
                .map(|(id, m)| proto::MemberView {
                    node_id: id.to_string(),
                    address: m.address.clone(),
                    generation: m.generation,
                    heartbeat: m.heartbeat,
                    liveness: m.liveness.as_str().to_string(),
                    ring_status: m.ring_status.as_str().to_string(),
                    silent_ms: now_ms.saturating_sub(m.updated_ms),
                    reporters: m.reporters.iter().map(ToString::to_string).collect(),
                    dc: m.dc.clone(),
                })
                .collect()
        });
        Ok(Response::new(proto::MembershipResponse { node_id: self.config.id.to_string(), members }))
    }

    async fn leave(&self, _: Request<proto::LeaveRequest>) -> Result<Response<proto::LeaveResponse>, Status> {
        let (keys, elapsed) = self.streamer.leave().await.map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(Response::new(proto::LeaveResponse { keys_streamed: keys, duration_ms: elapsed.as_millis() as u64 }))
    }
}
