//! Power loss in a container: the node's data directory on a lazy
//! filesystem (`dynamo-lazyfs`), which holds unsynced writes in memory and
//! drops them on command.
//!
//! Only a run that may cut power ([`crate::ClusterSpec::power_loss`]) is
//! built this way: every write then crosses FUSE, and the container needs
//! the host's `/dev/fuse`, `CAP_SYS_ADMIN` and, where AppArmor confines
//! containers, `apparmor=unconfined` (Docker's default profile denies
//! `mount`). A host without `/dev/fuse` is refused before any container
//! starts, and a container that cannot mount stops with a line naming what
//! is missing, which [`DockerCluster::wait_mounted`] reports at once.
//!
//! Why the node is not PID 1 here: a SIGKILL of PID 1 stops the container,
//! and with it the lazy filesystem, whose held writes would be gone
//! without a [`LossReport`] and whose namespace changes would stay undone
//! by nobody (see `lazyfs/src/lib.rs`). So PID 1 is a shell that mounts
//! `/data` over [`BACKING_DIR`] (a volume: the disk), starts the node in
//! the background, and then waits on the lazy filesystem for the
//! container's life. The node writes its pid to [`NODE_PID_FILE`]; kill,
//! pause and resume signal that pid through `docker exec`, and a restart
//! starts the node again in the running container (`docker exec`, its
//! output sent to PID 1's, so the container log stays the node's log).
//!
//! A power loss is then: SIGKILL the node and wait until it is gone (no
//! write can follow), `lose-unsynced` on the control socket ([`CONTROL_SOCKET`],
//! through `dynamo-lazyfs --ctl` inside the container, which prints the
//! loss as JSON), and later a restart on what the backing directory kept.
//! A plain kill in such a run leaves the held writes alone: a process crash
//! does not empty the page cache. Removing the container ends the lazy
//! filesystem and its mount namespace, so no mount outlives it, and the
//! backing volume goes with the container (`v`).

use std::path::Path;
use std::time::Duration;

use bollard::exec::StartExecOptions;
use bollard::models::{DeviceMapping, ExecConfig, HostConfig};
use lazyfs::control::Command;
use lazyfs::LossReport;

use super::{docker_err, exec_in, DockerCluster, NodeContainer};
use crate::{Cluster, ClusterError, Result};

/// The lazy filesystem's backing directory in the container: a volume,
/// what the disk keeps across a power loss.
pub(super) const BACKING_DIR: &str = "/data-backing";

/// Where the lazy filesystem is mounted: the node's `--data-dir`.
const MOUNT_DIR: &str = "/data";

/// The lazy filesystem's control socket in the container.
pub(super) const CONTROL_SOCKET: &str = "/run/lazyfs.sock";

/// Where the node's start script writes the node's pid.
const NODE_PID_FILE: &str = "/run/dynamo-node.pid";

/// The FUSE device, on the host and in the container.
const FUSE_DEVICE: &str = "/dev/fuse";

/// How long a container may take to mount its lazy filesystem.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a SIGKILLed node may take to be gone, in tenths of a second
/// (the kill script's poll).
const GONE_POLLS: u32 = 100;

/// Fails unless this host can give a container FUSE: the device must exist.
pub(super) fn check_host() -> Result<()> {
    if Path::new(FUSE_DEVICE).exists() {
        return Ok(());
    }
    Err(ClusterError::Other(format!(
        "power-loss needs FUSE: {FUSE_DEVICE} is missing on the Docker host (load the module: modprobe fuse)"
    )))
}

/// Whether the host's kernel runs AppArmor (Docker then confines every
/// container with a profile that denies `mount`).
fn host_has_apparmor() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

/// Adds what mounting FUSE in the container needs: the device,
/// `CAP_SYS_ADMIN`, and no AppArmor confinement where AppArmor runs.
pub(super) fn allow_fuse(host: &mut HostConfig) {
    host.cap_add.get_or_insert_with(Vec::new).push("SYS_ADMIN".to_string());
    host.devices.get_or_insert_with(Vec::new).push(DeviceMapping {
        path_on_host: Some(FUSE_DEVICE.to_string()),
        path_in_container: Some(FUSE_DEVICE.to_string()),
        cgroup_permissions: Some("rwm".to_string()),
    });
    if host_has_apparmor() {
        host.security_opt.get_or_insert_with(Vec::new).push("apparmor=unconfined".to_string());
    }
}

/// The script that starts the node (`node_wrapper` execs it with `"$@"`):
/// output to PID 1's, its pid in [`NODE_PID_FILE`]. The same for the first
/// start and every restart.
fn node_start(node_wrapper: &str) -> String {
    format!("exec >/proc/1/fd/1 2>/proc/1/fd/2; echo $$ > {NODE_PID_FILE}; {node_wrapper}")
}

/// PID 1's script: mount, then start `proxy` (if any) and the node in the
/// background, then live as long as the lazy filesystem does. A missing
/// device or a refused mount stops it with a line that says which.
pub(super) fn entry_script(node_wrapper: &str, proxy: Option<String>) -> String {
    assert!(!node_wrapper.contains('\''), "the node wrapper is quoted in single quotes");
    let ctl = format!("dynamo-lazyfs --control {CONTROL_SOCKET} --ctl {}", Command::Ping.word());
    let polls = MOUNT_TIMEOUT.as_millis() / 100;
    let proxy = proxy.map(|p| format!("{p} & ")).unwrap_or_default();
    format!(
        "[ -c {FUSE_DEVICE} ] || {{ echo 'power-loss: no {FUSE_DEVICE} in the container (the device was not passed)' >&2; exit 1; }}; \
         mkdir -p {BACKING_DIR} {MOUNT_DIR}; \
         dynamo-lazyfs --backing {BACKING_DIR} --mount {MOUNT_DIR} --control {CONTROL_SOCKET} & lazyfs=$!; \
         i=0; until {ctl} >/dev/null 2>&1; do \
           kill -0 $lazyfs 2>/dev/null || {{ echo 'power-loss: lazyfs could not mount {MOUNT_DIR}: \
             it needs {FUSE_DEVICE} and CAP_SYS_ADMIN, and apparmor=unconfined where AppArmor runs' >&2; exit 1; }}; \
           i=$((i+1)); [ $i -lt {polls} ] || {{ echo 'power-loss: lazyfs did not answer on {CONTROL_SOCKET}' >&2; exit 1; }}; \
           sleep 0.1; \
         done; \
         {proxy}sh -c '{}' dynamo-node \"$@\" & \
         wait $lazyfs",
        node_start(node_wrapper)
    )
}

/// The script that sends `signal` (`SIGKILL`, `SIGSTOP`, ...) to the node
/// process; after a SIGKILL it waits until the process is gone (or a zombie,
/// its files closed), so no write of it can follow.
fn signal_script(signal: &str) -> String {
    let name = signal.trim_start_matches("SIG");
    let mut script = format!("pid=$(cat {NODE_PID_FILE}) && kill -s {name} \"$pid\" || exit 1");
    if name == "KILL" {
        script.push_str(&format!(
            "; i=0; while [ $i -lt {GONE_POLLS} ]; do \
               s=$(sed -n 's/^State:[[:space:]]*\\([A-Z]\\).*/\\1/p' /proc/$pid/status 2>/dev/null); \
               case \"$s\" in ''|Z) exit 0;; esac; i=$((i+1)); sleep 0.1; \
             done; echo \"node process $pid still there after SIGKILL\" >&2; exit 1"
        ));
    }
    script
}

impl DockerCluster {
    /// Whether this cluster's nodes run on a lazy filesystem.
    pub(super) fn on_lazyfs(&self) -> bool {
        self.spec.power_loss && self.store == crate::StoreKind::Dynamo
    }

    /// Runs `script` with `sh -c` in `node`'s container; its stdout, or an
    /// error with its exit status and stderr.
    async fn sh(&self, node: &str, what: &str, script: &str) -> Result<String> {
        let out = Cluster::exec(self, node, &["sh", "-c", script]).await?;
        if out.exit_code != 0 {
            return Err(ClusterError::Other(format!(
                "{what} on {node}: exit {}: {}",
                out.exit_code,
                out.stderr.trim()
            )));
        }
        Ok(out.stdout)
    }

    /// Sends `signal` to the node process in its (running) container.
    pub(super) async fn signal_node_process(&self, node: &str, signal: &str) -> Result<()> {
        self.sh(node, &format!("send {signal} to the node process"), &signal_script(signal)).await?;
        tracing::info!(node, signal, "signal sent to the node process");
        Ok(())
    }

    /// Drops every write of `node` not yet synced; what was lost.
    pub(super) async fn lose_unsynced(&self, node: &str) -> Result<LossReport> {
        let argv = ["dynamo-lazyfs", "--control", CONTROL_SOCKET, "--ctl", Command::LoseUnsynced.word()];
        let out = Cluster::exec(self, node, &argv).await?;
        crate::loss_answer::loss_of(node, &out)
    }

    /// Starts the node process again in its running container, with the
    /// arguments the container was created with.
    pub(super) async fn start_node_process(&self, n: &NodeContainer) -> Result<()> {
        let context = || format!("start the node process in {}", n.container);
        let inspect = self.docker.inspect_container(&n.container, None).await.map_err(|e| docker_err(context(), e))?;
        let args = inspect.config.and_then(|c| c.cmd).unwrap_or_default();
        let mut cmd = vec!["sh".to_string(), "-c".to_string(), node_start(self.node_wrapper()), "dynamo-node".into()];
        cmd.extend(args);
        let config = ExecConfig { cmd: Some(cmd), ..Default::default() };
        let created = self.docker.create_exec(&n.container, config).await.map_err(|e| docker_err(context(), e))?;
        let detached = StartExecOptions { detach: true, tty: false, output_capacity: None };
        self.docker.start_exec(&created.id, Some(detached)).await.map_err(|e| docker_err(context(), e))?;
        Ok(())
    }

    /// Waits until `n`'s lazy filesystem answers on its control socket; a
    /// container that stopped first is reported with its last words (the
    /// entrypoint's line naming the missing device or capability).
    pub(super) async fn wait_mounted(&self, n: &NodeContainer) -> Result<()> {
        let deadline = tokio::time::Instant::now() + MOUNT_TIMEOUT;
        let ping = ["dynamo-lazyfs", "--control", CONTROL_SOCKET, "--ctl", Command::Ping.word()];
        loop {
            if !self.is_running(n).await? {
                let log = String::from_utf8_lossy(&self.container_logs(n).await?).trim().to_string();
                return Err(ClusterError::Other(format!("{} stopped before its lazy filesystem mounted: {log}", n.id)));
            }
            if exec_in(&self.docker, &n.container, &ping).await.is_ok_and(|out| out.exit_code == 0) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClusterError::Other(format!(
                    "{}: lazyfs did not answer on {CONTROL_SOCKET} within {} s",
                    n.id,
                    MOUNT_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether `n`'s container is running.
    async fn is_running(&self, n: &NodeContainer) -> Result<bool> {
        let inspect = self
            .docker
            .inspect_container(&n.container, None)
            .await
            .map_err(|e| docker_err(format!("inspect {}", n.container), e))?;
        Ok(inspect.state.and_then(|s| s.running).unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_script_mounts_before_the_node_and_waits_on_the_mount() {
        let script = entry_script("exec /usr/local/bin/dynamo-node \"$@\"", None);
        let mount = script.find("--mount /data").unwrap();
        let node = script.find("exec /usr/local/bin/dynamo-node").unwrap();
        assert!(mount < node, "{script}");
        assert!(script.trim_end().ends_with("wait $lazyfs"), "{script}");
        assert!(script.contains(NODE_PID_FILE));
    }

    #[test]
    fn only_a_kill_waits_for_the_process_to_be_gone() {
        assert!(signal_script("SIGKILL").contains("kill -s KILL") && signal_script("SIGKILL").contains("/status"));
        assert!(!signal_script("SIGSTOP").contains("/status"));
    }
}
