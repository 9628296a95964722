//! Docker end-to-end: the membership nemesis, executed as a run executes
//! it, while a writer keeps writing; nothing acknowledged may be lost.
//!
//! Three nodes, N=3, W=2, R=2. A seeded membership schedule (short rhythm,
//! 12 s) makes fresh nodes join and members leave; a writer puts a unique
//! key per write through whichever members there are, before and during the
//! changes. After the schedule and the final heal: every join and leave
//! event says what happened (node, address, keys held or streamed, time),
//! none failed, the final membership event names the members the cluster
//! reports, the cluster is back to three nodes with every joined name
//! fresh, every acknowledged key reads back its value (R=2) through every
//! final member, and a key's preference list names three final members.
//!
//! Needs a Docker engine and `target/dynamo-node.image` (`make image`);
//! without either it prints why and passes. The cluster is torn down
//! whether the scenario passes, fails or panics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use docker::{Cluster, ClusterSpec, DockerCluster};
use history::{Op, Recorder};
use nemesis::schedule::{plan, Rhythm};
use nemesis::{Action, FaultState, NemesisKind, Scope};
use proto::kv_client::KvClient;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::Mutex;

const NODE_ARGS: &str = "--n 3 --w 2 --r 2 --request-timeout-ms 500 --sloppy-quorum false \
                         --gossip-interval-ms 200 --fail-after-ms 1000 --ring-delay-ms 1000 \
                         --storage memory";
/// Keys written before the first change, so every leave has data to stream.
const PRELOAD: usize = 200;

/// Acknowledged keys -> the node that acknowledged the write.
type Acked = Arc<Mutex<BTreeMap<String, String>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_nemesis_joins_and_leaves_without_losing_acknowledged_writes() {
    let Some(image) = docker::image_for_tests().await else { return };
    let name = format!("nemmember{}", std::process::id());
    let spec = ClusterSpec {
        name: name.clone(),
        nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        node_args: NODE_ARGS.split_whitespace().map(String::from).collect(),
        log_dir: std::env::temp_dir().join(format!("dwb-test-logs-{name}")),
        link_proxy: None,
        clock_faults: false,
        power_loss: false,
    };
    let cluster = Arc::new(DockerCluster::start(&spec, &image).await.expect("cluster starts"));
    let outcome = tokio::spawn(scenario(Arc::clone(&cluster))).await;
    docker::conclude_test(cluster.as_ref(), &spec.log_dir, outcome).await;
}

/// The whole scenario; errors (not panics) so the caller tears down first.
async fn scenario(cluster: Arc<DockerCluster>) -> Result<String, String> {
    let initial = cluster.nodes();
    let scope = Scope { nodes: &initial, keys: &[], dcs: &[] };
    let rhythm = Rhythm { calm_ms: (500, 1_000), fault_ms: (1_500, 2_500) };
    let schedule = plan(NemesisKind::Membership, scope, 12_000, rhythm, &mut ChaCha8Rng::seed_from_u64(11));
    let joins = schedule.actions.iter().filter(|a| matches!(a.action, Action::Join { .. })).count();
    if joins < 2 {
        return Err(format!("the seeded schedule has {joins} joins: {schedule:?}"));
    }
    let dir = std::env::temp_dir().join(format!("dwb-nemesis-membership-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let recorder = Recorder::create(&dir.join("history.jsonl"), Instant::now()).map_err(|e| e.to_string())?;
    let acked: Acked = Arc::default();
    for i in 0..PRELOAD {
        put_anywhere(cluster.as_ref(), &format!("pre{i}"), &acked).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_until(Arc::clone(&cluster), Arc::clone(&acked), Arc::clone(&stop)));
    let state = Mutex::new(FaultState::default());
    let executed = nemesis::execute(&schedule, cluster.as_ref(), &recorder, tokio::time::Instant::now(), &state).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.map_err(|e| format!("writer panicked: {e}"))?;
    executed.map_err(|e| format!("the membership nemesis failed: {e}"))?;
    nemesis::heal_all(cluster.as_ref(), &recorder, &state).await.map_err(|e| format!("heal: {e}"))?;
    let events = check_events(&recorder.read_back().map_err(|e| e.to_string())?.ops, &initial, &cluster.nodes())?;
    let acked = acked.lock().await.clone();
    let (checked, lost) = read_back(cluster.as_ref(), &acked).await;
    if acked.len() < PRELOAD || !lost.is_empty() {
        return Err(format!(
            "{} of {checked} acknowledged writes lost: {:?}; {events}",
            lost.len(),
            &lost[..lost.len().min(5)]
        ));
    }
    let replicas = cluster.preference_list("pre0").await.map_err(|e| e.to_string())?;
    let members = cluster.nodes();
    if replicas.len() != 3 || !replicas.iter().all(|r| members.contains(r)) {
        return Err(format!("preference list of pre0 is {replicas:?}, members {members:?}"));
    }
    Ok(format!(
        "{events}; {written} writes during the changes; {checked} reads of {} acked keys, none lost",
        acked.len()
    ))
}

/// Every join and leave event says what happened; the last event is the
/// final membership, matching the cluster; the cluster is back to its size.
fn check_events(history: &[Op], initial: &[String], members: &[String]) -> Result<String, String> {
    let mut lines = Vec::new();
    for op in history {
        let v = &op.value;
        if v.get("error").is_some() {
            return Err(format!("nemesis event failed: {} {v}", op.f));
        }
        let fields: &[&str] = match op.f.as_str() {
            "join" => &["node", "address", "keys_held", "duration_ms", "members"],
            "leave" if v.get("skipped").is_none() => &["node", "address", "keys_streamed", "duration_ms", "members"],
            _ => continue,
        };
        if let Some(missing) = fields.iter().find(|f| v.get(**f).is_none()) {
            return Err(format!("{} event without {missing}: {v}", op.f));
        }
        let figure = v.get("keys_held").or(v.get("keys_streamed")).cloned().unwrap_or_default();
        lines.push(format!("{} {} ({figure} keys, {} ms)", op.f, v["node"], v["duration_ms"]));
        if op.f == "join" && initial.iter().any(|n| *n == v["node"]) {
            return Err(format!("a join reused an initial name: {v}"));
        }
    }
    let last = history.last().ok_or("an empty history")?;
    let recorded: Vec<String> = serde_json::from_value(last.value["nodes"].clone()).unwrap_or_default();
    if last.f != "membership" || recorded != members {
        return Err(format!("the final event is {} {}, the cluster has {members:?}", last.f, last.value));
    }
    if members.len() != initial.len() {
        return Err(format!("{} members after join/leave pairs, started with {}", members.len(), initial.len()));
    }
    Ok(lines.join(", "))
}

/// Puts `key` = `key` through the first member that acknowledges it.
async fn put_anywhere(cluster: &dyn Cluster, key: &str, acked: &Acked) -> bool {
    for node in cluster.nodes() {
        let Ok(endpoint) = cluster.endpoint(&node) else { continue };
        let Ok(mut kv) = KvClient::connect(endpoint).await else { continue };
        let request = proto::PutRequest {
            key: key.as_bytes().to_vec(),
            value: key.as_bytes().to_vec(),
            context: vec![],
            w: None,
            w_quorum: None,
        };
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), kv.put(request)).await {
            acked.lock().await.insert(key.to_string(), node);
            return true;
        }
    }
    false
}

/// Writes fresh keys until told to stop; returns how many were acknowledged.
async fn write_until(cluster: Arc<DockerCluster>, acked: Acked, stop: Arc<AtomicBool>) -> usize {
    let mut written = 0;
    for i in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        written += usize::from(put_anywhere(cluster.as_ref(), &format!("w{i}"), &acked).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    written
}

/// Reads every acknowledged key through every member: (reads, lost keys).
async fn read_back(cluster: &dyn Cluster, acked: &BTreeMap<String, String>) -> (usize, Vec<String>) {
    let (mut reads, mut lost) = (0, Vec::new());
    for node in cluster.nodes() {
        let Ok(mut kv) = KvClient::connect(cluster.endpoint(&node).unwrap_or_default()).await else {
            lost.push(format!("{node} unreachable"));
            continue;
        };
        for (key, via) in acked {
            reads += 1;
            let reply = kv.get(proto::GetRequest { key: key.as_bytes().to_vec(), r: None, r_quorum: None }).await;
            let found = reply.is_ok_and(|r| r.into_inner().siblings.iter().any(|s| s.value == key.as_bytes()));
            if !found {
                lost.push(format!("{key} (written via {via}) not read through {node}"));
            }
        }
    }
    (reads, lost)
}
