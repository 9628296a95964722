//! Model test: random sequences of put/delete/get/scan/flush/compact/reopen
//! against the LSM engine and a `BTreeMap`; every answer must match.
//!
//! The engine runs with a tiny memtable and a compaction fanout of 2, so
//! background flushes and compactions interleave with the operations, and
//! with a tombstone grace of 0, so compactions that reach the oldest table
//! drop tombstones (which must not resurrect anything).

use std::collections::BTreeMap;
use std::path::Path;

use dynamo_node::storage::lsm::{Compression, FsyncPolicy, LsmOptions, LsmStorage};
use dynamo_node::storage::Storage;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Get(u8),
    Scan(u8, usize),
    Flush,
    Compact,
    CompactAll,
    Reopen,
}

fn key(k: u8) -> Vec<u8> {
    format!("key-{:03}", k % 40).into_bytes()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..80)).prop_map(|(k, v)| Op::Put(k, v)),
        3 => any::<u8>().prop_map(Op::Delete),
        4 => any::<u8>().prop_map(Op::Get),
        2 => (any::<u8>(), 0usize..12).prop_map(|(k, n)| Op::Scan(k, n)),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::CompactAll),
        1 => Just(Op::Reopen),
    ]
}

fn options(compression: Compression) -> LsmOptions {
    LsmOptions {
        fsync: FsyncPolicy::Never,
        compression,
        memtable_bytes: 600,
        compaction_fanout: 2,
        tombstone_grace_ms: 0,
        ..LsmOptions::default()
    }
}

fn open(dir: &Path, compression: Compression) -> LsmStorage {
    LsmStorage::open(dir, options(compression)).expect("open")
}

fn run(ops: Vec<Op>, compression: Compression) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut db = open(dir.path(), compression);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Put(k, v) => {
                db.put(&key(k), v.clone()).expect("put");
                model.insert(key(k), v);
            }
            Op::Delete(k) => {
                db.delete(&key(k)).expect("delete");
                model.remove(&key(k));
            }
            Op::Get(k) => {
                prop_assert_eq!(db.get(&key(k)).expect("get"), model.get(&key(k)).cloned())
            }
            Op::Scan(k, n) => {
                let want: Vec<_> = model.range(key(k)..).take(n).map(|(a, b)| (a.clone(), b.clone())).collect();
                prop_assert_eq!(db.scan(&key(k), n).expect("scan"), want);
            }
            Op::Flush => db.flush().expect("flush"),
            Op::Compact => db.compact().expect("compact"),
            Op::CompactAll => db.compact_all().expect("compact all"),
            Op::Reopen => {
                drop(db);
                db = open(dir.path(), compression);
            }
        }
    }
    prop_assert_eq!(db.len().expect("len"), model.len() as u64);
    let all: Vec<_> = model.into_iter().collect();
    prop_assert_eq!(db.scan(b"", usize::MAX).expect("full scan"), all);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn lsm_matches_a_btreemap_lz4(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops, Compression::Lz4)?;
    }

    #[test]
    fn lsm_matches_a_btreemap_zstd(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops, Compression::Zstd)?;
    }
}

/// The model test must be able to fail: a model that forgets deletes is
/// caught.
#[test]
fn a_wrong_model_is_caught() {
    let ops = vec![Op::Put(1, vec![1]), Op::Flush, Op::Delete(1), Op::Get(1)];
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path(), Compression::Lz4);
    let mut wrong_model = BTreeMap::new();
    let mut mismatch = false;
    for op in ops {
        match op {
            Op::Put(k, v) => {
                db.put(&key(k), v.clone()).expect("put");
                wrong_model.insert(key(k), v);
            }
            Op::Delete(k) => db.delete(&key(k)).expect("delete"),
            Op::Get(k) => mismatch |= db.get(&key(k)).expect("get") != wrong_model.get(&key(k)).cloned(),
            Op::Flush => db.flush().expect("flush"),
            _ => {}
        }
    }
    assert!(mismatch, "a model that ignores deletes must disagree with the engine");
}

fn stat(db: &LsmStorage, name: &str) -> u64 {
    db.stats().into_iter().find(|(k, _)| k == name).map(|(_, v)| v).unwrap_or_else(|| panic!("no stat {name}"))
}

/// The paths the model test relies on really run: background flushes,
/// tiered compactions, tombstone dropping, Bloom filter rejections.
#[test]
fn flushes_compactions_and_tombstone_drops_happen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path(), Compression::Lz4);
    for i in 0..2_000u32 {
        db.put(format!("k{i:05}").as_bytes(), vec![1; 50]).expect("put");
    }
    for i in 0..1_000u32 {
        db.delete(format!("k{i:05}").as_bytes()).expect("delete");
    }
    db.flush().expect("flush");
    db.compact().expect("compact");
    assert!(stat(&db, "lsm_flushes") > 10, "{:?}", db.stats());
    assert!(stat(&db, "lsm_compactions") > 0, "{:?}", db.stats());
    db.compact_all().expect("compact all");
    assert_eq!(db.table_count(), 1);
    assert!(stat(&db, "lsm_tombstones_dropped") >= 1_000, "{:?}", db.stats());
    assert_eq!(db.len().expect("len"), 1_000);
    assert_eq!(db.get(b"k00005").expect("get"), None);
    assert_eq!(db.get(b"nothing-here").expect("get"), None);
    assert!(stat(&db, "lsm_bloom_negatives") + stat(&db, "lsm_bloom_false_positives") > 0);
}
