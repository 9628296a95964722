//! Same seed, same op sequence per worker; different seed, different one.
//! The store here is an in-memory register used only as a test double for
//! the network: the property under test is the generator's determinism.
//! The open-loop tests run on tokio's paused clock, so arrival times, and
//! with them which arrivals find a free process, repeat exactly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use history::{KeyShape, Knobs};
use history::{OpType, Process, Recorder, Version};
use workload::register::{self, NodeChoice, Target};
use workload::set;
use workload::{Arrival, Client, ClientError, ReadReply, WorkloadConfig, WriteReply};

/// A workload config with the knobs these tests vary.
fn config(
    keys: u32,
    key_distribution: KeyShape,
    rate: f64,
    arrival: Arrival,
    read_fraction: f64,
    seed: u64,
) -> WorkloadConfig {
    let knobs = Knobs {
        concurrency: 3,
        keys,
        key_distribution,
        rate,
        arrival,
        read_fraction,
        rmw_fraction: 0.5,
        node_choice: NodeChoice::Random,
        ..Knobs::default()
    };
    WorkloadConfig::new(knobs, seed)
}

#[derive(Default)]
struct MemStore {
    data: Mutex<BTreeMap<String, (String, u64)>>,
    /// How long each write takes (on tokio's clock).
    write_ms: u64,
}

#[async_trait::async_trait]
impl Client for MemStore {
    async fn read(&self, key: &str) -> Result<ReadReply, ClientError> {
        let data = self.data.lock().unwrap();
        let siblings = data
            .get(key)
            .map(|(v, c)| vec![(Some(v.clone()), Version { clock: [("m".to_string(), *c)].into(), ts: *c, dot: None })])
            .unwrap_or_default();
        Ok(ReadReply { siblings, context: vec![], answered_by: None })
    }
    async fn write(&self, key: &str, value: &str, _context: &[u8]) -> Result<WriteReply, ClientError> {
        tokio::time::sleep(Duration::from_millis(self.write_ms)).await;
        let mut data = self.data.lock().unwrap();
        let counter = data.get(key).map_or(1, |(_, c)| c + 1);
        data.insert(key.to_string(), (value.to_string(), counter));
        let version = Version { clock: [("m".to_string(), counter)].into(), ts: counter, dot: None };
        Ok(WriteReply { version, hinted_for: Vec::new() })
    }
}

/// (f, key, node) of every invocation, per worker (process mod concurrency),
/// of the register workload (`set == false`) or the set workload.
async fn invocations(seed: u64, set: bool) -> BTreeMap<u64, Vec<(String, String, String)>> {
    let dir = std::env::temp_dir().join(format!("wl-det-{}-{seed}-{set}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let recorder = Arc::new(Recorder::create(&dir.join("h.jsonl"), Instant::now()).unwrap());
    let store: Arc<dyn Client> = Arc::new(MemStore::default());
    let targets: Vec<Target> = (1..=3).map(|i| Target { node: format!("n{i}"), client: store.clone() }).collect();
    let config = config(4, KeyShape::Zipfian { exponent: 1.0 }, 600.0, Arrival::Closed, 0.5, seed);
    if set {
        let config = self::config(4, KeyShape::Uniform, 600.0, Arrival::Closed, 0.3, seed);
        set::run(&config, &targets, recorder.clone(), Duration::from_millis(300)).await;
    } else {
        register::run(&config, &targets, recorder.clone(), Duration::from_millis(300)).await;
    }
    let mut out: BTreeMap<u64, Vec<(String, String, String)>> = BTreeMap::new();
    for op in recorder.read_back().expect("the history reads back").ops {
        if let (Process::Client(p), OpType::Invoke) = (op.process, op.kind) {
            out.entry(p % 3).or_default().push((op.f, op.key.unwrap(), op.node.unwrap()));
        }
    }
    out
}

fn prefix(a: &[(String, String, String)], len: usize) -> &[(String, String, String)] {
    &a[..len.min(a.len())]
}

#[tokio::test]
async fn same_seed_same_op_sequence_per_worker() {
    same_seed_same_sequences(false).await;
}

#[tokio::test]
async fn set_workload_same_seed_same_op_sequence_per_worker() {
    same_seed_same_sequences(true).await;
}

async fn same_seed_same_sequences(set: bool) {
    let a = invocations(7, set).await;
    let b = invocations(7, set).await;
    let c = invocations(8, set).await;
    assert_eq!(a.len(), 3);
    let mut differs = false;
    for worker in 0..3 {
        let (x, y, z) = (&a[&worker], &b[&worker], &c[&worker]);
        // Timing decides how many ops fit in the window, not which ones.
        let len = x.len().min(y.len()).min(z.len());
        assert!(len >= 10, "worker {worker} ran only {len} ops");
        assert_eq!(prefix(x, len), prefix(y, len), "worker {worker} diverged with the same seed");
        differs |= prefix(x, len) != prefix(z, len);
    }
    assert!(differs, "a different seed produced the same sequences");
}

/// An open-loop register run at 200 ops/s for 2 s on the paused clock, over
/// 3 processes and a store whose writes take `write_ms`: every op's (process,
/// type, f, key, node) in history order, and the recorded `workload` event.
async fn open_loop(
    seed: u64,
    write_ms: u64,
) -> (Vec<(Process, OpType, String, Option<String>, Option<String>)>, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("wl-open-{}-{seed}-{write_ms}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let recorder = Arc::new(Recorder::create(&dir.join("h.jsonl"), Instant::now()).unwrap());
    let store: Arc<dyn Client> = Arc::new(MemStore { write_ms, ..MemStore::default() });
    let targets: Vec<Target> = (1..=3).map(|i| Target { node: format!("n{i}"), client: store.clone() }).collect();
    let config = config(4, KeyShape::Uniform, 200.0, Arrival::Open, 0.5, seed);
    let summary = register::run(&config, &targets, recorder.clone(), Duration::from_secs(2)).await;
    let ops = recorder.read_back().expect("the history reads back").ops;
    let event = ops.iter().find(|op| op.f == "workload").expect("the run records its offered load").value.clone();
    assert_eq!(event["dropped_arrivals"], summary.dropped_arrivals);
    let ops = ops
        .into_iter()
        .filter(|op| op.f != "workload")
        .map(|op| (op.process, op.kind, op.f, op.key, op.node))
        .collect();
    (ops, event)
}

#[tokio::test(start_paused = true)]
async fn open_loop_same_seed_same_arrivals_and_ops_another_seed_others() {
    let (a, event) = open_loop(7, 0).await;
    let (b, _) = open_loop(7, 0).await;
    let (c, _) = open_loop(8, 0).await;
    assert_eq!(a, b, "same seed, same ops in the same order");
    assert_ne!(a, c);
    let arrivals = workload::arrival::Schedule::new(7, 200.0).take_while(|d| *d < Duration::from_secs(2)).count();
    assert_eq!(event["arrivals"], arrivals as u64);
    assert_eq!(event["dropped_arrivals"], 0, "an instant store takes every arrival");
    assert_eq!(event["arrival"], "open");
    assert_eq!(a.len(), 2 * arrivals, "each arrival is one invoke and one completion");
}

#[tokio::test(start_paused = true)]
async fn open_loop_drops_what_busy_processes_cannot_take_and_keeps_one_op_per_process() {
    // Writes take 100 ms: 3 processes cannot keep up with 200 arrivals/s.
    let (ops, event) = open_loop(7, 100).await;
    let (arrivals, issued, dropped) = (
        event["arrivals"].as_u64().unwrap(),
        event["issued"].as_u64().unwrap(),
        event["dropped_arrivals"].as_u64().unwrap(),
    );
    assert!(dropped > 0, "{event}");
    assert_eq!(issued + dropped, arrivals);
    let mut open: BTreeMap<Process, bool> = BTreeMap::new();
    for (process, kind, ..) in &ops {
        let outstanding = open.entry(*process).or_default();
        assert_eq!(*outstanding, *kind != OpType::Invoke, "process {process:?}: one op outstanding at a time");
        *outstanding = *kind == OpType::Invoke;
    }
    let (again, event_again) = open_loop(7, 100).await;
    assert_eq!((ops, event), (again, event_again), "the paused clock repeats the drops exactly");
}
