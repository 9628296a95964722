//! The real `dynamo-node` binary on the default LSM engine: writes
//! acknowledged by a single-node cluster survive a SIGKILL and restart, and
//! `Admin.Status` reports the engine and its `lsm_` counters.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proto::admin_client::AdminClient;
use proto::kv_client::KvClient;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn start(data_dir: &Path, port: u16) -> Child {
    let addr = format!("127.0.0.1:{port}");
    Command::new(env!("CARGO_BIN_EXE_dynamo-node"))
        .args(["--id", "n1", "--listen", &addr, "--peers", &format!("n1={addr}")])
        .args(["--n", "1", "--w", "1", "--r", "1", "--fsync", "always"])
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dynamo-node")
}

async fn connect(port: u16) -> KvClient<tonic::transport::Channel> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(c) = KvClient::connect(format!("http://127.0.0.1:{port}")).await {
            return c;
        }
        assert!(Instant::now() < deadline, "node did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_of_the_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut node = start(dir.path(), port);
    let mut kv = connect(port).await;
    for i in 0..50u32 {
        let req = proto::PutRequest {
            key: format!("k{i}").into_bytes(),
            value: format!("v{i}").into_bytes(),
            context: vec![],
            w: Some(1),
            w_quorum: None,
        };
        kv.put(req).await.expect("acknowledged put");
    }
    node.kill().expect("SIGKILL");
    node.wait().expect("reap");

    let mut node = start(dir.path(), port);
    let mut kv = connect(port).await;
    for i in 0..50u32 {
        let req = proto::GetRequest { key: format!("k{i}").into_bytes(), r: Some(1), r_quorum: None };
        let got = kv.get(req).await.expect("get").into_inner();
        let values: Vec<Vec<u8>> = got.siblings.iter().map(|s| s.value.clone()).collect();
        assert_eq!(values, vec![format!("v{i}").into_bytes()], "k{i} after restart");
    }
    let mut admin = AdminClient::connect(format!("http://127.0.0.1:{port}")).await.expect("admin");
    let status = admin.status(proto::StatusRequest {}).await.expect("status").into_inner();
    assert_eq!(status.storage, "lsm");
    assert_eq!(status.keys, 50);
    assert!(status.counters.contains_key("lsm_wal_bytes"), "{:?}", status.counters.keys());
    node.kill().expect("SIGKILL");
    node.wait().expect("reap");
}
