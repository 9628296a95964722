//! Join and leave between in-process nodes on 127.0.0.1, over real gRPC.
//!
//! Three nodes (N=3) take 300 writes with W=3, so every home replica holds
//! every key it owns. A fourth node starts with `--join true`, knowing only
//! itself and one seed node (the others it learns from gossip); once every
//! node's gossip shows it normal, its own replica must hold exactly the
//! keys the four-node ring places on it (streamed in before it took
//! ownership) and nothing else, and the share of replicas that moved is
//! printed (ideal 1/4). Then n2 is decommissioned with `Admin.Leave`; the
//! remaining three nodes are then the replicas of every key and must each
//! hold all 300.
//!
//! Anti-entropy across a join: the nodes started before it know the joiner
//! only from gossip, and their exchanges must reach it all the same.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dynamo_node::placement::ring::{Ring, RingMember};
use dynamo_node::repair::anti_entropy::range_name;
use dynamo_node::{serve, Config, NodeId, ServeError};
use proto::admin_client::AdminClient;
use proto::kv_client::KvClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

const KEYS: usize = 300;
const FLAGS: &[&str] = &[
    "--n",
    "3",
    "--w",
    "2",
    "--r",
    "2",
    "--storage",
    "memory",
    "--request-timeout-ms",
    "500",
    "--gossip-interval-ms",
    "50",
    "--fail-after-ms",
    "500",
    "--ring-delay-ms",
    "300",
    "--vnodes",
    "64",
];

/// A running in-process node.
struct TestNode {
    /// Stops it gracefully.
    _stop: oneshot::Sender<()>,
    /// The server task.
    _task: JoinHandle<Result<(), ServeError>>,
}

fn start(id: &str, listener: TcpListener, peers: &str, extra: &[&str]) -> TestNode {
    let listen = listener.local_addr().unwrap().to_string();
    let mut argv = vec!["dynamo-node", "--id", id, "--listen", &listen, "--peers", peers];
    argv.extend_from_slice(FLAGS);
    argv.extend_from_slice(extra);
    let config = Config::from_cli(argv).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(config, listener, async {
        let _ = stopped.await;
    }));
    TestNode { _stop: stop, _task: task }
}

fn peers(addrs: &[SocketAddr]) -> String {
    addrs.iter().enumerate().map(|(i, a)| format!("n{}={a}", i + 1)).collect::<Vec<_>>().join(",")
}

async fn admin(addr: SocketAddr) -> AdminClient<Channel> {
    AdminClient::connect(format!("http://{addr}")).await.unwrap()
}

/// Waits until every node in `probes` sees `member` with `status`.
async fn wait_status(probes: &[SocketAddr], member: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut everywhere = true;
        for addr in probes {
            let view = admin(*addr).await.membership(proto::MembershipRequest {}).await.unwrap().into_inner();
            everywhere &= view.members.iter().any(|m| m.node_id == member && m.ring_status == status);
        }
        if everywhere {
            return;
        }
        assert!(Instant::now() < deadline, "{member} never became {status} everywhere");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn holds(addr: SocketAddr, key: &[u8]) -> bool {
    let reply = admin(addr).await.local_get(proto::LocalGetRequest { key: key.to_vec() }).await.unwrap();
    !reply.into_inner().siblings.is_empty()
}

fn ring(ids: &[&str]) -> Ring {
    Ring::new(ids.iter().map(|id| RingMember::new(NodeId::from(*id), 64)).collect()).unwrap()
}

fn key(i: usize) -> Vec<u8> {
    format!("member-{i:04}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_streams_exactly_the_new_ranges_and_leave_hands_them_on() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn").try_init();
    let mut listeners = Vec::new();
    for _ in 0..4 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let first_three = peers(&addrs[..3]);
    let mut nodes = Vec::new();
    let mut listeners = listeners.into_iter();
    for i in 1..=3 {
        nodes.push(start(&format!("n{i}"), listeners.next().unwrap(), &first_three, &[]));
    }
    let mut kv = KvClient::connect(format!("http://{}", addrs[0])).await.unwrap();
    for i in 0..KEYS {
        let put = proto::PutRequest { key: key(i), value: b"v".to_vec(), context: vec![], w: Some(3), w_quorum: None };
        kv.put(put).await.expect("write with all three replicas up");
    }

    let joined = Instant::now();
    let seed = format!("n1={}", addrs[0]);
    // n4 knows only itself and one seed: the rest comes from gossip.
    let own = format!("n4={}", addrs[3]);
    nodes.push(start("n4", listeners.next().unwrap(), &own, &["--join", "true", "--seed-node", &seed]));
    wait_status(&addrs, "n4", "normal").await;
    eprintln!("n4 normal everywhere {} ms after it started", joined.elapsed().as_millis());
    let after_join = ring(&["n1", "n2", "n3", "n4"]);
    let mut owned = 0;
    for i in 0..KEYS {
        let owner = after_join.preference_list(&key(i), 3).contains(&NodeId::from("n4"));
        owned += usize::from(owner);
        assert_eq!(holds(addrs[3], &key(i)).await, owner, "key {i}: n4 owns it = {owner}");
    }
    let moved = owned as f64 / (3 * KEYS) as f64;
    eprintln!("join moved {owned} of {} replicas: {moved:.3} (ideal 0.250)", 3 * KEYS);
    assert!((0.15..0.35).contains(&moved), "moved {moved}");

    let reply = admin(addrs[1]).await.leave(proto::LeaveRequest {}).await.expect("n2 leaves");
    let left = reply.into_inner();
    eprintln!("n2 left: {} keys streamed in {} ms", left.keys_streamed, left.duration_ms);
    let rest = [addrs[0], addrs[2], addrs[3]];
    wait_status(&rest, "n2", "left").await;
    for i in 0..KEYS {
        for addr in rest {
            assert!(holds(addr, &key(i)).await, "key {i} missing on {addr} after n2 left");
        }
    }
    let mut kv = KvClient::connect(format!("http://{}", addrs[3])).await.unwrap();
    let read =
        kv.get(proto::GetRequest { key: key(0), r: Some(3), r_quorum: None }).await.expect("R=3 on the new ring");
    assert_eq!(read.into_inner().siblings.len(), 1);
}

/// Hints held for a node that has left the ring are re-routed to the key's
/// current replicas instead of waiting for a home that never comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_for_a_departed_node_reach_the_current_replicas() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn").try_init();
    let mut listeners = Vec::new();
    for _ in 0..4 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let all = peers(&addrs);
    let _nodes: Vec<TestNode> =
        listeners.into_iter().enumerate().map(|(i, l)| start(&format!("n{}", i + 1), l, &all, &[])).collect();
    admin(addrs[2]).await.leave(proto::LeaveRequest {}).await.expect("n3 leaves");
    let rest = [addrs[0], addrs[1], addrs[3]];
    wait_status(&rest, "n3", "left").await;
    let hinted = 50;
    let stores = (0..hinted)
        .map(|i| proto::StoreRequest {
            key: key(i),
            siblings: vec![proto::Sibling {
                value: b"late".to_vec(),
                tombstone: false,
                version: Some(proto::Version {
                    clock: [("n1".to_string(), 1)].into(),
                    ts_ms: 1,
                    entry_ts_ms: [("n1".to_string(), 1)].into(),
                    dot: None,
                }),
            }],
            from: "test".into(),
            hint_for: "n3".into(),
            ..Default::default()
        })
        .collect();
    let mut replica = proto::replica_client::ReplicaClient::connect(format!("http://{}", addrs[0])).await.unwrap();
    replica.store_batch(proto::StoreBatchRequest { stores, from: "test".into() }).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = admin(addrs[0]).await.status(proto::StatusRequest {}).await.unwrap().into_inner();
        if status.counters["hints_pending"] == 0 {
            assert_eq!(status.counters["hints_stored"], hinted as u64);
            break;
        }
        assert!(Instant::now() < deadline, "hints for the departed n3 never re-routed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 0..hinted {
        for addr in rest {
            assert!(holds(addr, &key(i)).await, "re-routed key {i} missing on {addr}");
        }
    }
}

/// The status of the node at `addr`.
async fn status(addr: SocketAddr) -> proto::StatusResponse {
    admin(addr).await.status(proto::StatusRequest {}).await.unwrap().into_inner()
}

/// Waits until every node's Merkle ranges are those `ring` gives it.
async fn wait_ranges(addrs: &[SocketAddr], ring: &Ring) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for (i, addr) in addrs.iter().enumerate() {
        let me = NodeId::from(format!("n{}", i + 1).as_str());
        let expected: Vec<String> =
            ring.replica_sets(3).into_iter().filter(|s| s.contains(&me)).map(|s| range_name(&s)).collect();
        while status(*addr).await.merkle_roots.keys().cloned().collect::<Vec<_>>() != expected {
            assert!(Instant::now() < deadline, "{me} never indexed the ranges of the new ring");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Anti-entropy of the nodes started before a join reaches the joiner.
/// n1 to n3 know only each other from `--peers`; n4 joins through a seed.
/// Once every node indexes the 4-node ring's ranges, a key planted on n1
/// alone (placed on n4 by that ring) must reach n4, and over the next
/// rounds each old node must complete exchanges and count no failure:
/// an old node's peer for a range alternates between its other replicas
/// round by round, so within two rounds it picks n4 for every range they
/// share. (It did count failures when anti-entropy resolved addresses from
/// `--peers` instead of from membership: n4 had no address there.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_entropy_from_an_old_node_reaches_a_node_that_joined() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn").try_init();
    let mut listeners = Vec::new();
    for _ in 0..4 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let first_three = peers(&addrs[..3]);
    let aae = ["--aae-interval-ms", "100", "--merkle-buckets", "64", "--read-repair", "false", "--metrics-listen", ""];
    let mut listeners = listeners.into_iter();
    let mut nodes = Vec::new();
    for i in 1..=3 {
        nodes.push(start(&format!("n{i}"), listeners.next().unwrap(), &first_three, &aae));
    }
    let seed = format!("n1={}", addrs[0]);
    let own = format!("n4={}", addrs[3]);
    let mut joiner_flags = vec!["--join", "true", "--seed-node", &seed];
    joiner_flags.extend_from_slice(&aae);
    nodes.push(start("n4", listeners.next().unwrap(), &own, &joiner_flags));
    wait_status(&addrs, "n4", "normal").await;
    let after_join = ring(&["n1", "n2", "n3", "n4"]);
    wait_ranges(&addrs, &after_join).await;
    let mut before = Vec::new();
    for addr in &addrs[..3] {
        before.push(status(*addr).await.counters);
    }

    let on_n1_and_n4 = |i: &usize| {
        let homes = after_join.preference_list(&key(*i), 3);
        homes.contains(&NodeId::from("n1")) && homes.contains(&NodeId::from("n4"))
    };
    let planted: Vec<usize> = (0..KEYS).filter(on_n1_and_n4).take(5).collect();
    assert_eq!(planted.len(), 5, "the 4-node ring puts some keys on n1 and n4");
    let mut replica = proto::replica_client::ReplicaClient::connect(format!("http://{}", addrs[0])).await.unwrap();
    for i in &planted {
        let store = proto::StoreRequest {
            key: key(*i),
            siblings: vec![proto::Sibling {
                value: b"planted".to_vec(),
                tombstone: false,
                version: Some(proto::Version {
                    clock: [("n1".to_string(), 1)].into(),
                    ts_ms: 1,
                    entry_ts_ms: [("n1".to_string(), 1)].into(),
                    dot: None,
                }),
            }],
            from: "test".into(),
            hint_for: String::new(),
            ..Default::default()
        };
        replica.store(store).await.expect("planted on n1 alone");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in &planted {
        while !holds(addrs[3], &key(*i)).await {
            assert!(Instant::now() < deadline, "anti-entropy never brought key {i} to n4");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // At least four more rounds of every old node (100 ms apart).
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    for (n, addr) in addrs[..3].iter().enumerate() {
        let after = status(*addr).await.counters;
        let grew = |name: &str| after[name] - before[n][name];
        assert!(grew("aae_exchanges") >= 4, "n{} completed {} exchanges", n + 1, grew("aae_exchanges"));
        assert_eq!(grew("aae_exchange_failures"), 0, "n{} failed exchanges after the join", n + 1);
    }
}
