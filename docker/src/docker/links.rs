//! Link faults on a Docker cluster, performed by the `dynamo-linkproxy`
//! inside each node's container (what a fault means: `link_plan.rs`).
//!
//! Why a proxy in the container: where the kernel has no `sch_netem`
//! (`tc qdisc add ... netem` says "Specified qdisc kind is unknown"),
//! latency and loss cannot be put on a container's interface at all. The
//! image carries `dynamo-linkproxy`; when the cluster's spec asks for link
//! proxies, the entrypoint starts it in the background on the node's
//! public port [`NODE_PORT`], in front of the node, which listens on
//! [`PROXIED_NODE_PORT`] on the container's loopback only, so nothing
//! reaches the node around the proxy. Peers are told apart by source
//! address (each container has its own), the harness's connections come
//! from the bridge's gateway and are `client`. The node is still PID 1
//! (the wrapper `exec`s it), so SIGSTOP pauses it alone while its proxy,
//! like a kernel's TCP stack, keeps accepting.
//!
//! The workbench drives the proxies over their line-JSON control sockets
//! on [`CONTROL_PORT`] of each container's bridge address: one connection
//! per proxy per change, every member named and every link of the node
//! set. A killed node's proxy dies with it and comes back with the
//! container, empty: [`DockerCluster::reinstall_links`] puts the plan in
//! force back after a restart or a join.

use std::net::IpAddr;

use serde_json::Value;

use super::{DockerCluster, NodeContainer};
use crate::link_plan::{faulted_of, install_all, proxy_args, LinkPlan, ProxyFleet};
pub use crate::link_plan::{CONTROL_PORT, PROXIED_NODE_PORT};

/// The `dynamo-linkproxy` command line for `node`, started by the
/// entrypoint wrapper: every member named by its address, draws seeded
/// from the run's seed and the node's address (one stream per node).
pub(super) fn proxy_command(node: &NodeContainer, members: &[NodeContainer], seed: u64) -> String {
    let args = proxy_args(&node.id, IpAddr::V4(node.ip), &addresses(members), seed);
    format!("dynamo-linkproxy {}", args.join(" "))
}

/// Each member's id and address, as the proxies name them.
fn addresses(members: &[NodeContainer]) -> Vec<(String, IpAddr)> {
    members.iter().map(|m| (m.id.clone(), IpAddr::V4(m.ip))).collect()
}

impl DockerCluster {
    /// Whether the nodes run behind link proxies.
    pub(super) fn proxied(&self) -> bool {
        self.spec.link_proxy.is_some() && self.store == crate::StoreKind::Dynamo
    }

    /// Puts the plan in force into every proxy again: after a restart (the
    /// proxy came back empty) or a join (every proxy must name the newcomer).
    pub(super) async fn reinstall_links(&self) {
        if !self.proxied() {
            return;
        }
        let plan = self.links.lock().await;
        let unreachable = self.install_everywhere(&plan).await;
        if !unreachable.is_empty() {
            tracing::warn!(run = %self.spec.name, ?unreachable, "link proxies missed the faults in force");
        }
    }
}

#[async_trait::async_trait]
impl ProxyFleet for DockerCluster {
    fn link_plan(&self) -> &tokio::sync::Mutex<LinkPlan> {
        &self.links
    }

    async fn install_everywhere(&self, plan: &LinkPlan) -> Vec<String> {
        install_all(plan, &addresses(&self.roster())).await
    }

    async fn faulted(&self) -> Value {
        faulted_of(&addresses(&self.roster())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linkproxy::Request;
    use std::net::Ipv4Addr;

    fn node(id: &str, last: u8) -> NodeContainer {
        NodeContainer { id: id.into(), container: format!("dwb-t-{id}"), ip: Ipv4Addr::new(10, 213, 7, last) }
    }

    #[test]
    fn the_proxy_names_every_member_and_fronts_the_public_port() {
        let members = [node("n1", 11), node("n2", 12)];
        let command = proxy_command(&members[0], &members, 42);
        assert!(
            command.starts_with("dynamo-linkproxy --node n1 --listen 0.0.0.0:7000 --upstream 127.0.0.1:7001"),
            "{command}"
        );
        assert!(command.ends_with("--source n1=10.213.7.11 --source n2=10.213.7.12"), "{command}");
        assert!(command.contains(&format!("--seed {}", 42 ^ u64::from(u32::from(members[0].ip)))), "{command}");
    }

    #[test]
    fn a_change_names_the_others_then_sets_each_link_of_the_node() {
        let members = [node("n1", 11), node("n2", 12), node("n3", 13)];
        let requests = crate::link_plan::requests_for("n1", &LinkPlan::default(), &addresses(&members));
        let names = requests.iter().filter(|r| matches!(r, Request::Name { .. })).count();
        let sets = requests.iter().filter(|r| matches!(r, Request::Set { .. })).count();
        assert_eq!((names, sets), (2, 6), "n2 and n3 named; to and from n2, n3 and client");
    }
}
