//! Link faults on a real Docker cluster, through the `dynamo-linkproxy`
//! inside each node's container (what a kernel without `sch_netem` cannot
//! do with `tc`): a 50 ms ± 5 ms delay on the client link moves the median
//! op latency by 45 to 60 ms; a one-way cut made by the proxies stops a
//! W=3 write until the heal; a killed and restarted node gets the faults
//! in force back.
//!
//! Needs a Docker engine and `target/dynamo-node.image` (written by
//! `make image`); without either the test says so and passes vacuously.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use docker::{conclude_test, Cluster, ClusterSpec, DockerCluster, Fault, CONTROL_PORT};
use linkproxy::{control, LinkFault, Request, CLIENT};
use proto::kv_client::KvClient;
use serde_json::Value;
use tonic::transport::Channel;

fn kv(cluster: &DockerCluster, node: &str) -> KvClient<Channel> {
    KvClient::new(cluster.channel(node, Duration::from_secs(3)).unwrap())
}

/// `node`'s proxy control socket.
fn control_addr(cluster: &DockerCluster, node: &str) -> SocketAddr {
    SocketAddr::new(cluster.peer_ip(node).unwrap(), CONTROL_PORT)
}

/// The median, ms, of `ops` R=1 reads of one key through `client`.
async fn median_get_ms(client: &mut KvClient<Channel>, ops: usize) -> Result<f64, String> {
    let mut ms = Vec::with_capacity(ops);
    for _ in 0..ops {
        let start = Instant::now();
        client
            .get(proto::GetRequest { key: b"k".to_vec(), r: Some(1), r_quorum: None })
            .await
            .map_err(|e| format!("get: {e}"))?;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(ms[ms.len() / 2])
}

/// Whether a W=3 write through `node` is acknowledged within the request timeout.
async fn strict_write(cluster: &DockerCluster, node: &str) -> bool {
    let put =
        proto::PutRequest { key: b"w".to_vec(), value: b"v".to_vec(), context: vec![], w: Some(3), w_quorum: None };
    kv(cluster, node).put(put).await.is_ok()
}

/// The fault `node`'s proxy has on `from -> to` now (`null` when healthy).
async fn fault_on(cluster: &DockerCluster, node: &str, from: &str, to: &str) -> Result<Value, String> {
    let status = control::request(control_addr(cluster, node), &Request::Status).await.map_err(|e| e.to_string())?;
    let links = status["links"].as_array().cloned().unwrap_or_default();
    Ok(links
        .into_iter()
        .find(|l| l["from"] == from && l["to"] == to)
        .map(|l| l["fault"].clone())
        .unwrap_or(Value::Null))
}

async fn start(name: &str) -> Option<(DockerCluster, ClusterSpec)> {
    let image = docker::image_for_tests().await?;
    let spec = ClusterSpec::three_nodes_for_test(&format!("{name}{}", std::process::id()), Some(42));
    let cluster = DockerCluster::start(&spec, &image).await.expect("cluster starts");
    Some((cluster, spec))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50ms_delay_on_a_containers_client_link_moves_the_median_op_latency_by_45_to_60ms() {
    let Some((cluster, spec)) = start("dlat").await else { return };
    let outcome = async {
        if !(cluster.supports(Fault::Latency) && cluster.link_faults().is_some()) {
            return Err("a proxied Docker cluster performs latency through its proxies".to_string());
        }
        let mut client = kv(&cluster, "n1");
        let put =
            proto::PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), context: vec![], w: Some(3), w_quorum: None };
        client.put(put).await.map_err(|e| format!("put: {e}"))?;
        let before = median_get_ms(&mut client, 60).await?;
        let set = Request::Set { from: CLIENT.into(), to: "n1".into(), fault: LinkFault::latency(50, 5) };
        control::request(control_addr(&cluster, "n1"), &set).await.map_err(|e| e.to_string())?;
        let after = median_get_ms(&mut client, 60).await?;
        let shift = after - before;
        let report = format!(
            "median get: {before:.2} ms bare, {after:.2} ms with 50 ms ± 5 ms on client->n1: shift {shift:.2} ms"
        );
        if !(45.0..=60.0).contains(&shift) {
            return Err(report);
        }
        Ok(report)
    }
    .await;
    conclude_test(&cluster, &spec.log_dir, Ok(outcome)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_cut_misses_the_quorum_until_the_heal_and_a_restart_gets_the_faults_back() {
    let Some((cluster, spec)) = start("dcut").await else { return };
    let outcome = async {
        let links = cluster.link_faults().ok_or("proxied")?;
        if !strict_write(&cluster, "n1").await {
            return Err("a healthy cluster acknowledges W=3".to_string());
        }
        // One way only: n1 drops what n2 sends, as an iptables INPUT rule on n1 would.
        links.cut(&[("n2".into(), "n1".into())]).await.map_err(|e| e.to_string())?;
        if strict_write(&cluster, "n1").await {
            return Err("n2's acknowledgements to n1 were not dropped".into());
        }
        if fault_on(&cluster, "n1", "n2", "n1").await?["blackhole"] != true
            || !fault_on(&cluster, "n1", "n1", "n2").await?.is_null()
        {
            return Err("n1's proxy blackholes n2->n1 and only that way".into());
        }
        // The slow fault on n3 survives n3's kill and restart (its proxy restarts empty).
        links.slow(&["n3".to_string()], 20, 0, 0).await.map_err(|e| e.to_string())?;
        cluster.kill("n3").await.map_err(|e| e.to_string())?;
        cluster.restart("n3").await.map_err(|e| e.to_string())?;
        if fault_on(&cluster, "n3", CLIENT, "n3").await?["latency_ms"] != 20 {
            return Err("n3's restarted proxy did not get its latency back".into());
        }
        links.unslow().await.map_err(|e| e.to_string())?;
        links.heal().await.map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !strict_write(&cluster, "n1").await {
            if Instant::now() > deadline {
                return Err("W=3 through n1 never came back after the heal".into());
            }
        }
        Ok("cut, heal, and the restarted proxy's faults: as planned".to_string())
    }
    .await;
    conclude_test(&cluster, &spec.log_dir, Ok(outcome)).await;
}
