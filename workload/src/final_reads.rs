//! Final reads: after healing and a quiet period, every key read through
//! every node, so the history ends with what each node's coordinator
//! returns. The lost-writes and convergence checkers read these (phase
//! `final`). A read that fails is recorded as such, never retried silently.

use std::sync::Arc;

use history::{Op, OpType, Recorder, Version};
use tracing::warn;

use crate::keys::key_name;
use crate::register::Target;
use crate::ClientError;

/// Turns a read's siblings into the history's read value.
pub type Decode = fn(&[(Option<String>, Version)]) -> serde_json::Value;

/// Reads `k0..k{keys-1}` through every target, one task per target, with
/// process ids from `first_process` up (a fresh one after each `info`).
pub async fn final_reads(keys: u32, targets: &[Target], recorder: Arc<Recorder>, first_process: u64, decode: Decode) {
    let mut tasks = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let (target, recorder) = (target.clone(), recorder.clone());
        let stride = targets.len() as u64;
        let mut process = first_process + i as u64;
        tasks.push(tokio::spawn(async move {
            for k in 0..keys {
                let key = key_name(k);
                let record = |op| recorder.record(op).map(|_| ()).expect("cannot record the history");
                record(Op::client(process, OpType::Invoke, "read", &key, &target.node));
                let mut done = Op::client(process, OpType::Ok, "read", &key, &target.node);
                match target.client.read(&key).await {
                    Ok(reply) => (done.value, done.answered_by) = (decode(&reply.siblings), reply.answered_by),
                    Err(ClientError::Definite(e) | ClientError::Refused(e)) => {
                        (done.kind, done.error) = (OpType::Fail, Some(e))
                    }
                    Err(ClientError::Indefinite(e)) => (done.kind, done.error) = (OpType::Info, Some(e)),
                }
                let crashed = done.kind == OpType::Info;
                record(done);
                if crashed {
                    process += stride;
                }
            }
        }));
    }
    for task in tasks {
        if let Err(e) = task.await {
            warn!("a final-read task panicked: {e}");
        }
    }
}
