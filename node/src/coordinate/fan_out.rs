//! The fan-out of one request: a call per replica, and the wait for the
//! quorum.
//!
//! Each remote replica's call is its own task, answering on a channel; the
//! coordinator's own replica is a direct call the coordinator polls itself
//! while it waits (no task, no channel hop: for N=1 the whole request stays
//! on one task). [`await_quorum`] feeds the answers into a pure round
//! (`rounds.rs`) until it decides or the deadline passes. Replica calls are
//! not cancelled by the decision: once the client has its answer the
//! remaining calls still run to completion (a local call still running is
//! handed to a task then), so a write that met W still reaches all N
//! replicas that are up. Tasks are spawned only where something must
//! outlive the client's answer: with N=1 that took `make bench-instructions`
//! from ~132k to ~111k instructions per put (a spawn moves the whole future,
//! several KiB, into its task: memcpy was a fifth of the node's
//! instructions).

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;
use tracing::Instrument;

use super::error::CallError;
use super::inflight::Flight;
use super::rounds::{Decision, Round};
use crate::node_id::NodeId;

/// A round that failed: how many answered, how many were needed.
#[derive(Debug, Clone, Copy)]
pub struct Shortfall {
    /// Successful answers.
    pub answers: usize,
    /// W or R.
    pub required: usize,
}

/// A replica's answer, as the fan-out delivers it.
pub type Answer<T> = (NodeId, Result<T, CallError>);

/// The replica operations of one request under way. Each remote replica's
/// is its own task, answering on `results`. The coordinator's own replica
/// is a direct call that the coordinator polls itself while it waits for
/// the quorum (no task, no channel hop: for N=1 the whole request stays on
/// one task); should the round decide while that call still runs, it is
/// handed to a task then ([`FanOut::finish`]), so it completes all the same.
pub struct FanOut<T, Fut> {
    /// Answers of the remote replicas' tasks (and of a handed-off local call).
    results: UnboundedReceiver<Answer<T>>,
    /// Sender for a local call handed off to a task. Held until
    /// [`FanOut::finish`], so `results` never reports closed while the
    /// local call may still answer.
    local_tx: UnboundedSender<Answer<T>>,
    /// The coordinator's own replica operation, until it answered.
    local: Option<(NodeId, Pin<Box<Fut>>)>,
}

impl<T: Send + 'static, Fut: Future<Output = Result<T, CallError>> + Send + 'static> FanOut<T, Fut> {
    /// After the round decided: hands a local call still running to a task
    /// and returns the channel of the answers still to come, which closes
    /// once every replica's operation finished.
    pub fn finish(self) -> UnboundedReceiver<Answer<T>> {
        let FanOut { results, local_tx, local } = self;
        if let Some((node, call)) = local {
            let task = async move {
                let result = call.await;
                let _ = local_tx.send((node, result));
            };
            tokio::spawn(task.in_current_span());
        }
        results
    }
}

/// Starts `call` for every remote replica as its own task and keeps the
/// one for `me`, if it is a replica, as a direct call (see [`FanOut`]).
/// Tasks outlive the receiver: late results are dropped but the operations
/// themselves complete.
pub fn fan_out<T, F, Fut>(me: &NodeId, replicas: &[NodeId], call: F) -> FanOut<T, Fut>
where
    T: Send + 'static,
    F: Fn(NodeId) -> Fut,
    Fut: Future<Output = Result<T, CallError>> + Send + 'static,
{
    let (tx, results) = unbounded_channel();
    let mut local = None;
    for target in replicas {
        if target == me {
            local = Some((target.clone(), Box::pin(call(target.clone()))));
            continue;
        }
        let (tx, target, operation) = (tx.clone(), target.clone(), call(target.clone()));
        let task = async move {
            let result = operation.await;
            let _ = tx.send((target, result));
        };
        tokio::spawn(task.in_current_span());
    }
    FanOut { results, local_tx: tx, local }
}

/// What the coordinator heard next while waiting for its quorum.
enum Heard<T> {
    /// Its own replica's direct call answered.
    Local(Result<T, CallError>),
    /// A remote replica's task answered (`None`: every sender is gone).
    Remote(Option<Answer<T>>),
}

/// Feeds results into the round until it decides or the deadline passes,
/// polling the local call (if any) alongside; returns the number of
/// successful answers.
pub async fn await_quorum<R, Fut>(
    round: &mut R,
    fan: &mut FanOut<R::Reply, Fut>,
    deadline: Instant,
) -> Result<usize, Shortfall>
where
    R: Round,
    Fut: Future<Output = Result<R::Reply, CallError>>,
{
    loop {
        match round.decision() {
            Decision::Done { answers } => return Ok(answers),
            Decision::Failed { answers, required } => return Err(Shortfall { answers, required }),
            Decision::Pending => {}
        }
        let next = async {
            match fan.local.as_mut() {
                Some((_, call)) => tokio::select! {
                    biased;
                    result = call.as_mut() => Heard::Local(result),
                    answer = fan.results.recv() => Heard::Remote(answer),
                },
                None => Heard::Remote(fan.results.recv().await),
            }
        };
        match tokio::time::timeout_at(deadline, next).await {
            Ok(Heard::Local(result)) => {
                let (node, _) = fan.local.take().expect("the local call was polled, so it exists");
                round.on_result(&node, result);
            }
            Ok(Heard::Remote(Some((node, result)))) => {
                round.on_result(&node, result);
            }
            Ok(Heard::Remote(None)) | Err(_) => round.on_deadline(),
        }
    }
}

/// Keeps a write's version in flight (`flight`, siblings only) until every
/// replica answered, which is when `answers` closes: by a task only when
/// some replica still has to answer (LWW has no flight to hold, and a
/// write whose replicas all answered has nothing left to wait for).
pub fn release_when_answered<T: Send + 'static>(mut answers: UnboundedReceiver<Answer<T>>, flight: Option<Flight>) {
    let Some(flight) = flight else { return };
    loop {
        match answers.try_recv() {
            Ok(_) => continue,
            Err(TryRecvError::Disconnected) => return drop(flight),
            Err(TryRecvError::Empty) => break,
        }
    }
    tokio::spawn(async move {
        while answers.recv().await.is_some() {}
        drop(flight);
    });
}
