//! A real three-node `DockerCluster` from the locally built image.
//!
//! Needs a Docker engine and `target/dynamo-node.image` (written by
//! `make image`); without either the test says so and passes vacuously.

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};
use docker::{admin_status, connect, docker_available, Cluster, ClusterError, ClusterSpec, DockerCluster};

/// The cluster under test may skew clocks: `exercise` sets an offset.
fn spec(name: &str) -> ClusterSpec {
    ClusterSpec { clock_faults: true, ..ClusterSpec::three_nodes_for_test(name, None) }
}

async fn answers(cluster: &dyn Cluster, node: &str) -> bool {
    admin_status(&cluster.endpoint(node).unwrap(), Duration::from_secs(1)).await.is_ok()
}

/// Containers and networks still carrying this run's label.
async fn remaining(run: &str) -> (usize, usize) {
    let docker = connect().await.expect("engine");
    let filters = HashMap::from([("label".to_string(), vec![format!("dynamo-workbench.run={run}")])]);
    let containers = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .expect("list containers");
    let networks = docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .expect("list networks");
    (containers.len(), networks.len())
}

#[tokio::test]
async fn docker_cluster_faults_logs_teardown() {
    let Some(image) = docker::image_for_tests().await else {
        return;
    };
    let run = format!("t{}", std::process::id());
    let spec = spec(&run);
    let cluster = DockerCluster::start(&spec, &image).await.expect("cluster starts");
    let outcome = exercise(&cluster, &spec).await;
    cluster.teardown().await.expect("teardown");
    cluster.teardown().await.expect("teardown is idempotent");
    assert_eq!(remaining(&run).await, (0, 0), "teardown leaves no container or network");
    outcome.expect("cluster behaves");
    let _ = std::fs::remove_dir_all(&spec.log_dir);
}

/// Everything checked while the cluster runs; errors instead of panics so
/// the caller can still tear down.
async fn exercise(cluster: &DockerCluster, spec: &ClusterSpec) -> Result<(), String> {
    for node in cluster.nodes() {
        let status = admin_status(&cluster.endpoint(&node).unwrap(), Duration::from_secs(2))
            .await
            .map_err(|e| format!("{node} does not answer: {e}"))?;
        check(status.node_id == node, format!("{node} answered as {}", status.node_id))?;
    }

    // A partition rule inside n1 against n2, visible in n1's rule set.
    let peer = cluster.peer_ip("n2").unwrap().to_string();
    let add = exec(cluster, "n1", &["iptables", "-A", "INPUT", "-s", &peer, "-j", "DROP"]).await?;
    check(add.exit_code == 0, format!("iptables -A failed: {add:?}"))?;
    let rules = exec(cluster, "n1", &["iptables", "-S"]).await?;
    check(rules.stdout.contains(&format!("-A INPUT -s {peer}/32 -j DROP")), format!("rule missing: {rules:?}"))?;
    let failing = exec(cluster, "n1", &["sh", "-c", "echo oops >&2; exit 3"]).await?;
    check(failing.exit_code == 3 && failing.stderr.contains("oops"), format!("exit code/stderr lost: {failing:?}"))?;

    // Pause/resume through signals.
    cluster.pause("n3").await.map_err(|e| e.to_string())?;
    check(!answers(cluster, "n3").await, "a SIGSTOPped node answered".into())?;
    cluster.resume("n3").await.map_err(|e| e.to_string())?;
    check(answers(cluster, "n3").await, "a resumed node does not answer".into())?;

    // Kill and restart on the same address and filesystem.
    cluster.kill("n2").await.map_err(|e| e.to_string())?;
    check(!answers(cluster, "n2").await, "a killed node answered".into())?;
    cluster.restart("n2").await.map_err(|e| e.to_string())?;
    check(answers(cluster, "n2").await, "a restarted node does not answer".into())?;

    // The node itself (PID 1 after the wrapper's exec) runs under libfaketime.
    let maps = exec(cluster, "n1", &["grep", "-c", "libfaketime", "/proc/1/maps"]).await?;
    check(maps.exit_code == 0, format!("libfaketime is not loaded in the node: {maps:?}"))?;
    let comm = exec(cluster, "n1", &["cat", "/proc/1/comm"]).await?;
    check(comm.stdout.trim() == "dynamo-node", format!("PID 1 is {:?}, not the node", comm.stdout))?;

    // The libfaketime offset reaches processes that preload it.
    cluster.set_clock_offset("n1", 3600).await.map_err(|e| e.to_string())?;
    let faked = exec(cluster, "n1", &["sh", "-c", "LD_PRELOAD=$0 date +%s", docker::LIBFAKETIME]).await?;
    let host_now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let skew = faked.stdout.trim().parse::<i64>().map_err(|e| format!("{faked:?}: {e}"))? - host_now;
    check((3590..=3610).contains(&skew), format!("faked clock is off by {skew} s, wanted ~3600"))?;
    check(answers(cluster, "n1").await, "n1 stopped answering under a skewed clock".into())?;

    cluster.collect_logs().await.map_err(|e| e.to_string())?;
    for node in cluster.nodes() {
        let log = std::fs::read(spec.log_dir.join(format!("{node}.log"))).map_err(|e| format!("{node}.log: {e}"))?;
        check(!log.is_empty(), format!("{node}.log is empty"))?;
    }
    Ok(())
}

async fn exec(cluster: &DockerCluster, node: &str, argv: &[&str]) -> Result<docker::ExecOutput, String> {
    cluster.exec(node, argv).await.map_err(|e| format!("exec {argv:?}: {e}"))
}

fn check(ok: bool, what: String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what)
    }
}

#[tokio::test]
async fn missing_image_is_reported() {
    if !docker_available().await {
        eprintln!("SKIP: no Docker engine answers");
        return;
    }
    let spec = spec(&format!("missing-{}", std::process::id()));
    let err = DockerCluster::start(&spec, "dynamo-node:does-not-exist").await.err().expect("must fail");
    assert!(matches!(err, ClusterError::MissingImage(_)), "{err}");
}
