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

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use linkproxy::Request;
use serde_json::{json, Value};

use super::{DockerCluster, NodeContainer};
use crate::link_plan::{sides, LinkPlan, ProxyFleet};
use crate::NODE_PORT;

/// Where the node listens behind its proxy, on the container's loopback.
pub const PROXIED_NODE_PORT: u16 = NODE_PORT + 1;

/// The proxy's control socket, on the container's bridge address.
pub const CONTROL_PORT: u16 = 7100;

/// How long one proxy may take to take a change: a stopped container's
/// address answers nothing, and a change must not wait on it for long.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(2);

/// The `dynamo-linkproxy` command line for `node`, started by the
/// entrypoint wrapper: every member named by its address, draws seeded
/// from the run's seed and the node's address (one stream per node).
pub(super) fn proxy_command(node: &NodeContainer, members: &[NodeContainer], seed: u64) -> String {
    let mut command = format!(
        "dynamo-linkproxy --node {} --listen 0.0.0.0:{NODE_PORT} --upstream 127.0.0.1:{PROXIED_NODE_PORT} \
         --control 0.0.0.0:{CONTROL_PORT} --seed {}",
        node.id,
        seed ^ u64::from(u32::from(node.ip)),
    );
    for member in members {
        command.push_str(&format!(" --source {}={}", member.id, member.ip));
    }
    command
}

/// What `node`'s proxy must be told for `plan`: every member's name, then
/// the fault of each of its links.
fn requests_for(node: &str, plan: &LinkPlan, members: &[NodeContainer]) -> Vec<Request> {
    let mut requests: Vec<Request> = members
        .iter()
        .filter(|m| m.id != node)
        .map(|m| Request::Name { node: m.id.clone(), ip: IpAddr::V4(m.ip) })
        .collect();
    let sides = sides(members.iter().map(|m| m.id.clone()));
    for (link, fault) in plan.links_of(node, &sides) {
        requests.push(Request::Set { from: link.from, to: link.to, fault });
    }
    requests
}

/// Sends `requests` to the proxy at `ip`; an error says why it did not take all of them.
async fn send(ip: std::net::Ipv4Addr, requests: &[Request]) -> Result<Vec<Value>, String> {
    let addr = SocketAddr::from((ip, CONTROL_PORT));
    let answers = tokio::time::timeout(CONTROL_TIMEOUT, linkproxy::control::requests(addr, requests))
        .await
        .map_err(|_| format!("no answer within {} ms", CONTROL_TIMEOUT.as_millis()))?
        .map_err(|e| e.to_string())?;
    answers.into_iter().collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
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
        let members = self.roster();
        let sends = members.iter().map(|node| {
            let requests = requests_for(&node.id, plan, &members);
            async move { send(node.ip, &requests).await.err().map(|why| format!("{}: {why}", node.id)) }
        });
        futures::future::join_all(sends).await.into_iter().flatten().collect()
    }

    async fn faulted(&self) -> Value {
        let mut links = serde_json::Map::new();
        for node in self.roster() {
            match send(node.ip, &[Request::Status]).await {
                Ok(status) => {
                    for link in status[0]["links"].as_array().into_iter().flatten().filter(|l| !l["fault"].is_null()) {
                        let name =
                            format!("{}->{}", link["from"].as_str().unwrap_or("?"), link["to"].as_str().unwrap_or("?"));
                        links.insert(name, link["fault"].clone());
                    }
                }
                Err(why) => {
                    links.insert(format!("{} (proxy)", node.id), json!({"unreachable": why}));
                }
            }
        }
        Value::Object(links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let requests = requests_for("n1", &LinkPlan::default(), &members);
        let names = requests.iter().filter(|r| matches!(r, Request::Name { .. })).count();
        let sets = requests.iter().filter(|r| matches!(r, Request::Set { .. })).count();
        assert_eq!((names, sets), (2, 6), "n2 and n3 named; to and from n2, n3 and client");
    }
}
