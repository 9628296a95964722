//! What the engine does with a file that fails its checksums at open.
//!
//! A Dynamo node is one of N replicas of every key it holds. When one of
//! its files is corrupt, the data in it is not lost to the cluster: the
//! other replicas hold it, and anti-entropy (Merkle tree exchange) and read
//! repair copy it back. So the engine's policy ([`CorruptionPolicy`],
//! default `Quarantine`) is to never serve the corrupt bytes and never
//! refuse to start over them either:
//!
//! - an SSTable whose footer, index, Bloom filter or any data block fails
//!   its checksum at open (every block is verified then: a scrub) is moved
//!   into `<data-dir>/quarantine/` and dropped from the manifest; the keys
//!   it held read as older versions or absent until repair brings them;
//! - a WAL segment with a bad record that is not a torn tail is copied into
//!   the quarantine directory whole, then cut at the bad record: the
//!   verified records before it are replayed, the ones after it are gone
//!   from this replica (and repaired like a quarantined table's).
//!
//! Each is counted (`lsm_corrupt_files_quarantined`,
//! `lsm_corrupt_blocks_detected`, `lsm_wal_corrupt_bytes_dropped`) and
//! logged at error level with the file and offset, so a run's admin
//! snapshots and the node's log both say what was found; the node does
//! not pretend nothing happened. A corrupt manifest is still a refusal to
//! start: without it the engine cannot tell which tables are live.
//!
//! A block that goes bad while the node runs (after the open-time scrub)
//! fails its checksum on read: the read is an error (counted in
//! `lsm_corrupt_blocks_detected`), never a value, and the next open
//! quarantines the table.
//!
//! `Refuse` keeps the strict behaviour (the open fails naming the file and
//! offset), for tests that prove every flip is detected.

use std::path::{Path, PathBuf};

use super::disk;
use super::LsmError;

/// The directory, inside the data directory, corrupt files are moved to.
pub const QUARANTINE_DIR: &str = "quarantine";

/// What an open does with a corrupt SSTable or WAL segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptionPolicy {
    /// Fail the open with the error (file and offset).
    Refuse,
    /// Move the file aside (or cut the WAL at the bad record), count it,
    /// log it, and open without its data.
    Quarantine,
}

/// Whether an error is corruption that quarantine may handle (I/O errors,
/// newer formats and the rest are never quarantined).
pub fn is_corruption(e: &LsmError) -> bool {
    matches!(e, LsmError::Corrupt { .. })
}

/// A free path for `name` in the quarantine directory (`name`, `name.1`, ...).
fn free_path(qdir: &Path, name: &str) -> PathBuf {
    let first = qdir.join(name);
    if !first.exists() {
        return first;
    }
    // Bounded: a node does not quarantine the same name a million times.
    (1..1_000_000u32).map(|i| qdir.join(format!("{name}.{i}"))).find(|p| !p.exists()).unwrap_or(first)
}

fn quarantine_dir(dir: &Path) -> Result<PathBuf, LsmError> {
    let qdir = dir.join(QUARANTINE_DIR);
    std::fs::create_dir_all(&qdir).map_err(disk::io_err("create quarantine directory", &qdir))?;
    Ok(qdir)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "unnamed".into())
}

/// Moves `path` into the quarantine directory; returns where it went.
pub fn move_aside(dir: &Path, path: &Path) -> Result<PathBuf, LsmError> {
    let qdir = quarantine_dir(dir)?;
    let to = free_path(&qdir, &file_name(path));
    std::fs::rename(path, &to).map_err(disk::io_err("move into quarantine", path))?;
    disk::sync_dir(&qdir)?;
    disk::sync_dir(dir)?;
    Ok(to)
}

/// Copies `path` whole into the quarantine directory (the caller then cuts
/// the original); returns the copy's path.
pub fn copy_aside(dir: &Path, path: &Path) -> Result<PathBuf, LsmError> {
    let qdir = quarantine_dir(dir)?;
    let to = free_path(&qdir, &file_name(path));
    std::fs::copy(path, &to).map_err(disk::io_err("copy into quarantine", path))?;
    let copy = std::fs::File::open(&to).map_err(disk::io_err("open", &to))?;
    disk::sync_file(&copy, &to)?;
    disk::sync_dir(&qdir)?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_and_copied_files_never_overwrite_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("00000000000000000001.sst");
        std::fs::write(&f, b"one").unwrap();
        let a = copy_aside(dir.path(), &f).unwrap();
        std::fs::write(&f, b"two").unwrap();
        let b = move_aside(dir.path(), &f).unwrap();
        assert_ne!(a, b);
        assert!(!f.exists());
        assert_eq!(std::fs::read(a).unwrap(), b"one");
        assert_eq!(std::fs::read(b).unwrap(), b"two");
    }
}
