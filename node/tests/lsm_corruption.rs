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
//!
//! Under the default policy (quarantine), the same flips open the engine
//! without the corrupt file's data: the file is moved aside and counted,
//! and still no read returns a wrong value.

use std::path::{Path, PathBuf};

use dynamo_node::storage::lsm::{CorruptionPolicy, FsyncPolicy, LsmError, LsmOptions, LsmStorage};
use dynamo_node::storage::{Storage, StorageError};

const KEYS: u32 = 300;

/// Strict options: a corrupt file fails the open, so each flip's detection
/// is seen directly (the quarantine tests below use the default policy).
fn options() -> LsmOptions {
    LsmOptions {
        fsync: FsyncPolicy::Never,
        memtable_bytes: 1 << 30,
        on_corruption: CorruptionPolicy::Refuse,
        ..LsmOptions::default()
    }
}

/// The default policy: corrupt files are quarantined at open.
fn quarantining() -> LsmOptions {
    LsmOptions { on_corruption: CorruptionPolicy::Quarantine, ..options() }
}

fn stat(db: &LsmStorage, name: &str) -> u64 {
    db.stats().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no counter {name}")).1
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
    let segment = files(pristine.path(), ".log").into_iter().next().expect("a WAL segment");
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
            Err(LsmError::Corrupt { path, offset: at, .. }) => {
                assert_eq!(path, seg, "the error names the segment");
                assert!(at as usize <= offset, "error offset {at} after the flip at {offset}");
            }
            Err(e) => panic!("flip at {offset}: unexpected error {e}"),
            Ok(db) => {
                assert!(offset >= last_record_start, "flip at {offset} in a middle record went unnoticed");
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
    let table = files(pristine.path(), ".sst").into_iter().next().expect("a table");
    let len = std::fs::metadata(&table).expect("stat").len() as usize;
    let mut flips = 0;
    for offset in (0..len).step_by(13).chain(len.saturating_sub(200)..len) {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), dir.path());
        flip(&dir.path().join(table.file_name().expect("name")), offset);
        let detected = match LsmStorage::open(dir.path(), options()) {
            Err(e) => {
                assert!(e.to_string().contains(".sst"), "the error names the table: {e}");
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

/// A directory with one flushed table holding every key.
fn flushed() -> tempfile::TempDir {
    let pristine = wal_only();
    {
        let db = LsmStorage::open(pristine.path(), options()).expect("open");
        db.flush().expect("flush");
    }
    pristine
}

#[test]
fn a_table_with_a_corrupt_block_is_quarantined_and_never_served() {
    let pristine = flushed();
    let table = files(pristine.path(), ".sst").into_iter().next().expect("a table");
    let len = std::fs::metadata(&table).expect("stat").len() as usize;
    // Data blocks, the Bloom filter, the index and the footer, sampled.
    for offset in (0..len).step_by(len / 17) {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), dir.path());
        let name = table.file_name().expect("name");
        flip(&dir.path().join(name), offset);
        let db = LsmStorage::open(dir.path(), quarantining()).expect("quarantine opens");
        assert_eq!(
            served_values_are_right(&db).expect("reads"),
            0,
            "flip at {offset}: the table's keys are gone, not served"
        );
        assert_eq!(db.scan(b"", usize::MAX).expect("scan").len(), 0);
        assert_eq!(stat(&db, "lsm_corrupt_files_quarantined"), 1);
        assert_eq!(stat(&db, "lsm_corrupt_blocks_detected"), 1);
        assert_eq!(db.table_count(), 0);
        assert!(dir.path().join("quarantine").join(name).exists(), "moved aside, kept for inspection");
        drop(db);
        // The manifest no longer lists it: a second open is clean.
        let again = LsmStorage::open(dir.path(), options()).expect("reopen strictly");
        assert_eq!(stat(&again, "lsm_corrupt_files_quarantined"), 0);
    }
}

#[test]
fn a_truncated_table_is_quarantined() {
    let pristine = flushed();
    let table = files(pristine.path(), ".sst").into_iter().next().expect("a table");
    let len = std::fs::metadata(&table).expect("stat").len();
    for keep in [0, len / 3, len - 1] {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), dir.path());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(table.file_name().expect("name")))
            .expect("open");
        f.set_len(keep).expect("truncate");
        let db = LsmStorage::open(dir.path(), quarantining()).expect("quarantine opens");
        assert_eq!(served_values_are_right(&db).expect("reads"), 0);
        assert_eq!(stat(&db, "lsm_corrupt_files_quarantined"), 1, "cut to {keep}");
    }
}

#[test]
fn a_wal_segment_corrupt_in_the_middle_keeps_its_verified_prefix() {
    let pristine = wal_only();
    let segment = files(pristine.path(), ".log").into_iter().next().expect("a WAL segment");
    let record = 12 + 5 + key(0).len() + value(0).len();
    // Inside record 100 (of 300): records 0..100 stay, the rest go.
    let offset = 100 * record + 20;
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(pristine.path(), dir.path());
    let seg = dir.path().join(segment.file_name().expect("name"));
    flip(&seg, offset);
    let db = LsmStorage::open(dir.path(), quarantining()).expect("quarantine opens");
    assert_eq!(served_values_are_right(&db).expect("reads"), 100);
    assert!(db.get(&key(99)).expect("read").is_some());
    assert!(db.get(&key(100)).expect("read").is_none(), "the corrupt record is not served");
    assert_eq!(stat(&db, "lsm_corrupt_files_quarantined"), 1);
    assert_eq!(stat(&db, "lsm_wal_corrupt_bytes_dropped"), (200 * record) as u64);
    assert_eq!(stat(&db, "lsm_wal_truncated_bytes"), 0, "not a torn tail");
    let copy = dir.path().join("quarantine").join(segment.file_name().expect("name"));
    assert_eq!(std::fs::metadata(copy).expect("copy").len(), (300 * record) as u64, "the whole segment is kept aside");
}

#[test]
fn a_torn_wal_tail_loses_only_the_torn_record_and_counts_its_bytes() {
    let pristine = wal_only();
    let segment = files(pristine.path(), ".log").into_iter().next().expect("a WAL segment");
    let len = std::fs::metadata(&segment).expect("stat").len();
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(pristine.path(), dir.path());
    let seg = dir.path().join(segment.file_name().expect("name"));
    let f = std::fs::OpenOptions::new().write(true).open(&seg).expect("open");
    f.set_len(len - 7).expect("tear");
    let db = LsmStorage::open(dir.path(), quarantining()).expect("open");
    assert_eq!(served_values_are_right(&db).expect("reads"), KEYS - 1);
    assert!(db.get(&key(KEYS - 1)).expect("read").is_none());
    let record = (12 + 5 + key(0).len() + value(0).len()) as u64;
    assert_eq!(stat(&db, "lsm_wal_truncated_bytes"), record - 7);
    assert_eq!(stat(&db, "lsm_corrupt_files_quarantined"), 0, "a torn tail is not corruption");
}

#[test]
fn a_block_corrupted_while_open_is_an_error_and_counted() {
    let pristine = flushed();
    let table = files(pristine.path(), ".sst").into_iter().next().expect("a table");
    let db = LsmStorage::open(pristine.path(), LsmOptions { block_cache_bytes: 0, ..quarantining() }).expect("open");
    flip(&table, 10);
    let reads = served_values_are_right(&db);
    assert!(reads.is_err(), "the read of the corrupt block fails");
    assert!(stat(&db, "lsm_corrupt_blocks_detected") >= 1);
    assert_eq!(stat(&db, "lsm_corrupt_files_quarantined"), 0, "quarantine happens at the next open");
}
