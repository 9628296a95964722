//! Docker end-to-end: a node joins and another leaves while a register
//! workload runs, and no acknowledged write is lost nor any read stale.
//!
//! Three nodes, N=3, W=2, R=2, strict quorum (W + R > N). The register
//! workload runs through n1 and n2 (which stay) for the whole scenario.
//! Meanwhile n4 is added with `--join true` (it streams its future ranges
//! in before it owns them) and, once every node sees it normal, n3 is
//! decommissioned with `Admin.Leave` (it streams its ranges to their new
//! owners, then leaves the ring) and its container removed. After the
//! workload, final reads go through n1 and n2; the stale-reads checker must
//! pass (W + R > N strict promises none) and no write may be lost: every
//! acknowledged write is returned by the final reads or superseded by a
//! descendant.
//!
//! Needs a Docker engine and `target/dynamo-node.image` (`make image`);
//! without either it prints why and passes. The cluster is torn down
//! whether the scenario passes, fails or panics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use checker::Validity;
use docker::{Cluster, ClusterSpec, DockerCluster};
use history::Knobs;
use history::{Op, Recorder, RunConfig};
use proto::admin_client::AdminClient;
use tokio::sync::Mutex;
use tonic::transport::Channel;
use workload::register::{self, NodeChoice, Target};
use workload::DynamoClient;
use workload::WorkloadConfig;

/// How long the workload runs (the membership changes happen inside).
const WORKLOAD: Duration = Duration::from_secs(24);
/// How long a join may take to be seen as normal by every node.
const JOIN_BOUND: Duration = Duration::from_secs(15);
const NODE_ARGS: &str = "--n 3 --w 2 --r 2 --request-timeout-ms 500 --sloppy-quorum false \
                         --gossip-interval-ms 200 --fail-after-ms 1000 --ring-delay-ms 1500 \
                         --storage memory";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_and_leave_under_a_register_workload_lose_nothing() {
    let Some(image) = docker::image_for_tests().await else {
        return;
    };
    let started = Instant::now();
    let name = format!("member{}", std::process::id());
    let spec = spec(&name);
    let cluster = DockerCluster::start(&spec, &image).await.expect("cluster starts");
    let cluster = Arc::new(Mutex::new(cluster));
    let outcome = tokio::spawn(scenario(Arc::clone(&cluster))).await;
    let cluster = cluster.lock().await;
    cluster.collect_logs().await.ok();
    cluster.teardown().await.expect("teardown");
    match outcome {
        Ok(Ok(report)) => eprintln!("{report}; whole test {} ms", started.elapsed().as_millis()),
        Ok(Err(failure)) => panic!("{failure} (node logs in {})", spec.log_dir.display()),
        Err(panic) => std::panic::resume_unwind(panic.into_panic()),
    }
}

fn spec(name: &str) -> ClusterSpec {
    ClusterSpec {
        name: name.to_string(),
        nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        node_args: NODE_ARGS.split_whitespace().map(String::from).collect(),
        log_dir: std::env::temp_dir().join(format!("dwb-test-logs-{name}")),
        link_proxy: None,
        clock_faults: false,
        power_loss: false,
    }
}

fn knobs() -> Knobs {
    Knobs {
        time_limit_s: WORKLOAD.as_secs(),
        concurrency: 4,
        rate: 100.0,
        keys: 20,
        read_fraction: 0.5,
        rmw_fraction: 0.5,
        node_choice: NodeChoice::Random,
        ..Knobs::default()
    }
}

fn register_config() -> WorkloadConfig {
    WorkloadConfig::new(knobs(), 7)
}

fn run_config(image: String) -> RunConfig {
    RunConfig {
        nodes: vec!["n1".into(), "n2".into(), "n3".into(), "n4".into()],
        n: 3,
        w: 2,
        r: 2,
        sloppy_quorum: false,
        resolution: history::Resolution::Siblings,
        hinted_handoff: true,
        read_repair: false,
        anti_entropy: false,
        workload: "register".into(),
        nemesis: vec!["join".into(), "leave".into()],
        seed: 7,
        backend: "docker".into(),
        node_image: image,
        started_at: String::new(),
        knobs: knobs(),
        labels: history::RunLabels::default(),
        topology: history::Topology::default(),
        extra: serde_json::Map::new(),
    }
}

/// The whole scenario; errors (not panics) so the caller tears down first.
async fn scenario(cluster: Arc<Mutex<DockerCluster>>) -> Result<String, String> {
    let (targets, image, n1_endpoint) = {
        let c = cluster.lock().await;
        let targets = targets(&c, &["n1", "n2"])?;
        (targets, c.image(), c.endpoint("n1").map_err(|e| e.to_string())?)
    };
    let dir = std::env::temp_dir().join(format!("dwb-membership-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let recorder = Arc::new(Recorder::create(&dir.join("history.jsonl"), Instant::now()).map_err(|e| e.to_string())?);
    let config = register_config();
    let workload = {
        let (config, targets, recorder) = (config.clone(), targets.clone(), Arc::clone(&recorder));
        tokio::spawn(async move { register::run(&config, &targets, recorder, WORKLOAD).await })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let timeline = change_membership(&cluster, &recorder, &n1_endpoint).await;
    let summary = workload.await.map_err(|e| format!("workload panicked: {e}"))?;
    let timeline = timeline?;
    recorder.record(Op::nemesis("phase", serde_json::json!({"phase": "final"}))).map_err(|e| e.to_string())?;
    workload::final_reads(
        config.knobs.keys,
        &targets,
        Arc::clone(&recorder),
        summary.max_process + 1,
        register::siblings_json,
    )
    .await;
    let history = recorder.read_back().map_err(|e| e.to_string())?;
    let results = checker::check_all(&history, &run_config(image), &[]);
    let stale = results.checkers.get("stale-reads").map(|c| c.valid);
    let (checked, lost) = lost_writes(&history);
    let report = format!(
        "{timeline}; {} ops; stale-reads {stale:?}; {checked} acked writes checked against the final reads, {} lost",
        summary.ops,
        lost.len()
    );
    if stale != Some(Validity::True) {
        let detail = serde_json::to_string(&results.checkers.get("stale-reads")).unwrap_or_default();
        return Err(format!("stale-reads is {stale:?}: {detail}; {report}"));
    }
    if checked == 0 || !lost.is_empty() {
        return Err(format!("lost writes {:?}; {report}", &lost[..lost.len().min(5)]));
    }
    Ok(report)
}

/// Acknowledged writes the final reads neither returned nor superseded:
/// (writes checked, descriptions of the lost ones). The checker crate's
/// lost-writes checker is for the set workload; for registers a write is
/// kept when some final-read sibling's clock descends from its version.
fn lost_writes(history: &history::History) -> (usize, Vec<String>) {
    let final_start =
        history.ops.iter().position(|op| op.f == "phase" && op.value["phase"] == "final").unwrap_or(history.ops.len());
    let mut finals: std::collections::BTreeMap<&str, Vec<history::Version>> = Default::default();
    for op in &history.ops[final_start..] {
        if let (Some(key), Some(siblings)) = (op.key.as_deref(), op.siblings()) {
            finals.entry(key).or_default().extend(siblings.into_iter().map(|s| s.version));
        }
    }
    let acked = history.ops.iter().filter(|op| op.f == "write" && op.kind == history::OpType::Ok);
    let (mut checked, mut lost) = (0, Vec::new());
    for write in acked {
        let (Some(key), Some(version)) = (write.key.as_deref(), write.version.as_ref()) else { continue };
        let Some(seen) = finals.get(key) else { continue };
        checked += 1;
        if !seen.iter().any(|v| v.covers(version, history::Resolution::Siblings)) {
            lost.push(format!("{key} {:?} (op {})", write.value, write.index));
        }
    }
    (checked, lost)
}

fn targets(cluster: &DockerCluster, nodes: &[&str]) -> Result<Vec<Target>, String> {
    nodes
        .iter()
        .map(|node| {
            let endpoint = cluster.endpoint(node).map_err(|e| e.to_string())?;
            let client = DynamoClient::new(&endpoint, 2_000).map_err(|e| format!("{e:?}"))?;
            Ok(Target { node: node.to_string(), client: Arc::new(client) })
        })
        .collect()
}

/// Adds n4 (join), waits until it is normal everywhere, decommissions n3
/// and removes it. Returns a one-line timeline.
async fn change_membership(
    cluster: &Mutex<DockerCluster>,
    recorder: &Recorder,
    n1_endpoint: &str,
) -> Result<String, String> {
    let seed = format!("n1={}", n1_endpoint.trim_start_matches("http://"));
    let join_args: Vec<String> = ["--join", "true", "--seed-node", &seed].iter().map(|s| s.to_string()).collect();
    let t0 = Instant::now();
    recorder.record(Op::nemesis("join", serde_json::json!({"node": "n4"}))).map_err(|e| e.to_string())?;
    cluster.lock().await.add_node("n4", &join_args).await.map_err(|e| format!("add n4: {e}"))?;
    let n4_started = t0.elapsed().as_millis();
    let probes = ["n1", "n2", "n3", "n4"];
    wait_ring_status(cluster, &probes, "n4", "normal").await?;
    let n4_normal = t0.elapsed().as_millis();
    recorder.record(Op::nemesis("leave", serde_json::json!({"node": "n3"}))).map_err(|e| e.to_string())?;
    let left = admin(cluster, "n3").await?.leave(proto::LeaveRequest {}).await;
    let left = left.map_err(|e| format!("leave n3: {e}"))?.into_inner();
    wait_ring_status(cluster, &["n1", "n2", "n4"], "n3", "left").await?;
    cluster.lock().await.remove_node("n3").await.map_err(|e| format!("remove n3: {e}"))?;
    Ok(format!(
        "n4 answering at {n4_started} ms, normal everywhere at {n4_normal} ms; n3 left at {} ms \
         ({} keys streamed in {} ms)",
        t0.elapsed().as_millis(),
        left.keys_streamed,
        left.duration_ms
    ))
}

async fn admin(cluster: &Mutex<DockerCluster>, node: &str) -> Result<AdminClient<Channel>, String> {
    let endpoint = cluster.lock().await.endpoint(node).map_err(|e| e.to_string())?;
    AdminClient::connect(endpoint).await.map_err(|e| format!("connect {node}: {e}"))
}

/// Waits until every probe's gossip shows `member` with `status`.
async fn wait_ring_status(
    cluster: &Mutex<DockerCluster>,
    probes: &[&str],
    member: &str,
    status: &str,
) -> Result<(), String> {
    let deadline = Instant::now() + JOIN_BOUND;
    loop {
        let mut everywhere = true;
        for probe in probes {
            let view = admin(cluster, probe).await?.membership(proto::MembershipRequest {}).await;
            let view = view.map_err(|e| format!("membership of {probe}: {e}"))?.into_inner();
            everywhere &= view.members.iter().any(|m| m.node_id == member && m.ring_status == status);
        }
        if everywhere {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{member} not {status} on {probes:?} within {JOIN_BOUND:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
