//! Link faults on a local cluster, performed by the link proxies in front
//! of its nodes.
//!
//! What the nemeses asked for is kept as one [`LinkPlan`] (directed cuts,
//! held pairs, slowed nodes), and every change recomputes the fault of each
//! directed link and installs it in both proxies that carry the link: a
//! link A->B runs through B's proxy (A's requests to B) and through A's
//! (A's answers on the connections B opened), so a one-way cut is one-way
//! whoever dialed. The fault of a link is the union of what is in force:
//! a cut is a blackhole (an iptables DROP: bytes vanish, connections stay
//! open, the node's HTTP/2 keep-alive notices), a held pair reads nothing
//! until released (the simulator's hold: everything arrives at the
//! release), and a slowed node's links in both directions, the harness's
//! `client` links included (netem on a node's interface slows its answers
//! to clients as well), get normally distributed latency and loss as
//! delayed chunks (a retransmission, the stream intact).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use linkproxy::{Distribution, Link, LinkFault, Proxy, ProxyConfig, CLIENT};
use serde_json::{json, Value};

use super::LocalCluster;
use crate::{ClusterError, LinkFaults, Result};

/// The mechanism every event of these faults records.
pub const MECHANISM: &str = "linkproxy";

/// The faults in force, as the nemeses asked for them.
#[derive(Debug, Default)]
pub struct LinkPlan {
    /// Directed cuts (`from`, `to`): blackholed.
    cuts: BTreeSet<(String, String)>,
    /// Unordered pairs held both ways (smaller name first).
    holds: BTreeSet<(String, String)>,
    /// Slowed nodes: `(delay_ms, jitter_ms, loss_pct)` on every link of each.
    slowed: BTreeMap<String, (u64, u64, u32)>,
}

impl LinkPlan {
    /// The fault `from -> to` must have now.
    pub fn fault(&self, from: &str, to: &str) -> LinkFault {
        let mut fault = LinkFault::default();
        let slow = self.slowed.get(from).or_else(|| self.slowed.get(to));
        if let Some((delay_ms, jitter_ms, loss_pct)) = slow {
            fault.latency_ms = *delay_ms;
            fault.jitter_ms = *jitter_ms;
            fault.distribution = Distribution::Normal;
            fault.loss_pct = f64::from(*loss_pct);
        }
        fault.blackhole = self.cuts.contains(&(from.to_string(), to.to_string()));
        let pair = if from < to { (from.to_string(), to.to_string()) } else { (to.to_string(), from.to_string()) };
        fault.hold = self.holds.contains(&pair);
        fault
    }
}

impl LocalCluster {
    /// Starts `id`'s proxy on `ip:port`, forwarding to the node's inner
    /// port, naming every member by its address, and names the newcomer in
    /// the proxies already running.
    pub(super) async fn start_proxy(&self, id: &str, ip: Ipv4Addr, (port, inner_port): (u16, u16), seed: u64) -> Result<Arc<Proxy>> {
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
        let proxy = Proxy::start(config).await.map_err(|e| ClusterError::Other(format!("start {id}'s link proxy: {e}")))?;
        for member in &members {
            if let Some(other) = &member.proxy {
                other.name_source(IpAddr::V4(ip), id);
            }
        }
        let proxy = Arc::new(proxy);
        self.install(&*self.links.lock().expect("the link plan lock is never poisoned"), &[(id.to_string(), Arc::clone(&proxy))]);
        Ok(proxy)
    }

    /// Every node's id and proxy.
    fn proxies(&self) -> Vec<(String, Arc<Proxy>)> {
        self.roster().iter().filter_map(|n| n.proxy.clone().map(|p| (n.id.clone(), p))).collect()
    }

    /// Installs `plan` in `proxies`: each link of each proxy's node.
    fn install(&self, plan: &LinkPlan, proxies: &[(String, Arc<Proxy>)]) {
        let mut sides: Vec<String> = self.roster().iter().map(|n| n.id.clone()).collect();
        sides.extend(proxies.iter().map(|(id, _)| id.clone()));
        sides.push(CLIENT.to_string());
        sides.sort();
        sides.dedup();
        for (node, proxy) in proxies {
            for other in sides.iter().filter(|s| *s != node) {
                for (from, to) in [(other, node), (node, other)] {
                    proxy.set(Link::new(from, to), plan.fault(from, to)).expect("a plan's faults are valid");
                }
            }
        }
    }

    /// Changes the plan and installs it everywhere.
    fn replan(&self, change: impl FnOnce(&mut LinkPlan)) {
        let mut plan = self.links.lock().expect("the link plan lock is never poisoned");
        change(&mut plan);
        self.install(&plan, &self.proxies());
    }

    /// The faulted links now, for the nemesis event: `"n2->n1": {...}`.
    fn faulted(&self) -> Value {
        let mut links = serde_json::Map::new();
        for (_, proxy) in self.proxies() {
            for link in proxy.status().links.into_iter().filter(|l| l.fault.is_some()) {
                links.insert(format!("{}->{}", link.from, link.to), json!(link.fault));
            }
        }
        Value::Object(links)
    }
}

impl LinkFaults for LocalCluster {
    fn mechanism(&self) -> &'static str {
        MECHANISM
    }

    fn cut(&self, links: &[(String, String)]) -> Result<Value> {
        self.replan(|plan| plan.cuts.extend(links.iter().cloned()));
        Ok(json!({"blackholed": links.iter().map(|(a, b)| format!("{a}->{b}")).collect::<Vec<_>>()}))
    }

    fn heal(&self) -> Result<Value> {
        let mut healed = Vec::new();
        self.replan(|plan| {
            healed = plan.cuts.iter().map(|(a, b)| format!("{a}->{b}")).collect();
            plan.cuts.clear();
            plan.holds.clear();
        });
        Ok(json!({"healed": healed, "still_faulted": self.faulted()}))
    }

    fn hold(&self, pairs: &[(String, String)]) -> Result<Value> {
        let ordered = pairs.iter().map(|(a, b)| if a < b { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) });
        self.replan(|plan| plan.holds.extend(ordered));
        Ok(json!({"held": pairs.iter().map(|(a, b)| format!("{a}<->{b}")).collect::<Vec<_>>()}))
    }

    fn release(&self) -> Result<Value> {
        self.replan(|plan| plan.holds.clear());
        Ok(json!({"released": "every held pair"}))
    }

    fn slow(&self, nodes: &[String], delay_ms: u64, jitter_ms: u64, loss_pct: u32) -> Result<Value> {
        self.replan(|plan| plan.slowed.extend(nodes.iter().map(|n| (n.clone(), (delay_ms, jitter_ms, loss_pct)))));
        Ok(json!({
            "latency_ms": delay_ms,
            "jitter_ms": jitter_ms,
            "distribution": "normal",
            "loss_pct": loss_pct,
            "loss_model": "a lost chunk is delivered 200 ms late (one TCP retransmission), the stream intact",
            "links": "every link of each node, both ways, client links included",
        }))
    }

    fn unslow(&self) -> Result<Value> {
        self.replan(|plan| plan.slowed.clear());
        Ok(json!({"still_faulted": self.faulted()}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_links_fault_is_the_union_of_what_is_in_force() {
        let mut plan = LinkPlan::default();
        plan.cuts.insert(("n2".into(), "n1".into()));
        plan.slowed.insert("n1".into(), (50, 5, 1));
        let cut = plan.fault("n2", "n1");
        assert!(cut.blackhole && cut.latency_ms == 50, "{cut:?}");
        let back = plan.fault("n1", "n2");
        assert!(!back.blackhole && back.latency_ms == 50 && back.loss_pct == 1.0, "a one-way cut: {back:?}");
        assert_eq!(plan.fault(CLIENT, "n1").latency_ms, 50, "client links of a slowed node are slow too");
        assert!(plan.fault("n2", "n3").is_healthy());
        plan.holds.insert(("n2".into(), "n3".into()));
        assert!(plan.fault("n3", "n2").hold && plan.fault("n2", "n3").hold, "a hold is both ways");
    }
}
