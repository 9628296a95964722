//! The `Kv` gRPC service: the client API.
//!
//! Thin on purpose: each handler is admitted or refused by admission
//! control (`coordinate/admission.rs`), validates (`versioning/validate.rs`),
//! calls the [`Coordinator`], and translates the result into a reply or a
//! `Status` (`net/status.rs`: `INVALID_ARGUMENT` for bad input,
//! `UNAVAILABLE` for a missed quorum, `RESOURCE_EXHAUSTED` for a refused
//! request, `INTERNAL` for storage failures).

use std::future::Future;
use std::sync::Arc;

use proto::kv_server::Kv;
use tonic::{Request, Response, Status};
use tracing::debug;

use crate::coordinate::admission::{self, Admission};
use crate::coordinate::{Coordinator, WriteOutcome};
use crate::metrics::{Metrics, RequestMetrics};
use crate::net::status::outcome_label;
use crate::versioning::context;
use crate::versioning::validate::{self, InvalidRequest};
use crate::wire;

/// The client API: validates, then hands the request to the coordinator.
#[derive(Debug)]
pub struct KvService {
    /// The request path.
    pub coordinator: Arc<Coordinator>,
    /// Which requests the coordinator takes.
    pub admission: Arc<Admission>,
    /// Request counters (puts, gets, deletes, invalid requests).
    pub metrics: Arc<Metrics>,
    /// Request counts and latencies for Prometheus.
    pub requests: Arc<RequestMetrics>,
}

impl KvService {
    /// Counts and converts a validation failure.
    fn invalid(&self, error: InvalidRequest) -> Status {
        self.metrics.invalid_requests.inc();
        debug!(%error, "invalid request");
        Status::from(error)
    }

    async fn write(
        &self,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        ctx: &[u8],
        w: validate::Asked,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let limits = self.coordinator.limits();
        let request = validate::write(&limits, &key, value.as_deref(), ctx, w).map_err(|e| self.invalid(e))?;
        let WriteOutcome { version, acks, hinted_for } = self.coordinator.write(key, value, request).await?;
        let acks = u32::try_from(acks).unwrap_or(u32::MAX);
        Ok(Response::new(proto::WriteResponse {
            version: Some(wire::version_to_proto(&version)),
            acks,
            hinted_for: hinted_for.iter().map(ToString::to_string).collect(),
        }))
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn get(&self, request: Request<proto::GetRequest>) -> Result<Response<proto::GetResponse>, Status> {
        self.admitted("get", self.get_untimed(request)).await
    }

    async fn put(&self, request: Request<proto::PutRequest>) -> Result<Response<proto::WriteResponse>, Status> {
        self.admitted("put", self.put_untimed(request)).await
    }

    async fn delete(&self, request: Request<proto::DeleteRequest>) -> Result<Response<proto::WriteResponse>, Status> {
        self.admitted("delete", self.delete_untimed(request)).await
    }
}

/// The handlers proper; the trait methods above admit and time them.
impl KvService {
    /// Runs `handler` if admission control takes the request, else refuses
    /// it at once (`RESOURCE_EXHAUSTED`, `overloaded`); times either for
    /// Prometheus.
    async fn admitted<T>(&self, op: &str, handler: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
        let started = tokio::time::Instant::now();
        let wait = std::time::Duration::from_millis(admission::QUEUE_WAIT_MS);
        let result = match self.admission.admit_within(wait).await {
            Ok(permit) => {
                let result = handler.await;
                permit.finish(result.is_err());
                result
            }
            Err(overloaded) => {
                debug!(%overloaded, op, "refused a client request");
                Err(Status::from(overloaded))
            }
        };
        self.observe(op, &result, started);
        result
    }

    /// Records a finished request for Prometheus.
    fn observe<T>(&self, op: &str, result: &Result<T, Status>, started: tokio::time::Instant) {
        self.requests.observe(op, outcome_label(result), started.elapsed());
    }

    async fn get_untimed(&self, request: Request<proto::GetRequest>) -> Result<Response<proto::GetResponse>, Status> {
        self.metrics.gets.inc();
        let proto::GetRequest { key, r, r_quorum } = request.into_inner();
        let asked = validate::Asked { count: r, word: r_quorum };
        let read = validate::read(&self.coordinator.limits(), &key, asked).map_err(|e| self.invalid(e))?;
        let outcome = self.coordinator.read(key, read).await?;
        Ok(Response::new(proto::GetResponse {
            siblings: wire::set_to_proto(&outcome.siblings),
            context: context::encode(&outcome.siblings.merged_clock()),
            replies: u32::try_from(outcome.replies).unwrap_or(u32::MAX),
            answered_by: outcome.answered_by.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn put_untimed(&self, request: Request<proto::PutRequest>) -> Result<Response<proto::WriteResponse>, Status> {
        self.metrics.puts.inc();
        let proto::PutRequest { key, value, context, w, w_quorum } = request.into_inner();
        self.write(key, Some(value), &context, validate::Asked { count: w, word: w_quorum }).await
    }

    async fn delete_untimed(
        &self,
        request: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        self.metrics.deletes.inc();
        let proto::DeleteRequest { key, context, w, w_quorum } = request.into_inner();
        self.write(key, None, &context, validate::Asked { count: w, word: w_quorum }).await
    }
}
