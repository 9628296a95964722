//! The engine's only doors to the disk: budgeted writes, fsyncs of files and
//! directories, and error context.
//!
//! Every byte the engine writes (WAL records, SSTable blocks, manifests)
//! goes through [`write_all`], which first charges an optional
//! [`DiskBudget`]. In production the budget is absent; tests set a small one
//! to simulate a full disk (`ENOSPC`) deterministically, without needing a
//! tiny tmpfs or root. Keeping the fault seam here, in one place, means the
//! "disk full" test exercises the same code paths as a real full disk: the
//! write fails with the OS error code for ENOSPC and the caller's error
//! names the file.
//!
//! Directory fsyncs ([`sync_dir`]) make file creations, renames and
//! deletions durable; without them a crash can forget that a new WAL
//! segment or manifest exists even though its contents were synced.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::LsmError;

/// The `errno` of "No space left on device" on Linux.
pub const ENOSPC: i32 = 28;

/// A simulated disk capacity: writes fail with ENOSPC once it is used up.
#[derive(Debug)]
pub struct DiskBudget {
    /// Bytes that may still be written before writes fail.
    remaining_bytes: AtomicU64,
}

impl DiskBudget {
    /// A disk with `bytes` of free space.
    pub fn new(bytes: u64) -> Self {
        DiskBudget { remaining_bytes: AtomicU64::new(bytes) }
    }

    /// Takes `n` bytes from the budget, or fails with ENOSPC (taking none).
    fn charge(&self, n: u64) -> std::io::Result<()> {
        let taken = self.remaining_bytes.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(n));
        taken.map(|_| ()).map_err(|_| std::io::Error::from_raw_os_error(ENOSPC))
    }
}

/// Wraps an I/O error with the operation and the file it concerned.
pub fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LsmError {
    let path = path.to_path_buf();
    move |source| LsmError::Io { op, path, source }
}

/// Writes all of `buf` to `file` (at its cursor), charging `budget` first.
pub fn write_all(mut file: &File, buf: &[u8], budget: Option<&DiskBudget>, path: &Path) -> Result<(), LsmError> {
    if let Some(b) = budget {
        b.charge(buf.len() as u64).map_err(io_err("write", path))?;
    }
    file.write_all(buf).map_err(io_err("write", path))
}

/// Writes all of `buf` to `file` at `offset`, charging `budget` for the
/// `new_bytes` of it that take space the file did not have yet.
pub fn write_all_at(
    file: &File,
    buf: &[u8],
    offset: u64,
    new_bytes: u64,
    budget: Option<&DiskBudget>,
    path: &Path,
) -> Result<(), LsmError> {
    use std::os::unix::fs::FileExt;
    if let Some(b) = budget {
        b.charge(new_bytes).map_err(io_err("write", path))?;
    }
    file.write_all_at(buf, offset).map_err(io_err("write", path))
}

/// Cuts `file` to `len` bytes.
pub fn set_len(file: &File, len: u64, path: &Path) -> Result<(), LsmError> {
    file.set_len(len).map_err(io_err("truncate", path))
}

/// Fsyncs the data (and size) of `file`.
pub fn sync_file(file: &File, path: &Path) -> Result<(), LsmError> {
    file.sync_data().map_err(io_err("fsync", path))
}

/// Fsyncs a directory so that creations, renames and deletions in it last.
pub fn sync_dir(dir: &Path) -> Result<(), LsmError> {
    let d = File::open(dir).map_err(io_err("open directory", dir))?;
    d.sync_all().map_err(io_err("fsync directory", dir))
}

/// Creates (truncating) a file for writing.
pub fn create(path: &Path) -> Result<File, LsmError> {
    File::create(path).map_err(io_err("create", path))
}

/// The path of `name` inside `dir`.
pub fn join(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Removes a file; a file that is already gone is not an error.
pub fn remove_file(path: &Path) -> Result<(), LsmError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_fails_with_enospc_and_takes_nothing() {
        let b = DiskBudget::new(10);
        assert!(b.charge(6).is_ok());
        let err = b.charge(6).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(ENOSPC));
        assert!(b.charge(4).is_ok());
    }
}
