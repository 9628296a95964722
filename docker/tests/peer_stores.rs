//! Peer stores in Docker: a 3-member etcd cluster and a Redis primary with
//! two replicas, from the same locally built image as the node.
//!
//! Needs a Docker engine and `target/dynamo-node.image` (`make image`);
//! without either the test says so and passes vacuously.

use std::time::Duration;

use docker::{probe_peer, Cluster, ClusterSpec, DockerCluster, StoreKind};

fn spec(name: &str) -> ClusterSpec {
    let log_dir = std::env::temp_dir().join(format!("dwb-test-logs-{name}-{}", std::process::id()));
    ClusterSpec {
        name: format!("{name}-{}", std::process::id()),
        nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        node_args: vec![],
        log_dir,
        link_proxy: None,
        clock_faults: false,
        power_loss: false,
    }
}

/// host and port of a member, from its endpoint URL.
fn host_port(cluster: &dyn Cluster, node: &str) -> (String, u16) {
    let endpoint = cluster.endpoint(node).expect("known node");
    let rest = endpoint.split("://").nth(1).expect("scheme").to_string();
    let (host, port) = rest.rsplit_once(':').expect("host:port");
    (host.to_string(), port.parse().expect("port"))
}

async fn healthy(cluster: &dyn Cluster, store: StoreKind, node: &str) -> bool {
    let (host, port) = host_port(cluster, node);
    probe_peer(store, &host, port, Duration::from_secs(1)).await.is_ok()
}

/// Healthy within `attempts` one-second probes: after a kill the survivors
/// may first have to elect a leader (etcd's election timeout is 1 s).
async fn healthy_within(cluster: &dyn Cluster, store: StoreKind, node: &str, attempts: u32) -> bool {
    for _ in 0..attempts {
        if healthy(cluster, store, node).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

#[tokio::test]
async fn etcd_cluster_starts_survives_a_kill_and_tears_down() {
    let Some(image) = docker::image_for_tests().await else { return };
    let cluster = DockerCluster::start_store(&spec("etcd"), &image, StoreKind::Etcd).await.expect("etcd starts");
    let result = async {
        for node in ["n1", "n2", "n3"] {
            assert!(healthy(&cluster, StoreKind::Etcd, node).await, "{node} not healthy");
            assert!(cluster.endpoint(node).unwrap().ends_with(":2379"));
        }
        cluster.kill("n2").await.expect("kill");
        assert!(!healthy(&cluster, StoreKind::Etcd, "n2").await, "a killed member still answers");
        // Two of three members keep (or elect) a leader: the others answer.
        assert!(healthy_within(&cluster, StoreKind::Etcd, "n1", 20).await, "n1 without a leader");
        cluster.restart("n2").await.expect("restart rejoins with its data");
        assert!(healthy_within(&cluster, StoreKind::Etcd, "n2", 20).await, "n2 did not rejoin");
    }
    .await;
    cluster.collect_logs().await.expect("logs");
    cluster.teardown().await.expect("teardown");
    result
}

#[tokio::test]
async fn redis_replicas_link_to_the_primary() {
    let Some(image) = docker::image_for_tests().await else { return };
    let cluster = DockerCluster::start_store(&spec("redis"), &image, StoreKind::Redis).await.expect("redis starts");
    let result = async {
        for node in ["n1", "n2", "n3"] {
            assert!(cluster.endpoint(node).unwrap().starts_with("redis://"));
            assert!(healthy(&cluster, StoreKind::Redis, node).await, "{node} not ready");
        }
        let out = cluster.exec("n3", &["redis-cli", "INFO", "replication"]).await.expect("exec");
        assert!(out.stdout.contains("role:slave") && out.stdout.contains("master_link_status:up"), "{}", out.stdout);
    }
    .await;
    cluster.teardown().await.expect("teardown");
    result
}

/// The same stores as local processes, from the host's Debian packages.
#[tokio::test]
async fn local_etcd_and_redis_start_and_tear_down() {
    use docker::LocalCluster;
    for store in [StoreKind::Etcd, StoreKind::Redis] {
        let program = if store == StoreKind::Etcd { "etcd" } else { "redis-server" };
        if std::process::Command::new(program).arg("--version").output().is_err() {
            eprintln!("SKIP: {program} is not installed (apt-get install etcd-server redis-server)");
            continue;
        }
        let cluster =
            LocalCluster::start_store(&spec(&format!("local-{}", store.name())), store).await.expect("starts");
        let result = async {
            for node in ["n1", "n2", "n3"] {
                assert!(healthy(&cluster, store, node).await, "{} {node} not ready", store.name());
            }
            assert!(!cluster.supports(docker::Fault::Partition));
            cluster.kill("n3").await.expect("kill");
            assert!(!healthy(&cluster, store, "n3").await, "a killed member still answers");
            cluster.restart("n3").await.expect("restart");
        }
        .await;
        cluster.teardown().await.expect("teardown");
        result
    }
}
