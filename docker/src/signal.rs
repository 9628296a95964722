//! Ctrl-C: tear the cluster down instead of leaving containers behind.
//!
//! A campaign runs for minutes to hours; an operator who presses Ctrl-C
//! expects the containers, the network and the node processes to go away.
//! [`teardown_on_ctrl_c`] runs the work future and, if Ctrl-C arrives first,
//! drops the work, tears the cluster down and returns `Ok(None)`. Whatever
//! still escapes (a `kill -9` of the workbench, Ctrl-C during
//! `DockerCluster::start`) carries the workbench label and is removed by
//! [`crate::remove_leftovers`] at the next start.
//!
//! The pattern for the CLI:
//! ```no_run
//! # async fn campaign(c: &dyn docker::Cluster) -> u32 { 0 }
//! # async fn run(cluster: &dyn docker::Cluster) -> docker::Result<()> {
//! match docker::teardown_on_ctrl_c(cluster, campaign(cluster)).await? {
//!     Some(_result) => { cluster.collect_logs().await?; cluster.teardown().await?; }
//!     None => eprintln!("interrupted; cluster removed"),
//! }
//! # Ok(()) }
//! ```

use std::future::Future;

use crate::{Cluster, Result};

/// Runs `work`; on Ctrl-C first, tears `cluster` down and returns `None`.
///
/// On normal completion the cluster is left running so the caller can still
/// collect logs and snapshots before its own teardown.
pub async fn teardown_on_ctrl_c<F>(cluster: &dyn Cluster, work: F) -> Result<Option<F::Output>>
where
    F: Future,
{
    tokio::select! {
        output = work => Ok(Some(output)),
        _ = tokio::signal::ctrl_c() => {
            tracing::warn!(backend = cluster.backend(), "Ctrl-C: tearing the cluster down");
            // Logs are worth keeping even from an interrupted run.
            if let Err(e) = cluster.collect_logs().await {
                tracing::warn!(error = %e, "could not collect node logs after Ctrl-C");
            }
            cluster.teardown().await?;
            Ok(None)
        }
    }
}
