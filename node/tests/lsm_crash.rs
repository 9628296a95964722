//! Crash test: a child process writes to the engine and prints every
//! acknowledged write; the parent SIGKILLs it at a random moment, reopens
//! the directory and checks that every acknowledged write is there (puts
//! with their exact value, deletes absent) and that every value served is
//! one the child wrote for that key (nothing corrupt or invented).
//!
//! The child is this test binary re-executed with `LSM_CRASH_CHILD` set, so
//! no extra binary is needed. Rounds cycle through fsync `always` (one
//! writer), `batch` (four writers sharing group commits) and `batch` with
//! deferred durability (four writers that `put_deferred` and await the
//! syncer thread's fsync, as the node's async path does); the data directory is
//! kept across rounds, so later rounds kill a child in the middle of
//! recovery, flushes and compactions of a growing tree. Rounds:
//! `LSM_CRASH_ROUNDS` (default 60).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dynamo_node::storage::lsm::{FsyncPolicy, LsmOptions, LsmStorage};
use dynamo_node::storage::Storage;

const CHILD_ENV: &str = "LSM_CRASH_CHILD";

fn value_for(key: &str) -> Vec<u8> {
    let mut v = key.as_bytes().to_vec();
    while v.len() < 100 {
        v.extend_from_slice(key.as_bytes());
    }
    v.truncate(100);
    v
}

fn options(policy: FsyncPolicy) -> LsmOptions {
    LsmOptions {
        fsync: policy,
        memtable_bytes: 16 * 1024,
        compaction_fanout: 3,
        tombstone_grace_ms: 0,
        ..LsmOptions::default()
    }
}

/// One acknowledged put: blocking, or deferred and awaited.
fn put_acked(db: &LsmStorage, key: &str, deferred: Option<&tokio::runtime::Runtime>) {
    match deferred {
        None => db.put(key.as_bytes(), value_for(key)).expect("child put"),
        Some(rt) => {
            let durability = db.put_deferred(key.as_bytes(), value_for(key)).expect("child put_deferred");
            rt.block_on(durability.wait()).expect("child durability");
        }
    }
}

/// The child's body: write forever, printing each acknowledgement.
fn child(dir: &Path, round: u32, policy: FsyncPolicy, writers: u32, deferred: bool) {
    let db = Arc::new(LsmStorage::open(dir, options(policy)).expect("child open"));
    println!("OPEN");
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let rt = deferred
                    .then(|| tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime"));
                for i in 0u64.. {
                    let key = format!("r{round:03}-w{w}-{i:08}");
                    put_acked(&db, &key, rt.as_ref());
                    println!("P {key}");
                    if i % 7 == 6 {
                        let old = format!("r{round:03}-w{w}-{:08}", i - 3);
                        println!("d {old}");
                        db.delete(old.as_bytes()).expect("child delete");
                        println!("D {old}");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// What recovery must show for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// An acknowledged put: present with its value.
    Present,
    /// An acknowledged delete: absent.
    Absent,
    /// A delete was in flight at the kill: either is correct.
    Either,
}

/// Acknowledged state per key.
type Acked = BTreeMap<String, Expect>;

fn parse_acks(out: &str, acked: &mut Acked) -> usize {
    let complete = match out.rfind('\n') {
        Some(i) => &out[..i],
        None => "",
    };
    let mut n = 0;
    for line in complete.lines() {
        if let Some(k) = line.strip_prefix("P ") {
            acked.insert(k.to_string(), Expect::Present);
            n += 1;
        } else if let Some(k) = line.strip_prefix("d ") {
            acked.insert(k.to_string(), Expect::Either);
        } else if let Some(k) = line.strip_prefix("D ") {
            acked.insert(k.to_string(), Expect::Absent);
            n += 1;
        }
    }
    n
}

fn run_child(dir: &Path, round: u32, kill_after: Duration) -> String {
    let (policy, writers) = match round % 3 {
        0 => ("always", 1),
        1 => ("batch", 4),
        _ => ("deferred", 4),
    };
    let exe = std::env::current_exe().expect("test binary path");
    let mut c = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--include-ignored", "--test-threads=1"])
        .env(CHILD_ENV, format!("{}|{round}|{policy}|{writers}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    std::thread::sleep(kill_after);
    let _ = c.kill(); // SIGKILL
    let mut out = String::new();
    if let Some(mut s) = c.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    let _ = c.wait();
    out
}

fn verify(dir: &Path, acked: &Acked) {
    let db = LsmStorage::open(dir, options(FsyncPolicy::Always)).expect("reopen after SIGKILL");
    let mut stored = BTreeMap::new();
    for (k, v) in db.scan(b"", usize::MAX).expect("scan after crash") {
        let k = String::from_utf8(k).expect("keys are ascii");
        assert_eq!(v, value_for(&k), "corrupt value served for {k}");
        stored.insert(k, v);
    }
    for (k, expect) in acked {
        let got = stored.get(k);
        match expect {
            Expect::Present => assert!(got.is_some(), "acknowledged put of {k} lost"),
            Expect::Absent => assert!(got.is_none(), "acknowledged delete of {k} undone"),
            Expect::Either => {}
        }
    }
    // Point reads must agree with the scan (they take the Bloom/index path).
    for k in acked.keys().rev().take(200) {
        assert_eq!(
            db.get(k.as_bytes()).expect("get after crash").as_ref(),
            stored.get(k),
            "get and scan disagree on {k}"
        );
    }
}

#[test]
#[ignore = "run by crash_test_sigkill_loses_no_acknowledged_write as a child process"]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let policy = if parts[2] == "always" { FsyncPolicy::Always } else { FsyncPolicy::Batch };
    child(
        Path::new(parts[0]),
        parts[1].parse().expect("round"),
        policy,
        parts[3].parse().expect("writers"),
        parts[2] == "deferred",
    );
}

#[test]
fn crash_test_sigkill_loses_no_acknowledged_write() {
    let rounds: u32 = std::env::var("LSM_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(60);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked = Acked::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let started = Instant::now();
    let mut total_acks = 0;
    for round in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = Duration::from_millis(20 + seed % 300);
        let out = run_child(dir.path(), round, kill_after);
        total_acks += parse_acks(&out, &mut acked);
        verify(dir.path(), &acked);
    }
    eprintln!("{rounds} SIGKILLs, {total_acks} acknowledged writes checked, {:.1} s", started.elapsed().as_secs_f64());
    assert!(total_acks > 0, "the child never acknowledged a write: the test would prove nothing");
}
