//! A power loss of a local process, end to end: a one-node `LocalCluster`
//! started for power loss has its data directory on lazyfs; a file written
//! there and not synced, beside one written and synced (its directory too),
//! is dropped by `power_loss`, whose report names it and its bytes; the
//! synced one survives, the node restarts on what is left, and the
//! teardown unmounts the filesystem and removes the directories.
//!
//! Needs the built binaries, root and `/dev/fuse` (as `make test` runs in
//! CI); without them the capability table says why and the test passes
//! vacuously, saying so.

use std::io::Write;

use docker::{find_node_binary, Cluster, ClusterSpec, Fault, LocalCluster};

fn spec(name: &str) -> ClusterSpec {
    let mut spec = ClusterSpec::three_nodes_for_test(name, None);
    spec.nodes.truncate(1);
    spec.node_args = ["--n", "1", "--w", "1", "--r", "1", "--storage", "lsm"].iter().map(|a| a.to_string()).collect();
    spec.power_loss = true;
    spec
}

/// Writes `bytes` zeros to `path`, fsyncing the file when `sync`.
fn write_file(path: &std::path::Path, bytes: usize, sync: bool) {
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&vec![0u8; bytes]).unwrap();
    if sync {
        file.sync_all().unwrap();
    }
}

#[tokio::test]
async fn a_local_power_loss_drops_what_was_not_synced_and_keeps_what_was() {
    let Some(binary) = find_node_binary() else {
        eprintln!("SKIP: no dynamo-node binary");
        return;
    };
    if let Some(why) = LocalCluster::capabilities().why_not(Fault::PowerLoss, docker::StoreKind::Dynamo) {
        eprintln!("SKIP: {why}");
        return;
    }
    let spec = spec(&format!("local-power-{}", std::process::id()));
    let cluster = LocalCluster::start(&spec, binary).await.expect("a power-loss cluster starts");
    let data_dir = cluster.data_dir("n1").unwrap();
    // The scenario returns its failure instead of panicking, so the mount is always removed.
    let result = scenario(&cluster, &data_dir).await;
    cluster.teardown().await.expect("teardown");
    assert!(!lazyfs::is_mounted(&data_dir), "teardown unmounts {}", data_dir.display());
    assert!(!data_dir.exists(), "teardown removes the data directory");
    result.unwrap_or_else(|e| panic!("{e} (logs in {})", spec.log_dir.display()));
}

async fn scenario(cluster: &LocalCluster, data_dir: &std::path::Path) -> Result<(), String> {
    let mechanism = cluster.fault_mechanism(Fault::PowerLoss);
    if mechanism != Some("lazyfs") {
        return Err(format!("the mechanism is {mechanism:?}, not lazyfs"));
    }
    if !lazyfs::is_mounted(data_dir) {
        return Err(format!("{} is not a mount", data_dir.display()));
    }
    write_file(&data_dir.join("kept"), 3_000, true);
    std::fs::File::open(data_dir).and_then(|d| d.sync_all()).map_err(|e| e.to_string())?;
    write_file(&data_dir.join("unsynced"), 5_000, false);
    let loss = cluster.power_loss("n1").await.map_err(|e| e.to_string())?;
    let lost_file = loss["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with("unsynced")));
    if lost_file.and_then(|f| f["dropped_bytes"].as_u64()) != Some(5_000) {
        return Err(format!("the unsynced file's 5000 bytes were not reported dropped: {loss}"));
    }
    cluster.restart("n1").await.map_err(|e| e.to_string())?;
    if data_dir.join("unsynced").exists() {
        return Err("the unsynced file survived the loss".into());
    }
    let kept = std::fs::metadata(data_dir.join("kept")).map_err(|e| format!("the synced file is gone: {e}"))?;
    if kept.len() != 3_000 {
        return Err(format!("the synced file holds {} bytes, not 3000", kept.len()));
    }
    Ok(())
}
