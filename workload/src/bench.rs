//! A closed-loop load generator for comparing stores, not for checking them.
//!
//! `C` clients, each with one request outstanding, issue a 50/50 mix of
//! reads and writes of `value_bytes`-byte values over uniformly chosen keys
//! for a fixed duration, through any [`Client`] (our node, etcd, Redis), so
//! every store sees the same load from the same generator on the same
//! machine. Latencies go into an HDR histogram per operation (microsecond
//! resolution, 3 significant digits); errors are counted, not timed.
//! Requests refused for load (`ClientError::Refused`) are timed into a
//! histogram of their own, and the refused client backs off a seeded,
//! jittered `refused_backoff_ms` (between half and one and a half times
//! it) before its next request, as the workload's clients do and as real
//! drivers do: instant retries would measure the generator's storm.
//!
//! Nothing here is recorded as a history: a benchmark asks "how fast", and
//! the checkers ask "how correct" of runs made for that.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::Rng;

use crate::{seeded_rng, Client, ClientError};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Concurrent clients, each with one request outstanding.
    pub concurrency: u32,
    /// Keys `b0..b{keys-1}`, chosen uniformly.
    pub keys: u32,
    /// Size of every written value.
    pub value_bytes: usize,
    /// Probability that a request is a read.
    pub read_fraction: f64,
    /// How long the load runs, wall time; every client stops at the deadline.
    pub duration: Duration,
    /// The seed each client's choice of keys and of reads draws from.
    pub seed: u64,
    /// Mean back-off after a refusal for load, ms (0: none).
    pub refused_backoff_ms: u64,
}

/// What one client (or all of them, merged) measured.
#[derive(Debug, Clone)]
pub struct BenchResult {
    /// Successful reads' latencies, microseconds.
    pub reads_us: Histogram<u64>,
    /// Successful writes' latencies, microseconds.
    pub writes_us: Histogram<u64>,
    /// Requests that returned an error other than a refusal for load (not
    /// in the histograms).
    pub errors: u64,
    /// Time to each refusal for load, microseconds.
    pub refused_us: Histogram<u64>,
    /// Wall time the load ran.
    pub elapsed: Duration,
}

impl BenchResult {
    fn empty() -> BenchResult {
        // 1 us .. 60 s at 3 significant digits: fixed bounds, so recording never fails.
        let histogram = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
        BenchResult {
            reads_us: histogram(),
            writes_us: histogram(),
            errors: 0,
            refused_us: histogram(),
            elapsed: Duration::ZERO,
        }
    }

    fn merge(&mut self, other: &BenchResult) {
        self.reads_us.add(&other.reads_us).expect("same bounds");
        self.writes_us.add(&other.writes_us).expect("same bounds");
        self.errors += other.errors;
        self.refused_us.add(&other.refused_us).expect("same bounds");
        self.elapsed = self.elapsed.max(other.elapsed);
    }

    /// Successful operations per second.
    pub fn ops_per_s(&self) -> f64 {
        let ok = self.reads_us.len() + self.writes_us.len();
        ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Writes acknowledged per second.
    pub fn puts_per_s(&self) -> f64 {
        self.writes_us.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A quantile of all successful requests, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut all = self.reads_us.clone();
        all.add(&self.writes_us).expect("same bounds");
        all.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Runs the load against `clients` (client i uses `clients[i % len]`).
pub async fn run(config: &BenchConfig, clients: &[Arc<dyn Client>]) -> BenchResult {
    assert!(!clients.is_empty() && config.concurrency > 0 && config.keys > 0);
    let deadline = Instant::now() + config.duration;
    let tasks: Vec<_> = (0..config.concurrency)
        .map(|i| {
            let client = clients[i as usize % clients.len()].clone();
            tokio::spawn(one_client(config.clone(), i, client, deadline))
        })
        .collect();
    let mut total = BenchResult::empty();
    for task in tasks {
        if let Ok(result) = task.await {
            total.merge(&result);
        }
    }
    total
}

async fn one_client(config: BenchConfig, index: u32, client: Arc<dyn Client>, deadline: Instant) -> BenchResult {
    let mut rng = seeded_rng(config.seed, "bench-client", u64::from(index));
    let mut backoff_rng = seeded_rng(config.seed, "bench-backoff", u64::from(index));
    let mut result = BenchResult::empty();
    let value_tail = "x".repeat(config.value_bytes);
    let started = Instant::now();
    let mut seq: u64 = 0;
    while Instant::now() < deadline {
        let key = format!("b{}", rng.random_range(0..config.keys));
        let read = rng.random_bool(config.read_fraction.clamp(0.0, 1.0));
        let begin = Instant::now();
        let outcome = if read {
            client.read(&key).await.map(|_| ())
        } else {
            seq += 1;
            // Unique prefix, padded to exactly value_bytes.
            let mut value = format!("c{index}-{seq}-");
            value.push_str(&value_tail[..config.value_bytes.saturating_sub(value.len())]);
            client.write(&key, &value, &[]).await.map(|_| ())
        };
        let us = (begin.elapsed().as_micros() as u64).clamp(1, 60_000_000);
        match (outcome, read) {
            (Err(ClientError::Refused(_)), _) => {
                result.refused_us.record(us).expect("clamped into bounds");
                let base_ms = config.refused_backoff_ms;
                if base_ms > 0 {
                    let delay_ms = backoff_rng.random_range(base_ms / 2..=base_ms + base_ms / 2);
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                }
            }
            (Err(_), _) => result.errors += 1,
            (Ok(()), true) => result.reads_us.record(us).expect("clamped into bounds"),
            (Ok(()), false) => result.writes_us.record(us).expect("clamped into bounds"),
        }
    }
    result.elapsed = started.elapsed();
    result
}
