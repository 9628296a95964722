//! Link faults performed by link proxies in front of the nodes, whatever
//! runs the proxies: in this process (local processes) or inside each
//! node's container (Docker).
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
//!
//! A backend supplies a [`ProxyFleet`]: where its plan lives and how to
//! put a plan into its proxies. [`LinkFaults`] is implemented once, here,
//! for every fleet, so the backends cannot drift in what a fault means or
//! in what its event records.
//!
//! A proxy that runs as a process of its own beside its node (in a Docker
//! container, or on an SSH host) is driven the same way whoever started
//! it: it fronts the node's public port [`NODE_PORT`], the node listens on
//! [`PROXIED_NODE_PORT`] of the loopback only, peers are told apart by
//! source address, and the workbench sends each change to its line-JSON
//! control socket on [`CONTROL_PORT`] ([`proxy_args`], [`requests_for`],
//! [`install_all`], [`faulted_of`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use linkproxy::{Distribution, Link, LinkFault, Request, CLIENT};
use serde_json::{json, Value};

use crate::{Fault, LinkFaults, Result, NODE_PORT};

/// Where a proxied node listens, on its host's (or container's) loopback.
pub const PROXIED_NODE_PORT: u16 = NODE_PORT + 1;

/// A proxy's control socket, on its host's (or container's) address.
pub const CONTROL_PORT: u16 = 7100;

/// How long one proxy may take to take a change: a stopped host's
/// address answers nothing, and a change must not wait on it for long.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(2);

/// The mechanism every event of these faults records.
pub const MECHANISM: &str = "linkproxy";

/// The faults link proxies perform when a cluster has them: a local
/// cluster performs these only so, and a Docker cluster with proxies (for
/// latency) performs partitions through them too.
pub const LINK_PROXY_FAULTS: [Fault; 2] = [Fault::Partition, Fault::Latency];

/// The faults in force, as the nemeses asked for them.
#[derive(Debug, Default, Clone)]
pub struct LinkPlan {
    /// Directed cuts (`from`, `to`): blackholed.
    cuts: BTreeSet<(String, String)>,
    /// Unordered pairs held both ways (smaller name first).
    holds: BTreeSet<(String, String)>,
    /// Slowed nodes: `(delay_ms, jitter_ms, loss_pct)` on every link of each.
    slowed: BTreeMap<String, (u64, u64, u32)>,
    /// Slowed directed links (`from`, `to`): `(delay_ms, jitter_ms)` (the WAN).
    slowed_links: BTreeMap<(String, String), (u64, u64)>,
}

impl LinkPlan {
    /// The fault `from -> to` must have now.
    pub fn fault(&self, from: &str, to: &str) -> LinkFault {
        let mut fault = LinkFault::default();
        let link = self.slowed_links.get(&(from.to_string(), to.to_string())).map(|(d, j)| (*d, *j, 0));
        let slow = self.slowed.get(from).or_else(|| self.slowed.get(to)).copied().or(link);
        if let Some((delay_ms, jitter_ms, loss_pct)) = slow {
            fault.latency_ms = delay_ms;
            fault.jitter_ms = jitter_ms;
            fault.distribution = Distribution::Normal;
            fault.loss_pct = f64::from(loss_pct);
        }
        fault.blackhole = self.cuts.contains(&(from.to_string(), to.to_string()));
        fault.hold = self.holds.contains(&ordered(from, to));
        fault
    }

    /// Every link `node`'s proxy carries, both ways to each of `others`
    /// (`client` among them), with the fault it must have now.
    pub fn links_of(&self, node: &str, others: &[String]) -> Vec<(Link, LinkFault)> {
        let mut links = Vec::with_capacity(others.len() * 2);
        for other in others.iter().filter(|o| *o != node) {
            for (from, to) in [(other.as_str(), node), (node, other.as_str())] {
                links.push((Link::new(from, to), self.fault(from, to)));
            }
        }
        links
    }
}

/// An unordered pair, smaller name first.
fn ordered(a: &str, b: &str) -> (String, String) {
    if a < b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// Every side a proxy of these `members` names: the members and `client`,
/// sorted, once each.
pub fn sides(members: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut sides: Vec<String> = members.into_iter().collect();
    sides.push(CLIENT.to_string());
    sides.sort();
    sides.dedup();
    sides
}

/// The seed of `node`'s proxy: the run's, mixed with the node's address,
/// so each proxy draws its own stream.
fn proxy_seed(seed: u64, ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => seed ^ u64::from(u32::from(v4)),
        IpAddr::V6(v6) => seed ^ (u128::from(v6) as u64),
    }
}

/// The arguments of `dynamo-linkproxy` in front of `node` at `ip`: the
/// public port, the node behind it on the loopback, the control socket,
/// and every member named by its address.
pub fn proxy_args(node: &str, ip: IpAddr, members: &[(String, IpAddr)], seed: u64) -> Vec<String> {
    let mut args: Vec<String> = [
        "--node".to_string(),
        node.to_string(),
        "--listen".into(),
        format!("0.0.0.0:{NODE_PORT}"),
        "--upstream".into(),
        format!("127.0.0.1:{PROXIED_NODE_PORT}"),
        "--control".into(),
        format!("0.0.0.0:{CONTROL_PORT}"),
        "--seed".into(),
        proxy_seed(seed, ip).to_string(),
    ]
    .into();
    for (id, member_ip) in members {
        args.extend(["--source".to_string(), format!("{id}={member_ip}")]);
    }
    args
}

/// What `node`'s proxy must be told for `plan`: every other member's
/// name, then the fault of each of its links.
pub fn requests_for(node: &str, plan: &LinkPlan, members: &[(String, IpAddr)]) -> Vec<Request> {
    let mut requests: Vec<Request> = members
        .iter()
        .filter(|(id, _)| id != node)
        .map(|(id, ip)| Request::Name { node: id.clone(), ip: *ip })
        .collect();
    let sides = sides(members.iter().map(|(id, _)| id.clone()));
    for (link, fault) in plan.links_of(node, &sides) {
        requests.push(Request::Set { from: link.from, to: link.to, fault });
    }
    requests
}

/// Sends `requests` to the proxy at `ip`; an error says why it did not take all of them.
pub async fn send(ip: IpAddr, requests: &[Request]) -> std::result::Result<Vec<Value>, String> {
    let addr = SocketAddr::new(ip, CONTROL_PORT);
    let answers = tokio::time::timeout(CONTROL_TIMEOUT, linkproxy::control::requests(addr, requests))
        .await
        .map_err(|_| format!("no answer within {} ms", CONTROL_TIMEOUT.as_millis()))?
        .map_err(|e| e.to_string())?;
    answers.into_iter().collect::<std::result::Result<Vec<_>, _>>().map_err(|e| e.to_string())
}

/// Installs `plan` in the proxy of every member at once; the members whose
/// proxy could not be reached, each with why.
pub async fn install_all(plan: &LinkPlan, members: &[(String, IpAddr)]) -> Vec<String> {
    let sends = members.iter().map(|(id, ip)| {
        let requests = requests_for(id, plan, members);
        async move { send(*ip, &requests).await.err().map(|why| format!("{id}: {why}")) }
    });
    futures::future::join_all(sends).await.into_iter().flatten().collect()
}

/// The faulted links now, as the members' proxies report them:
/// `"n2->n1": {...}`, and `"n1 (proxy)": {"unreachable": ...}` for a proxy
/// that did not answer.
pub async fn faulted_of(members: &[(String, IpAddr)]) -> Value {
    let mut links = serde_json::Map::new();
    for (id, ip) in members {
        match send(*ip, &[Request::Status]).await {
            Ok(status) => {
                for link in status[0]["links"].as_array().into_iter().flatten().filter(|l| !l["fault"].is_null()) {
                    let name =
                        format!("{}->{}", link["from"].as_str().unwrap_or("?"), link["to"].as_str().unwrap_or("?"));
                    links.insert(name, link["fault"].clone());
                }
            }
            Err(why) => {
                links.insert(format!("{id} (proxy)"), json!({"unreachable": why}));
            }
        }
    }
    Value::Object(links)
}

/// A cluster's link proxies, as [`LinkFaults`] needs them.
#[async_trait::async_trait]
pub trait ProxyFleet: Send + Sync {
    /// The plan in force. A tokio lock, held across each install, so two
    /// changes reach the proxies in the order they were made.
    fn link_plan(&self) -> &tokio::sync::Mutex<LinkPlan>;
    /// Installs `plan` in every proxy; the nodes whose proxy could not be
    /// reached (a killed node's: its restart installs the plan again).
    async fn install_everywhere(&self, plan: &LinkPlan) -> Vec<String>;
    /// The faulted links now, as the proxies report them: `"n2->n1": {...}`.
    async fn faulted(&self) -> Value;
}

/// Changes the plan and installs it everywhere; `answer` is the event's
/// `done`, with the proxies that could not be reached added.
async fn replan<F: ProxyFleet + ?Sized>(fleet: &F, change: impl FnOnce(&mut LinkPlan) -> Value) -> Value {
    let mut plan = fleet.link_plan().lock().await;
    let mut answer = change(&mut plan);
    let unreachable = fleet.install_everywhere(&plan).await;
    if !unreachable.is_empty() {
        answer["unreachable_proxies"] = json!(unreachable);
    }
    answer
}

#[async_trait::async_trait]
impl<F: ProxyFleet> LinkFaults for F {
    fn mechanism(&self) -> &'static str {
        MECHANISM
    }

    async fn cut(&self, links: &[(String, String)]) -> Result<Value> {
        Ok(replan(self, |plan| {
            plan.cuts.extend(links.iter().cloned());
            json!({"blackholed": links.iter().map(|(a, b)| format!("{a}->{b}")).collect::<Vec<_>>()})
        })
        .await)
    }

    async fn heal(&self) -> Result<Value> {
        let mut done = replan(self, |plan| {
            let healed: Vec<String> = plan.cuts.iter().map(|(a, b)| format!("{a}->{b}")).collect();
            plan.cuts.clear();
            plan.holds.clear();
            json!({"healed": healed})
        })
        .await;
        done["still_faulted"] = self.faulted().await;
        Ok(done)
    }

    async fn hold(&self, pairs: &[(String, String)]) -> Result<Value> {
        Ok(replan(self, |plan| {
            plan.holds.extend(pairs.iter().map(|(a, b)| ordered(a, b)));
            json!({"held": pairs.iter().map(|(a, b)| format!("{a}<->{b}")).collect::<Vec<_>>()})
        })
        .await)
    }

    async fn release(&self) -> Result<Value> {
        Ok(replan(self, |plan| {
            plan.holds.clear();
            json!({"released": "every held pair"})
        })
        .await)
    }

    async fn slow(&self, nodes: &[String], delay_ms: u64, jitter_ms: u64, loss_pct: u32) -> Result<Value> {
        Ok(replan(self, |plan| {
            plan.slowed.extend(nodes.iter().map(|n| (n.clone(), (delay_ms, jitter_ms, loss_pct))));
            json!({
                "latency_ms": delay_ms,
                "jitter_ms": jitter_ms,
                "distribution": "normal",
                "loss_pct": loss_pct,
                "loss_model": "a lost chunk is delivered 200 ms late (one TCP retransmission), the stream intact",
                "links": "every link of each node, both ways, client links included",
            })
        })
        .await)
    }

    async fn slow_links(&self, links: &[(String, String)], delay_ms: u64, jitter_ms: u64) -> Result<Value> {
        Ok(replan(self, |plan| {
            plan.slowed_links.extend(links.iter().map(|l| (l.clone(), (delay_ms, jitter_ms))));
            json!({
                "latency_ms": delay_ms,
                "jitter_ms": jitter_ms,
                "distribution": "normal",
                "links": links.iter().map(|(a, b)| format!("{a}->{b}")).collect::<Vec<_>>(),
            })
        })
        .await)
    }

    async fn unslow(&self) -> Result<Value> {
        let mut done = replan(self, |plan| {
            plan.slowed.clear();
            plan.slowed_links.clear();
            json!({})
        })
        .await;
        done["still_faulted"] = self.faulted().await;
        Ok(done)
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
        plan.slowed_links.insert(("n3".into(), "n4".into()), (120, 24));
        let wan = plan.fault("n3", "n4");
        assert!(wan.latency_ms == 120 && wan.jitter_ms == 24 && wan.loss_pct == 0.0, "{wan:?}");
        assert!(plan.fault("n4", "n3").is_healthy(), "a slowed link is slow its own way only");
    }

    #[test]
    fn a_proxy_carries_both_directions_to_every_other_side() {
        let mut plan = LinkPlan::default();
        plan.cuts.insert(("n2".into(), "n1".into()));
        let all = sides(["n2".to_string(), "n1".to_string(), "n3".to_string(), "n1".to_string()]);
        assert_eq!(all, ["client", "n1", "n2", "n3"]);
        let links = plan.links_of("n1", &all);
        assert_eq!(links.len(), 6, "3 other sides, 2 directions each");
        let faulted: Vec<String> = links.iter().filter(|(_, f)| !f.is_healthy()).map(|(l, _)| l.to_string()).collect();
        assert_eq!(faulted, ["n2->n1"]);
    }
}
