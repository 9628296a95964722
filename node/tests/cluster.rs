//! In-process cluster tests: three real nodes on 127.0.0.1 ephemeral ports
//! in one tokio runtime, talked to over gRPC exactly as clients would.

use std::net::SocketAddr;
use std::time::Duration;

use dynamo_node::{serve, Config, ServeError};
use proto::admin_client::AdminClient;
use proto::kv_client::KvClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::Code;

/// One running node and the means to stop it.
struct TestNode {
    /// Where it listens.
    addr: SocketAddr,
    /// Fires the graceful shutdown.
    stop: Option<oneshot::Sender<()>>,
    /// The server task.
    task: JoinHandle<Result<(), ServeError>>,
}

struct Cluster {
    nodes: Vec<TestNode>,
}

impl Cluster {
    /// Starts n1..n3 with `extra` flags added to every node's command line.
    async fn start(extra: &[&str]) -> Cluster {
        let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn").try_init();
        let mut listeners = Vec::new();
        for _ in 0..3 {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let peers: Vec<String> = addrs.iter().enumerate().map(|(i, a)| format!("n{}={a}", i + 1)).collect();
        let peers = peers.join(",");
        let mut nodes = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let id = format!("n{}", i + 1);
            let listen = addrs[i].to_string();
            let mut argv = vec!["dynamo-node", "--id", &id, "--listen", &listen, "--peers", &peers];
            argv.extend_from_slice(&["--storage", "memory"]);
            argv.extend_from_slice(extra);
            let config = Config::from_cli(argv).unwrap();
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(serve(config, listener, async {
                let _ = stopped.await;
            }));
            nodes.push(TestNode { addr: addrs[i], stop: Some(stop), task });
        }
        Cluster { nodes }
    }

    async fn kv(&self, i: usize) -> KvClient<Channel> {
        KvClient::connect(format!("http://{}", self.nodes[i].addr)).await.unwrap()
    }

    async fn admin(&self, i: usize) -> AdminClient<Channel> {
        AdminClient::connect(format!("http://{}", self.nodes[i].addr)).await.unwrap()
    }

    /// Gracefully stops node `i` and waits for it to finish.
    async fn stop(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(stop) = node.stop.take() {
            let _ = stop.send(());
        }
        let finished = tokio::time::timeout(Duration::from_secs(10), &mut node.task).await;
        finished.expect("node did not stop in time").unwrap().unwrap();
    }

    /// What each node stores locally for `key` (bypassing coordinators).
    async fn local_sibling_counts(&self, key: &[u8]) -> Vec<usize> {
        let mut counts = Vec::new();
        for i in 0..self.nodes.len() {
            let reply = self.admin(i).await.local_get(proto::LocalGetRequest { key: key.to_vec() }).await.unwrap();
            counts.push(reply.into_inner().siblings.len());
        }
        counts
    }
}

fn put(key: &[u8], value: &[u8], context: Vec<u8>, w: Option<u32>) -> proto::PutRequest {
    proto::PutRequest { key: key.to_vec(), value: value.to_vec(), context, w, w_quorum: None }
}

fn get(key: &[u8], r: Option<u32>) -> proto::GetRequest {
    proto::GetRequest { key: key.to_vec(), r, r_quorum: None }
}

fn values(reply: &proto::GetResponse) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = reply.siblings.iter().map(|s| s.value.clone()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_then_get_then_delete() {
    let cluster = Cluster::start(&[]).await;
    let written = cluster.kv(0).await.put(put(b"k1", b"v1", vec![], Some(2))).await.unwrap().into_inner();
    assert!(written.acks >= 2);
    let version = written.version.unwrap();
    // A blind write: empty causal context, dot minted by the coordinator.
    assert!(version.clock.is_empty());
    assert_eq!(version.dot.as_ref().map(|d| d.node.as_str()), Some("n1"));
    assert!(version.dot.unwrap().counter > 0);
    assert!(version.ts_ms > 0);

    let read = cluster.kv(1).await.get(get(b"k1", Some(2))).await.unwrap().into_inner();
    assert_eq!(values(&read), vec![b"v1".to_vec()]);
    assert!(read.replies >= 2);
    assert!(!read.context.is_empty());

    let missing = cluster.kv(2).await.get(get(b"never-written", None)).await.unwrap().into_inner();
    assert!(missing.siblings.is_empty() && missing.context.is_empty());

    let deleted = proto::DeleteRequest { key: b"k1".to_vec(), context: read.context, w: None, w_quorum: None };
    cluster.kv(2).await.delete(deleted).await.unwrap();
    let read = cluster.kv(0).await.get(get(b"k1", Some(3))).await.unwrap().into_inner();
    assert_eq!(read.siblings.len(), 1);
    assert!(read.siblings[0].tombstone, "a delete leaves a tombstone");

    let status = cluster.admin(0).await.status(proto::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!((status.node_id.as_str(), status.n, status.w, status.r), ("n1", 3, 2, 2));
    assert_eq!(status.storage, "memory");
    assert_eq!(status.resolution, "siblings");
    assert_eq!(status.keys, 1);
    assert_eq!(status.counters["puts"], 1);
    assert_eq!(status.counters["gets"], 1);
    assert!(status.load_max_over_mean >= 1.0);

    let ring = cluster.admin(1).await.ring(proto::RingRequest {}).await.unwrap().into_inner();
    assert_eq!(ring.members.len(), 3);
    assert_eq!(ring.total_vnodes, 3 * 64);
    let owned: f64 = ring.members.iter().map(|m| m.ownership).sum();
    assert!((owned - 1.0).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_blind_writes_become_siblings_and_context_resolves_them() {
    let cluster = Cluster::start(&[]).await;
    cluster.kv(0).await.put(put(b"k2", b"from-n1", vec![], None)).await.unwrap();
    cluster.kv(1).await.put(put(b"k2", b"from-n2", vec![], None)).await.unwrap();

    let read = cluster.kv(2).await.get(get(b"k2", Some(2))).await.unwrap().into_inner();
    assert_eq!(values(&read), vec![b"from-n1".to_vec(), b"from-n2".to_vec()]);

    cluster.kv(2).await.put(put(b"k2", b"merged", read.context, None)).await.unwrap();
    let read = cluster.kv(0).await.get(get(b"k2", Some(2))).await.unwrap().into_inner();
    assert_eq!(values(&read), vec![b"merged".to_vec()]);

    // Two blind writes through the same coordinator are concurrent too: each
    // gets its own dot and neither writer saw the other (with plain clocks
    // the second descended the first, which silently lost an acked write).
    cluster.kv(0).await.put(put(b"k3", b"a", vec![], Some(3))).await.unwrap();
    cluster.kv(0).await.put(put(b"k3", b"b", vec![], Some(3))).await.unwrap();
    let read = cluster.kv(1).await.get(get(b"k3", Some(3))).await.unwrap().into_inner();
    assert_eq!(values(&read), vec![b"a".to_vec(), b"b".to_vec()]);

    let status = cluster.admin(2).await.status(proto::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.counters["reads_multi_version"], 1);
    assert_eq!(status.counters["reads_single_version"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_rejected_and_nothing_is_stored() {
    let cluster = Cluster::start(&["--max-value-bytes", "100"]).await;
    let mut kv = cluster.kv(0).await;
    let long_key = vec![b'k'; 1025];
    let cases: Vec<(&str, proto::PutRequest, &str)> = vec![
        ("empty key", put(b"", b"v", vec![], None), "key must not be empty"),
        ("long key", put(&long_key, b"v", vec![], None), "1025 bytes"),
        ("big value", put(b"big", &[0u8; 101], vec![], None), "101 bytes; the limit is 100"),
        ("w=4", put(b"w4", b"v", vec![], Some(4)), "w must be between 1 and n=3; got 4"),
        ("w=0", put(b"w0", b"v", vec![], Some(0)), "got 0"),
        ("garbage context", put(b"ctx", b"v", b"garbage".to_vec(), None), "malformed context: "),
    ];
    for (what, request, message) in cases {
        let key = request.key.clone();
        let status = kv.put(request).await.expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert!(status.message().contains(message), "{what}: {}", status.message());
        assert_eq!(cluster.local_sibling_counts(&key).await, vec![0, 0, 0], "{what} stored something");
    }
    let status = kv.get(get(b"", None)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad_delete = proto::DeleteRequest { key: b"d".to_vec(), context: vec![1, 0xff, 0xff], w: None, w_quorum: None };
    assert_eq!(kv.delete(bad_delete).await.unwrap_err().code(), Code::InvalidArgument);

    let status = cluster.admin(0).await.status(proto::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.counters["invalid_requests"], 8);
    for i in 0..3 {
        let status = cluster.admin(i).await.status(proto::StatusRequest {}).await.unwrap().into_inner();
        assert_eq!(status.keys, 0);
        assert_eq!(status.counters["replica_stores"], 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_two_of_three_nodes_makes_quorum_writes_unavailable() {
    let mut cluster = Cluster::start(&["--request-timeout-ms", "300"]).await;
    // Warm the connections first so the stop also exercises cached channels.
    cluster.kv(0).await.put(put(b"before", b"v", vec![], Some(3))).await.unwrap();
    cluster.stop(1).await;
    cluster.stop(2).await;

    let mut kv = cluster.kv(0).await;
    let status = kv.put(put(b"after", b"v", vec![], Some(2))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // The coordinator gives up as soon as W is out of reach, possibly before
    // its own (off-thread) local store has acked: 0 or 1 acks by then.
    let message = status.message();
    assert!(
        message == "only 1 of 2 required replicas acknowledged the write (n=3)"
            || message == "only 0 of 2 required replicas acknowledged the write (n=3)",
        "{message}"
    );

    let status = kv.get(get(b"before", Some(2))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let message = status.message();
    assert!(
        message == "only 1 of 2 required replicas replied (n=3)"
            || message == "only 0 of 2 required replicas replied (n=3)",
        "{message}"
    );

    // W=1 / R=1 still work with one node left. The failed write above may
    // have been stored locally; this blind write did not see it, so both are
    // siblings (an unacknowledged write is not silently dropped either).
    kv.put(put(b"after", b"v1", vec![], Some(1))).await.unwrap();
    let read = kv.get(get(b"after", Some(1))).await.unwrap().into_inner();
    let got = values(&read);
    assert!(got == vec![b"v1".to_vec()] || got == vec![b"v".to_vec(), b"v1".to_vec()], "{got:?}");

    let status = cluster.admin(0).await.status(proto::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.counters["unavailable_writes"], 1);
    assert_eq!(status.counters["unavailable_reads"], 1);
    cluster.stop(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lww_keeps_one_sibling() {
    let cluster = Cluster::start(&["--resolution", "lww"]).await;
    cluster.kv(0).await.put(put(b"k", b"first", vec![], Some(3))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    cluster.kv(1).await.put(put(b"k", b"second", vec![], Some(3))).await.unwrap();
    let read = cluster.kv(2).await.get(get(b"k", Some(3))).await.unwrap().into_inner();
    assert_eq!(values(&read), vec![b"second".to_vec()], "the later timestamp wins");
    assert_eq!(cluster.local_sibling_counts(b"k").await, vec![1, 1, 1]);
    let status = cluster.admin(2).await.status(proto::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.resolution, "lww");
}

/// A node driven far past a small fixed client limit refuses the excess within
/// a few ms (RESOURCE_EXHAUSTED, `overloaded`), counts every refusal, keeps
/// completing the requests it took with their full quorum (its replica
/// rounds still succeed), and serves normally once the burst is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_past_its_client_limit_refuses_fast_counts_and_keeps_serving() {
    let cluster = Cluster::start(&["--client-limit", "4"]).await;
    let kv = cluster.kv(0).await;
    let burst = (0..400u32).map(|i| {
        let mut kv = kv.clone();
        tokio::spawn(async move { kv.put(put(format!("k{}", i % 16).as_bytes(), b"v", vec![], None)).await })
    });
    let (mut ok, mut refused) = (0u64, 0u64);
    for answer in futures::future::join_all(burst).await {
        match answer.unwrap() {
            Ok(reply) => {
                assert!(reply.into_inner().acks >= 2, "an admitted write meets W=2");
                ok += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "only refusals: {status:?}");
                assert!(status.message().starts_with("overloaded"), "the reason a client keys on: {status:?}");
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "400 concurrent puts past a limit of 4: some are refused");
    assert!(ok > 0, "the node keeps completing what it admitted");
    let status = cluster.admin(0).await.status(proto::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.counters["client_requests_refused"], refused, "every refusal is counted");
    assert_eq!(status.counters["client_limit"], 4);
    assert_eq!(status.counters["unavailable_writes"], 0, "no admitted round failed");
    let after = kv.clone().put(put(b"after", b"v", vec![], None)).await.expect("served once the burst is over");
    assert!(after.into_inner().acks >= 2);
    // Every key lives on all three nodes: n2 takes every admitted write (a
    // write that met W=2 without it still reaches it, so wait a little).
    let mut stored = 0;
    for _ in 0..50 {
        let replica = cluster.admin(1).await.status(proto::StatusRequest {}).await.unwrap().into_inner();
        stored = replica.counters["replica_stores"];
        if stored > ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored > ok, "a replica took every admitted write and the last one: {stored} of {}", ok + 1);
}
