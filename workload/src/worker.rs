//! The worker core the three workloads share: one client process's identity,
//! its seed stream, the nodes it may talk to, and the recording of each op it
//! invokes and completes.
//!
//! Why a shared core. [`crate::register`], [`crate::set`] and
//! [`crate::prefix`] differ in what an op *is* (a read or write, a
//! read-merge-write add, an ask or an observation), but not in what a
//! client process is: the same knobs, the same sticky index, the same
//! stream of the seed, the same process-id rule after an `info`, the same
//! `p<process>-<seq>` unique values, and the same way of turning a request's
//! outcome into an `ok`, `fail` or `info` completion. Kept in three copies,
//! one of these rules could drift in one workload alone, and the checkers,
//! which read all three workloads' histories the same way, would then judge
//! a history that no longer means what `HISTORY.md` says.
//!
//! What stays with each workload: its plan, how it draws one, what it keeps
//! between ops (the register and prefix workloads keep the context of their
//! latest read of each key), and how a read's siblings are written into the
//! history (a set's values are JSON arrays).
//!
//! Determinism: the core draws nothing itself. Each workload draws every
//! decision from [`WorkerCore::rng`], and the core's steps record and send
//! exactly what the workloads recorded and sent before it existed, in the
//! same order, so a seed's history is unchanged byte for byte.

use std::sync::Arc;

use history::{Op, OpType, Recorder, Version};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::client::Target;
use crate::{seeded_rng, ClientError, ReadReply, WorkloadConfig};

/// How a workload writes a read's siblings into the history's `value`.
pub(crate) type SiblingsJson = fn(&[(Option<String>, Version)]) -> Value;

/// One client process of a workload, whatever its ops are.
pub(crate) struct WorkerCore {
    /// The run's knobs: the plan draws read them, and `concurrency` is the
    /// step by which a retired process id advances.
    pub(crate) config: WorkloadConfig,
    /// Index among workers; fixes the seed stream and, with fixed node
    /// choice, the sticky node.
    pub(crate) index: u32,
    /// The nodes it may talk to; a plan names them by position.
    pub(crate) targets: Vec<Target>,
    /// Where every invocation and completion is recorded; shared by all
    /// workers, so the history is one totally ordered file.
    recorder: Arc<Recorder>,
    /// Every decision comes from here and only here, so two runs with the
    /// same seed issue the same op sequence per worker.
    pub(crate) rng: ChaCha8Rng,
    /// Current process id; advances by `concurrency` after an `info`
    /// (Jepsen's rule: a crashed process never invokes again).
    pub(crate) process: u64,
    /// Unique values issued by this worker, so every written value (or
    /// added element) names exactly one invocation.
    seq: u64,
    /// The back-off delays after a refusal come from here, a stream of
    /// their own: a refusal never shifts the draws of the ops.
    backoff_rng: ChaCha8Rng,
    /// The store refused the op under way: back off once it is recorded.
    refused: bool,
}

impl WorkerCore {
    /// Worker `index` of a run, its decisions drawn from the seed stream
    /// named `stream` (each workload its own, so they never share draws).
    pub(crate) fn new(
        config: WorkloadConfig,
        index: u32,
        targets: Vec<Target>,
        recorder: Arc<Recorder>,
        stream: &str,
    ) -> WorkerCore {
        let rng = seeded_rng(config.seed, stream, u64::from(index));
        let backoff_rng = seeded_rng(config.seed, "refused-backoff", u64::from(index));
        let process = u64::from(index);
        WorkerCore { config, index, targets, recorder, rng, process, seq: 0, backoff_rng, refused: false }
    }

    /// Records one history line.
    pub(crate) fn record(&self, op: Op) {
        if let Err(e) = self.recorder.record(op) {
            // Losing a history line would make every verdict meaningless.
            panic!("cannot record the history: {e}");
        }
    }

    /// A fresh unique value, `p<process>-<seq>`.
    pub(crate) fn next_id(&mut self) -> String {
        let id = format!("p{}-{}", self.process, self.seq);
        self.seq += 1;
        id
    }

    /// The node at position `target` of the plan's choice.
    pub(crate) fn target(&self, target: usize) -> Target {
        self.targets[target].clone()
    }

    /// Reads `key` through `target` and records it, the siblings written
    /// as `siblings_json` says; the reply if `ok`.
    pub(crate) async fn read(&mut self, key: &str, target: usize, siblings_json: SiblingsJson) -> Option<ReadReply> {
        let target = self.target(target);
        self.record(Op::client(self.process, OpType::Invoke, "read", key, &target.node));
        let mut done = Op::client(self.process, OpType::Ok, "read", key, &target.node);
        let reply = match target.client.read(key).await {
            Ok(reply) => {
                (done.value, done.answered_by) = (siblings_json(&reply.siblings), reply.answered_by.clone());
                Some(reply)
            }
            Err(e) => {
                self.note(&e);
                fill_error(&mut done, e);
                None
            }
        };
        self.finish(done).await;
        reply
    }

    /// Writes `value` to `key` through `target` with `context` and records
    /// it; whether it was acknowledged.
    pub(crate) async fn write(&mut self, key: &str, value: String, target: usize, context: &[u8]) -> bool {
        let target = self.target(target);
        let mut invoke = Op::client(self.process, OpType::Invoke, "write", key, &target.node);
        invoke.value = Value::String(value.clone());
        self.record(invoke.clone());
        let mut done = invoke;
        done.kind = OpType::Ok;
        match target.client.write(key, &value, context).await {
            Ok(reply) => (done.version, done.hinted_for) = (Some(reply.version), reply.hinted_for),
            Err(e) => {
                self.note(&e);
                fill_error(&mut done, e)
            }
        }
        let acknowledged = done.kind == OpType::Ok;
        self.finish(done).await;
        acknowledged
    }

    /// Notes a failed request: a refusal for load makes the process back
    /// off once its op is recorded.
    pub(crate) fn note(&mut self, error: &ClientError) {
        self.refused |= matches!(error, ClientError::Refused(_));
    }

    /// Records a completion; after `info` the process is retired (Jepsen's
    /// rule: its op may still take effect, so it never invokes again).
    /// After a refusal the process waits a seeded, jittered back-off
    /// (`refused_backoff_ms`, between half and one and a half times it), as
    /// real drivers do: instant retries would measure the harness's storm,
    /// not the store.
    pub(crate) async fn finish(&mut self, op: Op) {
        let crashed = op.kind == OpType::Info;
        self.record(op);
        if crashed {
            self.process += u64::from(self.config.knobs.concurrency);
        }
        if std::mem::take(&mut self.refused) {
            let base_ms = self.config.knobs.refused_backoff_ms;
            if base_ms > 0 {
                let delay_ms = self.backoff_rng.random_range(base_ms / 2..=base_ms + base_ms / 2);
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            }
        }
    }
}

/// Classifies a failed request on its completion: `fail` when the store
/// guarantees nothing changed, `info` when it may have.
pub(crate) fn fill_error(op: &mut Op, error: ClientError) {
    op.kind = match error {
        ClientError::Definite(_) | ClientError::Refused(_) => OpType::Fail,
        ClientError::Indefinite(_) => OpType::Info,
    };
    op.error = Some(error.to_string());
}
