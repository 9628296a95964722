//! The `register` workload: reads and writes of unique values over a small
//! key space, each client process with one op outstanding.
//!
//! Why unique values: a read then names exactly which writes it saw, so the
//! stale-read, read-your-writes and monotonic-read checkers need no guessing.
//! Why a small key space: contention on a few keys is what makes concurrent
//! versions, stale reads and lost updates show up within seconds.
//!
//! Writes are blind or read-modify-write: a read-modify-write passes the
//! context of the process's latest read of that key, so the store replaces
//! the siblings the client saw (the way a Dynamo client reconciles).
//!
//! Determinism: each worker draws every decision (key, node, read or write,
//! blind or read-modify-write, start-time jitter) from its own stream of the
//! run's seed, and draws them whatever the outcomes were, so two runs with the
//! same seed issue the same op sequence per worker.
//!
//! Arrivals ([`Arrival`]): closed loop by default (each worker goes again when
//! its op completes, paced by `rate` split over the workers); open loop sends
//! `rate` ops/s on a seeded Poisson schedule to a pool of `concurrency`
//! processes, each op drawn in arrival order from one stream of the seed, and
//! counts the arrivals that found every process busy ([`crate::arrival`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use history::{Op, Recorder};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tracing::warn;

use crate::arrival::{self, Arrival, OpenLoopCounts, Schedule, Slot};
use crate::worker::WorkerCore;
use crate::{seeded_rng, WorkloadConfig};

/// Defined in [`crate::client`] beside the client it wraps (the worker core
/// imports it from there too); re-exported here for the workloads' callers.
pub use crate::client::Target;
pub use history::NodeChoice;

/// What a workload run did, for the progress line and sanity checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunSummary {
    /// Ops issued.
    pub ops: u64,
    /// The highest process id used; final reads use fresh ids above it.
    pub max_process: u64,
    /// How ops were offered.
    pub arrival: Arrival,
    /// Open loop: arrivals scheduled (issued plus dropped); closed: `ops`.
    pub arrivals: u64,
    /// Open loop: arrivals that found every process busy and were not issued.
    pub dropped_arrivals: u64,
}

impl RunSummary {
    /// The summary of an open-loop run.
    pub(crate) fn open(counts: OpenLoopCounts) -> RunSummary {
        RunSummary {
            ops: counts.issued,
            max_process: counts.max_process,
            arrival: Arrival::Open,
            arrivals: counts.arrivals,
            dropped_arrivals: counts.dropped_arrivals,
        }
    }

    /// Drives `workers` closed or open loop (`draw`: each open-loop
    /// arrival's op, in order), then records the summary in the history.
    pub(crate) async fn drive<S: Slot>(
        workers: Vec<S>,
        pace: Pace,
        draw: impl FnMut(usize) -> S::Plan,
        recorder: &Recorder,
        workload: &str,
    ) -> RunSummary {
        let deadline = Instant::now() + pace.duration;
        let summary = match pace.arrival {
            Arrival::Closed => {
                let period = pace.period(workers.len());
                let mut jitter = seeded_rng(pace.seed, &format!("{workload}-start-jitter"), 0);
                let tasks = workers
                    .into_iter()
                    .map(|w| tokio::spawn(arrival::closed_loop(w, period, jitter.random::<f64>(), deadline)))
                    .collect();
                RunSummary::join(tasks, workload).await
            }
            Arrival::Open => {
                let schedule = Schedule::new(pace.seed, pace.rate);
                RunSummary::open(arrival::open_loop(workers, schedule, deadline, draw).await)
            }
        };
        summary.record(recorder, pace.rate, pace.duration);
        summary
    }

    /// Records the summary in the history as a `workload` event (process
    /// `nemesis`, like the phase markers), so the offered load, and what of
    /// it was dropped, can be checked offline from the history alone.
    pub(crate) fn record(&self, recorder: &Recorder, rate: f64, duration: Duration) {
        let value = json!({
            "arrival": self.arrival.as_str(),
            "target_rate_per_s": rate,
            "duration_s": duration.as_secs_f64(),
            "arrivals": self.arrivals,
            "issued": self.ops,
            "dropped_arrivals": self.dropped_arrivals,
        });
        if let Err(e) = recorder.record(Op::nemesis("workload", value)) {
            panic!("cannot record the history: {e}");
        }
    }

    /// Waits for every worker task (each returning its op count and last
    /// process id) and adds up what they did; a panicked worker is logged.
    pub(crate) async fn join(tasks: Vec<tokio::task::JoinHandle<(u64, u64)>>, workload: &str) -> RunSummary {
        let mut summary = RunSummary::default();
        for task in tasks {
            match task.await {
                Ok((ops, max_process)) => {
                    summary.ops += ops;
                    summary.arrivals += ops;
                    summary.max_process = summary.max_process.max(max_process);
                }
                Err(e) => warn!("a {workload} worker panicked: {e}"),
            }
        }
        summary
    }
}

/// Runs `config.knobs.concurrency` workers against `targets` for `duration`.
pub async fn run(
    config: &WorkloadConfig,
    targets: &[Target],
    recorder: Arc<Recorder>,
    duration: Duration,
) -> RunSummary {
    assert!(!targets.is_empty(), "a workload needs at least one node");
    assert!(config.knobs.concurrency > 0 && config.key_dist().keys() > 0);
    let workers: Vec<Worker> = (0..config.knobs.concurrency)
        .map(|i| Worker::new(config.clone(), i, targets.to_vec(), recorder.clone()))
        .collect();
    let mut rng = seeded_rng(config.seed, "register-arrivals", 0);
    let draw = |slot: usize| draw_plan(config, &mut rng, targets.len(), slot as u32);
    let pace = Pace { arrival: config.knobs.arrival, rate: config.knobs.rate, seed: config.seed, duration };
    RunSummary::drive(workers, pace, draw, &recorder, "register").await
}

/// How a pool of workers is driven: arrival mode, rate, seed and duration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Closed or open loop.
    pub arrival: Arrival,
    /// Target ops/s over all workers.
    pub rate: f64,
    /// The run's seed (the open loop's arrival times).
    pub seed: u64,
    /// How long ops are issued.
    pub duration: Duration,
}

impl Pace {
    /// Closed loop: time between one worker's op starts so that `workers`
    /// together offer `rate`; zero (as fast as answers come) without a rate.
    fn period(&self, workers: usize) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(workers as f64 / self.rate)
    }
}

/// One client: a sequence of process ids (a fresh one after each `info`).
struct Worker {
    /// Knobs, seed stream, nodes, process id and unique values: what every
    /// workload's client has ([`WorkerCore`]).
    core: WorkerCore,
    /// Context of this worker's latest read of each key, written back by a
    /// read-modify-write.
    contexts: HashMap<String, Vec<u8>>,
}

/// One op, as drawn before it is sent.
pub(crate) struct Plan {
    key: String,
    target: usize,
    read: bool,
    rmw: bool,
}

impl Worker {
    fn new(config: WorkloadConfig, index: u32, targets: Vec<Target>, recorder: Arc<Recorder>) -> Worker {
        Worker { core: WorkerCore::new(config, index, targets, recorder, "register-worker"), contexts: HashMap::new() }
    }

    async fn read(&mut self, plan: &Plan) {
        if let Some(reply) = self.core.read(&plan.key, plan.target, siblings_json).await {
            self.contexts.insert(plan.key.clone(), reply.context);
        }
    }

    async fn write(&mut self, plan: &Plan) {
        let value = self.core.next_id();
        let context = if plan.rmw { self.contexts.get(&plan.key).cloned().unwrap_or_default() } else { Vec::new() };
        self.core.write(&plan.key, value, plan.target, &context).await;
    }
}

impl Slot for Worker {
    type Plan = Plan;

    fn next_plan(&mut self) -> Plan {
        let core = &mut self.core;
        draw_plan(&core.config, &mut core.rng, core.targets.len(), core.index)
    }

    /// A read, or a blind or read-modify-write write.
    async fn perform(&mut self, plan: Plan) {
        if plan.read {
            self.read(&plan).await;
        } else {
            self.write(&plan).await;
        }
    }

    fn process(&self) -> u64 {
        self.core.process
    }
}

/// Draws one op: key, node, read or write, blind or read-modify-write; all
/// four draws are made whatever the choices, so the stream never shifts.
fn draw_plan(config: &WorkloadConfig, rng: &mut ChaCha8Rng, targets: usize, index: u32) -> Plan {
    let key = config.key_dist().sample(rng);
    let random_target = rng.random_range(0..targets);
    let target = config.pick_target(random_target, index, targets);
    let read = rng.random_bool(config.knobs.read_fraction.clamp(0.0, 1.0));
    let rmw = rng.random_bool(config.knobs.rmw_fraction.clamp(0.0, 1.0));
    Plan { key, target, read, rmw }
}

/// The history's read value: `[{"value": ..., "version": ...}]`.
pub fn siblings_json(siblings: &[(Option<String>, history::Version)]) -> serde_json::Value {
    serde_json::Value::Array(
        siblings
            .iter()
            .map(|(value, version)| {
                serde_json::json!({
                    "value": value,
                    "version": serde_json::to_value(version).unwrap_or_default(),
                })
            })
            .collect(),
    )
}
