//! Power loss on SSH hosts: each node's data directory on a lazy
//! filesystem (`dynamo-lazyfs`, uploaded with the node), as on Docker and
//! local processes.
//!
//! In a run that may cut power ([`crate::ClusterSpec::power_loss`]), each
//! node's `--data-dir` is a FUSE mount over `<node>/backing/` on the
//! host's disk, started before the node as a supervised process of its own
//! ([`remote::mount_lazyfs`]). It holds what was written since the last
//! `fsync` in memory and outlives the node's kills and restarts, as a disk
//! does. A power loss SIGKILLs the node, waits until it is gone (no write
//! can follow), and tells the filesystem to `lose-unsynced` over its
//! control socket; the loss it prints is the event's. The restart runs
//! the node again on what the backing directory kept.
//!
//! What a host needs for it: `/dev/fuse`, and a root login (the lazy
//! filesystem mounts with `mount(2)` as root; as another user it would
//! need `fusermount3` and `user_allow_other` in `/etc/fuse.conf`, which
//! [`super::prepare`] does not assume). At teardown the filesystem is sent
//! SIGTERM (it unmounts on the way out); what a killed run left mounted is
//! detached by the next start's clean before it removes the directory.

use super::{remote, SshCluster, SshNode, COMMAND_TIMEOUT_MS};
use crate::{ClusterError, Result};

/// What performs power loss on SSH hosts, recorded in every event.
pub const MECHANISM: &str = "lazyfs";

/// How long a fresh lazy filesystem may take to mount and answer.
const MOUNT_TIMEOUT_MS: u64 = 45_000;

impl SshCluster {
    /// Whether the nodes' data directories are lazy filesystems.
    pub(super) fn on_lazyfs(&self) -> bool {
        self.spec.power_loss
    }

    /// Mounts `node`'s lazy filesystem unless it is mounted (waiting until
    /// it answers); a failed mount names the host and says why.
    pub(super) async fn mount_lazyfs(&self, node: &SshNode) -> Result<()> {
        let out = node.slot.client.output(&remote::mount_lazyfs(&node.paths), None, MOUNT_TIMEOUT_MS).await?;
        if out.exit_code != 0 {
            return Err(ClusterError::Other(format!(
                "{}: the lazy filesystem of {} did not mount (exit {}): {}",
                node.slot.client.host(),
                node.id,
                out.exit_code,
                out.stderr.trim()
            )));
        }
        Ok(())
    }

    /// SIGKILLs `node` (waiting until it is gone), then drops every write
    /// its filesystem holds unsynced; what was lost, for the event.
    pub(super) async fn cut_power(&self, node: &str) -> Result<serde_json::Value> {
        let n = self.node(node)?;
        Self::stop_process(&n).await?;
        let ctl = remote::lazyfs_ctl(&n.paths, lazyfs::control::Command::LoseUnsynced.word());
        let out = n.slot.client.output(&ctl, None, COMMAND_TIMEOUT_MS).await?;
        let loss = crate::loss_answer::loss_of(node, &out)?;
        tracing::info!(node, dropped_bytes = loss.dropped_bytes, files = loss.files.len(), "power lost");
        Ok(serde_json::to_value(loss).expect("a loss report serializes"))
    }
}
