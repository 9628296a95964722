//! `admin.jsonl`: the harness's view of every node's counters over time.
//!
//! Once a second (and on demand right after the final heal) the poller asks
//! each node's admin service for its status and appends one snapshot per
//! node, `reachable: false` when it does not answer in time. Checkers that
//! need counters (hint delivery, convergence) read this file, so they too can
//! run again offline.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use docker::Cluster;
use history::{AdminSnapshot, JsonlWriter, Recorder};
use proto::admin_client::AdminClient;
use tokio::sync::{oneshot, Mutex};
use tokio::task::JoinHandle;

/// How often counters are sampled.
const INTERVAL_MS: u64 = 1_000;
/// A node that does not answer within this is recorded as unreachable.
const TIMEOUT_MS: u64 = 500;

pub struct AdminPoller {
    /// Shared with the background task; also used for on-demand snapshots.
    inner: Arc<Inner>,
    /// Tells the background task to stop.
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

struct Inner {
    cluster: Arc<dyn Cluster>,
    recorder: Arc<Recorder>,
    writer: Mutex<JsonlWriter>,
}

impl AdminPoller {
    pub fn start(cluster: Arc<dyn Cluster>, recorder: Arc<Recorder>, path: &Path) -> Result<AdminPoller> {
        let writer = Mutex::new(JsonlWriter::create(path)?);
        let inner = Arc::new(Inner { cluster, recorder, writer });
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn({
            let inner = inner.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(INTERVAL_MS));
                loop {
                    // Biased: a simulated run must poll the same branch first every time.
                    tokio::select! {
                        biased;
                        _ = tick.tick() => { inner.snapshot().await; }
                        _ = &mut stopped => break,
                    }
                }
            }
        });
        Ok(AdminPoller { inner, stop: Some(stop), task: Some(task) })
    }

    pub async fn snapshot_now(&self) {
        self.inner.snapshot().await;
    }

    /// After the writes stopped: snapshots every interval until every
    /// range's Merkle roots agree or `bound` passed, so the convergence
    /// checker sees the replicas settle (or not) with no write churning the
    /// roots. Returns at once when the nodes report no roots (peer stores).
    pub async fn settle(&self, bound: Duration) {
        let until = tokio::time::Instant::now() + bound;
        loop {
            let snaps = self.inner.snapshot().await;
            let no_roots = snaps.iter().all(|s| s.merkle_roots.is_empty());
            if no_roots || checker::convergence::latest_agree(&snaps) || tokio::time::Instant::now() >= until {
                return;
            }
            tokio::time::sleep(Duration::from_millis(INTERVAL_MS)).await;
        }
    }

    /// Takes a last snapshot and stops the background task.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await?;
        }
        self.inner.snapshot().await;
        Ok(())
    }
}

impl Drop for AdminPoller {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Inner {
    /// One snapshot of every node, written and returned.
    async fn snapshot(&self) -> Vec<AdminSnapshot> {
        let mut snaps = Vec::new();
        for node in self.cluster.nodes() {
            let snap = self.poll(&node).await;
            if let Err(e) = self.writer.lock().await.append(&snap) {
                tracing::warn!("cannot write admin snapshot: {e}");
            }
            snaps.push(snap);
        }
        snaps
    }

    async fn poll(&self, node: &str) -> AdminSnapshot {
        let time = self.recorder.now_ns();
        let mut snap = AdminSnapshot {
            time,
            node: node.to_string(),
            reachable: false,
            counters: Default::default(),
            merkle_roots: Default::default(),
        };
        let Ok(channel) = self.cluster.channel(node, Duration::from_millis(TIMEOUT_MS)) else { return snap };
        let call = async {
            let mut client = AdminClient::new(channel);
            client.status(proto::StatusRequest {}).await.ok().map(|r| r.into_inner())
        };
        if let Ok(Some(status)) = tokio::time::timeout(Duration::from_millis(TIMEOUT_MS), call).await {
            snap.reachable = true;
            snap.counters = status.counters.into_iter().collect();
            snap.merkle_roots = status.merkle_roots.into_iter().collect();
        }
        snap
    }
}
