//! `make bench-checkers`: every checker on a seeded, generated register
//! history, its ops per second and the process's peak RSS after it.
//!
//! The history is a linearizable LWW register by construction: `PROCESSES`
//! clients each run one op at a time on `KEYS` keys; an op lasts 1 to 5 ms;
//! a write takes effect at a random instant inside its interval, a read
//! returns the value in force at a random instant inside its own. So every
//! checker has real work (reads that follow acknowledged writes, keys with
//! thousands of ops), and the linearizability search must find an order.
//!
//! Sizes: `CHECKER_BENCH_OPS` client ops for the linearizable checker
//! (default 1,000,000); the other checkers get `CHECKER_BENCH_OTHERS_OPS`
//! (default 100,000: some are still quadratic in the ops of a key, which a
//! million would turn into minutes). Peak RSS is the process's high-water
//! mark (`VmHWM`), so read it as a bound, in the order the lines print.

use std::time::Instant;

use history::{History, Op, OpType, Resolution, RunConfig, Version};
use rand::{Rng, SeedableRng};
use serde_json::json;

/// Client processes.
const PROCESSES: u64 = 8;
/// Keys, `k0` ...
const KEYS: u64 = 100;
/// The generator's seed.
const SEED: u64 = 42;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A register history of about `ops` client ops (invocation and completion each).
fn history(ops: usize) -> History {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    // Per key: (effect time ns, value, version) of every write, in effect order.
    let mut effects: Vec<Vec<(u64, String, Version)>> = vec![Vec::new(); KEYS as usize];
    let mut events: Vec<Op> = Vec::with_capacity(ops * 2);
    let mut clock_ns = vec![0u64; PROCESSES as usize];
    let mut pending_reads: Vec<(usize, u64, usize, Op)> = Vec::new();
    for i in 0..ops {
        let p = i % PROCESSES as usize;
        let start = clock_ns[p] + rng.random_range(0..1_000_000);
        let end = start + rng.random_range(1_000_000..5_000_000);
        clock_ns[p] = end;
        let key = rng.random_range(0..KEYS) as usize;
        let key_name = format!("k{key}");
        let node = format!("n{}", rng.random_range(1..=3));
        if rng.random_bool(0.5) {
            let value = format!("p{p}-{i}");
            let at = rng.random_range(start..end);
            let version = Version { clock: Default::default(), ts: at / 1_000_000, dot: None };
            effects[key].push((at, value.clone(), version.clone()));
            let mut invoke = Op::client(p as u64, OpType::Invoke, "write", &key_name, &node);
            invoke.value = json!(value);
            invoke.time = start;
            let mut ok = Op::client(p as u64, OpType::Ok, "write", &key_name, &node);
            ok.value = json!(value);
            ok.version = Some(version);
            ok.time = end;
            events.push(invoke);
            events.push(ok);
        } else {
            let at = rng.random_range(start..end);
            let mut invoke = Op::client(p as u64, OpType::Invoke, "read", &key_name, &node);
            invoke.time = start;
            let mut ok = Op::client(p as u64, OpType::Ok, "read", &key_name, &node);
            ok.time = end;
            events.push(invoke);
            pending_reads.push((key, at, events.len(), ok));
            events.push(Op::client(0, OpType::Info, "placeholder", "", ""));
        }
    }
    for per_key in &mut effects {
        per_key.sort_by_key(|e| e.0);
    }
    for (key, at, slot, mut ok) in pending_reads {
        let seen = effects[key].partition_point(|e| e.0 <= at);
        ok.value = match seen.checked_sub(1).map(|i| &effects[key][i]) {
            Some((_, value, version)) => json!([{"value": value, "version": version}]),
            None => json!([]),
        };
        events[slot] = ok;
    }
    events.sort_by_key(|op| (op.time, op.kind != OpType::Invoke));
    for (i, op) in events.iter_mut().enumerate() {
        op.index = i as u64;
    }
    History::new(events)
}

fn run_config() -> RunConfig {
    let value = json!({
        "nodes": ["n1", "n2", "n3"], "n": 3, "w": 2, "r": 2,
        "sloppy_quorum": false, "resolution": "lww",
        "hinted_handoff": true, "read_repair": true, "anti_entropy": true,
        "workload": "register", "nemesis": [], "seed": SEED,
        "time_limit_s": 60, "concurrency": PROCESSES, "rate": 0.0,
        "backend": "sim", "node_image": "bench", "started_at": "2026-01-01T00:00:00Z"
    });
    let mut run: RunConfig = serde_json::from_value(value).expect("the bench's run config parses");
    run.resolution = Resolution::Lww;
    run
}

/// The process's peak resident set, MiB (Linux `VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.map_or(f64::NAN, |k| k / 1024.0)
}

fn bench(name: &str, check: checker::CheckFn, history: &History, run: &RunConfig) {
    let client_ops = history.ops.len() / 2;
    let started = Instant::now();
    let result = check(history, run);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name:<18} {client_ops:>9} ops {secs:>8.2} s {:>12.0} ops/s  peak RSS {:>6.0} MiB  verdict {:?}",
        client_ops as f64 / secs,
        peak_rss_mib(),
        result.valid
    );
    if name == checker::linearizable::NAME {
        let answer = result.figure("linearizable").cloned().unwrap_or_default();
        assert_eq!(answer, json!(true), "the generated history is linearizable by construction: {:?}", result.figures);
    }
}

fn main() {
    let run = run_config();
    let lin_ops = env_usize("CHECKER_BENCH_OPS", 1_000_000);
    let other_ops = env_usize("CHECKER_BENCH_OTHERS_OPS", 100_000);
    let started = Instant::now();
    let big = history(lin_ops);
    println!("generated {lin_ops} ops ({PROCESSES} processes, {KEYS} keys, seed {SEED}) in {:.1} s", started.elapsed().as_secs_f64());
    bench(checker::linearizable::NAME, checker::linearizable::check, &big, &run);
    drop(big);
    let small = history(other_ops);
    for (name, check) in checker::CHECKERS {
        bench(name, check, &small, &run);
    }
}
