//! Partitions on SSH hosts: iptables rules in a chain of our own.
//!
//! A directed link `from -> to` is cut by a rule on `to`'s host dropping
//! every packet from `from`'s address, appended to [`super::remote::CHAIN`]
//! (jumped to from INPUT, installed at start). Only cluster addresses are
//! ever named, so the control machine (the harness's clients, and SSH
//! itself) still reaches every host, as in Jepsen. The heal flushes the
//! chain on every host; teardown removes it, and the next start's clean
//! removes what a killed run left. Rules sit on INPUT with no conntrack
//! exception, so established connections are cut too; TCP retransmits what
//! was dropped once the rule goes.
//!
//! A run that adds latency performs every link fault through link proxies
//! instead ([`super::proxies`]); in a run without them latency is refused
//! before it starts, and a hold is refused as on Docker.

use std::collections::BTreeMap;

use futures::future::try_join_all;
use serde_json::json;

use super::{remote, SshCluster, COMMAND_TIMEOUT_MS};
use crate::{Cluster, ClusterError, Result};

/// What performs partitions on SSH hosts, recorded in every event.
pub const MECHANISM: &str = "iptables";

impl SshCluster {
    /// The rules each host gets for `links`: `to`'s host drops `from`'s address.
    fn rules(&self, links: &[(String, String)]) -> Result<BTreeMap<String, Vec<String>>> {
        let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (from, to) in links {
            let source = self.node(from)?.slot.ip;
            by_node.entry(to.clone()).or_default().push(remote::drop_from(source));
        }
        Ok(by_node)
    }

    fn not_here(&self, what: &str) -> ClusterError {
        self.unsupported(what)
    }
}

#[async_trait::async_trait]
impl crate::LinkFaults for SshCluster {
    fn mechanism(&self) -> &'static str {
        MECHANISM
    }

    async fn cut(&self, links: &[(String, String)]) -> Result<serde_json::Value> {
        let rules = self.rules(links)?;
        let installs = rules.iter().map(|(node, commands)| async move {
            let n = self.node(node)?;
            n.slot.client.run_as_root(&commands.join(" && "), COMMAND_TIMEOUT_MS).await?;
            Ok::<_, ClusterError>(())
        });
        try_join_all(installs).await?;
        let rules_json: BTreeMap<&String, usize> = rules.iter().map(|(n, c)| (n, c.len())).collect();
        Ok(json!({"chain": remote::CHAIN, "drop_rules_per_node": rules_json}))
    }

    async fn heal(&self) -> Result<serde_json::Value> {
        let flush = remote::flush_chain();
        let flushes = self.slots.iter().map(|s| s.client.run_as_root(&flush, COMMAND_TIMEOUT_MS));
        try_join_all(flushes).await?;
        Ok(json!({"flushed": format!("iptables -F {} on every host", remote::CHAIN)}))
    }

    async fn hold(&self, pairs: &[(String, String)]) -> Result<serde_json::Value> {
        let _ = pairs;
        Err(self.not_here("hold messages (needs a simulated network; an iptables DROP already holds TCP segments)"))
    }

    async fn release(&self) -> Result<serde_json::Value> {
        Err(self.not_here("release held messages (nothing is ever held)"))
    }

    async fn slow(&self, nodes: &[String], delay_ms: u64, jitter_ms: u64, loss_pct: u32) -> Result<serde_json::Value> {
        let _ = (nodes, delay_ms, jitter_ms, loss_pct);
        Err(self.not_here(super::NO_LATENCY))
    }

    async fn slow_links(&self, links: &[(String, String)], delay_ms: u64, jitter_ms: u64) -> Result<serde_json::Value> {
        let _ = (links, delay_ms, jitter_ms);
        Err(self.not_here(super::NO_LATENCY))
    }

    async fn unslow(&self) -> Result<serde_json::Value> {
        Ok(json!({"nothing": "no latency is ever added on SSH hosts"}))
    }
}
