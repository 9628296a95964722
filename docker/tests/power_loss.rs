//! A power loss in a real container, end to end: a one-node Docker cluster
//! started for power loss has its `/data` on lazyfs; a file written there
//! and not synced, beside one written and synced (its directory too), is
//! dropped by `power_loss`, whose report names it and its bytes; the synced
//! one survives, the node restarts on what is left, and the teardown leaves
//! no container behind.
//!
//! Needs a Docker engine and the node image (`make image`); without them
//! the test says so and passes vacuously.

use docker::{image_for_tests, Cluster, ClusterSpec, DockerCluster};

fn spec(name: &str) -> ClusterSpec {
    let mut spec = ClusterSpec::three_nodes_for_test(name, None);
    spec.nodes.truncate(1);
    spec.node_args = ["--n", "1", "--w", "1", "--r", "1", "--storage", "lsm"].iter().map(|a| a.to_string()).collect();
    spec.power_loss = true;
    spec
}

#[tokio::test]
async fn a_power_loss_drops_what_was_not_synced_and_keeps_what_was() {
    let Some(image) = image_for_tests().await else { return };
    let spec = spec(&format!("power-{}", std::process::id()));
    let cluster = DockerCluster::start(&spec, &image).await.expect("a power-loss cluster starts");
    // The scenario returns its failure instead of panicking, so the container is always removed.
    let result = scenario(&cluster).await;
    cluster.collect_logs().await.ok();
    cluster.teardown().await.expect("teardown");
    result.unwrap_or_else(|e| panic!("{e} (node logs in {})", spec.log_dir.display()));
}

async fn sh(cluster: &dyn Cluster, script: &str) -> Result<String, String> {
    let out = cluster.exec("n1", &["sh", "-c", script]).await.map_err(|e| e.to_string())?;
    if out.exit_code != 0 {
        return Err(format!("`{script}`: exit {}: {}", out.exit_code, out.stderr));
    }
    Ok(out.stdout)
}

async fn scenario(cluster: &dyn Cluster) -> Result<(), String> {
    let mechanism = cluster.fault_mechanism(docker::Fault::PowerLoss);
    if mechanism != Some("lazyfs") {
        return Err(format!("the mechanism is {mechanism:?}, not lazyfs"));
    }
    let mounts = sh(cluster, "grep ' /data ' /proc/mounts").await?;
    if !mounts.contains("fuse") {
        return Err(format!("/data is not the lazy filesystem: {mounts}"));
    }
    // dd's conv=fsync syncs the file; `sync` of the directory (an fsync) its entry.
    sh(cluster, "dd if=/dev/zero of=/data/kept bs=1000 count=3 conv=fsync 2>/dev/null && sync /data").await?;
    sh(cluster, "dd if=/dev/zero of=/data/unsynced bs=1000 count=5 2>/dev/null").await?;
    let loss = cluster.power_loss("n1").await.map_err(|e| e.to_string())?;
    let lost_file = loss["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with("unsynced")));
    let dropped = lost_file.and_then(|f| f["dropped_bytes"].as_u64());
    if dropped != Some(5_000) {
        return Err(format!("the unsynced file's 5000 bytes were not reported dropped: {loss}"));
    }
    cluster.restart("n1").await.map_err(|e| e.to_string())?;
    let left = sh(cluster, "ls /data; stat -c '%n %s' /data/kept").await?;
    if left.contains("unsynced") || !left.contains("/data/kept 3000") {
        return Err(format!("after the loss /data holds: {left}"));
    }
    Ok(())
}
