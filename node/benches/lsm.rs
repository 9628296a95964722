//! Benchmarks of the LSM engine against fjall on the same data: random
//! put, random get (hits and misses) and scans, over `LSM_BENCH_KEYS`
//! preloaded keys (default 1,000,000) with 100-byte values, both engines
//! with the same fsync setting (`LSM_BENCH_FSYNC`: `never`, the default, or
//! `always`: ours fsyncs each write, fjall persists with `SyncData` after
//! each write). Both engines compress every data block with LZ4 (fjall's
//! default would leave its first two levels uncompressed) and run their own
//! default memtable and cache sizes (ours: 8 MiB memtable, 64 MiB block
//! cache; fjall: 64 MiB memtable, its default cache).
//!
//! Criterion measures each line; at the end the harness reads criterion's
//! estimates and prints one table row per operation with the throughput
//! ratio ours/fjall (above 1.0: ours is faster).
//!
//! `LSM_BENCH_PROFILE=<op>` (put_random, get_hit, get_miss, scan_100)
//! skips criterion and fjall: after the preload it prints `PROFILE START`
//! and runs that operation on our engine for 20 s, for a profiler to
//! attach to (`perf record -p <pid>`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use dynamo_node::storage::lsm::{FsyncPolicy, LsmOptions, LsmStorage};
use dynamo_node::storage::Storage;
use fjall::config::CompressionPolicy;
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};

const VALUE_BYTES: usize = 100;
const SCAN_LEN: usize = 100;
const GROUP: &str = "lsm_vs_fjall";

fn key_count() -> u64 {
    std::env::var("LSM_BENCH_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

fn fsync_always() -> bool {
    std::env::var("LSM_BENCH_FSYNC").is_ok_and(|v| v == "always")
}

/// A deterministic pseudo-random sequence (xorshift), the same for both.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Key `i` of the preloaded set; keys are spread over the key space.
fn key(i: u64) -> [u8; 16] {
    let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ i;
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&h.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// A key that is never preloaded (index beyond the set, different shape).
fn missing_key(i: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[..16].copy_from_slice(&key(i));
    k[16] = 0xff;
    k
}

fn value(i: u64) -> Vec<u8> {
    let mut v = vec![0u8; VALUE_BYTES];
    for (j, b) in v.iter_mut().enumerate() {
        *b = (i as u8).wrapping_add(j as u8 % 7);
    }
    v
}

trait Engine {
    fn put(&self, k: &[u8], v: Vec<u8>);
    fn get(&self, k: &[u8]) -> Option<usize>;
    fn scan(&self, from: &[u8], n: usize) -> usize;
}

struct Ours(LsmStorage);

impl Engine for Ours {
    fn put(&self, k: &[u8], v: Vec<u8>) {
        self.0.put(k, v).expect("put");
    }
    fn get(&self, k: &[u8]) -> Option<usize> {
        self.0.get(k).expect("get").map(|v| v.len())
    }
    fn scan(&self, from: &[u8], n: usize) -> usize {
        self.0.scan(from, n).expect("scan").len()
    }
}

struct Fjall {
    db: Database,
    ks: Keyspace,
    sync: bool,
}

impl Engine for Fjall {
    fn put(&self, k: &[u8], v: Vec<u8>) {
        self.ks.insert(k, v).expect("fjall insert");
        if self.sync {
            self.db.persist(PersistMode::SyncData).expect("fjall persist");
        }
    }
    fn get(&self, k: &[u8]) -> Option<usize> {
        self.ks.get(k).expect("fjall get").map(|v| v.len())
    }
    fn scan(&self, from: &[u8], n: usize) -> usize {
        self.ks.range(from..).take(n).map(|g| g.into_inner().expect("fjall scan").1.len()).sum::<usize>() / VALUE_BYTES
    }
}

fn open_ours(dir: &Path, always: bool) -> Ours {
    let opts =
        LsmOptions { fsync: if always { FsyncPolicy::Always } else { FsyncPolicy::Never }, ..LsmOptions::default() };
    Ours(LsmStorage::open(dir, opts).expect("open ours"))
}

fn open_fjall(dir: &Path, sync: bool) -> Fjall {
    let db = Database::builder(dir).open().expect("open fjall");
    // Like ours, LZ4 on every level (fjall's default leaves L0 and L1
    // uncompressed), so both engines decompress the same way.
    let lz4 =
        || KeyspaceCreateOptions::default().data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4));
    let ks = db.keyspace("bench", lz4).expect("fjall keyspace");
    Fjall { db, ks, sync }
}

fn preload(e: &dyn Engine, n: u64) {
    for i in 0..n {
        e.put(&key(i), value(i));
    }
}

fn bench_engine(c: &mut Criterion, name: &str, e: &dyn Engine, n: u64) {
    let mut g = c.benchmark_group(GROUP);
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    let mut rng = Rng(0x1234_5678);
    g.bench_function(BenchmarkId::new("get_hit", name), |b| b.iter(|| assert!(e.get(&key(rng.next() % n)).is_some())));
    g.bench_function(BenchmarkId::new("get_miss", name), |b| {
        b.iter(|| assert!(e.get(&missing_key(rng.next() % n)).is_none()))
    });
    g.bench_function(BenchmarkId::new("scan_100", name), |b| b.iter(|| e.scan(&key(rng.next() % n), SCAN_LEN)));
    g.bench_function(BenchmarkId::new("put_random", name), |b| {
        b.iter(|| {
            let i = rng.next() % n;
            e.put(&key(i), value(i + 1));
        })
    });
    g.finish();
}

fn criterion_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| {
        let manifest = env!("CARGO_MANIFEST_DIR");
        format!("{manifest}/../target")
    });
    PathBuf::from(target).join("criterion").join(GROUP)
}

/// Mean time per iteration (ns) criterion recorded for `op/engine`.
fn mean_ns(op: &str, engine: &str) -> Option<f64> {
    let path = criterion_dir().join(op).join(engine).join("new").join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn print_ratios(n: u64) {
    println!();
    println!(
        "LSM vs fjall, {n} keys x {VALUE_BYTES} B values, fsync {}",
        if fsync_always() { "always" } else { "never" }
    );
    println!("{:<12} {:>14} {:>14} {:>22}", "op", "ours ns/op", "fjall ns/op", "ratio ours/fjall (x)");
    for op in ["put_random", "get_hit", "get_miss", "scan_100"] {
        match (mean_ns(op, "ours"), mean_ns(op, "fjall")) {
            (Some(o), Some(f)) => println!("{op:<12} {o:>14.0} {f:>14.0} {:>22.2}", f / o),
            _ => println!("{op:<12} (no estimate found under {})", criterion_dir().display()),
        }
    }
    println!(
        "(ratio = fjall time / our time = our throughput / fjall throughput; >= 1.0 means ours is as fast or faster)"
    );
}

/// Flushes fjall's memtable and waits (bounded) until its table count has
/// been stable for two seconds, i.e. its due compactions are done.
fn settle_fjall(f: &Fjall) {
    f.ks.rotate_memtable_and_wait().expect("fjall flush");
    let mut last = f.ks.table_count();
    let mut stable = 0;
    for _ in 0..120 {
        std::thread::sleep(Duration::from_millis(500));
        let now = f.ks.table_count();
        stable = if now == last { stable + 1 } else { 0 };
        last = now;
        if stable >= 4 {
            break;
        }
    }
}

/// Runs one operation of ours in a loop for a profiler.
fn profile(op: &str, e: &dyn Engine, n: u64) {
    let mut rng = Rng(0x1234_5678);
    println!("PROFILE START {op} pid {}", std::process::id());
    let started = std::time::Instant::now();
    let mut ops = 0u64;
    while started.elapsed() < Duration::from_secs(20) {
        let i = rng.next() % n;
        match op {
            "put_random" => e.put(&key(i), value(i + 1)),
            "get_hit" => assert!(e.get(&key(i)).is_some()),
            "get_miss" => assert!(e.get(&missing_key(i)).is_none()),
            _ => {
                e.scan(&key(i), SCAN_LEN);
            }
        }
        ops += 1;
    }
    println!("PROFILE END {op}: {:.0} ns/op", started.elapsed().as_nanos() as f64 / ops as f64);
}

fn main() {
    let n = key_count();
    let mut c = Criterion::default().configure_from_args();
    let root = tempfile::tempdir().expect("tempdir");
    // Preload without fsyncs and let background work settle (flush, due
    // compactions), then reopen with the measured setting. Reads are
    // measured first, on the settled tree; random puts last.
    let ours_dir = root.path().join("ours");
    {
        let ours = open_ours(&ours_dir, false);
        preload(&ours, n);
        ours.0.flush().expect("flush");
        ours.0.compact().expect("compact");
    }
    if let Ok(op) = std::env::var("LSM_BENCH_PROFILE") {
        profile(&op, &open_ours(&ours_dir, fsync_always()), n);
        return;
    }
    bench_engine(&mut c, "ours", &open_ours(&ours_dir, fsync_always()), n);
    let mut fjall = open_fjall(&root.path().join("fjall"), false);
    preload(&fjall, n);
    settle_fjall(&fjall);
    fjall.sync = fsync_always();
    bench_engine(&mut c, "fjall", &fjall, n);
    c.final_summary();
    print_ratios(n);
}
