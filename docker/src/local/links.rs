//! Link faults on a local cluster, performed by link proxies in this
//! process, one in front of each node (what a fault means: `link_plan.rs`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use linkproxy::{Proxy, ProxyConfig};
use serde_json::{json, Value};

use super::LocalCluster;
use crate::link_plan::{sides, LinkPlan, ProxyFleet};
use crate::{ClusterError, Result};

impl LocalCluster {
    /// Starts `id`'s proxy on `ip:port`, forwarding to the node's inner
    /// port, naming every member by its address, and names the newcomer in
    /// the proxies already running.
    pub(super) async fn start_proxy(
        &self,
        id: &str,
        ip: Ipv4Addr,
        (port, inner_port): (u16, u16),
        seed: u64,
    ) -> Result<Arc<Proxy>> {
        let members = self.roster();
        let mut sources: BTreeMap<IpAddr, String> = members.iter().map(|n| (IpAddr::V4(n.ip), n.id.clone())).collect();
        sources.insert(IpAddr::V4(ip), id.to_string());
        let config = ProxyConfig {
            node: id.to_string(),
            listen: SocketAddr::from((ip, port)),
            upstream: SocketAddr::from((ip, inner_port)),
            sources,
            // One stream of draws per node, all from the run's seed.
            seed: seed ^ u64::from(u32::from(ip)),
        };
        let proxy =
            Proxy::start(config).await.map_err(|e| ClusterError::Other(format!("start {id}'s link proxy: {e}")))?;
        for member in &members {
            if let Some(other) = &member.proxy {
                other.name_source(IpAddr::V4(ip), id);
            }
        }
        let proxy = Arc::new(proxy);
        let mut members: Vec<String> = members.iter().map(|n| n.id.clone()).collect();
        members.push(id.to_string());
        install(&*self.links.lock().await, &sides(members), &[(id.to_string(), Arc::clone(&proxy))]);
        Ok(proxy)
    }

    /// Every node's id and proxy.
    fn proxies(&self) -> Vec<(String, Arc<Proxy>)> {
        self.roster().iter().filter_map(|n| n.proxy.clone().map(|p| (n.id.clone(), p))).collect()
    }
}

/// Installs `plan` in `proxies`: each link of each proxy's node to every one of `sides`.
fn install(plan: &LinkPlan, sides: &[String], proxies: &[(String, Arc<Proxy>)]) {
    for (node, proxy) in proxies {
        for (link, fault) in plan.links_of(node, sides) {
            proxy.set(link, fault).expect("a plan's faults are valid");
        }
    }
}

#[async_trait::async_trait]
impl ProxyFleet for LocalCluster {
    fn link_plan(&self) -> &tokio::sync::Mutex<LinkPlan> {
        &self.links
    }

    async fn install_everywhere(&self, plan: &LinkPlan) -> Vec<String> {
        let sides = sides(self.roster().iter().map(|n| n.id.clone()));
        install(plan, &sides, &self.proxies());
        Vec::new()
    }

    async fn faulted(&self) -> Value {
        let mut links = serde_json::Map::new();
        for (_, proxy) in self.proxies() {
            for link in proxy.status().links.into_iter().filter(|l| l.fault.is_some()) {
                links.insert(format!("{}->{}", link.from, link.to), json!(link.fault));
            }
        }
        Value::Object(links)
    }
}
