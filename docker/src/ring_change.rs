//! Joining and leaving the ring through the node's own admin service, and
//! asking it where a key lives: the parts of membership changes both
//! backends share.
//!
//! A backend only knows how to start and remove a node (a container, a
//! process); what makes that a *membership change* is the node's protocol.
//! A joiner is started with `--join true` and `--seed-node` naming every
//! current member; it gossips itself *joining*, streams its future ranges in
//! and declares itself *normal* ([`wait_status`] waits until the members that
//! answer all see that, so a leave that follows computes its future ring
//! with the joiner in it). A leaver is told `Admin.Leave`, which returns once
//! it has streamed its ranges away and declared itself *left*; only then is
//! its container or process removed, so no acknowledged write goes with it.
//!
//! Members that do not answer (killed or paused by another nemesis) are
//! skipped rather than waited for: a composed run must not stall on them.
//! Every wait is bounded by [`MEMBERSHIP_TIMEOUT`] and its error says which
//! node was still seen in which state.

use std::time::Duration;

use proto::admin_client::AdminClient;
use proto::{LeaveRequest, MembershipRequest, PreferenceListRequest};
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::store::StoreKind;
use crate::{Cluster, ClusterError, Result};

/// How long a join or a leave may take, streaming included.
pub const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(120);

/// Per-probe connect and request timeout: a paused node must not stall a round.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Pause between rounds of membership probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// What a join did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The new node's id.
    pub node: String,
    /// Where it listens (`host:port`), as its peers address it.
    pub address: String,
    /// Keys the joiner held when every answering member saw it normal: the
    /// ranges it streamed in plus the writes it received while joining.
    pub keys_held: u64,
    /// From the start of its container or process until it was normal
    /// everywhere, ms.
    pub duration_ms: u64,
}

/// What a leave did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    /// The departed node's id.
    pub node: String,
    /// Where it listened (`host:port`).
    pub address: String,
    /// Keys it pushed to their new owners, as its `Admin.Leave` reported.
    pub keys_streamed: u64,
    /// The node's own `Admin.Leave` duration (ring delay, streaming, the
    /// gossip rounds that spread "left"), ms.
    pub duration_ms: u64,
    /// From the `Admin.Leave` call until its container or process was
    /// removed, ms.
    pub total_ms: u64,
}

/// What a backend provides so that [`join`] and [`leave`] can change its
/// membership: starting and removing one node, nothing of the protocol.
#[async_trait::async_trait]
pub trait Members: Cluster {
    /// Which server the nodes run.
    fn store(&self) -> StoreKind;
    /// Starts node `id` with `extra_args` after the usual flags, makes it a
    /// member of [`Cluster::nodes`] and waits until it answers.
    async fn start_member(&self, id: &str, extra_args: Vec<String>) -> Result<()>;
    /// Stops node `id` for good (its log kept) and forgets it.
    async fn remove_member(&self, id: &str) -> Result<()>;
}

/// A member the harness can ask: its id, its endpoint and a channel to its
/// admin service (from [`Cluster::channel`], so a simulated cluster's too).
#[derive(Debug, Clone)]
struct Probe {
    /// Node id.
    id: String,
    /// gRPC endpoint, `http://host:port`.
    endpoint: String,
    /// Lazily connected, each call bounded by [`PROBE_TIMEOUT`].
    channel: Channel,
}

impl Probe {
    /// `id` of `cluster`, if it has an endpoint.
    fn of(cluster: &dyn Cluster, id: &str) -> Result<Probe> {
        let (endpoint, channel) = (cluster.endpoint(id)?, cluster.channel(id, PROBE_TIMEOUT)?);
        Ok(Probe { id: id.to_string(), endpoint, channel })
    }

    fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
    }
}

/// Every current member of `cluster` as the harness asks it.
fn probes(cluster: &dyn Cluster) -> Vec<Probe> {
    cluster.nodes().into_iter().filter_map(|id| Probe::of(cluster, &id).ok()).collect()
}

/// Membership changes and preference lists need our node's admin service.
fn ensure_ours(cluster: &impl Members, what: &str) -> Result<()> {
    if cluster.store() == StoreKind::Dynamo {
        return Ok(());
    }
    Err(cluster.unsupported(&format!("{what} ({} members have no admin service)", cluster.store().name())))
}

/// [`Cluster::join_node`]: start `id` with the join flags, announced to
/// every current member, and wait until it is normal everywhere.
pub async fn join(cluster: &impl Members, id: &str) -> Result<Joined> {
    ensure_ours(cluster, "add a node to a running cluster")?;
    let started = Instant::now();
    let seeds: Vec<(String, String)> = probes(cluster).into_iter().map(|p| (p.id, address_of(&p.endpoint))).collect();
    cluster.start_member(id, join_args(&seeds)).await?;
    let joiner = Probe::of(cluster, id)?;
    wait_status(id, "normal", &probes(cluster), Some(id), started).await?;
    let status = joiner.admin().status(proto::StatusRequest {}).await;
    let status = status.map_err(|e| ClusterError::Other(format!("status from {id}: {e}")))?.into_inner();
    Ok(Joined {
        node: id.to_string(),
        address: address_of(&joiner.endpoint),
        keys_held: status.keys,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// [`Cluster::leave_node`]: `Admin.Leave`, "left" seen by the answering
/// members, then the node removed.
pub async fn leave(cluster: &impl Members, id: &str) -> Result<Left> {
    ensure_ours(cluster, "remove a node from a running cluster")?;
    if cluster.nodes().len() <= 1 {
        return Err(ClusterError::Other(format!("{id} is the only node: it cannot leave")));
    }
    let started = Instant::now();
    let leaver = Probe::of(cluster, id)?;
    let (keys_streamed, duration_ms) = decommission(cluster, &leaver).await?;
    let others: Vec<Probe> = probes(cluster).into_iter().filter(|p| p.id != id).collect();
    wait_status(id, "left", &others, None, started).await?;
    cluster.remove_member(id).await?;
    Ok(Left {
        node: id.to_string(),
        address: address_of(&leaver.endpoint),
        keys_streamed,
        duration_ms,
        total_ms: started.elapsed().as_millis() as u64,
    })
}

/// The flags that make a new node join: `--join true --seed-node a=h:p,b=h:p`.
fn join_args(seeds: &[(String, String)]) -> Vec<String> {
    assert!(!seeds.is_empty(), "a joiner needs a member to announce itself to");
    let list: Vec<String> = seeds.iter().map(|(id, address)| format!("{id}={address}")).collect();
    vec!["--join".into(), "true".into(), "--seed-node".into(), list.join(",")]
}

/// `endpoint` without its scheme: the `host:port` peers use.
fn address_of(endpoint: &str) -> String {
    endpoint.trim_start_matches("http://").to_string()
}

/// Waits until every answering probe's gossip shows `member` with ring
/// status `status` (`normal`, `left`). `must_answer` names a probe whose
/// view is required (the joiner itself), the rest may be down.
async fn wait_status(
    member: &str,
    status: &str,
    probes: &[Probe],
    must_answer: Option<&str>,
    started: Instant,
) -> Result<()> {
    loop {
        let (agree, disagree) = survey(member, status, probes).await;
        let required = must_answer.is_none_or(|id| agree.iter().any(|a| a == id));
        if disagree.is_empty() && required && !agree.is_empty() {
            return Ok(());
        }
        if started.elapsed() > MEMBERSHIP_TIMEOUT {
            return Err(ClusterError::Other(format!(
                "{member} not {status} within {} ms: seen so by {agree:?}, not by {disagree:?}",
                MEMBERSHIP_TIMEOUT.as_millis()
            )));
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// One round: (probes that see `member` as `status`, probes that answered otherwise).
async fn survey(member: &str, status: &str, probes: &[Probe]) -> (Vec<String>, Vec<String>) {
    let (mut agree, mut disagree) = (Vec::new(), Vec::new());
    for probe in probes {
        let Ok(view) = probe.admin().membership(MembershipRequest {}).await else { continue };
        let seen = view.into_inner().members.iter().any(|m| m.node_id == member && m.ring_status == status);
        if seen {
            agree.push(probe.id.clone())
        } else {
            disagree.push(probe.id.clone())
        }
    }
    (agree, disagree)
}

/// `Admin.Leave` on `probe`'s node, which returns once it has streamed its
/// ranges away and declared itself left: (keys streamed, its duration in ms).
async fn decommission(cluster: &dyn Cluster, probe: &Probe) -> Result<(u64, u64)> {
    let mut client = AdminClient::new(cluster.channel(&probe.id, MEMBERSHIP_TIMEOUT)?);
    let reply = client
        .leave(LeaveRequest {})
        .await
        .map_err(|e| ClusterError::Other(format!("Admin.Leave on {}: {e}", probe.id)))?
        .into_inner();
    Ok((reply.keys_streamed, reply.duration_ms))
}

/// [`Cluster::preference_list`]: the home replicas of `key` in ring order,
/// from the first member that answers `Admin.PreferenceList` (any member's
/// ring will do: they agree once gossip settled).
pub async fn preference_list(cluster: &impl Members, key: &str) -> Result<Vec<String>> {
    ensure_ours(cluster, "tell a key's preference list")?;
    let mut errors = Vec::new();
    for probe in probes(cluster) {
        let asked = async {
            let mut client = probe.admin();
            let request = PreferenceListRequest { key: key.as_bytes().to_vec() };
            let reply = client.preference_list(request).await;
            reply.map_err(|e| ClusterError::Other(format!("Admin.PreferenceList on {}: {e}", probe.id)))
        };
        match asked.await {
            Ok(reply) => return Ok(reply.into_inner().replicas),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(ClusterError::Other(format!("no member answered the preference list of {key:?}: {}", errors.join("; "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_args_name_every_seed() {
        let seeds = vec![("n1".to_string(), "10.0.0.11:7000".to_string()), ("n2".into(), "10.0.0.12:7000".into())];
        assert_eq!(join_args(&seeds), vec!["--join", "true", "--seed-node", "n1=10.0.0.11:7000,n2=10.0.0.12:7000"]);
        assert_eq!(address_of("http://127.0.0.1:4000"), "127.0.0.1:4000");
    }
}
