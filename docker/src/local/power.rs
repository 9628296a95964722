//! Power loss for local processes: each node's data directory is a lazy
//! filesystem (`dynamo-lazyfs`) over a backing directory on the host's disk.
//!
//! A SIGKILL leaves the kernel's page cache alone, so on a plain directory a
//! killed node keeps every write it made, synced or not, and a node that
//! acknowledges before it syncs never shows that bug. With `power_loss` in
//! the cluster's spec, each node's `--data-dir` is a FUSE mount that holds
//! what was written since the last `fsync` in memory; a power loss SIGKILLs
//! the node and tells its filesystem to `lose-unsynced` over the control
//! socket, and the restart runs the node again on what the backing
//! directory kept. The filesystem outlives the node's restarts and is
//! unmounted at teardown (SIGTERM: it unmounts on the way out).
//!
//! What it needs: the `dynamo-lazyfs` binary beside `dynamo-node` (or on
//! PATH), `/dev/fuse`, and root to mount (the same as the Docker backend's
//! containers get with `CAP_SYS_ADMIN`). Without them the capability table
//! says so, and the campaign refuses `power-loss` before anything starts.
//! A mount a killed workbench left behind is detached by the next start
//! before it wipes the run's directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lazyfs::control::Client;
use nix::sys::signal::{kill as send_signal, Signal};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use super::{io_err, on_path, open_log, pid_of};
use crate::{ClusterError, Result};

/// How long a fresh mount may take to answer on its control socket.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an unmounting filesystem may take to exit after SIGTERM.
const UNMOUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// The program that mounts a lazy filesystem.
const LAZYFS_PROGRAM: &str = "dynamo-lazyfs";

/// Why local processes cannot lose power on this host, or `None` when they
/// can: the capability table's reason.
pub(crate) fn unavailable(node_binary: Option<&Path>) -> Option<&'static str> {
    if !Path::new("/dev/fuse").exists() {
        return Some("this host has no /dev/fuse to mount the lazy filesystem under the nodes");
    }
    if !nix::unistd::geteuid().is_root() {
        return Some("mounting the lazy filesystem under the nodes needs root (or use --backend docker)");
    }
    if lazyfs_binary(node_binary).is_none() {
        return Some("no dynamo-lazyfs binary beside dynamo-node or on PATH (cargo build --release --workspace)");
    }
    None
}

/// `dynamo-lazyfs` beside the node binary, else on PATH.
pub(crate) fn lazyfs_binary(node_binary: Option<&Path>) -> Option<PathBuf> {
    let beside = node_binary.and_then(Path::parent).map(|dir| dir.join(LAZYFS_PROGRAM));
    beside.filter(|p| p.is_file()).or_else(|| on_path(LAZYFS_PROGRAM))
}

/// One node's lazy filesystem: its process, where it keeps the bytes and
/// where it is told what to drop.
pub(crate) struct LazyMount {
    /// The node's data directory: the mount point.
    mount: PathBuf,
    /// The host directory that holds what was synced.
    backing: PathBuf,
    /// Its control socket.
    control: PathBuf,
    /// The mounting process (it serves the filesystem until SIGTERM).
    process: Mutex<Option<Child>>,
}

impl LazyMount {
    /// Mounts a lazy filesystem at `mount` over `backing`, logging to
    /// `log`, and waits until it answers.
    pub(crate) async fn start(binary: &Path, mount: &Path, backing: &Path, log: &Path) -> Result<LazyMount> {
        for dir in [mount, backing] {
            std::fs::create_dir_all(dir).map_err(|s| io_err(format!("create {}", dir.display()), s))?;
        }
        let control = backing.with_extension("sock");
        let out = open_log(log)?;
        let err = out.try_clone().map_err(|s| io_err(format!("duplicate log handle {}", log.display()), s))?;
        let child = Command::new(binary)
            .arg("--backing")
            .arg(backing)
            .arg("--mount")
            .arg(mount)
            .arg("--control")
            .arg(&control)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            // A start that fails half way drops its mounts: their processes
            // must not outlive it (the next start detaches what they left).
            .kill_on_drop(true)
            .spawn()
            .map_err(|s| io_err(format!("spawn {} for {}", binary.display(), mount.display()), s))?;
        let lazy = LazyMount {
            mount: mount.to_path_buf(),
            backing: backing.to_path_buf(),
            control,
            process: Mutex::new(Some(child)),
        };
        if let Err(e) = lazy.wait_answering(log).await {
            if let Err(stop) = lazy.stop().await {
                tracing::warn!(error = %stop, "could not unmount the lazyfs that never answered");
            }
            return Err(e);
        }
        Ok(lazy)
    }

    /// Polls the control socket until the filesystem answers `ping`; a
    /// process that exited first is reported with its log's last line.
    async fn wait_answering(&self, log: &Path) -> Result<()> {
        let deadline = tokio::time::Instant::now() + MOUNT_TIMEOUT;
        loop {
            if let Some(status) = self.exited().await? {
                let last = std::fs::read_to_string(log).unwrap_or_default();
                let last = last.lines().last().unwrap_or("").to_string();
                return Err(ClusterError::Other(format!(
                    "lazyfs could not mount {} ({status}): {last}",
                    self.mount.display()
                )));
            }
            if Client::connect(&self.control).and_then(|mut c| c.ping()).is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClusterError::Other(format!(
                    "lazyfs at {} did not answer on {} within {} s",
                    self.mount.display(),
                    self.control.display(),
                    MOUNT_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The mounting process's exit status, if it has exited.
    async fn exited(&self) -> Result<Option<std::process::ExitStatus>> {
        let mut guard = self.process.lock().await;
        let Some(child) = guard.as_mut() else { return Ok(Some(std::process::ExitStatus::default())) };
        child.try_wait().map_err(|s| io_err(format!("check lazyfs at {}", self.mount.display()), s))
    }

    /// Drops every write not yet synced (the node must be down); what was
    /// lost, as the nemesis event records it.
    pub(crate) fn lose_unsynced(&self) -> Result<serde_json::Value> {
        let bad =
            |e: lazyfs::LazyError| ClusterError::Other(format!("lose-unsynced at {}: {e}", self.control.display()));
        let loss = Client::connect(&self.control).and_then(|mut c| c.lose_unsynced()).map_err(bad)?;
        tracing::info!(mount = %self.mount.display(), dropped_bytes = loss.dropped_bytes, "power lost");
        Ok(serde_json::to_value(loss).expect("a loss report serializes"))
    }

    /// Unmounts: SIGTERM, a bounded wait, then a lazy detach if the mount
    /// is still there (a process that did not exit is killed).
    pub(crate) async fn stop(&self) -> Result<()> {
        if let Some(mut child) = self.process.lock().await.take() {
            if let Some(pid) = pid_of(&child) {
                let _ = send_signal(pid, Signal::SIGTERM);
            }
            if tokio::time::timeout(UNMOUNT_TIMEOUT, child.wait()).await.is_err() {
                tracing::warn!(mount = %self.mount.display(), "lazyfs did not exit on SIGTERM; killing it");
                let _ = child.kill().await;
            }
        }
        detach_stale(&self.mount)?;
        assert!(!lazyfs::mount::is_mounted(&self.mount), "{} is still mounted", self.mount.display());
        tracing::debug!(mount = %self.mount.display(), backing = %self.backing.display(), "lazyfs unmounted");
        Ok(())
    }
}

/// Detaches whatever is mounted at `path` (a killed workbench's leftover).
pub(crate) fn detach_stale(path: &Path) -> Result<()> {
    let detached = lazyfs::mount::unmount_stale(path)
        .map_err(|e| ClusterError::Other(format!("unmount the stale lazyfs at {}: {e}", path.display())))?;
    if detached {
        tracing::info!(mount = %path.display(), "stale lazyfs mount detached");
    }
    Ok(())
}

/// Detaches every stale mount under a run's data directory, before it is
/// wiped (a wipe cannot cross a dead FUSE mount).
pub(crate) fn detach_all_under(data_root: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(data_root) else { return Ok(()) };
    for entry in entries.flatten() {
        if lazyfs::mount::is_mounted(&entry.path()) {
            detach_stale(&entry.path())?;
        }
    }
    Ok(())
}
