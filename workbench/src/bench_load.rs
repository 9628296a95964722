//! `workbench bench-load`: goodput against offered load, from below
//! capacity to far past it, one curve per store.
//!
//! A store people run in production refuses the excess fast and keeps
//! serving at capacity; one that takes every request collapses (this
//! node did, before admission control: at 2,000 closed-loop clients its
//! goodput fell by a factor of 170). This sweep is the throughput-latency
//! picture YCSB users expect, and the test of that promise:
//! - offered load is a closed loop of C clients, C stepping from
//!   [`DEFAULT_LEVELS`]' 32 to 4,096 (`--levels`), each step for
//!   `--duration` seconds on the same running cluster;
//! - every store gets the same load generator ([`workload::bench`], as in
//!   `bench-peers`): our 3-node N3 W2 R2 cluster with adaptive admission
//!   control (the default), the same with `--client-limit off` (what the
//!   node did before), our single node N1, a 3-member etcd and one Redis;
//! - a client refused for load (`RESOURCE_EXHAUSTED "overloaded"`) backs
//!   off a seeded, jittered `--refused-backoff-ms` before its next request,
//!   as real drivers do; refusals are counted and timed apart from errors;
//! - per step: goodput (ok ops/s), refused/s, other errors/s, p50 and p99
//!   of ok ops (HDR histograms), the slowest refusal's p99, CPU per op and
//!   the largest member's resident memory (peak since start, so growth
//!   shows);
//! - `load.md` (the table), `load.json` (every figure) and two PNG curves
//!   (`goodput.png`, `p99.png`) under `results/load/<time>/`.
//!
//! The last line is the overload ratio for our 3-node cluster: goodput at
//! 16 times the clients of its peak step (or the largest step, if the sweep
//! stops short of that) over its peak goodput. It is a benchmark, not a
//! test: it asserts nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::backend::Backend;
use crate::bench_peers::{self, Contender};
use crate::bench_plot::Series;
use docker::{Cluster, ClusterSpec, CpuTime};
use workload::bench::{BenchConfig, BenchResult};

/// Closed-loop client counts stepped through by default: 32 to 4,096.
pub const DEFAULT_LEVELS: [u32; 8] = [32, 64, 128, 256, 512, 1024, 2048, 4096];

/// How many times the peak step's clients count as "16x overload".
pub const OVERLOAD_FACTOR: u32 = 16;

/// Pause between steps, so one step's queues drain before the next starts.
const SETTLE_MS: u64 = 1_000;

/// What to sweep.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Client counts, ascending.
    pub levels: Vec<u32>,
    /// The load of every step (its `concurrency` is replaced per step).
    pub bench: BenchConfig,
    /// Where `load/<time>/` goes.
    pub results_dir: PathBuf,
    /// Contender keys to run (empty: all).
    pub only: Vec<String>,
}

/// One step of one store.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Closed-loop clients.
    pub clients: u32,
    /// Successful ops per second.
    pub goodput_per_s: f64,
    /// Requests refused for load per second.
    pub refused_per_s: f64,
    /// Other failed requests per second (timeouts, missed quorums).
    pub errors_per_s: f64,
    /// Median of ok ops, ms.
    pub p50_ms: f64,
    /// 99th percentile of ok ops, ms.
    pub p99_ms: f64,
    /// 99th percentile of the time to a refusal, ms (0 with none).
    pub refused_p99_ms: f64,
    /// CPU of the store's processes per request served (any outcome), us.
    pub cpu_us_per_op: Option<f64>,
    /// The largest member's peak resident memory so far, MiB.
    pub peak_rss_mib: Option<f64>,
}

/// One store's sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    /// Contender key (`--only`).
    pub key: String,
    /// Row label.
    pub label: String,
    /// One per level, in order.
    pub steps: Vec<Step>,
}

impl Curve {
    /// The step with the most goodput.
    pub fn peak(&self) -> Option<&Step> {
        self.steps.iter().max_by(|a, b| a.goodput_per_s.total_cmp(&b.goodput_per_s))
    }

    /// The first step with at least [`OVERLOAD_FACTOR`] times the peak's
    /// clients, else the last step.
    pub fn overloaded(&self) -> Option<&Step> {
        let peak = self.peak()?;
        let target = peak.clients.saturating_mul(OVERLOAD_FACTOR);
        self.steps.iter().find(|s| s.clients >= target).or(self.steps.last())
    }

    /// Goodput at overload over peak goodput, and the overload factor reached.
    pub fn overload_ratio(&self) -> Option<(f64, f64)> {
        let (peak, over) = (self.peak()?, self.overloaded()?);
        let factor = f64::from(over.clients) / f64::from(peak.clients.max(1));
        Some((over.goodput_per_s / peak.goodput_per_s.max(1e-9), factor))
    }
}

/// The stores swept: `bench-peers`' contenders, with our 3-node cluster
/// also run without admission control, next to it.
fn contenders() -> Vec<Contender> {
    let mut all = bench_peers::contenders();
    let limited = all.iter().position(|c| c.key == "dynamo3").expect("bench-peers has dynamo3");
    let mut unlimited = all[limited].clone();
    unlimited.key = "dynamo3-nolimit";
    unlimited.label = "dynamo N3 W2 R2, --client-limit off";
    unlimited.node_args.extend(["--client-limit".to_string(), "off".to_string()]);
    all.insert(limited + 1, unlimited);
    all
}

/// Refuses levels that are empty, zero or not ascending.
pub fn check_levels(levels: &[u32]) -> Result<()> {
    if levels.is_empty() || levels.contains(&0) {
        bail!("--levels needs at least one client count, each at least 1 (got {levels:?})");
    }
    if levels.windows(2).any(|w| w[0] >= w[1]) {
        bail!("--levels must be ascending (got {levels:?})");
    }
    Ok(())
}

/// Runs the sweep and writes `results/load/<time>/`; the caller checks
/// the levels with [`check_levels`] before anything starts.
pub async fn bench_load(config: &LoadConfig, backend: &Backend) -> Result<i32> {
    let chosen = bench_peers::choose(&contenders(), &config.only)?;
    let dir = config.results_dir.join("load").join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut curves = Vec::new();
    for (i, contender) in chosen.iter().enumerate() {
        eprintln!(
            "[{}/{}] {}: {} steps of {} s",
            i + 1,
            chosen.len(),
            contender.label,
            config.levels.len(),
            config.bench.duration.as_secs()
        );
        curves.push(sweep(config, contender, backend, &dir, i).await?);
    }
    let text = report(config, &curves);
    std::fs::write(dir.join("load.md"), &text)?;
    crate::json_file::write_json(&dir.join("load.json"), &curves)?;
    let series = |figure: fn(&Step) -> f64| -> Vec<Series> {
        let points = |c: &Curve| c.steps.iter().map(|s| (f64::from(s.clients), figure(s))).collect();
        curves.iter().map(|c| (c.label.as_str(), points(c))).collect()
    };
    let (goodput, p99) = (series(|s| s.goodput_per_s), series(|s| s.p99_ms.max(0.01)));
    println!("{text}");
    // The figures are on disk and printed: a missing font costs the pictures only.
    if let Err(error) = crate::bench_plot::load_curves(&dir.join("goodput.png"), &dir.join("p99.png"), &goodput, &p99) {
        eprintln!("no curves: {error:#}");
    }
    eprintln!("written: {}", dir.join("load.md").display());
    Ok(0)
}

/// One store through every level, on one cluster.
async fn sweep(config: &LoadConfig, c: &Contender, backend: &Backend, dir: &Path, index: usize) -> Result<Curve> {
    let spec = ClusterSpec {
        name: format!("load{}-{index}", std::process::id()),
        nodes: (1..=c.nodes).map(|i| format!("n{i}")).collect(),
        node_args: c.node_args.clone(),
        log_dir: dir.join("logs").join(c.key),
        link_proxy: None,
        clock_faults: false,
        power_loss: c.on_lazyfs,
    };
    std::fs::create_dir_all(&spec.log_dir)?;
    let cluster = backend.start(&spec, c.store).await?;
    let steps = steps(config, c, cluster.as_ref()).await;
    let _ = cluster.collect_logs().await;
    cluster.teardown().await?;
    Ok(Curve { key: c.key.to_string(), label: c.label.to_string(), steps: steps? })
}

/// Every level against a running cluster.
async fn steps(config: &LoadConfig, c: &Contender, cluster: &dyn Cluster) -> Result<Vec<Step>> {
    let endpoints = bench_peers::endpoints(cluster)?;
    let mut steps = Vec::with_capacity(config.levels.len());
    for &clients in &config.levels {
        let bench = BenchConfig { concurrency: clients, ..config.bench.clone() };
        let before = bench_peers::cpu_time(cluster).await;
        let result = bench_peers::load(&bench, c.store, endpoints.clone()).await?;
        let cpu = before.zip(bench_peers::cpu_time(cluster).await).map(|(b, a)| a.since(&b));
        let peak_rss_mib = peak_rss_mib(cluster).await;
        let step = step(clients, &result, cpu, peak_rss_mib);
        eprintln!(
            "  {clients:>5} clients: {:>8.0} ok/s, {:>8.0} refused/s, {:>6.0} errors/s, p99 {:.1} ms",
            step.goodput_per_s, step.refused_per_s, step.errors_per_s, step.p99_ms
        );
        steps.push(step);
        tokio::time::sleep(Duration::from_millis(SETTLE_MS)).await;
    }
    Ok(steps)
}

/// The largest member's peak resident memory, MiB; `None` (said once per
/// step) when the backend cannot tell.
async fn peak_rss_mib(cluster: &dyn Cluster) -> Option<f64> {
    match cluster.memory().await {
        Ok(members) => members.iter().map(|m| m.peak_bytes).max().map(|b| b as f64 / (1024.0 * 1024.0)),
        Err(error) => {
            eprintln!("no memory figures for this store: {error}");
            None
        }
    }
}

/// One step's figures from what the clients saw.
fn step(clients: u32, r: &BenchResult, cpu: Option<CpuTime>, peak_rss_mib: Option<f64>) -> Step {
    let seconds = r.elapsed.as_secs_f64().max(1e-9);
    let served = r.reads_us.len() + r.writes_us.len() + r.errors + r.refused_us.len();
    let ok = r.reads_us.len() + r.writes_us.len();
    Step {
        clients,
        goodput_per_s: ok as f64 / seconds,
        refused_per_s: r.refused_us.len() as f64 / seconds,
        errors_per_s: r.errors as f64 / seconds,
        p50_ms: if ok > 0 { r.quantile_ms(0.5) } else { 0.0 },
        p99_ms: if ok > 0 { r.quantile_ms(0.99) } else { 0.0 },
        refused_p99_ms: r.refused_us.value_at_quantile(0.99) as f64 / 1000.0,
        cpu_us_per_op: cpu.filter(|_| served > 0).map(|cpu| cpu.total_us() as f64 / served as f64),
        peak_rss_mib,
    }
}

/// `-` for a figure the backend could not give.
fn or_dash(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.decimals$}"))
}

/// The table per store, each store's overload ratio, and the last line.
fn report(config: &LoadConfig, curves: &[Curve]) -> String {
    let b = &config.bench;
    let mut text = format!(
        "# bench-load\n\nclosed loops of {} clients, {:.0}% reads, {} uniform keys, {}-byte values, {} s per step, \
         refused clients back off {} ms (jittered)\n\n",
        config.levels.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
        b.read_fraction * 100.0,
        b.keys,
        b.value_bytes,
        b.duration.as_secs(),
        b.refused_backoff_ms,
    );
    text.push_str(
        "| store | clients | goodput ops/s | refused/s | errors/s | p50 ms | p99 ms | refused p99 ms | CPU us/op | peak RSS MiB |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for curve in curves {
        for s in &curve.steps {
            text.push_str(&format!(
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} |\n",
                curve.label,
                s.clients,
                s.goodput_per_s,
                s.refused_per_s,
                s.errors_per_s,
                s.p50_ms,
                s.p99_ms,
                s.refused_p99_ms,
                or_dash(s.cpu_us_per_op, 0),
                or_dash(s.peak_rss_mib, 0),
            ));
        }
    }
    text.push('\n');
    for curve in curves {
        if let (Some(peak), Some((ratio, factor))) = (curve.peak(), curve.overload_ratio()) {
            text.push_str(&format!(
                "{}: peak {:.0} ops/s at {} clients; at {factor:.0}x those clients {:.2} of it\n",
                curve.label, peak.goodput_per_s, peak.clients, ratio
            ));
        }
    }
    if let Some((ratio, factor)) = curves.iter().find(|c| c.key == "dynamo3").and_then(Curve::overload_ratio) {
        let note =
            if factor < f64::from(OVERLOAD_FACTOR) { format!(" (only {factor:.0}x reached)") } else { String::new() };
        text.push_str(&format!("\ngoodput at {OVERLOAD_FACTOR}x overload / peak goodput: {ratio:.2}{note}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: &[(u32, f64)]) -> Curve {
        let step = |&(clients, goodput_per_s): &(u32, f64)| Step {
            clients,
            goodput_per_s,
            refused_per_s: 0.0,
            errors_per_s: 0.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            refused_p99_ms: 0.0,
            cpu_us_per_op: None,
            peak_rss_mib: None,
        };
        Curve { key: "dynamo3".into(), label: "ours".into(), steps: points.iter().map(step).collect() }
    }

    #[test]
    fn the_overload_step_is_sixteen_times_the_peak_clients() {
        let c = curve(&[(32, 900.0), (64, 1000.0), (512, 950.0), (1024, 800.0), (4096, 10.0)]);
        assert_eq!(c.peak().unwrap().clients, 64);
        assert_eq!(c.overloaded().unwrap().clients, 1024, "the first step at >= 16 x 64");
        let (ratio, factor) = c.overload_ratio().unwrap();
        assert!((ratio - 0.8).abs() < 1e-9 && (factor - 16.0).abs() < 1e-9);
    }

    #[test]
    fn a_sweep_short_of_sixteen_times_uses_its_last_step_and_says_so() {
        let c = curve(&[(32, 1000.0), (128, 500.0)]);
        let (ratio, factor) = c.overload_ratio().unwrap();
        assert_eq!((ratio, factor), (0.5, 4.0));
        let config = LoadConfig {
            levels: vec![32, 128],
            bench: bench_peers::default_config(1, 1, 1),
            results_dir: PathBuf::new(),
            only: vec![],
        };
        let text = report(&config, &[c]);
        assert!(text.trim_end().ends_with("goodput at 16x overload / peak goodput: 0.50 (only 4x reached)"), "{text}");
    }

    #[test]
    fn levels_must_be_ascending_and_positive() {
        assert!(check_levels(&[32, 64]).is_ok());
        for bad in [&[][..], &[0, 32][..], &[64, 32][..], &[32, 32][..]] {
            assert!(check_levels(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_unlimited_cluster_sits_next_to_the_limited_one() {
        let keys: Vec<&str> = contenders().iter().map(|c| c.key).collect();
        let at = keys.iter().position(|k| *k == "dynamo3").unwrap();
        assert_eq!(keys[at + 1], "dynamo3-nolimit");
        let unlimited = &contenders()[at + 1];
        assert!(unlimited.node_args.windows(2).any(|w| w == ["--client-limit", "off"]));
    }
}
