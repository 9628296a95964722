//! Corruption test: flip bytes in WAL records and SSTable files; every flip
//! must surface as an error (at open or at read), never as data.
//!
//! For the WAL, a flip anywhere but the last record must make the open fail
//! with an error naming the segment and an offset. A flip inside the last
//! record may instead be treated as a torn tail (truncated), but then that
//! record must not be served. For SSTables, the open verifies the footer,
//! index and Bloom filter, and reads verify every block; every byte of a
//! table is covered by one of those checksums, so each flip must produce an
//! error from the open or from reading every key, and no read may return a
//! wrong value.

use std::path::{Path, PathBuf};

use dynamo_node::storage::lsm::{FsyncPolicy, LsmError, LsmOptions, LsmStorage};
use dynamo_node::storage::{Storage, StorageError};

const KEYS: u32 = 300;

fn options() -> LsmOptions {
    LsmOptions {
        fsync: FsyncPolicy::Never,
        memtable_bytes: 1 << 30,
        ..LsmOptions::default()
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{i:05}-").repeat(8).into_bytes()
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    for f in std::fs::read_dir(from).expect("read dir") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, to.join(f.file_name().expect("name"))).expect("copy");
    }
}

fn flip(path: &Path, offset: usize) {
    let mut b = std::fs::read(path).expect("read");
    b[offset] ^= 0x40;
    std::fs::write(path, b).expect("write");
}

/// A directory whose data is all in the WAL (nothing flushed).
fn wal_only() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = LsmStorage::open(dir.path(), options()).expect("open");
    for i in 0..KEYS {
        db.put(&key(i), value(i)).expect("put");
    }
    dir
}

/// Every value the engine serves is the one written.
fn served_values_are_right(db: &LsmStorage) -> Result<u32, StorageError> {
    let mut found = 0;
    for i in 0..KEYS {
        if let Some(v) = db.get(&key(i))? {
            assert_eq!(v, value(i), "wrong value served for key {i}");
            found += 1;
        }
    }
    Ok(found)
}

#[test]
fn every_wal_flip_is_an_error_or_an_unserved_torn_tail() {
    let pristine = wal_only();
    let segment = files(pristine.path(), ".log")
        .into_iter()
        .next()
        .expect("a WAL segment");
    let len = std::fs::metadata(&segment).expect("stat").len() as usize;
    let last_record_start = len - (12 + 5 + key(0).len() + value(0).len());
    let mut offsets: Vec<usize> = (0..120).collect();
    offsets.extend((200..len).step_by(97));
    offsets.extend(last_record_start..len);
    for offset in offsets {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), dir.path());
        let seg = dir.path().join(segment.file_name().expect("name"));
        flip(&seg, offset);
        match LsmStorage::open(dir.path(), options()) {
            Err(LsmError::Corrupt {
                path, offset: at, ..
            }) => {
                assert_eq!(path, seg, "the error names the segment");
                assert!(
                    at as usize <= offset,
                    "error offset {at} after the flip at {offset}"
                );
            }
            Err(e) => panic!("flip at {offset}: unexpected error {e}"),
            Ok(db) => {
                assert!(
                    offset >= last_record_start,
                    "flip at {offset} in a middle record went unnoticed"
                );
                let found = served_values_are_right(&db).expect("reads");
                assert_eq!(found, KEYS - 1, "only the torn last record may go");
            }
        }
    }
}

#[test]
fn every_sstable_flip_is_detected() {
    let pristine = wal_only();
    {
        let db = LsmStorage::open(pristine.path(), options()).expect("open");
        db.flush().expect("flush");
    }
    let table = files(pristine.path(), ".sst")
        .into_iter()
        .next()
        .expect("a table");
    let len = std::fs::metadata(&table).expect("stat").len() as usize;
    let mut flips = 0;
    for offset in (0..len).step_by(13).chain(len.saturating_sub(200)..len) {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), dir.path());
        flip(&dir.path().join(table.file_name().expect("name")), offset);
        let detected = match LsmStorage::open(dir.path(), options()) {
            Err(e) => {
                assert!(
                    e.to_string().contains(".sst"),
                    "the error names the table: {e}"
                );
                true
            }
            Ok(db) => {
                let reads = served_values_are_right(&db);
                let scan = db.scan(b"", usize::MAX);
                reads.is_err() || scan.is_err()
            }
        };
        assert!(detected, "flip at byte {offset} of {len} went unnoticed");
        flips += 1;
    }
    assert!(flips > 100);
}
