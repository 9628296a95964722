//! Bad input: keys and values at the limits, a missing or unusable data
//! directory, a full disk (simulated ENOSPC) and data from a newer format
//! version. Each must be a clear error (or, at the limits, work), and after
//! a full disk every acknowledged write must survive a reopen.

use std::path::Path;
use std::sync::Arc;

use dynamo_node::storage::lsm::{
    manifest, sstable, DiskBudget, FsyncPolicy, LsmError, LsmOptions, LsmStorage, MAX_KEY_BYTES, MAX_VALUE_BYTES,
};
use dynamo_node::storage::{Storage, StorageError};

fn options() -> LsmOptions {
    LsmOptions { fsync: FsyncPolicy::Always, ..LsmOptions::default() }
}

fn lsm_err(e: StorageError) -> LsmError {
    match e {
        StorageError::Lsm(e) => e,
        other => panic!("expected an LSM error, got {other}"),
    }
}

#[test]
fn keys_and_values_at_the_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big_key = vec![b'k'; MAX_KEY_BYTES];
    let big_value = vec![7u8; MAX_VALUE_BYTES];
    {
        let db = LsmStorage::open(dir.path(), options()).expect("open");
        db.put(b"", Vec::new()).expect("empty key and value");
        db.put(&big_key, big_value.clone()).expect("largest key and value");
        let e = lsm_err(db.put(&vec![b'k'; MAX_KEY_BYTES + 1], vec![]).unwrap_err());
        assert!(matches!(e, LsmError::KeyTooLarge(n) if n == MAX_KEY_BYTES + 1), "{e}");
        let e = lsm_err(db.put(b"v", vec![0; MAX_VALUE_BYTES + 1]).unwrap_err());
        assert!(e.to_string().contains("exceeds the limit"), "{e}");
        db.flush().expect("flush");
    }
    let db = LsmStorage::open(dir.path(), options()).expect("reopen");
    assert_eq!(db.get(b"").expect("get"), Some(Vec::new()));
    assert_eq!(db.get(&big_key).expect("get").map(|v| v.len()), Some(MAX_VALUE_BYTES));
    assert_eq!(db.len().expect("len"), 2);
}

#[test]
fn missing_or_unusable_data_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let opts = LsmOptions { create_dir: false, ..options() };
    let e = LsmStorage::open(&missing, opts).unwrap_err();
    assert!(matches!(e, LsmError::DataDirMissing(_)), "{e}");
    assert!(e.to_string().contains("nope"), "names the directory: {e}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let e = LsmStorage::open(&file, options()).unwrap_err();
    assert!(e.to_string().contains("a-file") && e.to_string().contains("not a directory"), "{e}");
    let e = LsmStorage::open(&file.join("below"), options()).unwrap_err();
    assert!(e.to_string().contains("below"), "{e}");
}

#[test]
fn full_disk_is_an_error_and_acknowledged_writes_survive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts =
        LsmOptions { disk_budget: Some(Arc::new(DiskBudget::new(64 * 1024))), memtable_bytes: 16 * 1024, ..options() };
    let mut acked = Vec::new();
    let mut first_error = None;
    {
        let db = LsmStorage::open(dir.path(), opts).expect("open");
        for i in 0..10_000u32 {
            let k = format!("key-{i:05}").into_bytes();
            match db.put(&k, vec![1; 100]) {
                Ok(()) => acked.push(k),
                Err(e) => {
                    first_error = Some(e.to_string());
                    break;
                }
            }
        }
        let again = db.put(b"after", vec![1]).unwrap_err().to_string();
        assert!(again.contains("No space left") || again.contains("earlier failure"), "{again}");
    }
    let first_error = first_error.expect("the disk filled up");
    assert!(first_error.contains("No space left on device"), "{first_error}");
    assert!(first_error.contains(&dir.path().display().to_string()), "names the file: {first_error}");
    assert!(acked.len() > 100, "only {} writes fit", acked.len());
    let db = LsmStorage::open(dir.path(), options()).expect("reopen with space");
    for k in &acked {
        assert_eq!(db.get(k).expect("get"), Some(vec![1; 100]), "acknowledged {k:?} lost");
    }
}

fn rewrite_version(path: &Path, version_at: usize, crc_range_end_from_back: usize) {
    let mut b = std::fs::read(path).expect("read");
    b[version_at..version_at + 4].copy_from_slice(&99u32.to_le_bytes());
    let n = b.len();
    let crc_at = n - 4;
    let start = n - crc_range_end_from_back;
    let crc = crc32c::crc32c(&b[start..crc_at]);
    b[crc_at..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, b).expect("write");
}

#[test]
fn newer_format_versions_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = LsmStorage::open(dir.path(), options()).expect("open");
        db.put(b"k", b"v".to_vec()).expect("put");
        db.flush().expect("flush");
    }
    let table = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "sst"))
        .expect("a table");
    let table_copy = std::fs::read(&table).expect("read");
    rewrite_version(&table, table_copy.len() - sstable::FOOTER_BYTES + 8, sstable::FOOTER_BYTES);
    let e = LsmStorage::open(dir.path(), options()).unwrap_err();
    assert!(matches!(e, LsmError::NewerFormat { found: 99, .. }), "{e}");
    assert!(e.to_string().contains(".sst"), "{e}");
    std::fs::write(&table, table_copy).expect("restore");

    let m = dir.path().join(manifest::MANIFEST_NAME);
    let len = std::fs::metadata(&m).expect("stat").len() as usize;
    rewrite_version(&m, 8, len);
    let e = LsmStorage::open(dir.path(), options()).unwrap_err();
    assert!(matches!(e, LsmError::NewerFormat { found: 99, .. }), "{e}");
    assert!(e.to_string().contains("format version 99"), "{e}");
}

#[test]
fn a_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = LsmStorage::open(dir.path(), options()).expect("open");
    let e = LsmStorage::open(dir.path(), options()).unwrap_err();
    assert!(e.to_string().contains("in use by another engine"), "{e}");
    drop(first);
    LsmStorage::open(dir.path(), options()).expect("free again after drop");
}
