//! Partitions with iptables inside the containers.
//!
//! A grudge `{a: [b, c]}` becomes, inside a's container,
//! `iptables -A INPUT -s <b's address> -j DROP` (and the same for c). Rules go
//! on INPUT with no conntrack exception, so established connections are cut
//! too; the harness talks to nodes from the bridge gateway, which no rule
//! names, so clients still reach every node (as in Jepsen). Healing flushes
//! INPUT on every node. `-w` waits for the xtables lock instead of failing.
//! Nothing here touches the host's iptables.
//!
//! A backend with its own network ([`docker::LinkFaults`]: the simulator,
//! or the link proxies in front of local processes) gets the same grudge as
//! directed links to cut instead, and the event says which mechanism did it.

use docker::{Cluster, Fault};
use futures::future::join_all;

use crate::error::NemesisError;
use crate::Grudge;

/// The shell command that installs `node`'s part of `grudge`.
fn rules_for(cluster: &dyn Cluster, grudge: &Grudge, node: &str) -> Result<Option<String>, NemesisError> {
    let Some(peers) = grudge.get(node) else { return Ok(None) };
    let mut cmds = Vec::new();
    for peer in peers {
        let ip = cluster.peer_ip(peer)?;
        cmds.push(format!("iptables -w -A INPUT -s {ip} -j DROP"));
    }
    Ok(Some(cmds.join(" && ")))
}

pub(crate) async fn run_sh(cluster: &dyn Cluster, node: &str, script: &str) -> Result<(), NemesisError> {
    let out = cluster.exec(node, &["sh", "-c", script]).await?;
    if out.exit_code != 0 {
        return Err(NemesisError::Command {
            node: node.to_string(),
            command: script.to_string(),
            detail: format!("exit {}: {}{}", out.exit_code, out.stdout, out.stderr),
        });
    }
    Ok(())
}

fn ensure_supported(cluster: &dyn Cluster) -> Result<(), NemesisError> {
    if cluster.supports(Fault::Partition) {
        return Ok(());
    }
    Err(NemesisError::Unsupported { backend: cluster.backend(), fault: "partition (iptables)".into() })
}

/// The directed links (`from`, `to`) a grudge cuts: `to` drops `from`'s packets.
pub fn links(grudge: &Grudge) -> Vec<(String, String)> {
    grudge.iter().flat_map(|(node, peers)| peers.iter().map(move |peer| (peer.clone(), node.clone()))).collect()
}

/// Installs `grudge` on every node it names, concurrently; returns how.
pub async fn apply(cluster: &dyn Cluster, grudge: &Grudge) -> Result<serde_json::Value, NemesisError> {
    ensure_supported(cluster)?;
    if let Some(native) = cluster.link_faults() {
        let done = native.cut(&links(grudge)).await?;
        return Ok(serde_json::json!({"mechanism": native.mechanism(), "done": done}));
    }
    apply_iptables(cluster, grudge).await?;
    Ok(serde_json::json!({"mechanism": "iptables"}))
}

/// Holds every pair of nodes `grudge` names, both ways: their messages are
/// queued, not dropped, and delivered at the heal (what TCP does with the
/// segments an iptables DROP swallowed, once the rule goes). Only a backend
/// with its own network can; elsewhere it is unsupported, never faked.
pub async fn apply_hold(cluster: &dyn Cluster, grudge: &Grudge) -> Result<serde_json::Value, NemesisError> {
    ensure_supported(cluster)?;
    let Some(native) = cluster.link_faults() else {
        return Err(NemesisError::Unsupported {
            backend: cluster.backend(),
            fault: "partition-hold (needs a simulated network; on Docker an iptables DROP already holds TCP segments)"
                .into(),
        });
    };
    let mut pairs: Vec<(String, String)> =
        links(grudge).into_iter().map(|(a, b)| if a < b { (a, b) } else { (b, a) }).collect();
    pairs.sort();
    pairs.dedup();
    let done = native.hold(&pairs).await?;
    Ok(serde_json::json!({"mechanism": native.mechanism(), "held": "both ways, delivered at the heal", "done": done}))
}

async fn apply_iptables(cluster: &dyn Cluster, grudge: &Grudge) -> Result<(), NemesisError> {
    let mut scripts = Vec::new();
    for node in grudge.keys() {
        if let Some(script) = rules_for(cluster, grudge, node)? {
            scripts.push((node.clone(), script));
        }
    }
    let results = join_all(scripts.iter().map(|(node, script)| run_sh(cluster, node, script))).await;
    results.into_iter().collect()
}

/// Removes every partition rule from every node, concurrently; returns how.
pub async fn heal(cluster: &dyn Cluster) -> Result<serde_json::Value, NemesisError> {
    ensure_supported(cluster)?;
    if let Some(native) = cluster.link_faults() {
        let done = native.heal().await?;
        return Ok(serde_json::json!({"mechanism": native.mechanism(), "healed": done}));
    }
    let nodes = cluster.nodes();
    let results = join_all(nodes.iter().map(|node| run_sh(cluster, node, "iptables -w -F INPUT"))).await;
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(serde_json::json!({"mechanism": "iptables", "healed": "iptables -F INPUT on every node"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grudge_cuts_the_links_into_its_holder() {
        let grudge: Grudge = [("n1".to_string(), ["n2".to_string(), "n3".to_string()].into())].into();
        assert_eq!(links(&grudge), vec![("n2".to_string(), "n1".to_string()), ("n3".to_string(), "n1".to_string())]);
    }
}
