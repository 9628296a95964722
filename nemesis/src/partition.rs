//! Partitions with iptables inside the containers.
//!
//! A grudge `{a: [b, c]}` becomes, inside a's container,
//! `iptables -A INPUT -s <b's address> -j DROP` (and the same for c). Rules go
//! on INPUT with no conntrack exception, so established connections are cut
//! too; the harness talks to nodes from the bridge gateway, which no rule
//! names, so clients still reach every node (as in Jepsen). Healing flushes
//! INPUT on every node. `-w` waits for the xtables lock instead of failing.
//! Nothing here touches the host's iptables.

use docker::{Cluster, Fault};
use futures::future::join_all;

use crate::{Grudge, NemesisError};

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

/// Installs `grudge` on every node it names, concurrently.
pub async fn apply(cluster: &dyn Cluster, grudge: &Grudge) -> Result<(), NemesisError> {
    ensure_supported(cluster)?;
    let mut scripts = Vec::new();
    for node in grudge.keys() {
        if let Some(script) = rules_for(cluster, grudge, node)? {
            scripts.push((node.clone(), script));
        }
    }
    let results = join_all(scripts.iter().map(|(node, script)| run_sh(cluster, node, script))).await;
    results.into_iter().collect()
}

/// Removes every partition rule from every node, concurrently.
pub async fn heal(cluster: &dyn Cluster) -> Result<(), NemesisError> {
    ensure_supported(cluster)?;
    let nodes = cluster.nodes();
    let results = join_all(nodes.iter().map(|node| run_sh(cluster, node, "iptables -w -F INPUT"))).await;
    results.into_iter().collect()
}
