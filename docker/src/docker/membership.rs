//! Growing and shrinking a running [`DockerCluster`]: membership-change
//! experiments need a node that joins mid-run and one that leaves.
//!
//! A new node gets the next free address on the run's bridge network (never
//! a departed node's: peers may still hold connections to it), the full
//! `--peers` list (the current nodes and itself), the spec's node flags
//! plus the caller's extra ones (e.g. `--join true --seed-node n1=...`), and
//! the same labels as every other container, so teardown and leftover
//! cleanup find it. Removing a node saves its log and force-removes its
//! container; [`crate::Cluster::leave_node`] decommissions it first
//! (`Admin.Leave`), so its data goes to the new owners, not with it. The
//! protocol half of joining and leaving is in `ring_change.rs`.

use std::net::Ipv4Addr;

use super::{force_remove_container, peers_arg, write_log, DockerCluster, NodeContainer};
use crate::ring_change::Members;
use crate::store::StoreKind;
use crate::{ClusterError, Result};

#[async_trait::async_trait]
impl Members for DockerCluster {
    fn store(&self) -> StoreKind {
        self.store
    }

    async fn start_member(&self, id: &str, extra_args: Vec<String>) -> Result<()> {
        self.add_node(id, &extra_args).await
    }

    async fn remove_member(&self, id: &str) -> Result<()> {
        self.remove_node(id).await
    }
}

impl DockerCluster {
    /// Creates and starts a container for node `id` with `extra_args`
    /// appended to its command line, and waits until it answers.
    pub async fn add_node(&self, id: &str, extra_args: &[String]) -> Result<()> {
        let _change = self.membership_change.lock().await;
        if self.roster().iter().any(|n| n.id == id) {
            return Err(ClusterError::Other(format!("node {id} already exists")));
        }
        let node = NodeContainer {
            id: id.to_string(),
            container: format!("dwb-{}-{id}", self.spec.name),
            ip: self.next_ip()?,
        };
        let mut all = self.roster();
        all.push(node.clone());
        let mut body = self.container_body(&node, &peers_arg(&all));
        body.cmd.get_or_insert_with(Vec::new).extend(extra_args.iter().cloned());
        let opts = bollard::query_parameters::CreateContainerOptionsBuilder::new().name(&node.container).build();
        self.docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| super::docker_err(format!("create container {}", node.container), e))?;
        // A member from here on: teardown must find the container even if the start fails.
        self.nodes.write().expect("the node list lock is never poisoned").push(node.clone());
        self.start_container(&node).await?;
        self.wait_node_ready(&node).await?;
        self.reinstall_links().await;
        tracing::info!(run = %self.spec.name, node = id, ip = %node.ip, "node added");
        Ok(())
    }

    /// Saves node `id`'s log, force-removes its container and forgets the node.
    pub async fn remove_node(&self, id: &str) -> Result<()> {
        let _change = self.membership_change.lock().await;
        let node = self.node(id)?;
        self.save_log(&node).await?;
        force_remove_container(&self.docker, &node.container).await?;
        self.nodes.write().expect("the node list lock is never poisoned").retain(|n| n.id != id);
        tracing::info!(run = %self.spec.name, node = id, "node removed");
        Ok(())
    }

    /// Writes what `node`'s container printed into the log directory.
    pub(super) async fn save_log(&self, node: &NodeContainer) -> Result<()> {
        tokio::fs::create_dir_all(&self.spec.log_dir).await.map_err(|source| ClusterError::Io {
            context: format!("create log dir {}", self.spec.log_dir.display()),
            source,
        })?;
        let bytes = self.container_logs(node).await?;
        write_log(&self.spec.log_dir.join(format!("{}.log", node.id)), &bytes).await
    }

    /// The address after the highest one ever given out on the run's subnet.
    fn next_ip(&self) -> Result<Ipv4Addr> {
        let mut highest = self.highest_ip.lock().expect("the address lock is never poisoned");
        let [a, b, c, d] = highest.octets();
        if d >= 254 {
            return Err(ClusterError::Other("the run's subnet is full".into()));
        }
        *highest = Ipv4Addr::new(a, b, c, d + 1);
        Ok(*highest)
    }
}
