//! Requests from the harness to the simulation's step loop.
//!
//! Some faults need the `Sim` itself (crash a host, start it again, add a
//! host, change a link's latency), which only the step loop holds. The
//! harness, running inside the simulation as a client, queues a [`Control`]
//! and awaits its reply; the step loop takes the queue between two steps,
//! applies it in order and answers. Both sides run on one thread, in step
//! order, so when a request is applied is decided by the simulation alone:
//! the same seed applies it at the same simulated instant.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::links::LinkOp;

/// What a request did, or why not.
pub type Reply = Result<serde_json::Value, String>;

/// One request to the step loop.
#[derive(Debug)]
pub enum Control {
    /// Apply these link operations, in order (no reply: they cannot fail).
    Links(Vec<LinkOp>),
    /// Power loss: stop the node's host and drop its disks' unsynced writes.
    Crash {
        /// The node.
        node: String,
        /// Answered once done.
        reply: oneshot::Sender<Reply>,
    },
    /// Start a crashed node's host again on the disks it kept.
    Start {
        /// The node.
        node: String,
        /// Answered once the software is running again.
        reply: oneshot::Sender<Reply>,
    },
    /// Add a fresh node host with these extra flags (a joiner).
    Add {
        /// The new node's id.
        node: String,
        /// Flags after the spec's node flags (`--join true --seed-node ...`).
        extra_args: Vec<String>,
        /// Answered once its host exists.
        reply: oneshot::Sender<Reply>,
    },
    /// Stop a node's host for good (after it left the ring); its disk is synced.
    Remove {
        /// The node.
        node: String,
        /// Answered once done.
        reply: oneshot::Sender<Reply>,
    },
}

/// The queue between the harness and the step loop; bounded in practice by
/// the nemesis (a handful of requests per action), checked by an assertion.
#[derive(Debug, Clone, Default)]
pub struct ControlQueue {
    /// Pending requests, oldest first.
    pending: Arc<Mutex<VecDeque<Control>>>,
}

/// More pending requests than this means the step loop stopped taking them.
const MAX_PENDING: usize = 10_000;

impl ControlQueue {
    /// Queues `request`.
    pub fn push(&self, request: Control) {
        let mut pending = self.pending.lock().expect("control queue poisoned");
        assert!(pending.len() < MAX_PENDING, "the step loop stopped taking control requests");
        pending.push_back(request);
    }

    /// Queues a request and waits for its reply.
    pub async fn call(&self, make: impl FnOnce(oneshot::Sender<Reply>) -> Control) -> Reply {
        let (tx, rx) = oneshot::channel();
        self.push(make(tx));
        rx.await.map_err(|_| "the simulation ended before answering".to_string())?
    }

    /// Takes every pending request, oldest first.
    pub fn take(&self) -> Vec<Control> {
        self.pending.lock().expect("control queue poisoned").drain(..).collect()
    }
}
