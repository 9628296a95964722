//! A stopped node container's data files, reached through a throwaway
//! container that mounts its volumes (`--volumes-from`), for the `corrupt`
//! nemesis.
//!
//! Why a helper container: a killed node's container is stopped, so
//! nothing can be exec'd in it, and its `/data` is an anonymous volume the
//! host need not see (no bind mounts). A short-lived container from the
//! same image (it has `sh`, `dd`, `od`, `stat` and `truncate`), with no
//! network, runs one script from [`crate::file_damage`] against the volume
//! and is removed; it carries the run's labels, so a crash in between
//! leaves nothing the next start's cleanup would miss.

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, WaitContainerOptionsBuilder};
use futures::StreamExt;

use super::{docker_err, force_remove_container, labels, DockerCluster, NodeContainer};
use crate::{file_damage, ClusterError, DataFile, FileDamage, Result};

/// Where the node image keeps its data (the node's `--data-dir`).
const DATA_DIR: &str = "/data";

impl DockerCluster {
    /// Lists a stopped node's data files.
    pub(super) async fn volume_files(&self, node: &str) -> Result<Vec<DataFile>> {
        let out = self.on_volume(node, "ls", &file_damage::list_script(DATA_DIR)).await?;
        file_damage::parse_listing(&out)
    }

    /// Applies `damage` to a stopped node's data.
    pub(super) async fn damage_volume(&self, node: &str, damage: &FileDamage) -> Result<()> {
        let script = file_damage::damage_script(DATA_DIR, damage)?;
        let out = self.on_volume(node, "damage", &script).await?;
        tracing::info!(node, ?damage, done = out.trim(), "data file damaged");
        Ok(())
    }

    /// Runs `script` in a helper container with `node`'s volumes; returns
    /// its output, or an error with it when the script fails.
    async fn on_volume(&self, node: &str, what: &str, script: &str) -> Result<String> {
        let n = self.node(node)?;
        self.ensure_stopped(&n).await?;
        let name = format!("{}-{what}", n.container);
        let body = ContainerCreateBody {
            image: Some(self.image_tag.clone()),
            entrypoint: Some(vec!["sh".into(), "-c".into()]),
            cmd: Some(vec![script.to_string()]),
            labels: Some(labels(&self.spec.name)),
            host_config: Some(HostConfig {
                volumes_from: Some(vec![n.container.clone()]),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        force_remove_container(&self.docker, &name).await?;
        let opts = CreateContainerOptionsBuilder::new().name(&name).build();
        self.docker.create_container(Some(opts), body).await.map_err(|e| docker_err(format!("create {name}"), e))?;
        let ran = self.run_to_end(&name).await;
        force_remove_container(&self.docker, &name).await?;
        let (code, out) = ran?;
        if code != 0 {
            return Err(ClusterError::Other(format!("{what} on the data of {node} exited {code}: {}", out.trim())));
        }
        Ok(out)
    }

    /// Starts `name`, waits for it to exit; returns its exit code and output.
    async fn run_to_end(&self, name: &str) -> Result<(i64, String)> {
        self.docker.start_container(name, None).await.map_err(|e| docker_err(format!("start {name}"), e))?;
        let opts = WaitContainerOptionsBuilder::new().condition("not-running").build();
        let mut waits = self.docker.wait_container(name, Some(opts));
        let code = match waits.next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(docker_err(format!("wait for {name}"), e)),
            None => -1,
        };
        let out = self.logs_of(name).await?;
        Ok((code, String::from_utf8_lossy(&out).into_owned()))
    }

    /// Fails while the node's container still runs (it must be killed first).
    async fn ensure_stopped(&self, n: &NodeContainer) -> Result<()> {
        let inspect = self
            .docker
            .inspect_container(&n.container, None)
            .await
            .map_err(|e| docker_err(format!("inspect {}", n.container), e))?;
        let running = inspect.state.and_then(|s| s.running).unwrap_or(false);
        if running {
            return Err(ClusterError::Other(format!("node {} is still running; kill it first", n.id)));
        }
        Ok(())
    }
}
