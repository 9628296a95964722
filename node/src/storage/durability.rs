//! When a write becomes durable, for callers that must not block a thread
//! to find out.
//!
//! With the LSM engine's `batch` policy a write is in the memtable (and
//! readable) as soon as it is appended to the commit log, but it may only be
//! acknowledged once a group-commit fsync covered it. The first version of
//! the node ran every such write on a blocking thread that slept on a
//! condition variable until the fsync; profiling the node under load showed
//! a third of its CPU in futex wake-ups and context switches between those
//! threads and the async workers. A [`Durability`] lets the async side await
//! the fsync instead: the engine's syncer thread publishes how far the log is
//! durable on a `tokio::sync::watch` channel ([`DurableMark`]), and every
//! waiter of one group commit wakes on the same publication.
//!
//! Visibility before durability is the usual group-commit trade (RocksDB,
//! Cassandra): a read on this replica may see a write whose fsync has not
//! happened yet, and a crash in that window loses it from this replica;
//! what never happens is an acknowledgement before the fsync.

use std::time::Duration;

use tokio::sync::watch;

use super::StorageError;

/// How long a write waits for its group-commit fsync before it fails. The
/// fsync itself is bounded by the disk; this only stops a write from hanging
/// forever on an engine whose syncer died.
pub const DURABLE_TIMEOUT_MS: u64 = 60_000;

/// How far an engine's commit log is known to be on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DurableMark {
    /// Every record with an LSN up to this one is on disk.
    pub durable_lsn: u64,
    /// Why syncing stopped: after a failed fsync nothing newer is durable.
    pub failed: Option<String>,
}

/// A stored write's durability.
#[derive(Debug)]
pub enum Durability {
    /// Durable already (or the engine promises nothing more, e.g. memory).
    Now,
    /// Durable once the commit log is synced up to `lsn`.
    After {
        /// The write's commit-log sequence number.
        lsn: u64,
        /// The engine's published progress.
        mark: watch::Receiver<DurableMark>,
    },
}

impl Durability {
    /// Returns once the write is durable, or the reason it never will be.
    pub async fn wait(self) -> Result<(), StorageError> {
        let Durability::After { lsn, mut mark } = self else {
            return Ok(());
        };
        let reached = |m: &DurableMark| m.durable_lsn >= lsn || m.failed.is_some();
        let timeout = Duration::from_millis(DURABLE_TIMEOUT_MS);
        let seen = match tokio::time::timeout(timeout, mark.wait_for(reached)).await {
            Err(_) => return Err(lost(format!("no fsync covered LSN {lsn} within {DURABLE_TIMEOUT_MS} ms"))),
            Ok(Err(_)) => return Err(lost("the storage engine closed before the write was synced".into())),
            Ok(Ok(seen)) => seen.clone(),
        };
        match seen.failed {
            _ if seen.durable_lsn >= lsn => Ok(()),
            Some(reason) => Err(lost(format!("commit log sync failed: {reason}"))),
            None => unreachable!("wait_for returned before its condition held"),
        }
    }
}

fn lost(reason: String) -> StorageError {
    StorageError::Io(std::io::Error::other(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_until_the_mark_passes_the_lsn() {
        let (tx, rx) = watch::channel(DurableMark::default());
        let waiter = tokio::spawn(Durability::After { lsn: 5, mark: rx }.wait());
        tx.send_replace(DurableMark { durable_lsn: 4, failed: None });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "LSN 5 is not durable at mark 4");
        tx.send_replace(DurableMark { durable_lsn: 7, failed: None });
        waiter.await.unwrap().expect("durable at mark 7");
    }

    #[tokio::test]
    async fn a_failed_sync_fails_the_writes_it_did_not_cover() {
        let (tx, rx) = watch::channel(DurableMark::default());
        let covered = Durability::After { lsn: 2, mark: rx.clone() };
        let uncovered = Durability::After { lsn: 3, mark: rx };
        tx.send_replace(DurableMark { durable_lsn: 2, failed: Some("EIO".into()) });
        covered.wait().await.expect("synced before the failure");
        let err = uncovered.wait().await.unwrap_err().to_string();
        assert!(err.contains("EIO"), "{err}");
    }

    #[tokio::test]
    async fn a_closed_engine_fails_the_wait() {
        let (tx, rx) = watch::channel(DurableMark::default());
        drop(tx);
        assert!(Durability::After { lsn: 1, mark: rx }.wait().await.is_err());
        Durability::Now.wait().await.expect("nothing to wait for");
    }
}
