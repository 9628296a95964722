//! A real three-node `LocalCluster`: start, kill, restart, teardown.
//!
//! Needs a built node binary (`cargo build --release -p dynamo-node`, or
//! `$DWB_NODE_BINARY`); without one the test says so and passes vacuously.

use std::path::PathBuf;
use std::time::Duration;

use docker::{admin_status, find_node_binary, Cluster, ClusterSpec, Fault, LocalCluster};
use nix::sys::signal::kill;
use nix::unistd::Pid;

fn spec(name: &str) -> ClusterSpec {
    ClusterSpec::three_nodes_for_test(name, None)
}

fn binary_or_skip() -> Option<PathBuf> {
    let found = find_node_binary();
    if found.is_none() {
        eprintln!("SKIP: no dynamo-node binary (cargo build --release -p dynamo-node, or set DWB_NODE_BINARY)");
    }
    found
}

/// Whether a process with this pid still exists (signal 0 probes).
fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

async fn answers(cluster: &dyn Cluster, node: &str) -> bool {
    let endpoint = cluster.endpoint(node).expect("known node");
    admin_status(&endpoint, Duration::from_secs(1)).await.is_ok()
}

#[tokio::test]
async fn local_cluster_kill_restart_teardown() {
    let Some(binary) = binary_or_skip() else {
        return;
    };
    let spec = spec(&format!("local-{}", std::process::id()));
    let cluster = LocalCluster::start(&spec, binary).await.expect("cluster starts");

    for node in cluster.nodes() {
        let status =
            admin_status(&cluster.endpoint(&node).unwrap(), Duration::from_secs(2)).await.expect("node answers");
        assert_eq!(status.node_id, node, "each endpoint is the node it claims");
    }
    assert!(cluster.supports(Fault::Kill) && cluster.supports(Fault::Pause));
    assert!(!cluster.supports(Fault::Partition) && !cluster.supports(Fault::Latency));
    assert!(cluster.exec("n1", &["true"]).await.is_err(), "exec is unsupported locally");
    // Started without clock faults, so no node runs under libfaketime and
    // a clock offset is refused, whether or not the host has the library.
    let refused = cluster.set_clock_offset("n1", 5).await.expect_err("no clock faults in this spec");
    assert!(refused.to_string().contains("without clock faults"), "{refused}");

    let data_dir = cluster.data_dir("n2").unwrap();
    cluster.kill("n2").await.expect("kill");
    assert!(!answers(&cluster, "n2").await, "a killed node must not answer");
    assert!(answers(&cluster, "n1").await, "the others keep answering");
    assert!(data_dir.exists(), "kill keeps the data directory");

    cluster.restart("n2").await.expect("restart");
    assert!(answers(&cluster, "n2").await, "a restarted node answers");

    let pids: Vec<u32> = futures_pids(&cluster).await;
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|p| alive(*p)));

    cluster.teardown().await.expect("teardown");
    cluster.teardown().await.expect("teardown is idempotent");
    assert!(pids.iter().all(|p| !alive(*p)), "teardown leaves no node process");
    let log = std::fs::read_to_string(spec.log_dir.join("n2.log")).expect("n2 log exists");
    assert!(!log.is_empty(), "node output is logged");
    let _ = std::fs::remove_dir_all(&spec.log_dir);
}

#[tokio::test]
async fn local_cluster_pause_resume() {
    let Some(binary) = binary_or_skip() else {
        return;
    };
    let spec = spec(&format!("local-pause-{}", std::process::id()));
    let cluster = LocalCluster::start(&spec, binary).await.expect("cluster starts");

    cluster.pause("n1").await.expect("pause");
    assert!(!answers(&cluster, "n1").await, "a stopped node must not answer");
    cluster.resume("n1").await.expect("resume");
    assert!(answers(&cluster, "n1").await, "a resumed node answers again");

    cluster.pause("n3").await.expect("pause before teardown");
    let pid = cluster.pid("n3").await.unwrap().expect("running");
    cluster.teardown().await.expect("teardown kills even a stopped node");
    assert!(!alive(pid));
}

async fn futures_pids(cluster: &LocalCluster) -> Vec<u32> {
    let mut pids = Vec::new();
    for node in cluster.nodes() {
        if let Some(pid) = cluster.pid(&node).await.unwrap() {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test]
async fn missing_binary_is_a_clear_error() {
    let spec = spec("local-missing");
    let err =
        LocalCluster::start(&spec, PathBuf::from("/nonexistent/dynamo-node")).await.err().expect("start must fail");
    assert!(err.to_string().contains("not found"), "{err}");
}
