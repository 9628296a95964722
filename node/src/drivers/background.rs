//! The node's background loops, started together and stopped through one
//! path.
//!
//! What runs besides the RPC handlers: gossip rounds, hint delivery, the
//! join (with `--join`), anti-entropy rounds (with `--anti-entropy`) and the
//! Prometheus endpoint (with `--metrics-listen`). Before this module the
//! first three watched the node's stop signal while the last two were
//! aborted from the server, so a stop meant two mechanisms and no way to
//! know that every loop had really ended.
//!
//! Now [`Background::start`] spawns each loop wrapped in [`until_stopped`]:
//! the loop runs until it returns or the node's stop signal turns true
//! (`Node::shut_down`), whichever
//! comes first (a loop stopped mid-round is dropped at an await point, as
//! an abort would, but the task then ends by itself). [`Background::stop`]
//! signals the stop and then joins every task, bounded by a grace period;
//! a task still running after it is aborted and named in a warning, so a
//! loop that ignores the stop shows up instead of lingering. Under the
//! simulator this matters twice: a crashed host's tasks must not outlive it,
//! and a loop left running would keep drawing from the node's randomness.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{warn, Instrument};

/// How long [`Background::stop`] waits for each loop to end after the stop
/// signal before aborting it.
pub const STOP_GRACE_MS: u64 = 2_000;

/// One loop to run: its name (for the straggler warning) and its body.
pub type Loop = (&'static str, Pin<Box<dyn Future<Output = ()> + Send + 'static>>);

/// The running background loops of one node.
#[derive(Debug)]
pub struct Background {
    /// Each loop's name (for the straggler warning) and task.
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Background {
    /// Starts `loops` (`Node::loops`: every loop the configuration
    /// switches on) in the current span (which carries the node id), each
    /// ended by `stopping`.
    pub fn start(stopping: &watch::Receiver<bool>, loops: Vec<Loop>) -> Background {
        let tasks = loops
            .into_iter()
            .map(|(name, task)| (name, tokio::spawn(until_stopped(stopping.clone(), task).in_current_span())))
            .collect();
        Background { tasks }
    }

    /// The names of the loops started, in start order.
    pub fn names(&self) -> Vec<&'static str> {
        self.tasks.iter().map(|(name, _)| *name).collect()
    }

    /// Signals the stop on `stop` and waits until every loop has ended,
    /// each for at most [`STOP_GRACE_MS`]; returns the loops that had to be
    /// aborted.
    pub async fn stop(self, stop: &watch::Sender<bool>) -> Vec<&'static str> {
        stop.send_replace(true);
        let mut aborted = Vec::new();
        for (name, mut handle) in self.tasks {
            let grace = Duration::from_millis(STOP_GRACE_MS);
            if tokio::time::timeout(grace, &mut handle).await.is_err() {
                warn!(task = name, grace_ms = STOP_GRACE_MS, "background loop ignored the stop; aborted");
                handle.abort();
                aborted.push(name);
            }
        }
        aborted
    }
}

/// Runs `task` until it completes or `stopping` turns true.
pub async fn until_stopped(mut stopping: tokio::sync::watch::Receiver<bool>, task: impl Future<Output = ()>) {
    if *stopping.borrow_and_update() {
        return;
    }
    tokio::select! {
        () = task => {}
        // An error means the sender (the node) is gone: stop as well.
        _ = stopping.wait_for(|stop| *stop) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_never_ends_by_itself_ends_at_the_stop() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(until_stopped(rx, std::future::pending::<()>()));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!task.is_finished(), "runs until told to stop");
        tx.send_replace(true);
        tokio::time::timeout(Duration::from_millis(10), task).await.expect("ends at the stop").unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_ends_by_itself_is_not_held_and_a_late_start_stops_at_once() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        until_stopped(rx.clone(), async {}).await;
        tx.send_replace(true);
        let ran = std::sync::atomic::AtomicBool::new(false);
        until_stopped(rx, async { ran.store(true, std::sync::atomic::Ordering::SeqCst) }).await;
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst), "a loop started after the stop never runs");
    }
}
