//! The one mapping from the node's errors to gRPC statuses, and back to the
//! outcome labels Prometheus counts requests by.
//!
//! A client sees `INVALID_ARGUMENT` for a request that fails validation
//! (nothing was sent to any replica), `RESOURCE_EXHAUSTED` with the reason
//! `overloaded` for one refused by admission control (nor was this one),
//! `UNAVAILABLE` for a quorum that was
//! not met (the write may still have reached some replicas), and a peer
//! sees `INTERNAL` when this node's replica could not apply or read what it
//! asked for. The message is the error's own text.

use tonic::Status;

use crate::coordinate::admission::Overloaded;
use crate::coordinate::QuorumError;
use crate::replica::local::ApplyError;
use crate::versioning::validate::InvalidRequest;

impl From<InvalidRequest> for Status {
    fn from(error: InvalidRequest) -> Self {
        Status::invalid_argument(error.to_string())
    }
}

impl From<QuorumError> for Status {
    fn from(error: QuorumError) -> Self {
        Status::unavailable(error.to_string())
    }
}

impl From<Overloaded> for Status {
    fn from(error: Overloaded) -> Self {
        Status::resource_exhausted(error.to_string())
    }
}

impl From<ApplyError> for Status {
    fn from(error: ApplyError) -> Self {
        Status::internal(error.to_string())
    }
}

/// The outcome label of a finished gRPC request.
pub fn outcome_label<T>(result: &Result<T, Status>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(status) => match status.code() {
            tonic::Code::InvalidArgument => "invalid",
            tonic::Code::Unavailable => "unavailable",
            tonic::Code::ResourceExhausted => "overloaded",
            tonic::Code::DeadlineExceeded => "timeout",
            _ => "error",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_code_and_label() {
        let quorum = QuorumError::Write { acks: 1, required: 2, n: 3 };
        let status = Status::from(quorum);
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), "only 1 of 2 required replicas acknowledged the write (n=3)");
        assert_eq!(outcome_label::<()>(&Err(status)), "unavailable");
        let late = Status::from(ApplyError::Late { from: "n1".into(), late_ms: 5 });
        assert_eq!(late.code(), tonic::Code::Internal);
        assert_eq!(outcome_label::<()>(&Err(late)), "error");
        assert_eq!(outcome_label(&Ok::<(), Status>(())), "ok");
        let refused = Status::from(Overloaded { in_flight: 3, limit: 3 });
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().starts_with("overloaded"));
        assert_eq!(outcome_label::<()>(&Err(refused)), "overloaded");
    }
}
