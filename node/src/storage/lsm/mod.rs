//! A crash-safe log-structured merge tree: the node's default engine.
//!
//! Write path: a write is appended to the commit log ([`wal`]), fsynced per
//! the policy, then inserted in the [`memtable`]. A full memtable is frozen
//! and a background thread writes it out as an immutable, sorted,
//! compressed [`sstable`]; the [`manifest`] then atomically records the new
//! table and retires the log segments it covered. Read path: memtable,
//! frozen memtables, then tables newest first, each guarded by its Bloom
//! filter. A second background thread merges tables ([`compaction`]).
//!
//! The engine is a byte key-value map: it knows nothing of vector clocks.
//! The node stores each key's serialized sibling set as one value and does
//! its read-merge-write above this layer.
//!
//! Durability contract: with fsync `always` or `batch`, a `put` or
//! `delete` that returned `Ok` survives SIGKILL and power loss; with
//! `never`, it survives SIGKILL (the bytes are in the OS page cache) but not
//! power loss. A write may be visible to concurrent readers a moment before
//! it is durable (it is in the memtable while its group commit fsync runs);
//! it is acknowledged only after.
//!
//! Everything that can go wrong on disk is an [`LsmError`] naming the file
//! and, for corruption, the offset. A corrupt table or WAL segment found at
//! open is quarantined by default (moved aside, counted, logged: the other
//! replicas repair its data), never served and never silently ignored; see
//! [`quarantine`] for the policy and why. After a failed write the engine refuses
//! further writes (the log may end in a partial record); reopening it
//! recovers to the last acknowledged state.

pub mod cache;
pub mod compaction;
pub mod disk;
mod engine;
pub mod manifest;
pub mod memtable;
pub mod quarantine;
pub mod sstable;
pub mod wal;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use disk::DiskBudget;
pub use engine::LsmStorage;
pub use quarantine::CorruptionPolicy;

/// Largest key the engine stores.
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// Largest value the engine stores.
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;

/// When the commit log is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FsyncPolicy {
    /// After every record, before the write returns.
    Always,
    /// Group commit: concurrent writers share one fsync, before returning.
    Batch,
    /// Never (the OS writes back); survives process crashes only.
    Never,
}

/// How SSTable blocks are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// LZ4: fast, modest ratio.
    Lz4,
    /// Zstandard (level 1): better ratio, more CPU.
    Zstd,
}

impl Compression {
    /// The tag stored in SSTable footers.
    pub fn tag(self) -> u8 {
        match self {
            Compression::Lz4 => 1,
            Compression::Zstd => 2,
        }
    }

    /// The codec of a footer tag.
    pub fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(Compression::Lz4),
            2 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Compresses a block.
    pub fn compress(self, plain: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Compression::Lz4 => Ok(lz4_flex::block::compress(plain)),
            Compression::Zstd => zstd::bulk::compress(plain, 1),
        }
    }

    /// Decompresses a block whose plain size is `len`.
    pub fn decompress(self, packed: &[u8], len: usize) -> Result<Vec<u8>, String> {
        match self {
            Compression::Lz4 => lz4_flex::block::decompress(packed, len).map_err(|e| e.to_string()),
            Compression::Zstd => zstd::bulk::decompress(packed, len).map_err(|e| e.to_string()),
        }
    }
}

/// A failure of the LSM engine, with the file (and offset) it concerns.
#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    /// An operating-system I/O error.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Bytes on disk fail their checksum or do not parse.
    #[error("corrupt {what} in {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        /// Which structure.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Byte offset in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file written by a newer build.
    #[error("{} has format version {found}; this build reads up to version {supported}", path.display())]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The newest version this build understands.
        supported: u32,
    },
    /// The data directory does not exist (and creating it was not asked).
    #[error("data directory {} does not exist", .0.display())]
    DataDirMissing(PathBuf),
    /// A key above [`MAX_KEY_BYTES`].
    #[error("key of {0} bytes exceeds the limit of {MAX_KEY_BYTES}")]
    KeyTooLarge(usize),
    /// A value above [`MAX_VALUE_BYTES`].
    #[error("value of {0} bytes exceeds the limit of {MAX_VALUE_BYTES}")]
    ValueTooLarge(usize),
    /// A previous failure stopped the engine.
    #[error("engine stopped after an earlier failure: {0}")]
    Failed(String),
    /// A lock was poisoned by a panicking thread.
    #[error("LSM engine lock poisoned")]
    Poisoned,
}

/// Tunables of an engine.
#[derive(Debug, Clone)]
pub struct LsmOptions {
    /// When the commit log is fsynced.
    pub fsync: FsyncPolicy,
    /// How long a group-commit leader waits for company before fsyncing.
    pub batch_delay: Duration,
    /// Codec for new SSTable blocks.
    pub compression: Compression,
    /// Bloom filter size per key (10 gives about 1% false positives).
    pub bloom_bits_per_key: u32,
    /// Memtable size at which it is frozen and flushed.
    pub memtable_bytes: usize,
    /// Bytes of decompressed blocks kept in memory for reads.
    pub block_cache_bytes: usize,
    /// Frozen memtables allowed to wait for a flush before writers stall.
    pub max_frozen_memtables: usize,
    /// Adjacent same-tier tables merged by one compaction.
    pub compaction_fanout: usize,
    /// Compaction write rate limit; 0 = unlimited.
    pub compaction_max_bytes_per_sec: u64,
    /// Tombstones younger than this survive compaction.
    pub tombstone_grace_ms: u64,
    /// Wall clock stamping tombstones and judging their grace: the node's
    /// clock, so a simulator or test moves it (default: the machine's).
    pub clock: Arc<dyn crate::clock::Clock>,
    /// Create the data directory if it is missing.
    pub create_dir: bool,
    /// Simulated disk capacity, for tests of a full disk.
    pub disk_budget: Option<std::sync::Arc<DiskBudget>>,
    /// What an open does with a corrupt table or WAL segment: quarantine
    /// it and let the other replicas repair (the default), or refuse.
    pub on_corruption: CorruptionPolicy,
}

impl Default for LsmOptions {
    fn default() -> Self {
        LsmOptions {
            fsync: FsyncPolicy::Batch,
            batch_delay: Duration::from_micros(200),
            compression: Compression::Lz4,
            bloom_bits_per_key: 10,
            memtable_bytes: 8 * 1024 * 1024,
            block_cache_bytes: 64 * 1024 * 1024,
            max_frozen_memtables: 2,
            compaction_fanout: 4,
            compaction_max_bytes_per_sec: 256 * 1024 * 1024,
            tombstone_grace_ms: 10 * 60 * 1000,
            clock: Arc::new(crate::clock::SystemClock),
            create_dir: true,
            disk_budget: None,
            on_corruption: CorruptionPolicy::Quarantine,
        }
    }
}
