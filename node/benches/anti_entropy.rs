//! Anti-entropy benchmark (a program, not a test): how long two replicas
//! take to converge, and how many bytes they exchange, when 1% of 100k keys
//! differ.
//!
//! Two real nodes on 127.0.0.1 (N=2, so both replicate every key: one range
//! "n1+n2"), loaded directly through their replica stores with the same
//! `KEYS` keys of `VALUE_BYTES`-byte values; then `DIVERGED` keys get a newer
//! version on one side only (half on each side, so both directions of the
//! sync are exercised). The servers start with `--aae-interval-ms 100` and
//! the clock runs from then until both report equal Merkle roots.
//!
//! "Ideal bytes" is what a perfect repair would send: one encoded entry
//! (key + siblings) per diverged key. Reported against it: the payload bytes
//! actually sent (`aae_bytes_sent`), and separately the tree hashes and key
//! digests exchanged to find the differences (`aae_tree_bytes_sent`), for
//! the default `--merkle-buckets` and for a tree with about one key per leaf.
//!
//! Run: `cargo bench -p dynamo-node --bench anti_entropy` (environment:
//! `AAE_BENCH_KEYS`, `AAE_BENCH_VALUE_BYTES`, `AAE_BENCH_BUCKETS` as a
//! comma-separated list).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dynamo_node::net::server::serve_node;
use dynamo_node::node::Node;
use dynamo_node::storage::MemoryStorage;
use dynamo_node::versioning::vclock::{Sibling, SiblingSet, VClock, Version};
use dynamo_node::{wire, Config, NodeId, Resolution, SystemClock};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Keys on both replicas.
const KEYS: usize = 100_000;
/// Bytes per value.
const VALUE_BYTES: usize = 100;
/// Pause after convergence so the exchange that converged finishes counting.
const SETTLE: Duration = Duration::from_millis(300);
/// Longest wait for convergence before the run counts as failed.
const BOUND: Duration = Duration::from_secs(60);

/// One measured run.
struct Figures {
    /// Leaves per tree.
    buckets: usize,
    /// Keys that differed.
    diverged: usize,
    /// From server start to equal roots.
    converged: Duration,
    /// What a perfect repair sends.
    ideal_bytes: u64,
    /// Key payload actually sent.
    payload_bytes: u64,
    /// Hashes and digests sent to find the differences.
    tree_bytes: u64,
    /// Keys sent.
    keys_sent: u64,
    /// Exchanges completed.
    exchanges: u64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let keys: usize = env_or("AAE_BENCH_KEYS", KEYS);
    let value_bytes: usize = env_or("AAE_BENCH_VALUE_BYTES", VALUE_BYTES);
    let buckets: Vec<usize> = std::env::var("AAE_BENCH_BUCKETS")
        .unwrap_or_else(|_| format!("1024,{}", (keys.next_power_of_two()).min(1 << 20)))
        .split(',')
        .filter_map(|b| b.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    println!("anti-entropy: {keys} keys of {value_bytes} B, 1% diverged, 2 nodes on 127.0.0.1");
    for b in buckets {
        let f = runtime.block_on(run(keys, value_bytes, b));
        report(&f);
    }
}

fn report(f: &Figures) {
    let total = f.payload_bytes + f.tree_bytes;
    println!(
        "buckets {:>7}: {} keys diverged; converged in {:>6.0} ms over {} exchanges; \
         payload {} B ({:.2}x ideal {} B, {} keys), tree+digests {} B, total {:.2}x ideal",
        f.buckets,
        f.diverged,
        f.converged.as_secs_f64() * 1e3,
        f.exchanges,
        f.payload_bytes,
        f.payload_bytes as f64 / f.ideal_bytes as f64,
        f.ideal_bytes,
        f.keys_sent,
        f.tree_bytes,
        total as f64 / f.ideal_bytes as f64,
    );
}

/// A one-sibling set whose clock has the given (node, counter) entries.
fn set(value: Vec<u8>, clock: &[(&str, u64)]) -> SiblingSet {
    let clock = VClock::from_entries(clock.iter().map(|(n, c)| (NodeId::from(*n), *c, 1)));
    SiblingSet::from_siblings(
        vec![Sibling { value: Some(value), version: Version { clock, ts_ms: 1, dot: None } }],
        Resolution::Siblings,
    )
}

fn key(i: usize) -> Vec<u8> {
    format!("key-{i:07}").into_bytes()
}

/// Loads, diverges, serves, waits for equal roots, reads the counters.
async fn run(keys: usize, value_bytes: usize, buckets: usize) -> Figures {
    let listeners = [bind().await, bind().await];
    let addrs: Vec<String> = listeners.iter().map(|l| l.local_addr().unwrap().to_string()).collect();
    let peers = format!("n1={},n2={}", addrs[0], addrs[1]);
    let nodes: Vec<Arc<Node>> = (0..2).map(|i| node(i, &addrs[i], &peers, buckets)).collect();
    let mut ideal_bytes = 0u64;
    let diverged = keys / 100;
    for i in 0..keys {
        let base = set(vec![b'v'; value_bytes], &[("n1", 1)]);
        for n in &nodes {
            n.local().local_store(&key(i), base.clone()).unwrap();
        }
        if i % 100 == 0 {
            let side = (i / 100) % 2;
            // A later write through n1 or n2 that saw the base version.
            let clock: &[(&str, u64)] = if side == 0 { &[("n1", 2)] } else { &[("n1", 1), ("n2", 1)] };
            let newer = set(vec![b'w'; value_bytes], clock);
            ideal_bytes += entry_bytes(&key(i), &newer);
            nodes[side].local().local_store(&key(i), newer).unwrap();
        }
    }
    assert_ne!(roots(&nodes[0]), roots(&nodes[1]));
    let started = Instant::now();
    let mut stops = Vec::new();
    for (node, listener) in nodes.iter().zip(listeners) {
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve_node(Arc::clone(node), listener, async {
            let _ = stopped.await;
        }));
        stops.push(stop);
    }
    while roots(&nodes[0]) != roots(&nodes[1]) {
        assert!(started.elapsed() < BOUND, "no convergence within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let converged = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    let total = |name: &str| nodes.iter().map(|n| n.metrics().snapshot()[name]).sum::<u64>();
    let figures = Figures {
        buckets,
        diverged,
        converged,
        ideal_bytes,
        payload_bytes: total("aae_bytes_sent"),
        tree_bytes: total("aae_tree_bytes_sent"),
        keys_sent: total("aae_keys_sent"),
        exchanges: total("aae_exchanges"),
    };
    for stop in stops {
        let _ = stop.send(());
    }
    figures
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

fn node(i: usize, listen: &str, peers: &str, buckets: usize) -> Arc<Node> {
    let id = format!("n{}", i + 1);
    let buckets = buckets.to_string();
    let argv = [
        "dynamo-node",
        "--id",
        &id,
        "--listen",
        listen,
        "--peers",
        peers,
        "--n",
        "2",
        "--w",
        "1",
        "--r",
        "1",
        "--aae-interval-ms",
        "100",
        "--merkle-buckets",
        &buckets,
        "--metrics-listen",
        "",
        "--storage",
        "memory",
    ];
    let config = Config::from_cli(argv).expect("config");
    Arc::new(Node::new(config, Arc::new(SystemClock), Arc::new(MemoryStorage::new())).expect("node"))
}

fn roots(node: &Node) -> std::collections::BTreeMap<String, String> {
    node.anti_entropy().index().roots()
}

fn entry_bytes(key: &[u8], set: &SiblingSet) -> u64 {
    let entry = proto::KeyEntry { key: key.to_vec(), siblings: wire::set_to_proto(set) };
    entry.encoded_len() as u64
}
