//! The node's counters and request metrics.
//!
//! Counters are plain atomics read by `Admin.Status`. Every counter is a
//! named field (no string-keyed registry), so a typo is a compile error and
//! the set of counters is documented in one place. The names in
//! [`Metrics::snapshot`] are the contract with the workbench: they only ever
//! get added, never renamed.
//!
//! The same counters, plus request counts and latency histograms by
//! operation and outcome ([`RequestMetrics`], a per-node `prometheus`
//! registry: no global state, so several nodes can share a test process),
//! are served as Prometheus text by [`render_prometheus`] on
//! `--metrics-listen` (see `net/metrics_http.rs`). Admin counters are exported
//! as `dynamo_<name>` with type `untyped`, because the admin map mixes
//! monotonic counts with levels such as pending hints.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

/// A monotonically increasing event count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// All counters of one node.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Client Get requests received (valid or not).
    pub gets: Counter,
    /// Client Put requests received (valid or not).
    pub puts: Counter,
    /// Client Delete requests received (valid or not).
    pub deletes: Counter,
    /// Gets that failed for lack of R replies.
    pub unavailable_reads: Counter,
    /// Puts and Deletes that failed for lack of W acks.
    pub unavailable_writes: Counter,
    /// Client requests rejected with INVALID_ARGUMENT.
    pub invalid_requests: Counter,
    /// Clock entries dropped to respect `--max-clock-entries`.
    pub clock_prunings: Counter,
    /// Successful Gets that found no version at all.
    pub reads_not_found: Counter,
    /// Successful Gets that returned exactly one sibling.
    pub reads_single_version: Counter,
    /// Successful Gets that returned two or more siblings (conflicts).
    pub reads_multi_version: Counter,
    /// Replica Store operations applied here (local or via RPC).
    pub replica_stores: Counter,
    /// Replica Stores refused because they arrived after their coordinator
    /// stopped waiting (`coordinate/lateness.rs`).
    pub replica_stores_late: Counter,
    /// Replica Fetch operations served here (local or via RPC).
    pub replica_fetches: Counter,
    /// Read repair: stale replicas successfully written the merged version.
    pub read_repairs: Counter,
    /// Read repair: reads that found at least one stale replica.
    pub read_repair_reads: Counter,
    /// Read repair: stores to stale replicas that failed.
    pub read_repair_failures: Counter,
    /// Read repair: repairs not started because [`crate::coordinate::coordinator::MAX_REPAIRS_IN_FLIGHT`]
    /// were already running (the next read of the key, or anti-entropy,
    /// repairs it instead).
    pub read_repairs_dropped: Counter,
    /// Anti-entropy exchanges this node initiated and completed.
    pub aae_exchanges: Counter,
    /// Anti-entropy exchanges that failed (peer unreachable, refused, ...).
    pub aae_exchange_failures: Counter,
    /// Leaf buckets whose hashes an exchange compared (leaf level reached).
    pub aae_buckets_compared: Counter,
    /// Leaf buckets found different by an exchange.
    pub aae_buckets_differing: Counter,
    /// Keys (with their sibling sets) this node sent during exchanges, as
    /// initiator (pushed) or responder (returned).
    pub aae_keys_sent: Counter,
    /// Encoded bytes of those keys and sibling sets: the repair payload.
    pub aae_bytes_sent: Counter,
    /// Encoded bytes of tree hashes and bucket digests this node sent or
    /// requested: the cost of finding the differences.
    pub aae_tree_bytes_sent: Counter,
    /// Keys whose local replica changed by merging a peer's version.
    pub aae_keys_repaired: Counter,
}

impl Metrics {
    /// Counts a successful read by how many siblings it returned.
    pub fn record_read_siblings(&self, siblings: usize) {
        match siblings {
            0 => self.reads_not_found.inc(),
            1 => self.reads_single_version.inc(),
            _ => self.reads_multi_version.inc(),
        }
    }

    /// Every counter by its stable name.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.named().iter().map(|(name, c)| (name.to_string(), c.get())).collect()
    }

    /// Every counter with its stable name (add new counters here).
    fn named(&self) -> Vec<(&'static str, &Counter)> {
        vec![
            ("gets", &self.gets),
            ("puts", &self.puts),
            ("deletes", &self.deletes),
            ("unavailable_reads", &self.unavailable_reads),
            ("unavailable_writes", &self.unavailable_writes),
            ("invalid_requests", &self.invalid_requests),
            ("clock_prunings", &self.clock_prunings),
            ("reads_not_found", &self.reads_not_found),
            ("reads_single_version", &self.reads_single_version),
            ("reads_multi_version", &self.reads_multi_version),
            ("replica_stores", &self.replica_stores),
            ("replica_stores_late", &self.replica_stores_late),
            ("replica_fetches", &self.replica_fetches),
            ("read_repairs", &self.read_repairs),
            ("read_repair_reads", &self.read_repair_reads),
            ("read_repair_failures", &self.read_repair_failures),
            ("read_repairs_dropped", &self.read_repairs_dropped),
            ("aae_exchanges", &self.aae_exchanges),
            ("aae_exchange_failures", &self.aae_exchange_failures),
            ("aae_buckets_compared", &self.aae_buckets_compared),
            ("aae_buckets_differing", &self.aae_buckets_differing),
            ("aae_keys_sent", &self.aae_keys_sent),
            ("aae_bytes_sent", &self.aae_bytes_sent),
            ("aae_tree_bytes_sent", &self.aae_tree_bytes_sent),
            ("aae_keys_repaired", &self.aae_keys_repaired),
        ]
    }
}

/// Latency histogram buckets in seconds: 0.25 ms .. 5 s.
const LATENCY_BUCKETS_SECONDS: [f64; 14] =
    [0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0];

/// Client request counts and latencies by operation and outcome, in a
/// registry owned by one node.
#[derive(Debug, Clone)]
pub struct RequestMetrics {
    /// The node's own registry (never the process-global one).
    registry: Registry,
    /// `dynamo_requests_total{op, outcome}`.
    requests: IntCounterVec,
    /// `dynamo_request_duration_seconds{op, outcome}`.
    latency: HistogramVec,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestMetrics {
    /// A fresh registry with the request families registered.
    pub fn new() -> Self {
        let labels = ["op", "outcome"];
        let requests =
            IntCounterVec::new(Opts::new("dynamo_requests_total", "Client requests by operation and outcome"), &labels)
                .expect("valid counter options");
        let latency = HistogramVec::new(
            HistogramOpts::new("dynamo_request_duration_seconds", "Client request latency by operation and outcome")
                .buckets(LATENCY_BUCKETS_SECONDS.to_vec()),
            &labels,
        )
        .expect("valid histogram options");
        let registry = Registry::new();
        registry.register(Box::new(requests.clone())).expect("first registration");
        registry.register(Box::new(latency.clone())).expect("first registration");
        RequestMetrics { registry, requests, latency }
    }

    /// Records one finished client request.
    pub fn observe(&self, op: &str, outcome: &str, elapsed: Duration) {
        self.requests.with_label_values(&[op, outcome]).inc();
        self.latency.with_label_values(&[op, outcome]).observe(elapsed.as_secs_f64());
    }

    /// The request families in Prometheus text format.
    fn encode(&self) -> String {
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(%error, "cannot encode request metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Everything the node exports, in Prometheus text format: the request
/// families, then every admin counter as `dynamo_<name>`.
pub fn render_prometheus(requests: &RequestMetrics, counters: &BTreeMap<String, u64>) -> String {
    let mut text = requests.encode();
    for (name, value) in counters {
        let metric = format!("dynamo_{}", sanitize(name));
        text.push_str(&format!("# HELP {metric} Admin counter {name}\n"));
        text.push_str(&format!("# TYPE {metric} untyped\n{metric} {value}\n"));
    }
    text
}

/// A metric name keeps `[a-zA-Z0-9_]`; anything else becomes `_`.
fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_every_counter() {
        let m = Metrics::default();
        m.puts.inc();
        m.clock_prunings.add(3);
        m.record_read_siblings(2);
        let snap = m.snapshot();
        assert_eq!(snap.len(), m.named().len());
        assert_eq!(snap["puts"], 1);
        assert_eq!(snap["clock_prunings"], 3);
        assert_eq!(snap["reads_multi_version"], 1);
    }

    #[test]
    fn prometheus_text_has_requests_and_counters() {
        let m = Metrics::default();
        m.aae_bytes_sent.add(42);
        let requests = RequestMetrics::new();
        requests.observe("get", "ok", Duration::from_millis(3));
        requests.observe("put", "unavailable", Duration::from_millis(500));
        let text = render_prometheus(&requests, &m.snapshot());
        assert!(text.contains("dynamo_requests_total{op=\"get\",outcome=\"ok\"} 1"), "{text}");
        assert!(
            text.contains("dynamo_request_duration_seconds_bucket{op=\"put\",outcome=\"unavailable\",le=\"0.5\"} 1"),
            "{text}"
        );
        assert!(text.contains("dynamo_aae_bytes_sent 42\n"), "{text}");
        assert!(text.contains("# TYPE dynamo_read_repairs untyped"), "{text}");
    }
}
