//! The one way the workload's gRPC clients reach a store: a lazily
//! connected tonic channel with the client's deadline as both connect and
//! request timeout. Lazy, so a node or member that is down at start-up is an
//! op outcome (or an unreachable replica read), not a setup error; tonic
//! reconnects by itself after the peer restarts.

use std::time::Duration;

use tonic::transport::Channel;

use crate::ClientError;

/// A lazy channel to `endpoint` (`http://host:port`); a malformed endpoint is
/// a definite error naming it.
pub(crate) fn lazy_channel(endpoint: &str, timeout: Duration) -> Result<Channel, ClientError> {
    proto::lazy_channel(endpoint, timeout).map_err(|e| ClientError::Definite(format!("bad endpoint {endpoint}: {e}")))
}
