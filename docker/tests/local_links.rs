//! Link faults on a real local cluster, through the link proxies in front
//! of its nodes: a delay on the client link moves the op latency by what
//! it says, and a cut node cannot reach a write quorum until the heal.
//!
//! Needs a built node binary (`cargo build --release -p dynamo-node`, or
//! `$DWB_NODE_BINARY`); without one the test says so and passes vacuously.

use std::time::{Duration, Instant};

use docker::{find_node_binary, Cluster, ClusterSpec, Fault, LocalCluster};
use linkproxy::{Link, LinkFault, CLIENT};
use proto::kv_client::KvClient;
use tonic::transport::Channel;

fn spec(name: &str) -> ClusterSpec {
    ClusterSpec::three_nodes_for_test(name, Some(42))
}

async fn start(name: &str) -> Option<LocalCluster> {
    let Some(binary) = find_node_binary() else {
        eprintln!("SKIP: no dynamo-node binary (cargo build --release -p dynamo-node, or set DWB_NODE_BINARY)");
        return None;
    };
    Some(LocalCluster::start(&spec(&format!("{name}-{}", std::process::id())), binary).await.expect("cluster starts"))
}

fn kv(cluster: &LocalCluster, node: &str) -> KvClient<Channel> {
    KvClient::new(cluster.channel(node, Duration::from_secs(3)).unwrap())
}

/// The median, ms, of `ops` reads of one key through `client`.
async fn median_get_ms(client: &mut KvClient<Channel>, ops: usize) -> f64 {
    let mut ms = Vec::with_capacity(ops);
    for _ in 0..ops {
        let start = Instant::now();
        client.get(proto::GetRequest { key: b"k".to_vec(), r: Some(1), r_quorum: None }).await.expect("get");
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    ms[ms.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50ms_delay_on_the_client_link_moves_the_median_op_latency_by_45_to_60ms() {
    let Some(cluster) = start("lat").await else { return };
    assert!(cluster.supports(Fault::Latency) && cluster.supports(Fault::Partition));
    let mut client = kv(&cluster, "n1");
    client
        .put(proto::PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            context: vec![],
            w: Some(3),
            w_quorum: None,
        })
        .await
        .expect("put");
    let before = median_get_ms(&mut client, 60).await;
    let proxy = cluster.link_proxy("n1").unwrap().expect("n1 is behind a proxy");
    proxy.set(Link::new(CLIENT, "n1"), LinkFault::latency(50, 5)).unwrap();
    let after = median_get_ms(&mut client, 60).await;
    let shift = after - before;
    eprintln!("median get: {before:.2} ms bare, {after:.2} ms with 50 ms ± 5 ms on client->n1: shift {shift:.2} ms");
    let delayed = proxy.status().links.into_iter().find(|l| l.from == CLIENT).unwrap().counters.bytes_delayed;
    cluster.teardown().await.unwrap();
    assert!((45.0..=60.0).contains(&shift), "shift {shift} ms");
    assert!(delayed > 0);
}

/// Whether a W=3 write through `node` is acknowledged within the request timeout.
async fn strict_write(cluster: &LocalCluster, node: &str) -> bool {
    let put =
        proto::PutRequest { key: b"w".to_vec(), value: b"v".to_vec(), context: vec![], w: Some(3), w_quorum: None };
    kv(cluster, node).put(put).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_node_misses_its_quorum_until_the_heal_and_restarts_stay_behind_the_proxy() {
    let Some(cluster) = start("cut").await else { return };
    assert!(strict_write(&cluster, "n1").await, "a healthy cluster acknowledges W=3");
    let links = cluster.link_faults().expect("proxied");
    assert_eq!(links.mechanism(), "linkproxy");
    // One way only: n1 drops what n2 sends, as an iptables INPUT rule on n1 would.
    links.cut(&[("n2".into(), "n1".into())]).await.unwrap();
    assert!(!strict_write(&cluster, "n1").await, "n2's acknowledgements to n1 are dropped");
    assert!(!strict_write(&cluster, "n2").await, "n2's requests to n1 are dropped");
    let n1 = cluster.link_proxy("n1").unwrap().unwrap().status();
    let cut = n1.links.iter().find(|l| l.from == "n2" && l.to == "n1").unwrap();
    assert!(cut.fault.as_ref().unwrap().blackhole && cut.counters.bytes_dropped > 0, "{cut:?}");
    assert!(n1.links.iter().find(|l| l.from == "n1" && l.to == "n2").unwrap().fault.is_none(), "one way");
    links.heal().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !strict_write(&cluster, "n1").await {
        assert!(Instant::now() < deadline, "W=3 through n1 never came back after the heal");
    }
    // A killed node comes back behind the same proxy.
    cluster.kill("n3").await.unwrap();
    cluster.restart("n3").await.unwrap();
    assert!(strict_write(&cluster, "n3").await, "the restarted node is reached through its proxy");
    cluster.teardown().await.unwrap();
}
