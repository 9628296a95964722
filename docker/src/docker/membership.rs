//! Growing and shrinking a running [`DockerCluster`]: membership-change
//! experiments need a node that joins mid-run and one that leaves.
//!
//! A new node gets the next free address on the run's bridge network, the
//! full `--peers` list (the current nodes and itself), the spec's node flags
//! plus the caller's extra ones (e.g. `--join true --seed-node n1=...`), and
//! the same labels as every other container, so teardown and leftover
//! cleanup find it. Removing a node force-removes its container; the node
//! should have been decommissioned first (`Admin.Leave`) if its data matters.

use std::net::Ipv4Addr;

use super::{force_remove_container, peers_arg, DockerCluster, NodeContainer};
use crate::{ClusterError, Result};

impl DockerCluster {
    /// Creates and starts a container for node `id` with `extra_args`
    /// appended to its command line, and waits until it answers.
    pub async fn add_node(&mut self, id: &str, extra_args: &[String]) -> Result<()> {
        if self.nodes.iter().any(|n| n.id == id) {
            return Err(ClusterError::Other(format!("node {id} already exists")));
        }
        let node = NodeContainer {
            id: id.to_string(),
            container: format!("dwb-{}-{id}", self.spec.name),
            ip: self.next_ip()?,
        };
        let mut all = self.nodes.clone();
        all.push(node.clone());
        let mut body = self.container_body(&node, &peers_arg(&all));
        body.cmd.get_or_insert_with(Vec::new).extend(extra_args.iter().cloned());
        let opts = bollard::query_parameters::CreateContainerOptionsBuilder::new()
            .name(&node.container)
            .build();
        self.docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| super::docker_err(format!("create container {}", node.container), e))?;
        self.nodes.push(node.clone());
        self.spec.nodes.push(id.to_string());
        self.start_container(&node).await?;
        self.wait_node_ready(&node).await?;
        tracing::info!(run = %self.spec.name, node = id, ip = %node.ip, "node added");
        Ok(())
    }

    /// Force-removes node `id`'s container and forgets the node.
    pub async fn remove_node(&mut self, id: &str) -> Result<()> {
        let index = self
            .nodes
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(|| ClusterError::UnknownNode(id.to_string()))?;
        force_remove_container(&self.docker, &self.nodes[index].container).await?;
        self.nodes.remove(index);
        self.spec.nodes.retain(|n| n != id);
        tracing::info!(run = %self.spec.name, node = id, "node removed");
        Ok(())
    }

    /// The address after the highest one in use on the run's subnet.
    fn next_ip(&self) -> Result<Ipv4Addr> {
        let highest = self
            .nodes
            .iter()
            .map(|n| n.ip)
            .max()
            .ok_or_else(|| ClusterError::Other("a cluster without nodes cannot grow".into()))?;
        let [a, b, c, d] = highest.octets();
        if d >= 254 {
            return Err(ClusterError::Other("the run's subnet is full".into()));
        }
        Ok(Ipv4Addr::new(a, b, c, d + 1))
    }
}
