//! Latency, loss and held links on SSH hosts: a link proxy in front of
//! each node, as on Docker where the kernel has no `sch_netem`.
//!
//! A run whose nemeses add latency ([`super::SshCluster::needs_link_proxy`])
//! starts `dynamo-linkproxy` on each host before its node, as a supervised
//! process of its own (`setsid`, a pid file, a log: [`super::remote::start_proxy`]).
//! The proxy holds the node's public port on the host's address; the node
//! listens behind it on the loopback only, so no peer and no client reaches
//! the node around it. Peers are told apart by their hosts' addresses, and
//! the control machine's connections are `client`. The proxy outlives its
//! node's kills and restarts (a host's TCP stack does too), so the faults
//! in force stay in force across them; a joiner's proxy starts with every
//! member named, and every other proxy is told the newcomer's name.
//!
//! Such a run performs its partitions through the proxies too (one
//! mechanism for every link fault of the run, recorded as `linkproxy`,
//! and holds become possible); a run without latency keeps iptables
//! ([`super::links`]). The proxies' control sockets listen on
//! [`crate::link_plan::CONTROL_PORT`] of each host: the control machine
//! must reach that port, as it reaches the node's.

use std::net::IpAddr;

use serde_json::Value;

use super::Roster;
use crate::link_plan::{faulted_of, install_all, LinkPlan, ProxyFleet};

/// The proxies of an SSH cluster: the plan in force, and the cluster's own
/// roster of the members they front (shared, not copied, so the two
/// cannot disagree about who is a member).
pub(super) struct SshProxies {
    /// The faults in force.
    plan: tokio::sync::Mutex<LinkPlan>,
    /// The cluster's members, in start then join order.
    roster: Roster,
}

impl SshProxies {
    /// The proxies in front of `roster`'s members, no fault in force.
    pub(super) fn new(roster: Roster) -> SshProxies {
        SshProxies { plan: tokio::sync::Mutex::default(), roster }
    }

    /// Every member now, as the proxies name them: id and host address. A
    /// newcomer's name reaches the other proxies with the next install
    /// ([`SshProxies::reinstall`]).
    pub(super) fn members(&self) -> Vec<(String, IpAddr)> {
        self.roster.read().expect("never poisoned").iter().map(|n| (n.id.clone(), n.slot.ip)).collect()
    }

    /// Puts the plan in force into every proxy again (after a join, so
    /// every proxy names the newcomer); logs the proxies that missed it.
    pub(super) async fn reinstall(&self) {
        let plan = self.plan.lock().await;
        let unreachable = install_all(&plan, &self.members()).await;
        if !unreachable.is_empty() {
            tracing::warn!(?unreachable, "link proxies missed the faults in force");
        }
    }
}

#[async_trait::async_trait]
impl ProxyFleet for SshProxies {
    fn link_plan(&self) -> &tokio::sync::Mutex<LinkPlan> {
        &self.plan
    }

    async fn install_everywhere(&self, plan: &LinkPlan) -> Vec<String> {
        install_all(plan, &self.members()).await
    }

    async fn faulted(&self) -> Value {
        faulted_of(&self.members()).await
    }
}
