//! The `set` workload: the shopping cart of DDIA chapter 5.
//!
//! Each key holds a set of unique elements, stored as a JSON array. A client
//! *adds* an element by read-merge-write: read the key, take the union of all
//! siblings' arrays (the merge a Dynamo client does), add its element, and
//! write the result back with the read's causal context, so the store
//! replaces exactly the siblings it merged. Plain reads are recorded too.
//!
//! The history records an add as one op: `invoke add <element>`, then `ok`
//! (with the version the write got), `fail` (the read or write certainly
//! changed nothing) or `info` (the write may have landed). Reads record each
//! sibling's `value` as the JSON array it holds, as `HISTORY.md` says.
//!
//! What it exposes: with sibling resolution, concurrent adds become siblings
//! and the next read-merge-write unions them, so no acknowledged add is lost;
//! under last-write-wins, two clients that read the same state and write
//! back concurrently lose one of the two adds even though both were
//! acknowledged, and a node whose clock runs behind loses even sequential
//! ones. The `lost-writes` checker compares acknowledged adds with the final
//! reads.
//!
//! Determinism: each worker draws key, node and read-or-add from its own
//! stream of the seed whatever the outcomes, as in [`crate::register`]; in
//! open loop ([`crate::arrival`]) one stream draws them in arrival order.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use history::{Op, OpType, Recorder, Version};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::arrival::Slot;
use crate::register::{Pace, RunSummary, Target};
use crate::worker::{fill_error, WorkerCore};
use crate::{seeded_rng, WorkloadConfig};

/// The elements a stored value holds: a JSON array of strings. A value that
/// is not one (a tombstone, garbage) holds none.
pub fn elements(value: Option<&str>) -> BTreeSet<String> {
    value.and_then(|v| serde_json::from_str::<Vec<String>>(v).ok()).unwrap_or_default().into_iter().collect()
}

/// The union of every sibling's elements: the client-side merge.
pub fn merge(siblings: &[(Option<String>, Version)]) -> BTreeSet<String> {
    siblings.iter().flat_map(|(v, _)| elements(v.as_deref())).collect()
}

/// The history's read value for a set: each sibling's value as its JSON
/// array (null for a tombstone; a string kept as is if it does not parse).
pub fn siblings_json(siblings: &[(Option<String>, Version)]) -> Value {
    Value::Array(
        siblings
            .iter()
            .map(|(value, version)| {
                let parsed = match value {
                    None => Value::Null,
                    Some(s) => serde_json::from_str::<Value>(s).unwrap_or_else(|_| json!(s)),
                };
                json!({"value": parsed, "version": serde_json::to_value(version).unwrap_or_default()})
            })
            .collect(),
    )
}

/// Runs `config.knobs.concurrency` workers against `targets` for `duration`.
pub async fn run(
    config: &WorkloadConfig,
    targets: &[Target],
    recorder: Arc<Recorder>,
    duration: Duration,
) -> RunSummary {
    assert!(!targets.is_empty() && config.knobs.concurrency > 0);
    let workers: Vec<Worker> = (0..config.knobs.concurrency)
        .map(|i| Worker::new(config.clone(), i, targets.to_vec(), recorder.clone()))
        .collect();
    let mut rng = seeded_rng(config.seed, "set-arrivals", 0);
    let draw = |slot: usize| draw_plan(config, &mut rng, targets.len(), slot as u32);
    let pace = Pace { arrival: config.knobs.arrival, rate: config.knobs.rate, seed: config.seed, duration };
    RunSummary::drive(workers, pace, draw, &recorder, "set").await
}

/// One set op, as drawn before it is sent.
pub(crate) struct Plan {
    /// Key touched.
    key: String,
    /// Index of the node it goes to.
    target: usize,
    /// A plain read (else an add).
    read: bool,
}

/// Draws key, node and read-or-add; every draw is made whatever the choices.
fn draw_plan(config: &WorkloadConfig, rng: &mut ChaCha8Rng, targets: usize, index: u32) -> Plan {
    let key = config.key_dist().sample(rng);
    let random_target = rng.random_range(0..targets);
    let read = rng.random_bool(config.knobs.read_fraction.clamp(0.0, 1.0));
    let target = config.pick_target(random_target, index, targets);
    Plan { key, target, read }
}

/// One client of the set workload: the shared [`WorkerCore`] alone, since
/// an add takes its context from its own read rather than from a memory of
/// earlier reads.
struct Worker {
    /// Knobs, seed stream, nodes, process id and unique elements.
    core: WorkerCore,
}

impl Worker {
    fn new(config: WorkloadConfig, index: u32, targets: Vec<Target>, recorder: Arc<Recorder>) -> Worker {
        Worker { core: WorkerCore::new(config, index, targets, recorder, "set-worker") }
    }

    /// Read, merge, add, write back with the read's context.
    async fn add(&mut self, key: &str, target: usize) {
        let target = self.core.target(target);
        let element = self.core.next_id();
        let mut invoke = Op::client(self.core.process, OpType::Invoke, "add", key, &target.node);
        invoke.value = json!(element);
        self.core.record(invoke.clone());
        let mut done = invoke;
        done.kind = OpType::Ok;
        match target.client.read(key).await {
            // A failed read wrote nothing: whatever the reason, the add certainly did not happen.
            Err(e) => {
                self.core.note(&e);
                (done.kind, done.error) = (OpType::Fail, Some(format!("read before add: {e}")))
            }
            Ok(reply) => {
                let mut set = merge(&reply.siblings);
                set.insert(element);
                let value = serde_json::to_string(&set).expect("a set of strings serializes");
                match target.client.write(key, &value, &reply.context).await {
                    Ok(w) => (done.version, done.hinted_for) = (Some(w.version), w.hinted_for),
                    Err(e) => {
                        self.core.note(&e);
                        fill_error(&mut done, e)
                    }
                }
            }
        }
        self.core.finish(done).await;
    }
}

impl Slot for Worker {
    type Plan = Plan;

    fn next_plan(&mut self) -> Plan {
        let core = &mut self.core;
        draw_plan(&core.config, &mut core.rng, core.targets.len(), core.index)
    }

    /// A plain read, or a read-merge-write add.
    async fn perform(&mut self, plan: Plan) {
        match plan.read {
            true => {
                self.core.read(&plan.key, plan.target, siblings_json).await;
            }
            false => self.add(&plan.key, plan.target).await,
        }
    }

    fn process(&self) -> u64 {
        self.core.process
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_the_union_of_sibling_arrays_and_ignores_tombstones() {
        let v = Version::default();
        let sibs = vec![
            (Some(r#"["a","b"]"#.to_string()), v.clone()),
            (Some(r#"["b","c"]"#.to_string()), v.clone()),
            (None, v),
        ];
        let got: Vec<String> = merge(&sibs).into_iter().collect();
        assert_eq!(got, vec!["a", "b", "c"]);
    }

    #[test]
    fn read_values_are_json_arrays() {
        let sibs = vec![(Some(r#"["a"]"#.to_string()), Version::default())];
        assert_eq!(siblings_json(&sibs)[0]["value"], json!(["a"]));
    }
}
