//! The planted one-ack bug (`src/planted.rs`): off in the default build, on
//! only with `--features planted-bug-one-ack`. Each test asserts the
//! behaviour of the build it runs in, so the default `cargo test` proves
//! the release build carries no planted bug, and
//! `cargo test --release -p dynamo-node --features planted-bug-one-ack --test planted_bug`
//! proves the bug bites (a W=3 write answered after one ack).

use std::net::SocketAddr;
use std::process::Command;

use dynamo_node::planted::{ONE_ACK, PLANTED_BUGS};
use dynamo_node::{serve, Config};
use proto::admin_client::AdminClient;
use proto::kv_client::KvClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const PLANTED: bool = cfg!(feature = "planted-bug-one-ack");

/// Three in-memory nodes on loopback; returns their addresses and the
/// senders that stop them (dropping one stops its node).
async fn three_nodes() -> (Vec<SocketAddr>, Vec<oneshot::Sender<()>>) {
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let peers: Vec<String> = addrs.iter().enumerate().map(|(i, a)| format!("n{}={a}", i + 1)).collect();
    let peers = peers.join(",");
    let mut stops = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let (id, listen) = (format!("n{}", i + 1), addrs[i].to_string());
        let argv = ["dynamo-node", "--id", &id, "--listen", &listen, "--peers", &peers, "--storage", "memory"];
        let config = Config::from_cli(argv).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(config, listener, async {
            let _ = stopped.await;
        }));
        stops.push(stop);
    }
    (addrs, stops)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_w3_write_waits_for_three_acks_unless_the_bug_is_planted() {
    let (addrs, _stops) = three_nodes().await;
    let mut kv = KvClient::connect(format!("http://{}", addrs[0])).await.unwrap();
    for i in 0..20 {
        let request = proto::PutRequest {
            key: format!("k{i}").into_bytes(),
            value: b"v".to_vec(),
            context: vec![],
            w: Some(3),
            w_quorum: None,
        };
        let acks = kv.put(request).await.unwrap().into_inner().acks;
        // The round answers the moment it is decided: after exactly W acks.
        assert_eq!(acks, if PLANTED { 1 } else { 3 }, "write {i}");
    }
    let mut admin = AdminClient::connect(format!("http://{}", addrs[0])).await.unwrap();
    let status = admin.status(proto::StatusRequest {}).await.unwrap().into_inner();
    let expected: Vec<String> = if PLANTED { vec![ONE_ACK.to_string()] } else { vec![] };
    assert_eq!(status.planted_bugs, expected);
    assert_eq!(status.w, 2, "the configured W is unchanged; only the round is wrong");
}

#[test]
fn the_binary_reports_its_planted_bugs() {
    let out = Command::new(env!("CARGO_BIN_EXE_dynamo-node")).arg("--version").output().unwrap();
    assert!(out.status.success());
    let version = String::from_utf8(out.stdout).unwrap();
    assert_eq!(version.contains(ONE_ACK), PLANTED, "{version}");
    assert_eq!(version.contains("planted bugs: none"), !PLANTED, "{version}");
    assert_eq!(PLANTED_BUGS.is_empty(), !PLANTED);
}

#[test]
fn a_binary_with_a_planted_bug_refuses_to_serve() {
    if !PLANTED {
        return; // the default binary serves: tests/lsm_node_restart.rs runs it
    }
    let out = Command::new(env!("CARGO_BIN_EXE_dynamo-node"))
        .args(["--id", "n1", "--listen", "127.0.0.1:0", "--peers", "n1=127.0.0.1:1", "--storage", "memory"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("refusing to serve") && stderr.contains(ONE_ACK), "{stderr}");
}
