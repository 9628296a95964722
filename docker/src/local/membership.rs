//! Growing and shrinking a running [`LocalCluster`], as the Docker backend
//! does with containers: a joiner is one more `dynamo-node` process on a
//! fresh pair of free loopback ports (on its own loopback address, with
//! its link proxy, when the cluster has proxies), with its own data directory and
//! faketime file, started with the current members and itself as `--peers`
//! plus the join flags; a leaver's process is stopped once `Admin.Leave`
//! has returned (its log file stays, its data directory goes at teardown
//! with the others). The protocol half is in `ring_change.rs`.

use std::sync::Arc;

use super::{free_ports, LocalCluster};
use crate::ring_change::Members;
use crate::store::StoreKind;
use crate::{ClusterError, Result};

#[async_trait::async_trait]
impl Members for LocalCluster {
    fn store(&self) -> StoreKind {
        self.store
    }

    /// Lays out and spawns node `id` as a member (so teardown stops it even
    /// if it never answers), then waits until it answers.
    async fn start_member(&self, id: &str, extra_args: Vec<String>) -> Result<()> {
        let node = {
            let _change = self.membership_change.lock().await;
            let members = self.roster();
            if members.iter().any(|n| n.id == id) {
                return Err(ClusterError::Other(format!("node {id} already exists")));
            }
            let ip = self.next_ip();
            let ports = free_ports(ip, 2)?;
            let mut peers: Vec<String> = members.iter().map(|n| format!("{}={}:{}", n.id, n.ip, n.port)).collect();
            peers.push(format!("{id}={ip}:{}", ports[0]));
            let node = Arc::new(self.lay_out(id, (ip, ports[0], ports[1]), peers.join(","), extra_args).await?);
            self.nodes.write().expect("the node list lock is never poisoned").push(Arc::clone(&node));
            self.spawn(&node).await?;
            node
        };
        self.wait_node_ready(&node).await?;
        tracing::info!(run = %self.spec.name, node = id, port = node.port, "node process added");
        Ok(())
    }

    async fn remove_member(&self, id: &str) -> Result<()> {
        let _change = self.membership_change.lock().await;
        let node = self.node(id)?;
        Self::stop_process(&node).await?;
        // Its lazy filesystem goes with it: teardown walks only the members.
        if let Some(lazy) = &node.lazy {
            lazy.stop().await?;
        }
        self.nodes.write().expect("the node list lock is never poisoned").retain(|n| n.id != id);
        tracing::info!(run = %self.spec.name, node = id, "node process removed");
        Ok(())
    }
}
