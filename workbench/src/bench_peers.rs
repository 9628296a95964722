//! `workbench bench-peers`: our store side by side with the stores people
//! would use instead, under one load generator, in one invocation.
//!
//! One after another, on the same machine and the same kind of network
//! (Docker bridge, or loopback for the local backend): our 3-node cluster
//! with N=3 W=2 R=2 on the LSM engine with WAL fsync=batch (durable before
//! the ack, as etcd is), a 3-member etcd (Raft, linearizable reads), a
//! single Redis (appendfsync always), and our single node with N=1. Each
//! gets the same closed-loop load ([`workload::bench`]). The table gives
//! ops/s, puts/s, p50 and p99, and the ratios the goals are stated in:
//! ours/etcd puts/s (goal >= 3x with p99 no worse) and ours-N1/redis ops/s
//! (goal >= 0.5x). It is a benchmark, not a test: it asserts nothing.
//!
//! Beside them, each store's CPU per operation: the CPU time its processes
//! (containers or local processes; `docker::CpuTime`) used during the load,
//! over the operations served, and the kernel's share of it. On a machine
//! shared with other work, ops/s and latency move with the neighbours'
//! load; CPU per operation much less, so a change to the node is judged by
//! it when the machine is noisy. The load generator's own CPU is not in it.
//!
//! Our nodes run with `--resolution lww` here: the load is blind puts (no
//! read context), which etcd and Redis treat as overwrites. Under siblings
//! resolution every blind put is, correctly, concurrent with every other
//! (dotted versions never let one obsolete another it did not see), so each
//! key's sibling set would grow for the whole run and the benchmark would
//! measure that growth instead of the store.
//!
//! They also run with `--runtime-threads 1`: three nodes share this
//! machine's cores, so each is sized to one, and a single-threaded runtime
//! spares every message a cross-thread wake-up (in Docker, 4,525 ops/s at
//! 290 us of CPU per op with one worker per core, 6,531 at 188 with one
//! thread). etcd keeps Go's default: with `GOMAXPROCS=1` its members
//! served fewer ops (3,865 ops/s against 4,253 in the same hour).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::backend::Backend;
use docker::{Cluster, ClusterSpec, CpuTime, StoreKind};
use workload::bench::{self, BenchConfig, BenchResult};
use workload::{Client, DynamoClient, EtcdClient, EtcdRead, RedisClient};

/// One store setting to measure.
#[derive(Debug, Clone)]
pub(crate) struct Contender {
    /// What `--only` selects it by.
    pub(crate) key: &'static str,
    /// Row label.
    pub(crate) label: &'static str,
    /// Which store.
    pub(crate) store: StoreKind,
    /// Members of its cluster.
    pub(crate) nodes: usize,
    /// dynamo-node flags (ignored by peer stores).
    pub(crate) node_args: Vec<String>,
    /// Its data directories on the lazy filesystem (`dynamo-lazyfs`) the
    /// power-loss nemesis uses, to price that layer. Such a contender needs
    /// `/dev/fuse` and runs only when `--only` names it.
    pub(crate) on_lazyfs: bool,
}

/// Our 3-node and 1-node settings, etcd and Redis.
pub(crate) fn contenders() -> Vec<Contender> {
    let dynamo = |n: u32, w: u32, r: u32| {
        let (n, w, r) = (n.to_string(), w.to_string(), r.to_string());
        [
            "--n",
            &n,
            "--w",
            &w,
            "--r",
            &r,
            "--storage",
            "lsm",
            "--fsync",
            "batch",
            "--resolution",
            "lww",
            "--runtime-threads",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    vec![
        Contender {
            key: "dynamo3",
            label: "dynamo N3 W2 R2 (3 nodes)",
            store: StoreKind::Dynamo,
            nodes: 3,
            node_args: dynamo(3, 2, 2),
            on_lazyfs: false,
        },
        Contender {
            key: "etcd",
            label: "etcd (3 members)",
            store: StoreKind::Etcd,
            nodes: 3,
            node_args: vec![],
            on_lazyfs: false,
        },
        Contender {
            key: "redis",
            label: "redis (1 node)",
            store: StoreKind::Redis,
            nodes: 1,
            node_args: vec![],
            on_lazyfs: false,
        },
        Contender {
            key: "dynamo1",
            label: "dynamo N1 (1 node)",
            store: StoreKind::Dynamo,
            nodes: 1,
            node_args: dynamo(1, 1, 1),
            on_lazyfs: false,
        },
        Contender {
            key: "dynamo1-lazyfs",
            label: "dynamo N1 (1 node) on lazyfs",
            store: StoreKind::Dynamo,
            nodes: 1,
            node_args: dynamo(1, 1, 1),
            on_lazyfs: true,
        },
    ]
}

/// Runs every contender and writes `results/bench/<time>/bench.md`.
pub async fn bench_peers(config: &BenchConfig, backend: &Backend, results_dir: &Path, only: &[String]) -> Result<i32> {
    let chosen = choose(&contenders(), only)?;
    let dir = results_dir.join("bench").join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut rows = Vec::new();
    for (i, contender) in chosen.iter().enumerate() {
        eprintln!("[{}/{}] {} for {} s", i + 1, chosen.len(), contender.label, config.duration.as_secs());
        let measured = measure(config, contender, backend, &dir, i).await?;
        rows.push((contender.label, measured));
    }
    let results: Vec<(&str, BenchResult)> = rows.iter().map(|(label, m)| (*label, m.result.clone())).collect();
    let keys: Vec<&str> = chosen.iter().map(|c| c.key).collect();
    let text = report(config, &rows, &keys);
    std::fs::write(dir.join("bench.md"), &text)?;
    println!("{text}");
    // The table is on disk and printed: a missing font costs the picture only.
    if let Err(error) = crate::bench_plot::latency_cdf(&dir.join("latency.png"), &results) {
        eprintln!("no latency plot: {error:#}");
    }
    eprintln!("written: {}", dir.join("bench.md").display());
    Ok(0)
}

/// The contenders `only` names (when empty, all but those on lazyfs), in
/// `all`'s order; an unknown key is refused with the known ones.
pub(crate) fn choose(all: &[Contender], only: &[String]) -> Result<Vec<Contender>> {
    if let Some(unknown) = only.iter().find(|k| !all.iter().any(|c| c.key == k.as_str())) {
        let keys: Vec<&str> = all.iter().map(|c| c.key).collect();
        anyhow::bail!("unknown contender {unknown:?} in --only (known: {})", keys.join(", "));
    }
    let chosen = |c: &&Contender| if only.is_empty() { !c.on_lazyfs } else { only.iter().any(|k| k == c.key) };
    Ok(all.iter().filter(chosen).cloned().collect())
}

/// One store's load and the CPU its processes used under it.
struct Measured {
    /// What the clients saw.
    result: BenchResult,
    /// CPU time the store's processes used during the load; `None` when the
    /// backend cannot tell (the reason was printed).
    cpu: Option<CpuTime>,
}

impl Measured {
    /// CPU us per operation served (successful or not), if known.
    fn cpu_us_per_op(&self) -> Option<f64> {
        let ops = self.result.reads_us.len() + self.result.writes_us.len() + self.result.errors;
        self.cpu.filter(|_| ops > 0).map(|cpu| cpu.total_us() as f64 / ops as f64)
    }
}

async fn measure(config: &BenchConfig, c: &Contender, backend: &Backend, dir: &Path, index: usize) -> Result<Measured> {
    let spec = ClusterSpec {
        name: format!("bench{}-{index}", std::process::id()),
        nodes: (1..=c.nodes).map(|i| format!("n{i}")).collect(),
        node_args: c.node_args.clone(),
        log_dir: dir.join("logs").join(c.store.name()).join(index.to_string()),
        link_proxy: None,
        clock_faults: false,
        power_loss: c.on_lazyfs,
    };
    std::fs::create_dir_all(&spec.log_dir)?;
    let cluster = backend.start(&spec, c.store).await?;
    let result = match endpoints(cluster.as_ref()) {
        Ok(endpoints) => {
            let before = cpu_time(cluster.as_ref()).await;
            let result = load(config, c.store, endpoints).await;
            let after = cpu_time(cluster.as_ref()).await;
            let cpu = before.zip(after).map(|(before, after)| after.since(&before));
            result.map(|result| Measured { result, cpu })
        }
        Err(e) => Err(e),
    };
    let _ = cluster.collect_logs().await;
    cluster.teardown().await?;
    result
}

/// The cluster's CPU time so far, or `None` (saying why) when the backend
/// cannot tell: the table then shows no CPU for that store.
pub(crate) async fn cpu_time(cluster: &dyn Cluster) -> Option<CpuTime> {
    match cluster.cpu_time().await {
        Ok(cpu) => Some(cpu),
        Err(error) => {
            eprintln!("no CPU time for this store: {error}");
            None
        }
    }
}

/// Every member's client endpoint, the first member's first.
pub(crate) fn endpoints(cluster: &dyn Cluster) -> Result<Vec<String>> {
    cluster.nodes().iter().map(|node| Ok(cluster.endpoint(node)?)).collect()
}

/// Drives the load from a thread of its own, on a single-threaded runtime
/// with its own clients. The load generator shares the machine's cores with
/// the stores; on the workbench's multi-threaded runtime its 32 clients
/// were woken across worker threads and used about a fifth of the CPU
/// during a run. Every store gets the same load generator.
pub(crate) async fn load(config: &BenchConfig, store: StoreKind, endpoints: Vec<String>) -> Result<BenchResult> {
    let config = config.clone();
    let driven = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let clients = clients(store, &endpoints)?;
            anyhow::Ok(bench::run(&config, &clients).await)
        })
    });
    driven.await.context("the load generator's thread failed")?
}

/// One client per member, each bound to its member (clients spread evenly).
fn clients(store: StoreKind, endpoints: &[String]) -> Result<Vec<Arc<dyn Client>>> {
    const TIMEOUT_MS: u64 = 5_000;
    let primary = endpoints.first().context("a cluster without members")?;
    endpoints
        .iter()
        .map(|endpoint| {
            let client: Arc<dyn Client> = match store {
                StoreKind::Dynamo => Arc::new(DynamoClient::new(endpoint, TIMEOUT_MS)?),
                StoreKind::Etcd => Arc::new(EtcdClient::new(endpoint, EtcdRead::Linearizable, TIMEOUT_MS)?),
                StoreKind::Redis => Arc::new(RedisClient::new(primary, endpoint, TIMEOUT_MS)),
            };
            Ok(client)
        })
        .collect()
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

/// The table, and the goal ratios for the pairs that were measured.
fn report(config: &BenchConfig, rows: &[(&str, Measured)], keys: &[&str]) -> String {
    assert_eq!(rows.len(), keys.len(), "one key per row");
    let mut text = format!(
        "# bench-peers\n\n{} closed-loop clients, {:.0}% reads, {} uniform keys, {}-byte values, {} s per store\n\n",
        config.concurrency,
        config.read_fraction * 100.0,
        config.keys,
        config.value_bytes,
        config.duration.as_secs()
    );
    text.push_str(
        "| store | ops/s | CPU us/op | kernel % | puts/s | p50 ms | p99 ms | read p50 ms | write p50 ms | errors |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (label, m) in rows {
        let r = &m.result;
        let cpu_us = m.cpu_us_per_op().map_or("-".to_string(), |us| format!("{us:.0}"));
        let kernel = m.cpu.map_or("-".to_string(), |cpu| format!("{:.0}", cpu.system_fraction() * 100.0));
        text.push_str(&format!(
            "| {label} | {:.0} | {cpu_us} | {kernel} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |\n",
            r.ops_per_s(),
            r.puts_per_s(),
            r.quantile_ms(0.5),
            r.quantile_ms(0.99),
            r.reads_us.value_at_quantile(0.5) as f64 / 1000.0,
            r.writes_us.value_at_quantile(0.5) as f64 / 1000.0,
            r.errors
        ));
    }
    let find = |key: &str| keys.iter().position(|k| *k == key).map(|i| &rows[i].1);
    let cpu_ratio = |a: &Measured, b: &Measured| match (a.cpu_us_per_op(), b.cpu_us_per_op()) {
        (Some(a), Some(b)) => ratio(a, b),
        _ => "-".into(),
    };
    if let (Some(ours3), Some(etcd)) = (find("dynamo3"), find("etcd")) {
        let (o, e) = (&ours3.result, &etcd.result);
        text.push_str(&format!(
            "\nours(3 nodes)/etcd puts/s: **{}** (goal >= 3), p99 ours/etcd: {} (goal <= 1), CPU us/op ours/etcd: {}\n",
            ratio(o.puts_per_s(), e.puts_per_s()),
            ratio(o.quantile_ms(0.99), e.quantile_ms(0.99)),
            cpu_ratio(ours3, etcd),
        ));
    }
    if let (Some(ours1), Some(redis)) = (find("dynamo1"), find("redis")) {
        text.push_str(&format!(
            "ours(N1)/redis ops/s: **{}** (goal >= 0.5), CPU us/op ours(N1)/redis: {}\n",
            ratio(ours1.result.ops_per_s(), redis.result.ops_per_s()),
            cpu_ratio(ours1, redis),
        ));
    }
    if let (Some(plain), Some(lazy)) = (find("dynamo1"), find("dynamo1-lazyfs")) {
        text.push_str(&format!(
            "lazyfs/plain directory (N1) ops/s: **{}**, CPU us/op lazyfs/plain: {}\n",
            ratio(lazy.result.ops_per_s(), plain.result.ops_per_s()),
            cpu_ratio(lazy, plain),
        ));
    }
    text
}

/// The share of reads in the bench's load unless `--read-fraction` says otherwise.
pub const DEFAULT_READ_FRACTION: f64 = 0.5;

/// The bench's defaults: 32 clients, half reads, 1000 keys, 100-byte values.
pub fn default_config(duration_s: u64, concurrency: u32, seed: u64) -> BenchConfig {
    BenchConfig {
        concurrency,
        keys: 1_000,
        value_bytes: 100,
        read_fraction: DEFAULT_READ_FRACTION,
        duration: Duration::from_secs(duration_s),
        seed,
        refused_backoff_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(chosen: &[Contender]) -> Vec<&'static str> {
        chosen.iter().map(|c| c.key).collect()
    }

    #[test]
    fn the_lazyfs_contender_runs_only_when_named() {
        let all = contenders();
        assert_eq!(keys(&choose(&all, &[]).unwrap()), ["dynamo3", "etcd", "redis", "dynamo1"]);
        let named = choose(&all, &["dynamo1-lazyfs".into(), "dynamo1".into()]).unwrap();
        assert_eq!(keys(&named), ["dynamo1", "dynamo1-lazyfs"], "in the table's order, not the flag's");
        assert!(named[1].on_lazyfs && !named[0].on_lazyfs);
        assert_eq!(named[0].node_args, named[1].node_args, "the same node, only the directory differs");
        let unknown = choose(&all, &["dynamo9".into()]).unwrap_err().to_string();
        assert!(unknown.contains("dynamo1-lazyfs"), "{unknown}");
    }
}
