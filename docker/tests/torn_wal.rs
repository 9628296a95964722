//! A torn write at the tail of a real node's commit log, end to end: a
//! one-node `LocalCluster` acknowledges puts (fsync `always`), is SIGKILLed,
//! has the last record of its newest WAL segment cut in the middle (as a
//! crash mid-append leaves it), restarts, and must serve every earlier put,
//! not the torn one, and say in its admin counters how many bytes it cut.
//!
//! Needs a built node binary (`cargo build --release -p dynamo-node`, or
//! `$DWB_NODE_BINARY`); without one the test says so and passes vacuously.

use std::time::Duration;

use docker::{admin_status, find_node_binary, Cluster, ClusterSpec, FileDamage, LocalCluster};
use proto::kv_client::KvClient;
use proto::{GetRequest, PutRequest};

const KEYS: usize = 40;
const CUT_BYTES: u64 = 3;

fn spec(name: &str) -> ClusterSpec {
    let log_dir = std::env::temp_dir().join(format!("dwb-test-logs-{name}"));
    let _ = std::fs::remove_dir_all(&log_dir);
    let args = ["--n", "1", "--w", "1", "--r", "1", "--storage", "lsm", "--fsync", "always"];
    ClusterSpec {
        name: name.into(),
        nodes: vec!["n1".into()],
        node_args: args.iter().map(|a| a.to_string()).collect(),
        log_dir,
        link_proxy: None,
        clock_faults: false,
        power_loss: false,
    }
}

fn client(cluster: &dyn Cluster) -> KvClient<tonic::transport::Channel> {
    KvClient::new(cluster.channel("n1", Duration::from_secs(5)).expect("channel"))
}

fn key(i: usize) -> Vec<u8> {
    format!("torn-{i:03}").into_bytes()
}

async fn counter(cluster: &dyn Cluster, name: &str) -> u64 {
    let status = admin_status(&cluster.endpoint("n1").unwrap(), Duration::from_secs(2)).await.expect("status");
    status.counters.get(name).copied().unwrap_or_else(|| panic!("no counter {name}"))
}

#[tokio::test]
async fn a_torn_wal_tail_loses_only_the_torn_record() {
    let Some(binary) = find_node_binary() else {
        eprintln!("SKIP: no dynamo-node binary (cargo build --release -p dynamo-node, or set DWB_NODE_BINARY)");
        return;
    };
    let cluster =
        LocalCluster::start(&spec(&format!("torn-{}", std::process::id())), binary).await.expect("cluster starts");
    // The scenario returns its failure instead of panicking, so the process is always torn down.
    let result = scenario(&cluster).await;
    cluster.teardown().await.expect("teardown");
    result.unwrap_or_else(|e| panic!("{e}"));
}

async fn scenario(cluster: &LocalCluster) -> Result<(), String> {
    let mut kv = client(cluster);
    for i in 0..KEYS {
        let put = PutRequest { key: key(i), value: format!("value-{i}").into_bytes(), ..Default::default() };
        kv.put(put).await.map_err(|e| format!("put {i}: {e}"))?;
    }
    cluster.kill("n1").await.map_err(|e| e.to_string())?;
    let files = cluster.data_files("n1").await.map_err(|e| e.to_string())?;
    let newest = files.iter().filter(|f| f.name.starts_with("wal-") && f.bytes > 0).max_by(|a, b| a.name.cmp(&b.name));
    let newest = newest.ok_or("no WAL segment with data")?;
    let cut = FileDamage::Truncate { file: newest.name.clone(), len: newest.bytes - CUT_BYTES };
    cluster.damage_file("n1", &cut).await.map_err(|e| e.to_string())?;
    cluster.restart("n1").await.map_err(|e| e.to_string())?;
    let mut kv = client(cluster);
    for i in 0..KEYS {
        let got = kv
            .get(GetRequest { key: key(i), r: None, r_quorum: None })
            .await
            .map_err(|e| format!("get {i}: {e}"))?
            .into_inner();
        let values: Vec<Vec<u8>> = got.siblings.iter().filter(|s| !s.tombstone).map(|s| s.value.clone()).collect();
        let torn = i + 1 == KEYS;
        let want: Vec<Vec<u8>> = if torn { vec![] } else { vec![format!("value-{i}").into_bytes()] };
        if values != want {
            return Err(format!("key {i}: served {values:?}, expected {want:?} (torn record: {torn})"));
        }
    }
    let torn_bytes = counter(cluster, "lsm_wal_truncated_bytes").await;
    let quarantined = counter(cluster, "lsm_corrupt_files_quarantined").await;
    if torn_bytes == 0 || quarantined != 0 {
        return Err(format!("counters: lsm_wal_truncated_bytes {torn_bytes} (want > 0), lsm_corrupt_files_quarantined {quarantined} (want 0)"));
    }
    Ok(())
}
