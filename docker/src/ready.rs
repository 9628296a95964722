//! Waiting until a node answers: the one readiness test every backend shares.
//!
//! A node is ready when its `Admin.Status` RPC answers. That is stronger than
//! "the process runs" or "the port is open": the gRPC server is up and the
//! node has parsed its configuration. Both backends use [`wait_ready`] after a
//! start or a restart, with a short connect timeout per attempt (a paused or
//! firewalled node must not stall an attempt for long) and an overall
//! deadline after which the last error is reported in
//! [`ClusterError::NotReady`], so a failure says *why* the node never came up.

use std::time::Duration;

use proto::admin_client::AdminClient;
use proto::{StatusRequest, StatusResponse};
use tonic::transport::{Channel, Endpoint};

use crate::{ClusterError, Result};

/// How long a start or restart may take before the node counts as not ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Per-attempt connect and request timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// Pause between attempts.
const RETRY_INTERVAL: Duration = Duration::from_millis(200);

/// One `Admin.Status` call to `endpoint` (e.g. `http://10.213.4.11:7000`),
/// bounded by `timeout` for the connect and again for the request.
pub async fn admin_status(endpoint: &str, timeout: Duration) -> Result<StatusResponse> {
    let reply = admin_client(endpoint, timeout, timeout)
        .await?
        .status(StatusRequest {})
        .await
        .map_err(|e| ClusterError::Other(format!("status from {endpoint}: {e}")))?;
    Ok(reply.into_inner())
}

/// An `Admin` client of `endpoint`, bounded by `connect_timeout` for the
/// connect and `request_timeout` for each request.
pub(crate) async fn admin_client(
    endpoint: &str,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<AdminClient<Channel>> {
    let channel = Endpoint::from_shared(endpoint.to_string())
        .map_err(|e| ClusterError::Other(format!("bad endpoint {endpoint:?}: {e}")))?
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .connect()
        .await
        .map_err(|e| ClusterError::Other(format!("connect to {endpoint}: {e}")))?;
    Ok(AdminClient::new(channel))
}

/// Retries [`admin_status`] until it answers or `total` has passed.
pub async fn wait_ready(node: &str, endpoint: &str, total: Duration) -> Result<StatusResponse> {
    let deadline = tokio::time::Instant::now() + total;
    loop {
        let last_error = match admin_status(endpoint, ATTEMPT_TIMEOUT).await {
            Ok(status) => {
                tracing::debug!(node, endpoint, "node answers its admin status");
                return Ok(status);
            }
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() + RETRY_INTERVAL >= deadline {
            return Err(ClusterError::NotReady {
                node: node.to_string(),
                timeout_ms: total.as_millis() as u64,
                last_error,
            });
        }
        tokio::time::sleep(RETRY_INTERVAL).await;
    }
}
