//! In-process tests of read repair, anti-entropy and the Prometheus endpoint:
//! real nodes on 127.0.0.1 ephemeral ports, talked to over gRPC and HTTP.
//!
//! Divergence is planted by writing straight into one node's replica
//! (`Node::local_store`), as if the other replicas had missed a write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dynamo_node::net::metrics_http;
use dynamo_node::net::server::serve_node;
use dynamo_node::node::Node;
use dynamo_node::storage::MemoryStorage;
use dynamo_node::versioning::vclock::{Sibling, SiblingSet, VClock, Version};
use dynamo_node::{Config, NodeId, Resolution, SystemClock};
use proto::kv_client::KvClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Running nodes, stopped when dropped.
struct Cluster {
    /// The assembled nodes, n1 first.
    nodes: Vec<Arc<Node>>,
    /// Their gRPC addresses.
    addrs: Vec<SocketAddr>,
    /// Graceful-shutdown triggers.
    stops: Vec<oneshot::Sender<()>>,
}

impl Cluster {
    /// Starts `count` nodes with `extra` flags on every command line.
    async fn start(count: usize, extra: &[&str]) -> Cluster {
        let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn").try_init();
        let mut listeners = Vec::new();
        for _ in 0..count {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let peers: Vec<String> = addrs.iter().enumerate().map(|(i, a)| format!("n{}={a}", i + 1)).collect();
        let peers = peers.join(",");
        let (mut nodes, mut stops) = (Vec::new(), Vec::new());
        for (i, listener) in listeners.into_iter().enumerate() {
            let (id, listen) = (format!("n{}", i + 1), addrs[i].to_string());
            let mut argv = vec!["dynamo-node", "--id", &id, "--listen", &listen, "--peers", &peers];
            argv.extend_from_slice(&["--metrics-listen", ""]);
            argv.extend_from_slice(extra);
            let config = Config::from_cli(argv).unwrap();
            let node = Arc::new(Node::new(config, Arc::new(SystemClock), Arc::new(MemoryStorage::new())).unwrap());
            let (stop, stopped) = oneshot::channel::<()>();
            tokio::spawn(serve_node(Arc::clone(&node), listener, async {
                let _ = stopped.await;
            }));
            nodes.push(node);
            stops.push(stop);
        }
        Cluster { nodes, addrs, stops }
    }

    async fn kv(&self, i: usize) -> KvClient<tonic::transport::Channel> {
        KvClient::connect(format!("http://{}", self.addrs[i])).await.unwrap()
    }

    fn counter(&self, i: usize, name: &str) -> u64 {
        self.nodes[i].metrics().snapshot()[name]
    }

    fn roots(&self, i: usize) -> std::collections::BTreeMap<String, String> {
        self.nodes[i].anti_entropy().index().roots()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}

/// A set holding one value written by `node` at `counter`.
fn set(value: &str, node: &str, counter: u64) -> SiblingSet {
    SiblingSet::from_siblings(
        vec![Sibling {
            value: Some(value.as_bytes().to_vec()),
            version: Version { clock: VClock::from_entries([(NodeId::from(node), counter, 1)]), ts_ms: 1, dot: None },
        }],
        Resolution::Siblings,
    )
}

/// Polls `done` every 20 ms until it holds or `bound` passes.
async fn eventually(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < bound {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_repair_writes_the_merge_to_stale_replicas() {
    let cluster = Cluster::start(3, &["--anti-entropy", "false"]).await;
    let key = b"rr-key".to_vec();
    for node in &cluster.nodes {
        node.local().local_store(&key, set("old", "n1", 1)).unwrap();
    }
    cluster.nodes[0].local().local_store(&key, set("new", "n1", 2)).unwrap();
    let mut client = cluster.kv(1).await;
    let reply =
        client.get(proto::GetRequest { key: key.clone(), r: Some(3), r_quorum: None }).await.unwrap().into_inner();
    assert_eq!(reply.siblings.len(), 1);
    assert_eq!(reply.siblings[0].value, b"new");
    let repaired = eventually(Duration::from_secs(5), || {
        cluster.nodes.iter().all(|n| n.local().local_peek(&key).unwrap() == set("new", "n1", 2))
    })
    .await;
    assert!(repaired, "every replica holds the merge");
    let coordinator = 1;
    // Counted once the repair's stores returned, just after they applied.
    eventually(Duration::from_secs(2), || cluster.counter(coordinator, "read_repairs") == 2).await;
    assert_eq!(cluster.counter(coordinator, "read_repair_reads"), 1);
    assert_eq!(cluster.counter(coordinator, "read_repairs"), 2);
    // Now in sync: another read repairs nothing.
    client.get(proto::GetRequest { key, r: Some(3), r_quorum: None }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cluster.counter(coordinator, "read_repair_reads"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_repair_can_be_switched_off() {
    let cluster = Cluster::start(3, &["--anti-entropy", "false", "--read-repair", "false"]).await;
    let key = b"k".to_vec();
    cluster.nodes[0].local().local_store(&key, set("only-here", "n1", 1)).unwrap();
    let mut client = cluster.kv(0).await;
    client.get(proto::GetRequest { key: key.clone(), r: Some(3), r_quorum: None }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(cluster.nodes[1].local().local_peek(&key).unwrap().is_empty());
    assert_eq!(cluster.counter(0, "read_repairs"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_read_repair_finishes_before_the_reply() {
    let cluster = Cluster::start(3, &["--anti-entropy", "false", "--read-repair-blocking", "true"]).await;
    let key = b"k".to_vec();
    cluster.nodes[2].local().local_store(&key, set("v", "n3", 1)).unwrap();
    let mut client = cluster.kv(0).await;
    client.get(proto::GetRequest { key: key.clone(), r: Some(2), r_quorum: None }).await.unwrap();
    for node in &cluster.nodes {
        assert_eq!(node.local().local_peek(&key).unwrap(), set("v", "n3", 1), "repaired before the reply");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_entropy_converges_diverged_replicas_over_grpc() {
    let flags = ["--n", "3", "--aae-interval-ms", "200", "--merkle-buckets", "256", "--read-repair", "false"];
    let cluster = Cluster::start(3, &flags).await;
    for i in 0..500 {
        let key = format!("key-{i}").into_bytes();
        for node in &cluster.nodes {
            node.local().local_store(&key, set("v", "n1", 1)).unwrap();
        }
    }
    // n1 alone has 20 newer versions; n3 alone has 10 keys nobody else has.
    for i in 0..20 {
        cluster.nodes[0].local().local_store(format!("key-{i}").as_bytes(), set("newer", "n1", 2)).unwrap();
    }
    for i in 0..10 {
        cluster.nodes[2].local().local_store(format!("only-n3-{i}").as_bytes(), set("x", "n3", 1)).unwrap();
    }
    assert_ne!(cluster.roots(0), cluster.roots(1));
    let converged = eventually(Duration::from_secs(15), || {
        cluster.roots(0) == cluster.roots(1) && cluster.roots(1) == cluster.roots(2)
    })
    .await;
    assert!(converged, "roots agree: {:?}", (0..3).map(|i| cluster.roots(i)).collect::<Vec<_>>());
    for node in &cluster.nodes {
        assert_eq!(node.local().local_peek(b"key-3").unwrap(), set("newer", "n1", 2));
        assert_eq!(node.local().local_peek(b"only-n3-4").unwrap(), set("x", "n3", 1));
    }
    let total = |name: &str| (0..3).map(|i| cluster.counter(i, name)).sum::<u64>();
    assert!(total("aae_exchanges") >= 1);
    assert!(total("aae_buckets_differing") >= 1);
    // Each replica needed at most 30 keys; allow a duplicate exchange.
    assert!(total("aae_keys_sent") >= 20 + 2 * 10 && total("aae_keys_sent") <= 2 * (2 * 20 + 2 * 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_endpoint_serves_requests_and_counters() {
    let cluster = Cluster::start(1, &["--n", "1", "--w", "1", "--r", "1"]).await;
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let server = tokio::spawn(metrics_http::serve(cluster.nodes[0].exported(), metrics));
    let mut client = cluster.kv(0).await;
    let put = proto::PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), context: vec![], w: None, w_quorum: None };
    client.put(put).await.unwrap();
    client.get(proto::GetRequest { key: b"k".to_vec(), r: None, r_quorum: None }).await.unwrap();
    client.get(proto::GetRequest { key: vec![], r: None, r_quorum: None }).await.unwrap_err();

    let (status, body) = http_get(metrics_addr, "/metrics").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    for expected in [
        "dynamo_requests_total{op=\"put\",outcome=\"ok\"} 1",
        "dynamo_requests_total{op=\"get\",outcome=\"ok\"} 1",
        "dynamo_requests_total{op=\"get\",outcome=\"invalid\"} 1",
        "# TYPE dynamo_request_duration_seconds histogram",
        "dynamo_request_duration_seconds_count{op=\"get\",outcome=\"ok\"} 1",
        "dynamo_puts 1\n",
        "dynamo_aae_bytes_sent 0\n",
        "dynamo_read_repairs 0\n",
    ] {
        assert!(body.contains(expected), "missing {expected:?} in:\n{body}");
    }
    let (status, _) = http_get(metrics_addr, "/nope").await;
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    server.abort();
}

/// A bare HTTP/1.1 GET; returns the status line and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}
