//! `make bench-checkers`: every checker on a seeded, generated register
//! history and on a seeded, generated set history, each with its wall
//! time, ops per second and peak RSS, printed as one table.
//!
//! The register history is a linearizable LWW register by construction:
//! `PROCESSES` clients each run one op at a time on `REGISTER_KEYS` keys;
//! an op lasts 1 to 5 ms; a write takes effect at a random instant inside
//! its interval, a read returns the value in force at a random instant
//! inside its own. So every checker has real work (reads that follow
//! acknowledged writes, keys with thousands of ops), and the
//! linearizability search must find an order.
//!
//! The sibling register history is the same draws under `siblings`, as
//! `dynamo-node` keeps them: every write is a read-modify-write whose
//! context is what the key held when the op began (its live siblings'
//! full clocks joined), and gets a dot from its coordinator's counter;
//! writes whose intervals overlap become siblings of each other, and the
//! next write that saw them both replaces them. A read returns the
//! siblings live at its instant. So reads return one to a few versions,
//! covering is a partial order, and t-visibility pairs every read with
//! every earlier ack of its key: the case that was quadratic.
//!
//! The set history is the set workload's shape (`workload/src/set.rs`):
//! the same clients, half of their ops an `add` of a unique element
//! (read-merge-write, recorded as one op with the version it got), half a
//! plain read that returns the key's whole cart; then a `final` phase that
//! reads every key through each of three nodes, which the lost-writes
//! checker compares the acknowledged adds with. Adds take effect at an
//! instant inside their interval and merge into the cart in force, so no
//! add is lost. `SET_KEYS` keys keep the carts around `ops / SET_KEYS / 2`
//! elements, the size the store's value limit allows in real runs.
//!
//! Columns: wall time, the thread's CPU time (user + system; on a machine
//! shared with builds the wall time also counts waiting for a core), ops
//! per wall second, peak RSS, the verdict.
//!
//! Sizes: `CHECKER_BENCH_OPS` client ops per history (default 1,000,000);
//! `CHECKER_BENCH_ONLY` (comma-separated checker names) runs just those.
//! Each history is written as a run directory (`<dir>/<history>/run.json`,
//! `history.jsonl`): in `CHECKER_BENCH_DIR=<dir>`, kept for `workbench
//! check` to be timed on it end to end (`make bench-checkers` does), or in
//! a temporary directory removed at the end.
//! The first row of each history times building its compact form from
//! the generated ops (`CompactHistory::from_ops`), which every checker
//! reads; the second reading it from the file (`CompactHistory::read`), as
//! `workbench check` does; the checkers' rows are their own work on it.
//! The parsed ops are dropped before the second row, as `workbench check`
//! never holds them.
//! Peak RSS is the process's high-water mark (`VmHWM`), reset before each
//! checker (`/proc/self/clear_refs`), so it is the compact history held in
//! memory plus what that checker allocated on top of it, plus whatever
//! heap the dropped ops left resident (the allocator keeps freed small
//! blocks): an upper bound. `workbench check`'s own peak, printed last by
//! `make bench-checkers`, holds no parsed ops at all.

use std::collections::BTreeSet;
use std::time::Instant;

use std::collections::BTreeMap;

use history::compact::CompactHistory;
use history::{Dot, History, Op, OpType, Resolution, RunConfig, Version};
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeValLike;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Client processes.
const PROCESSES: u64 = 8;
/// Keys of the register history, `k0` ...
const REGISTER_KEYS: u64 = 100;
/// Keys of the set history.
const SET_KEYS: u64 = 10_000;
/// Nodes the final reads of the set history go through.
const NODES: u64 = 3;
/// The generator's seed.
const SEED: u64 = 42;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One client op's interval and target, as both generators draw them.
struct Slot {
    /// Client process.
    process: u64,
    /// Invocation time, ns.
    start_ns: u64,
    /// Completion time, ns.
    end_ns: u64,
    /// The instant inside the interval the op takes effect, ns.
    at_ns: u64,
    /// Key index.
    key: usize,
    /// Coordinator node name.
    node: String,
}

/// Draws the next op of process `i % PROCESSES` (1 to 5 ms, after a pause
/// of up to 1 ms), with the key and node; the draws are those the register
/// generator has always made, in the same order. An op starts at least 1 ns
/// after its process's last one ended: at the same instant, the history's
/// sort puts invocations first, and the next op's invocation would come
/// before the last one's completion (which the checkers then rightly count
/// as an op they do not understand).
fn slot(rng: &mut rand_chacha::ChaCha8Rng, clock_ns: &mut [u64], i: usize, keys: u64) -> Slot {
    let p = i % PROCESSES as usize;
    let start_ns = clock_ns[p] + 1 + rng.random_range(0..1_000_000);
    let end_ns = start_ns + rng.random_range(1_000_000..5_000_000);
    clock_ns[p] = end_ns;
    let key = rng.random_range(0..keys) as usize;
    let node = format!("n{}", rng.random_range(1..=NODES));
    Slot { process: p as u64, start_ns, end_ns, at_ns: 0, key, node }
}

/// The invocation and completion of `slot`'s op, without values.
fn ops_of(slot: &Slot, f: &str) -> (Op, Op) {
    let key = format!("k{}", slot.key);
    let mut invoke = Op::client(slot.process, OpType::Invoke, f, &key, &slot.node);
    invoke.time = slot.start_ns;
    let mut done = Op::client(slot.process, OpType::Ok, f, &key, &slot.node);
    done.time = slot.end_ns;
    (invoke, done)
}

/// The version a write that took effect at `at_ns` gets (coordinator ms).
fn version_at(at_ns: u64) -> Version {
    Version { clock: Default::default(), ts: at_ns / 1_000_000, dot: None }
}

/// Sorts events into time order (invocations first at one instant) and numbers them.
fn history_of(mut events: Vec<Op>) -> History {
    events.sort_by_key(|op| (op.time, op.kind != OpType::Invoke));
    for (i, op) in events.iter_mut().enumerate() {
        op.index = i as u64;
    }
    History::new(events)
}

/// A register history of `ops` client ops (invocation and completion each).
fn register_history(ops: usize) -> History {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    // Per key: (effect time ns, value, version) of every write, in effect order.
    let mut effects: Vec<Vec<(u64, String, Version)>> = vec![Vec::new(); REGISTER_KEYS as usize];
    let mut events: Vec<Op> = Vec::with_capacity(ops * 2);
    let mut clock_ns = vec![0u64; PROCESSES as usize];
    let mut pending_reads: Vec<(usize, u64, usize, Op)> = Vec::new();
    for i in 0..ops {
        let s = slot(&mut rng, &mut clock_ns, i, REGISTER_KEYS);
        if rng.random_bool(0.5) {
            let (mut invoke, mut ok) = ops_of(&s, "write");
            let value = format!("p{}-{i}", s.process);
            let at = rng.random_range(s.start_ns..s.end_ns);
            let version = version_at(at);
            effects[s.key].push((at, value.clone(), version.clone()));
            invoke.value = json!(value);
            ok.value = json!(value);
            ok.version = Some(version);
            events.push(invoke);
            events.push(ok);
        } else {
            let at = rng.random_range(s.start_ns..s.end_ns);
            let (invoke, ok) = ops_of(&s, "read");
            events.push(invoke);
            pending_reads.push((s.key, at, events.len(), ok));
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
    history_of(events)
}

/// One write or read of the sibling history, at the instant it takes effect.
struct Effect {
    /// The instant, ns.
    at_ns: u64,
    /// When the op began, ns: a write's context is the key as it was then.
    start_ns: u64,
    /// Slot of its completion in the events.
    slot: usize,
    /// Coordinator node number (from 1), for a write's dot.
    node: u64,
}

/// One key of the sibling history: its live siblings and, after each
/// effect, the join of their full clocks (what a read then saw).
#[derive(Default)]
struct SiblingKey {
    /// Live (value, version), in no order.
    live: Vec<(String, Version)>,
    /// (effect instant ns, the live siblings' full clocks joined), in time order.
    seen: Vec<(u64, BTreeMap<String, u64>)>,
}

impl SiblingKey {
    /// The context of a write that began at `start_ns`: what a read then saw.
    fn context_at(&self, start_ns: u64) -> BTreeMap<String, u64> {
        let i = self.seen.partition_point(|(t, _)| *t <= start_ns);
        i.checked_sub(1).map(|i| self.seen[i].1.clone()).unwrap_or_default()
    }

    /// Installs `version` as the node does: drops the siblings it includes.
    fn write(&mut self, at_ns: u64, value: String, version: Version) {
        self.live.retain(|(_, v)| !version.includes(v));
        self.live.push((value, version));
        let mut joined: BTreeMap<String, u64> = BTreeMap::new();
        for (_, v) in &self.live {
            for (node, c) in v.full_clock() {
                let e = joined.entry(node).or_insert(0);
                *e = (*e).max(c);
            }
        }
        self.seen.push((at_ns, joined));
    }

    /// A read's value: every live sibling.
    fn read(&self) -> Value {
        Value::Array(self.live.iter().map(|(value, version)| json!({"value": value, "version": version})).collect())
    }
}

/// A sibling register history of `ops` client ops; see the module documentation.
fn sibling_register_history(ops: usize) -> History {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    let mut events: Vec<Op> = Vec::with_capacity(ops * 2);
    let mut clock_ns = vec![0u64; PROCESSES as usize];
    let mut effects: Vec<Vec<Effect>> = (0..REGISTER_KEYS).map(|_| Vec::new()).collect();
    for i in 0..ops {
        let s = slot(&mut rng, &mut clock_ns, i, REGISTER_KEYS);
        let write = rng.random_bool(0.5);
        let at_ns = rng.random_range(s.start_ns..s.end_ns);
        let (mut invoke, done) = ops_of(&s, if write { "write" } else { "read" });
        if write {
            invoke.value = json!(format!("p{}-{i}", s.process));
        }
        events.push(invoke);
        let node = s.node[1..].parse().expect("the generator's nodes are n<i>");
        effects[s.key].push(Effect { at_ns, start_ns: s.start_ns, slot: events.len(), node });
        events.push(done);
    }
    let mut counters = [0u64; NODES as usize + 1];
    for per_key in &mut effects {
        per_key.sort_by_key(|e| e.at_ns);
        let mut key = SiblingKey::default();
        for e in per_key.iter() {
            if events[e.slot].f == "read" {
                events[e.slot].value = key.read();
                continue;
            }
            counters[e.node as usize] += 1;
            let dot = Dot { node: format!("n{}", e.node), counter: counters[e.node as usize] };
            let version = Version { clock: key.context_at(e.start_ns), ts: e.at_ns / 1_000_000, dot: Some(dot) };
            let value = events[e.slot - 1].value.as_str().expect("a write's value").to_string();
            let done = &mut events[e.slot];
            done.value = json!(value);
            done.version = Some(version.clone());
            key.write(e.at_ns, value, version);
        }
    }
    history_of(events)
}

/// A set read's value: the cart as one sibling, or no sibling for a key never added to.
fn cart_value(cart: &BTreeSet<String>, version: Option<&Version>) -> Value {
    match version {
        Some(version) => json!([{"value": cart, "version": version}]),
        None => json!([]),
    }
}

/// A set history of `ops` client ops, then the final reads of every key
/// through every node (`SET_KEYS * NODES` more).
fn set_history(ops: usize) -> History {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    let mut clock_ns = vec![0u64; PROCESSES as usize];
    // (effect time, slot of the completion in `events`, is an add).
    let mut effects: Vec<(u64, usize, bool)> = Vec::with_capacity(ops);
    let mut events: Vec<Op> = Vec::with_capacity(ops * 2 + SET_KEYS as usize * NODES as usize * 2 + 1);
    for i in 0..ops {
        let mut s = slot(&mut rng, &mut clock_ns, i, SET_KEYS);
        let add = rng.random_bool(0.5);
        s.at_ns = rng.random_range(s.start_ns..s.end_ns);
        let (mut invoke, mut done) = ops_of(&s, if add { "add" } else { "read" });
        if add {
            invoke.value = json!(format!("p{}-{i}", s.process));
            done.value = invoke.value.clone();
            done.version = Some(version_at(s.at_ns));
        }
        events.push(invoke);
        effects.push((s.at_ns, events.len(), add));
        events.push(done);
    }
    effects.sort_unstable();
    let mut carts: Vec<(BTreeSet<String>, Option<Version>)> = vec![(BTreeSet::new(), None); SET_KEYS as usize];
    for (_, slot, add) in effects {
        let key: usize =
            events[slot].key.as_deref().and_then(|k| k[1..].parse().ok()).expect("the generator's keys are k<n>");
        let (cart, version) = &mut carts[key];
        if add {
            cart.insert(events[slot].value.as_str().expect("an add's value is its element").to_string());
            *version = events[slot].version.clone();
        } else {
            events[slot].value = cart_value(cart, version.as_ref());
        }
    }
    let mut end_ns = clock_ns.iter().copied().max().unwrap_or(0) + 1;
    let mut phase = Op::nemesis("phase", json!({"phase": "final"}));
    phase.time = end_ns;
    events.push(phase);
    for (k, (cart, version)) in carts.iter().enumerate() {
        for n in 0..NODES {
            end_ns += 1_000;
            let s = Slot {
                process: PROCESSES + n,
                start_ns: end_ns,
                end_ns: end_ns + 500,
                at_ns: 0,
                key: k,
                node: format!("n{}", n + 1),
            };
            let (invoke, mut done) = ops_of(&s, "read");
            done.value = cart_value(cart, version.as_ref());
            events.push(invoke);
            events.push(done);
        }
    }
    history_of(events)
}

fn run_config(workload: &str, resolution: Resolution) -> RunConfig {
    let value = json!({
        "nodes": ["n1", "n2", "n3"], "n": 3, "w": 2, "r": 2,
        "sloppy_quorum": false, "resolution": "lww",
        "hinted_handoff": true, "read_repair": true, "anti_entropy": true,
        "workload": workload, "nemesis": [], "seed": SEED,
        "time_limit_s": 60, "concurrency": PROCESSES, "rate": 0.0,
        "backend": "sim", "node_image": "bench", "started_at": "2026-01-01T00:00:00Z"
    });
    let mut run: RunConfig = serde_json::from_value(value).expect("the bench's run config parses");
    run.resolution = resolution;
    run
}

/// The process's peak resident set since the last reset, MiB (Linux `VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.map_or(f64::NAN, |k| k / 1024.0)
}

/// Resets the peak to the current resident set (Linux >= 4.0); without
/// it the figures are the peak since the process began.
fn reset_peak_rss() {
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        eprintln!("cannot reset VmHWM: peak RSS figures are since the process began");
    }
}

/// CPU seconds this thread has used (user + system, from
/// `getrusage(RUSAGE_THREAD)`, to the microsecond): on a shared machine
/// the wall time includes waiting for a core, this does not. The kernel's
/// own call rather than a parse of `/proc/thread-self/stat`, whose clock
/// ticks are coarser and whose rate the parse would have to look up.
fn thread_cpu_s() -> f64 {
    let Ok(usage) = getrusage(UsageWho::RUSAGE_THREAD) else {
        return f64::NAN;
    };
    let us = usage.user_time().num_microseconds() + usage.system_time().num_microseconds();
    us as f64 / 1e6
}

/// Client ops of a history: its invocations.
fn client_ops(history: &History) -> usize {
    history.ops.iter().filter(|op| op.kind == OpType::Invoke).count()
}

/// Whether `CHECKER_BENCH_ONLY` selects `name` (all when unset).
fn selected(name: &str) -> bool {
    std::env::var("CHECKER_BENCH_ONLY").map_or(true, |only| only.split(',').any(|n| n.trim() == name))
}

/// Times one checker on one history and prints its table row.
fn bench(label: &str, name: &str, check: checker::CheckFn, history: &CompactHistory, ops: usize, run: &RunConfig) {
    if !selected(name) {
        return;
    }
    reset_peak_rss();
    let (started, cpu_before) = (Instant::now(), thread_cpu_s());
    // Each checker extracts what it needs anew, as if it ran alone.
    let result = check(&checker::Checked::new(history), run);
    let secs = started.elapsed().as_secs_f64();
    let cpu = thread_cpu_s() - cpu_before;
    println!(
        "| {label:<8} | {name:<16} | {ops:>9} | {secs:>7.2} | {cpu:>6.2} | {:>11.0} | {:>8.0} | {:<7} |",
        ops as f64 / secs,
        peak_rss_mib(),
        format!("{:?}", result.valid)
    );
    expect(name, &result);
}

/// Times building the history's compact form, which every checker reads:
/// its own row, so theirs are their work alone, as in `check_run_files`,
/// where it is built once. The form is returned, for the checkers.
fn bench_compact(label: &str, history: &History) -> CompactHistory {
    let compact = bench_build(label, "(compact form)", client_ops(history), || CompactHistory::from_ops(&history.ops));
    assert_eq!(compact.ops().len(), history.ops.len());
    compact
}

/// Times reading the history's file into the compact form, as `workbench
/// check` does ([`CompactHistory::read`]): the parse the ops above were
/// spared, since the generator made them.
fn bench_read(label: &str, path: &std::path::Path, compact: &CompactHistory) {
    let ops = compact.ops().iter().filter(|op| op.kind == OpType::Invoke).count();
    let read = bench_build(label, "(compact read)", ops, || {
        CompactHistory::read(path).expect("the bench's history.jsonl reads back")
    });
    assert_eq!(read.ops(), compact.ops(), "the file reads back as the ops it was written from");
}

/// Times `build` and prints its row: wall and CPU time, ops per second,
/// peak RSS.
fn bench_build(label: &str, row: &str, ops: usize, build: impl FnOnce() -> CompactHistory) -> CompactHistory {
    reset_peak_rss();
    let (started, cpu_before) = (Instant::now(), thread_cpu_s());
    let compact = build();
    let secs = started.elapsed().as_secs_f64();
    let cpu = thread_cpu_s() - cpu_before;
    println!(
        "| {label:<8} | {row:<16} | {ops:>9} | {secs:>7.2} | {cpu:>6.2} | {:>11.0} | {:>8.0} | {:<7} |",
        ops as f64 / secs,
        peak_rss_mib(),
        "-"
    );
    compact
}

/// What the generated histories guarantee, so a checker that did no work
/// (or broke) cannot pass unnoticed.
fn expect(name: &str, result: &checker::CheckResult) {
    let figure = |key: &str| result.figure(key).cloned().unwrap_or_default();
    let not_understood = figure("ops_not_understood").as_u64().unwrap_or(0);
    assert_eq!(not_understood, 0, "{name}: every generated op is understood: {:?}", figure("reason"));
    match name {
        checker::linearizable::NAME => {
            assert_ne!(figure("linearizable"), json!(false), "linearizable by construction: {:?}", result.figures)
        }
        checker::stale_reads::NAME => {
            assert_eq!(figure("stale"), json!(0), "no stale read by construction")
        }
        checker::lost_writes::NAME => {
            assert_eq!(figure("lost"), json!(0), "no add is lost by construction");
            assert!(figure("checked_adds").as_u64().is_some_and(|n| n > 0), "the final reads judge the adds");
        }
        _ => {}
    }
}

/// Writes `history` and `run` as the run directory `<dir>/<label>`.
fn write_run_dir(dir: &std::path::Path, label: &str, history: &History, run: &RunConfig) {
    let run_dir = dir.join(label);
    std::fs::create_dir_all(&run_dir).expect("the bench's run directory can be created");
    // Named after its directory, as the workbench names a run's, so that
    // `workbench check` takes it for one of its own (and reads it).
    let mut run = run.clone();
    run.labels.run_name = label.to_string();
    let run_json = serde_json::to_string_pretty(&run).expect("a run config serializes");
    std::fs::write(run_dir.join(history::files::RUN), run_json).expect("run.json can be written");
    let mut writer =
        history::JsonlWriter::create(&run_dir.join(history::files::HISTORY)).expect("history.jsonl can be created");
    for op in &history.ops {
        writer.append(op).expect("history.jsonl can be written");
    }
}

fn main() {
    let ops = env_usize("CHECKER_BENCH_OPS", 1_000_000);
    let kept_dir = std::env::var("CHECKER_BENCH_DIR").ok().map(std::path::PathBuf::from);
    let dir =
        kept_dir.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("checker-bench-{}", std::process::id())));
    println!("| history  | checker          |       ops |  wall s |  cpu s | ops/s(wall) | peak MiB | verdict |");
    println!("| -------- | ---------------- | --------: | ------: | -----: | ----------: | -------: | ------- |");
    for label in ["register", "siblings", "set"] {
        reset_peak_rss();
        let started = Instant::now();
        let (history, workload, resolution) = match label {
            "register" => (register_history(ops), "register", Resolution::Lww),
            "siblings" => (sibling_register_history(ops), "register", Resolution::Siblings),
            _ => (set_history(ops), "set", Resolution::Lww),
        };
        eprintln!(
            "generated the {label} history: {} client ops ({PROCESSES} processes, seed {SEED}) in {:.1} s, peak {:.0} MiB",
            client_ops(&history),
            started.elapsed().as_secs_f64(),
            peak_rss_mib()
        );
        let run = run_config(workload, resolution);
        write_run_dir(&dir, label, &history, &run);
        let own: &[(&str, checker::CheckFn)] =
            if workload == "register" { &checker::REGISTER_CHECKERS } else { &checker::SET_CHECKERS };
        let compact = bench_compact(label, &history);
        let ops = client_ops(&history);
        drop(history);
        bench_read(label, &dir.join(label).join(history::files::HISTORY), &compact);
        for (name, check) in checker::CHECKERS.iter().chain(own) {
            bench(label, name, *check, &compact, ops, &run);
        }
    }
    if kept_dir.is_none() {
        std::fs::remove_dir_all(&dir).expect("the bench's own run directories can be removed");
    }
}
