//! Which server a cluster runs: our `dynamo-node`, or a peer store the
//! workbench compares it with (etcd, Redis).
//!
//! The backends are store-agnostic: they create the network, the containers
//! or processes, and apply faults. What differs per store is captured here:
//! the command line of member `i` given every member's address, the port
//! clients use, the endpoint URL, and what "ready" means. Peer stores come
//! from Debian's packages (`etcd-server` 3.4, `redis-server` 7), installed in
//! the same image as the node (docker/image/build.sh) or on the host (local).
//!
//! Readiness is checked at the protocol level, not by an open port: etcd's
//! `/health` reports `true` only once the cluster has a leader; a Redis
//! replica is ready once `INFO replication` says its link to the primary is
//! up. A store that answers but cannot serve yet is not ready.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{ClusterError, Result, NODE_PORT};

/// The server a cluster's members run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StoreKind {
    /// `dynamo-node`: leaderless, every member equal.
    #[default]
    Dynamo,
    /// etcd (Raft): every member a voter; `n1` bootstraps like the others.
    Etcd,
    /// Redis: `n1` is the primary, the others replicate from it.
    Redis,
}

/// One member as the command line of another sees it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Member id, e.g. `n1`.
    pub id: String,
    /// The address other members and clients reach it at.
    pub host: String,
    /// The client port.
    pub port: u16,
    /// The member-to-member port (etcd's peer URL); unused by the others.
    pub peer_port: u16,
}

impl StoreKind {
    /// The store's name in error messages: `dynamo`, `etcd` or `redis`.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Dynamo => "dynamo",
            StoreKind::Etcd => "etcd",
            StoreKind::Redis => "redis",
        }
    }

    /// The client port inside a container.
    pub fn client_port(self) -> u16 {
        match self {
            StoreKind::Dynamo => NODE_PORT,
            StoreKind::Etcd => 2379,
            StoreKind::Redis => 6379,
        }
    }

    /// The member-to-member port inside a container.
    pub fn peer_port(self) -> u16 {
        match self {
            StoreKind::Etcd => 2380,
            _ => self.client_port(),
        }
    }

    /// The URL a client uses for a member at `host:port`.
    pub fn endpoint(self, host: &str, port: u16) -> String {
        match self {
            StoreKind::Redis => format!("redis://{host}:{port}"),
            _ => format!("http://{host}:{port}"),
        }
    }

    /// Program and arguments of peer-store member `index` (not for Dynamo,
    /// whose command line the backends build with `--peers`).
    pub fn peer_argv(self, index: usize, members: &[Member], data_dir: &str, bind: &str) -> Vec<String> {
        assert!(index < members.len(), "member {index} of {}", members.len());
        match self {
            StoreKind::Dynamo => panic!("dynamo-node's command line is built by the backend"),
            StoreKind::Etcd => etcd_argv(index, members, data_dir, bind),
            StoreKind::Redis => redis_argv(index, members, data_dir, bind),
        }
    }
}

impl std::str::FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "dynamo" => Ok(StoreKind::Dynamo),
            "etcd" => Ok(StoreKind::Etcd),
            "redis" => Ok(StoreKind::Redis),
            other => Err(format!("unknown store {other:?} (expected dynamo, etcd or redis)")),
        }
    }
}

fn etcd_argv(index: usize, members: &[Member], data_dir: &str, bind: &str) -> Vec<String> {
    let me = &members[index];
    let cluster: Vec<String> = members.iter().map(|m| format!("{}=http://{}:{}", m.id, m.host, m.peer_port)).collect();
    [
        "etcd",
        "--name",
        &me.id,
        "--data-dir",
        &format!("{data_dir}/etcd"),
        "--listen-client-urls",
        &format!("http://{bind}:{}", me.port),
        "--advertise-client-urls",
        &format!("http://{}:{}", me.host, me.port),
        "--listen-peer-urls",
        &format!("http://{bind}:{}", me.peer_port),
        "--initial-advertise-peer-urls",
        &format!("http://{}:{}", me.host, me.peer_port),
        "--initial-cluster",
        &cluster.join(","),
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        "dynamo-workbench",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn redis_argv(index: usize, members: &[Member], data_dir: &str, bind: &str) -> Vec<String> {
    let me = &members[index];
    let mut argv: Vec<String> = [
        "redis-server",
        "--port",
        &me.port.to_string(),
        "--bind",
        bind,
        "--protected-mode",
        "no",
        "--dir",
        data_dir,
        // Durability like etcd's (fsync before the reply is not Redis's
        // model; appendfsync always is its closest setting).
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if index > 0 {
        let primary = &members[0];
        argv.extend(["--replicaof".to_string(), primary.host.clone(), primary.port.to_string()]);
    }
    argv
}

/// One readiness probe of a peer-store member at `host:port`.
pub async fn probe_peer(store: StoreKind, host: &str, port: u16, timeout: Duration) -> Result<()> {
    let exchange = async {
        match store {
            StoreKind::Etcd => etcd_healthy(host, port).await,
            StoreKind::Redis => redis_ready(host, port).await,
            StoreKind::Dynamo => Err("dynamo-node is probed through Admin.Status".to_string()),
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ClusterError::Other(format!("{} at {host}:{port}: {e}", store.name()))),
        Err(_) => Err(ClusterError::Other(format!("{} at {host}:{port}: no answer in {timeout:?}", store.name()))),
    }
}

/// Sends `request` and reads until the peer closes or `done` says enough.
async fn exchange(
    host: &str,
    port: u16,
    request: &[u8],
    done: impl Fn(&str) -> bool,
) -> std::result::Result<String, String> {
    let mut stream = TcpStream::connect((host, port)).await.map_err(|e| format!("connect: {e}"))?;
    stream.write_all(request).await.map_err(|e| format!("send: {e}"))?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded: a probe reads at most 64 KiB.
    while reply.len() < 64 * 1024 {
        let n = stream.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if done(&String::from_utf8_lossy(&reply)) {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

async fn etcd_healthy(host: &str, port: u16) -> std::result::Result<(), String> {
    let request = format!("GET /health HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    let reply = exchange(host, port, request.as_bytes(), |r| r.contains("\"health\"")).await?;
    if reply.contains("\"health\":\"true\"") {
        Ok(())
    } else {
        Err(format!("not healthy yet: {}", reply.lines().last().unwrap_or("")))
    }
}

async fn redis_ready(host: &str, port: u16) -> std::result::Result<(), String> {
    let reply =
        exchange(host, port, b"INFO replication\r\n", |r| r.contains("\r\n\r\n") || r.matches("\r\n").count() > 8)
            .await?;
    let is_primary = reply.contains("role:master");
    let link_up = reply.contains("master_link_status:up");
    if is_primary || link_up {
        Ok(())
    } else {
        Err("replica not yet linked to its primary".to_string())
    }
}

/// Retries [`probe_peer`] until it succeeds or `total` has passed.
pub async fn wait_peer_ready(store: StoreKind, node: &str, host: &str, port: u16, total: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + total;
    loop {
        let last_error = match probe_peer(store, host, port, Duration::from_secs(1)).await {
            Ok(()) => return Ok(()),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(ClusterError::NotReady {
                node: node.to_string(),
                timeout_ms: total.as_millis() as u64,
                last_error,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<Member> {
        (1..=3)
            .map(|i| Member { id: format!("n{i}"), host: format!("10.213.9.{}", 10 + i), port: 2379, peer_port: 2380 })
            .collect()
    }

    #[test]
    fn etcd_members_name_the_whole_initial_cluster() {
        let argv = StoreKind::Etcd.peer_argv(1, &members(), "/data", "0.0.0.0");
        assert_eq!(argv[0], "etcd");
        let cluster = &argv[argv.iter().position(|a| a == "--initial-cluster").unwrap() + 1];
        assert_eq!(cluster, "n1=http://10.213.9.11:2380,n2=http://10.213.9.12:2380,n3=http://10.213.9.13:2380");
        assert!(argv.contains(&"http://10.213.9.12:2379".to_string()));
    }

    #[test]
    fn redis_replicas_follow_the_first_member() {
        let primary = StoreKind::Redis.peer_argv(0, &members(), "/data", "0.0.0.0");
        let replica = StoreKind::Redis.peer_argv(2, &members(), "/data", "0.0.0.0");
        assert!(!primary.contains(&"--replicaof".to_string()));
        let i = replica.iter().position(|a| a == "--replicaof").unwrap();
        assert_eq!(&replica[i + 1..i + 3], &["10.213.9.11".to_string(), "2379".to_string()]);
    }
}
