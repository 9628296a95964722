//! What the control socket answers: counters and the account of a loss.
//!
//! These are serde types because they cross the socket as JSON and the
//! workbench reads them back with [`crate::control::Client`]. Every count
//! is in bytes or events, cumulative since the mount unless it says
//! `held` (what is in memory right now).

use serde::{Deserialize, Serialize};

/// What one `lose-unsynced` dropped and kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossReport {
    /// Whether torn mode kept a prefix of each file's unsynced writes.
    pub torn: bool,
    /// The number of this loss since the mount, from 0.
    pub loss_index: u64,
    /// Every file that held unsynced data, sorted by path.
    pub files: Vec<FileLoss>,
    /// Unsynced bytes dropped, over all files.
    pub dropped_bytes: u64,
    /// Unsynced bytes kept by torn mode, over all files.
    pub kept_bytes: u64,
    /// Namespace changes undone (not made durable by a directory fsync).
    pub meta_undone: u64,
    /// Undos skipped because their entry was no longer where it was left.
    pub meta_skipped: u64,
}

/// What a loss did to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLoss {
    /// The file's path under the mount (before namespace changes were undone).
    pub path: String,
    /// Unsynced bytes it held.
    pub held_bytes: u64,
    /// Of them, kept by torn mode (a prefix in write order).
    pub kept_bytes: u64,
    /// Of them, dropped.
    pub dropped_bytes: u64,
}

/// Counters of a mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Unsynced bytes held in memory now.
    pub held_bytes: u64,
    /// Bytes written through to the backing files by syncs (asked or forced).
    pub synced_bytes: u64,
    /// Bytes dropped by losses.
    pub dropped_bytes: u64,
    /// Syncs forced by the cap on held bytes.
    pub forced_syncs: u64,
    /// The cap on held bytes.
    pub cap_bytes: u64,
    /// Losses so far.
    pub losses: u64,
    /// Namespace changes not yet made durable by a directory fsync.
    pub meta_pending: u64,
    /// Per file the mount has opened or written, sorted by path (a file
    /// whose inode is gone for good leaves the list; the totals keep its bytes).
    pub files: Vec<FileStats>,
}

/// Counters of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStats {
    /// The file's path under the mount now.
    pub path: String,
    /// Unsynced bytes it holds now.
    pub held_bytes: u64,
    /// Bytes written through by syncs.
    pub synced_bytes: u64,
    /// Bytes dropped by losses.
    pub dropped_bytes: u64,
    /// Syncs of it forced by the cap.
    pub forced_syncs: u64,
}
