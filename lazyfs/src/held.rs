//! The writes of one file that no sync has made durable yet: the page
//! cache of a kernel, as far as a power loss can tell.
//!
//! A [`HeldFile`] keeps its operations in order (writes with their bytes,
//! truncations with their size) instead of a merged image: a power loss in
//! torn mode keeps a *prefix* of them, and only the order tells what a
//! prefix is. Reads merge: the backing file's bytes first, then every held
//! operation replayed over the range asked for, so a reader sees exactly
//! what a kernel would show before a crash. A write that starts where the
//! previous held write ended (an append, the common case of a log) extends
//! that write instead of adding one, so a log held in memory is a handful
//! of operations, not one per `write(2)`.
//!
//! Writing through ([`HeldFile::write_through`]) applies a prefix of the
//! operations to the backing file; a sync applies all of them and then
//! fsyncs, a torn loss applies a seeded prefix.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// One operation held since the last sync, in the order it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HeldOp {
    /// `data` written at `offset_bytes`.
    Write {
        /// Where the write starts in the file.
        offset_bytes: u64,
        /// The bytes written.
        data: Vec<u8>,
    },
    /// The file's size set to `size_bytes` (cut or extended with zeros).
    Truncate {
        /// The new size.
        size_bytes: u64,
    },
}

/// The unsynced operations of one regular file, and the size they give it.
#[derive(Debug, Clone)]
pub(crate) struct HeldFile {
    /// The operations since the last sync, oldest first.
    ops: Vec<HeldOp>,
    /// The size a reader sees: the backing file's with `ops` applied.
    size_bytes: u64,
    /// Bytes of written data held in `ops` (what the cap counts).
    held_bytes: u64,
}

impl HeldFile {
    /// Nothing held over a backing file of `backing_size_bytes`.
    pub(crate) fn new(backing_size_bytes: u64) -> Self {
        HeldFile { ops: Vec::new(), size_bytes: backing_size_bytes, held_bytes: 0 }
    }

    /// The size a reader sees.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Bytes of written data held.
    pub(crate) fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// Whether nothing is held (a truncation alone counts as something).
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Holds a write of `data` at `offset_bytes`.
    pub(crate) fn write(&mut self, offset_bytes: u64, data: &[u8]) {
        let end = offset_bytes + data.len() as u64;
        self.size_bytes = self.size_bytes.max(end);
        self.held_bytes += data.len() as u64;
        if let Some(HeldOp::Write { offset_bytes: last_offset, data: last }) = self.ops.last_mut() {
            if *last_offset + last.len() as u64 == offset_bytes {
                last.extend_from_slice(data);
                return;
            }
        }
        self.ops.push(HeldOp::Write { offset_bytes, data: data.to_vec() });
    }

    /// Holds a truncation (or extension) to `size_bytes`.
    pub(crate) fn truncate(&mut self, size_bytes: u64) {
        self.size_bytes = size_bytes;
        self.ops.push(HeldOp::Truncate { size_bytes });
    }

    /// Reads up to `len` bytes at `offset_bytes`: the backing file's bytes
    /// with the held operations replayed over them, cut at the size.
    pub(crate) fn read(&self, backing: &File, offset_bytes: u64, len: usize) -> io::Result<Vec<u8>> {
        if offset_bytes >= self.size_bytes {
            return Ok(Vec::new());
        }
        let end = self.size_bytes.min(offset_bytes + len as u64);
        let mut buf = vec![0u8; (end - offset_bytes) as usize];
        read_backing(backing, offset_bytes, &mut buf)?;
        for op in &self.ops {
            overlay(op, offset_bytes, &mut buf);
        }
        Ok(buf)
    }

    /// Applies the operations to `backing` while their data fits in
    /// `keep_bytes` (the last write kept may be cut), and returns the bytes
    /// of data applied. With `keep_bytes >= held_bytes` every operation is
    /// applied; with 0, none. Does not sync and does not clear.
    pub(crate) fn write_through(&self, backing: &File, keep_bytes: u64) -> io::Result<u64> {
        let mut budget = keep_bytes;
        let mut applied = 0u64;
        for op in &self.ops {
            if budget == 0 {
                break;
            }
            match op {
                HeldOp::Write { offset_bytes, data } => {
                    let n = budget.min(data.len() as u64);
                    backing.write_all_at(&data[..n as usize], *offset_bytes)?;
                    budget -= n;
                    applied += n;
                }
                HeldOp::Truncate { size_bytes } => backing.set_len(*size_bytes)?,
            }
        }
        assert!(applied <= self.held_bytes, "applied more than held");
        Ok(applied)
    }

    /// Forgets every held operation; the size becomes `backing_size_bytes`.
    pub(crate) fn clear(&mut self, backing_size_bytes: u64) {
        *self = HeldFile::new(backing_size_bytes);
    }
}

/// Fills `buf` from `backing` at `offset_bytes`; past its end stays zero.
fn read_backing(backing: &File, offset_bytes: u64, buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match backing.read_at(&mut buf[done..], offset_bytes + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Replays one held operation over `buf`, which holds the file's bytes
/// from `start_bytes` on.
fn overlay(op: &HeldOp, start_bytes: u64, buf: &mut [u8]) {
    let end_bytes = start_bytes + buf.len() as u64;
    match op {
        HeldOp::Write { offset_bytes, data } => {
            let from = (*offset_bytes).max(start_bytes);
            let to = (offset_bytes + data.len() as u64).min(end_bytes);
            if from < to {
                let src = &data[(from - offset_bytes) as usize..(to - offset_bytes) as usize];
                buf[(from - start_bytes) as usize..(to - start_bytes) as usize].copy_from_slice(src);
            }
        }
        HeldOp::Truncate { size_bytes } => {
            // Bytes past a cut are gone: if the file grows again they read as zero.
            if *size_bytes < end_bytes {
                let from = (*size_bytes).max(start_bytes);
                buf[(from - start_bytes) as usize..].fill(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backing_with(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).unwrap();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        (dir, file)
    }

    #[test]
    fn reads_merge_backing_and_held_writes() {
        let (_dir, file) = backing_with(b"hello world");
        let mut held = HeldFile::new(11);
        held.write(6, b"WORLD!!");
        assert_eq!(held.size_bytes(), 13);
        assert_eq!(held.read(&file, 0, 100).unwrap(), b"hello WORLD!!");
        assert_eq!(held.read(&file, 4, 4).unwrap(), b"o WO");
        assert_eq!(held.read(&file, 13, 4).unwrap(), b"");
    }

    #[test]
    fn appends_coalesce_into_one_write() {
        let mut held = HeldFile::new(0);
        held.write(0, b"ab");
        held.write(2, b"cd");
        held.write(4, b"ef");
        assert_eq!(held.ops.len(), 1);
        assert_eq!(held.held_bytes(), 6);
    }

    #[test]
    fn a_cut_then_growth_reads_zeros() {
        let (_dir, file) = backing_with(b"0123456789");
        let mut held = HeldFile::new(10);
        held.truncate(4);
        held.write(6, b"xy");
        assert_eq!(held.read(&file, 0, 100).unwrap(), b"0123\0\0xy");
    }

    #[test]
    fn write_through_keeps_a_prefix_of_the_bytes() {
        let (_dir, file) = backing_with(b"");
        let mut held = HeldFile::new(0);
        held.write(0, b"abcd");
        held.write(10, b"efgh");
        assert_eq!(held.write_through(&file, 6).unwrap(), 6);
        let mut back = vec![0u8; 12];
        let n = file.read_at(&mut back, 0).unwrap();
        assert_eq!(&back[..n], b"abcd\0\0\0\0\0\0ef");
    }
}
