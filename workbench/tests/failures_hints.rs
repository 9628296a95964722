//! Docker end-to-end: sloppy quorum and hinted handoff bring a killed home
//! replica every write it missed.
//!
//! A cluster with N=3, W=2 and `--sloppy-quorum true`. One node is killed
//! (SIGKILL), the test waits until the others' gossip marks it down, then
//! writes K keys with W=2 through the live nodes; every write must be
//! acknowledged. The node is restarted (memory storage: it comes back
//! empty), and then, within a bound, `hints_pending` must reach 0 on every
//! node and the restarted node's own replica (Admin.LocalGet) must hold
//! every write it is a home replica of.
//!
//! Two shapes: three nodes, where every node is a home replica of every key
//! and no stand-in exists, so the coordinators keep the hints; and four
//! nodes, where the fourth node clockwise stands in for the dead one
//! (sloppy quorum proper). With four nodes the test cannot know which keys
//! the dead node is home to, so it checks the replica count instead: after
//! the handoff every key is held by exactly N=3 replicas' own storage
//! (stand-ins keep hints apart from their data).
//!
//! Needs a Docker engine and `target/dynamo-node.image` (`make image`);
//! without either it prints why and passes. The cluster is torn down
//! whether the scenario passes, fails or panics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use docker::{Cluster, ClusterSpec, DockerCluster};
use proto::admin_client::AdminClient;
use proto::kv_client::KvClient;
use tonic::transport::Channel;

/// Keys written while the victim is down.
const KEYS: usize = 200;
/// How long gossip may take to mark the victim down.
const DOWN_BOUND: Duration = Duration::from_secs(15);
/// How long the hints may take to drain after the restart.
const DRAIN_BOUND: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_coordinator_hints_reach_the_restarted_home() {
    run(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_stand_in_hints_reach_the_restarted_home() {
    run(4).await;
}

/// Starts the cluster, runs the scenario in a task, always tears down.
async fn run(nodes: usize) {
    let Some(image) = docker::image_for_tests().await else {
        return;
    };
    let started = Instant::now();
    let spec = spec(&format!("hints{nodes}-{}", std::process::id()), nodes);
    let cluster = Arc::new(DockerCluster::start(&spec, &image).await.expect("cluster starts"));
    let outcome = tokio::spawn(scenario(Arc::clone(&cluster), nodes)).await;
    cluster.collect_logs().await.ok();
    cluster.teardown().await.expect("teardown");
    match outcome {
        Ok(Ok(report)) => eprintln!("{report}; whole test {} ms", started.elapsed().as_millis()),
        Ok(Err(failure)) => panic!("{failure} (node logs in {})", spec.log_dir.display()),
        Err(panic) => std::panic::resume_unwind(panic.into_panic()),
    }
}

fn names(nodes: usize) -> Vec<String> {
    (1..=nodes).map(|i| format!("n{i}")).collect()
}

fn spec(name: &str, nodes: usize) -> ClusterSpec {
    let args = "--n 3 --w 2 --r 2 --request-timeout-ms 500 --sloppy-quorum true \
                --hinted-handoff true --gossip-interval-ms 200 --fail-after-ms 1000 \
                --storage memory";
    ClusterSpec {
        name: name.to_string(),
        nodes: names(nodes),
        node_args: args.split_whitespace().map(String::from).collect(),
        log_dir: std::env::temp_dir().join(format!("dwb-test-logs-{name}")),
        link_proxy: None,
        clock_faults: false,
        power_loss: false,
    }
}

/// The whole scenario; errors (not panics) so the caller tears down first.
async fn scenario(cluster: Arc<DockerCluster>, nodes: usize) -> Result<String, String> {
    let all = names(nodes);
    let victim = all.last().expect("nodes").clone();
    let live: Vec<String> = all.iter().filter(|n| **n != victim).cloned().collect();
    cluster.kill(&victim).await.map_err(|e| e.to_string())?;
    let killed = Instant::now();
    wait_marked_down(&cluster, &live, &victim).await?;
    let down_ms = killed.elapsed().as_millis();
    let keys = write_keys(&cluster, &live).await?;
    // Three nodes: each coordinator keeps its hint once the store to the
    // dead node times out, after it answered the client; wait for all.
    let expected = if nodes == 3 { KEYS as u64 } else { 1 };
    let stored = wait_counter_at_least(&cluster, &live, "hints_stored", expected).await?;
    cluster.restart(&victim).await.map_err(|e| e.to_string())?;
    let restarted = Instant::now();
    wait_hints_drained(&cluster, &all).await?;
    let drained_ms = restarted.elapsed().as_millis();
    if nodes == 3 {
        check_home_has_all(&cluster, &victim, &keys).await?;
    } else {
        check_replica_counts(&cluster, &all, &keys).await?;
    }
    Ok(format!(
        "{nodes} nodes: {victim} marked down {down_ms} ms after the kill; {KEYS} writes acked, \
         {stored} hints stored; hints drained {drained_ms} ms after the restarted node answered"
    ))
}

async fn kv(cluster: &DockerCluster, node: &str) -> Result<KvClient<Channel>, String> {
    let endpoint = cluster.endpoint(node).map_err(|e| e.to_string())?;
    KvClient::connect(endpoint).await.map_err(|e| format!("connect {node}: {e}"))
}

async fn admin(cluster: &DockerCluster, node: &str) -> Result<AdminClient<Channel>, String> {
    let endpoint = cluster.endpoint(node).map_err(|e| e.to_string())?;
    AdminClient::connect(endpoint).await.map_err(|e| format!("connect {node}: {e}"))
}

/// Waits until every live node's gossip says `victim` is down.
async fn wait_marked_down(cluster: &DockerCluster, live: &[String], victim: &str) -> Result<(), String> {
    let deadline = Instant::now() + DOWN_BOUND;
    loop {
        let mut all_down = true;
        for node in live {
            let view = admin(cluster, node).await?.membership(proto::MembershipRequest {}).await;
            let view = view.map_err(|e| format!("membership of {node}: {e}"))?.into_inner();
            let down = view.members.iter().any(|m| m.node_id == victim && m.liveness == "down");
            all_down &= down;
        }
        if all_down {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{victim} not marked down everywhere within {DOWN_BOUND:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes `KEYS` blind writes with W=2 through the live nodes in turn; all
/// must be acknowledged. Returns key -> value.
async fn write_keys(cluster: &DockerCluster, live: &[String]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, String> {
    let mut clients = Vec::new();
    for node in live {
        clients.push(kv(cluster, node).await?);
    }
    let mut written = BTreeMap::new();
    for i in 0..KEYS {
        let key = format!("hint-{i:04}").into_bytes();
        let value = format!("value-{i}").into_bytes();
        let request = proto::PutRequest {
            key: key.clone(),
            value: value.clone(),
            context: Vec::new(),
            w: Some(2),
            w_quorum: None,
        };
        let client = &mut clients[i % live.len()];
        client.put(request).await.map_err(|e| format!("put {i} with a home replica down: {e}"))?;
        written.insert(key, value);
    }
    Ok(written)
}

async fn counters(cluster: &DockerCluster, node: &str) -> Result<BTreeMap<String, u64>, String> {
    let status = admin(cluster, node).await?.status(proto::StatusRequest {}).await;
    let status = status.map_err(|e| format!("status of {node}: {e}"))?.into_inner();
    Ok(status.counters.into_iter().collect())
}

async fn sum_counter(cluster: &DockerCluster, nodes: &[String], name: &str) -> Result<u64, String> {
    let mut sum = 0;
    for node in nodes {
        sum += counters(cluster, node).await?.get(name).copied().unwrap_or(0);
    }
    Ok(sum)
}

/// Waits until the sum of counter `name` over `nodes` reaches `at_least`.
async fn wait_counter_at_least(
    cluster: &DockerCluster,
    nodes: &[String],
    name: &str,
    at_least: u64,
) -> Result<u64, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let sum = sum_counter(cluster, nodes, name).await?;
        if sum >= at_least {
            return Ok(sum);
        }
        if Instant::now() > deadline {
            return Err(format!("{name} is {sum} on {nodes:?}, expected at least {at_least}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `hints_pending` is 0 on every node.
async fn wait_hints_drained(cluster: &DockerCluster, nodes: &[String]) -> Result<(), String> {
    let deadline = Instant::now() + DRAIN_BOUND;
    loop {
        let pending = sum_counter(cluster, nodes, "hints_pending").await?;
        if pending == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{pending} hints still pending {DRAIN_BOUND:?} after the restart"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The replica's own siblings' values for `key`.
async fn local_values(client: &mut AdminClient<Channel>, key: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let reply = client.local_get(proto::LocalGetRequest { key: key.to_vec() }).await;
    let reply = reply.map_err(|e| format!("local get: {e}"))?.into_inner();
    Ok(reply.siblings.into_iter().filter(|s| !s.tombstone).map(|s| s.value).collect())
}

/// Three nodes: the restarted node is home to every key and must hold all.
async fn check_home_has_all(
    cluster: &DockerCluster,
    home: &str,
    keys: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), String> {
    let mut client = admin(cluster, home).await?;
    let mut missing = 0;
    for (key, value) in keys {
        if local_values(&mut client, key).await? != vec![value.clone()] {
            missing += 1;
        }
    }
    if missing > 0 {
        return Err(format!("{missing} of {} hinted writes missing on {home}", keys.len()));
    }
    Ok(())
}

/// Four nodes: every key must be in exactly N=3 replicas' own storage.
async fn check_replica_counts(
    cluster: &DockerCluster,
    nodes: &[String],
    keys: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), String> {
    let mut holders: BTreeMap<&[u8], usize> = BTreeMap::new();
    for node in nodes {
        let mut client = admin(cluster, node).await?;
        for (key, value) in keys {
            if local_values(&mut client, key).await? == vec![value.clone()] {
                *holders.entry(key.as_slice()).or_default() += 1;
            }
        }
    }
    let short: Vec<_> = keys
        .keys()
        .filter(|k| holders.get(k.as_slice()).copied().unwrap_or(0) != 3)
        .map(|k| String::from_utf8_lossy(k).to_string())
        .collect();
    if !short.is_empty() {
        return Err(format!("{} keys not on exactly 3 replicas, e.g. {:?}", short.len(), &short[..short.len().min(5)]));
    }
    Ok(())
}
