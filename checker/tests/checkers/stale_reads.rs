use checker::{stale_reads, Validity};
use history::{History, Op, OpType, Process, Resolution, RunConfig, Sibling, Version};
use serde_json::json;

use crate::builder::*;

/// Write "p0-1" acked at t=10; a read invoked at t=20 returns `siblings`.
fn write_then_read(siblings: &[(Option<String>, Version)]) -> History {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 5, 10);
    read(&mut b, 1, "k", siblings, 20, 30);
    b.build()
}

#[test]
fn planted_stale_read_fails_a_strict_quorum_run() {
    let result = stale_reads::check(&write_then_read(&[]), &strict());
    assert_eq!(result.valid, Validity::False);
    assert_eq!(count(&result, "stale"), 1);
    assert_eq!(count(&result, "reads_checked"), 1);
    assert_eq!(result.figure("expected_zero"), Some(&json!(true)));
    let example = &result.figure("examples").unwrap()[0];
    assert_eq!(example["read_index"], json!(2));
    assert_eq!(example["key"], json!("k"));
    assert_eq!(example["node"], json!("n3"));
    assert_eq!(example["missed_value"], json!("p0-1"));
    assert_eq!(example["missed_version"], json!({"clock": {"n1": 1}, "ts": 100}));
}

#[test]
fn same_stale_read_is_counted_but_valid_on_weak_quorums() {
    let result = stale_reads::check(&write_then_read(&[]), &run(3, 1, 1));
    assert_eq!(result.valid, Validity::True);
    assert_eq!(count(&result, "stale"), 1);
    assert_eq!(result.figure("expected_zero"), Some(&json!(false)));
}

#[test]
fn sloppy_quorum_promises_nothing() {
    let mut sloppy = strict();
    sloppy.sloppy_quorum = true;
    let result = stale_reads::check(&write_then_read(&[]), &sloppy);
    assert_eq!(result.valid, Validity::True);
    assert_eq!(count(&result, "stale"), 1);
}

#[test]
fn read_concurrent_with_the_write_is_not_stale() {
    let mut b = HistoryBuilder::new();
    b.at(5).invoke_write(0, "k", "p0-1", "n1");
    b.at(8).invoke_read(1, "k", "n3");
    b.at(10).ok_write(0, "k", "p0-1", v(&[("n1", 1)], 100));
    b.at(30).ok_read(1, "k", &[]);
    let result = stale_reads::check(&b.build(), &strict());
    assert_eq!(count(&result, "stale"), 0);
    // Nothing was owed to any read: no evidence, not a pass.
    assert_eq!(count(&result, "reads_checked"), 0);
    assert_eq!(result.valid, Validity::Unknown);
}

#[test]
fn read_invoked_at_the_ack_instant_is_concurrent() {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 5, 10);
    read(&mut b, 1, "k", &[], 10, 30);
    assert_eq!(count(&stale_reads::check(&b.build(), &strict()), "stale"), 0);
}

#[test]
fn descendant_sibling_covers_the_write() {
    let history = write_then_read(&[sib(Some("p2-7"), v(&[("n1", 2), ("n2", 1)], 90))]);
    let result = stale_reads::check(&history, &strict());
    assert_eq!(result.valid, Validity::True);
    assert_eq!(count(&result, "stale"), 0);
    assert_eq!(count(&result, "reads_checked"), 1);
}

#[test]
fn concurrent_sibling_alone_does_not_cover() {
    let history = write_then_read(&[sib(Some("p2-7"), v(&[("n2", 1)], 200))]);
    assert_eq!(stale_reads::check(&history, &strict()).valid, Validity::False);
}

#[test]
fn lww_newer_timestamp_covers_older_write() {
    // Concurrent clocks, but ts 200 > 100: under lww the newer write wins.
    let history = write_then_read(&[sib(Some("p2-7"), v(&[("n2", 1)], 200))]);
    let result = stale_reads::check(&history, &lww(strict()));
    assert_eq!(result.valid, Validity::True);
    assert_eq!(count(&result, "stale"), 0);
    // An older timestamp does not, even though its clock descends.
    let older = write_then_read(&[sib(Some("p2-7"), v(&[("n1", 2)], 50))]);
    assert_eq!(count(&stale_reads::check(&older, &lww(strict())), "stale"), 1);
}

#[test]
fn acknowledged_delete_is_owed_as_a_tombstone() {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 5, 10);
    b.at(20).invoke_delete(0, "k", "n1");
    b.at(30).ok_delete(0, "k", v(&[("n1", 2)], 110));
    // Sees the write but not its deletion: stale.
    read(&mut b, 1, "k", &[sib(Some("p0-1"), v(&[("n1", 1)], 100))], 40, 50);
    // Sees the tombstone: fine.
    read(&mut b, 2, "k", &[sib(None, v(&[("n1", 2)], 110))], 60, 70);
    let result = stale_reads::check(&b.build(), &strict());
    assert_eq!(count(&result, "stale"), 1);
    assert_eq!(count(&result, "reads_checked"), 2);
    let example = &result.figure("examples").unwrap()[0];
    assert_eq!(example["read_index"], json!(4));
    assert_eq!(example["missed_value"], json!(null));
}

#[test]
fn failed_and_unknown_writes_are_owed_to_no_one() {
    let mut b = HistoryBuilder::new();
    b.at(5).invoke_write(0, "k", "p0-1", "n1");
    b.at(10).end(0, OpType::Fail, "write", "k");
    b.at(12).invoke_write(1, "k", "p1-1", "n1");
    b.at(15).end(1, OpType::Info, "write", "k");
    read(&mut b, 2, "k", &[], 20, 30);
    assert_eq!(count(&stale_reads::check(&b.build(), &strict()), "stale"), 0);
}

#[test]
fn other_keys_are_not_owed() {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k1", "p0-1", v(&[("n1", 1)], 100), 5, 10);
    read(&mut b, 1, "k2", &[], 20, 30);
    assert_eq!(count(&stale_reads::check(&b.build(), &strict()), "stale"), 0);
}

#[test]
fn spec_example_file_has_exactly_one_stale_read() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/spec_example.jsonl");
    let history = history::read_history(&path).expect("spec example parses");
    let result = stale_reads::check(&history, &strict());
    assert_eq!(result.valid, Validity::False);
    assert_eq!(count(&result, "stale"), 1);
    let example = &result.figure("examples").unwrap()[0];
    assert_eq!(example["read_index"], json!(3));
    assert_eq!(example["node"], json!("n3"));
    assert_eq!(example["missed_write_index"], json!(0));
}

/// A small deterministic generator (64-bit LCG), enough to vary histories.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }

    fn version(&mut self) -> Version {
        let clock = ["n1", "n2", "n3"]
            .iter()
            .filter_map(|n| Some((n.to_string(), self.next(3))).filter(|(_, c)| *c > 0))
            .collect();
        Version { clock, ts: self.next(5), dot: None }
    }
}

/// A random history of writes and reads on two keys, one process per op.
fn random_history(seed: u64) -> History {
    let mut rng = Lcg(seed);
    let mut events: Vec<Op> = Vec::new();
    for p in 0..40u64 {
        let key = if rng.next(2) == 0 { "a" } else { "b" };
        let start = rng.next(200);
        let end = start + 1 + rng.next(30);
        let f = if rng.next(2) == 0 { "write" } else { "read" };
        let mut invoke = Op::client(p, OpType::Invoke, f, key, "n1");
        invoke.time = start;
        let mut done = Op::client(p, OpType::Ok, f, key, "n1");
        done.time = end;
        if f == "write" {
            done.value = json!(format!("p{p}"));
            done.version = Some(rng.version());
        } else {
            let siblings: Vec<Sibling> =
                (0..rng.next(3)).map(|_| Sibling { value: json!("x"), version: rng.version() }).collect();
            done.value = serde_json::to_value(siblings).unwrap();
        }
        events.push(invoke);
        events.push(done);
    }
    events.sort_by_key(|op| op.time);
    for (i, op) in events.iter_mut().enumerate() {
        op.index = i as u64;
    }
    History::new(events)
}

/// The definition, verbatim and quadratic.
fn brute_force_stale(history: &History, resolution: Resolution) -> u64 {
    let pairs = history.pairs();
    let acks: Vec<_> = pairs
        .iter()
        .filter(|p| p.invoke.f == "write" && p.outcome() == OpType::Ok)
        .map(|p| p.complete.unwrap())
        .collect();
    let mut stale = 0;
    for pair in pairs.iter().filter(|p| p.invoke.f == "read") {
        let siblings = pair.complete.unwrap().siblings().unwrap();
        let missed = acks.iter().any(|w| {
            w.key == pair.invoke.key
                && w.time < pair.invoke.time
                && !siblings.iter().any(|s| s.version.covers(w.version.as_ref().unwrap(), resolution))
        });
        stale += missed as u64;
    }
    stale
}

#[test]
fn frontier_count_equals_brute_force_definition() {
    let (mut stale_total, mut checked_total) = (0, 0);
    for seed in 0..200 {
        let history = random_history(seed);
        assert!(history.ops.iter().all(|op| op.process != Process::Nemesis));
        for base in [strict(), lww(strict())] {
            let run: RunConfig = base;
            let expected = brute_force_stale(&history, run.resolution);
            let got = count(&stale_reads::check(&history, &run), "stale");
            assert_eq!(got, expected, "seed {seed}, {:?}", run.resolution);
            stale_total += got;
            checked_total += count(&stale_reads::check(&history, &run), "reads_checked");
        }
    }
    // The comparison means something only if both outcomes occur often.
    assert!(stale_total > 200 && stale_total + 200 < checked_total, "{stale_total} of {checked_total}");
}

/// A write by p0 on n1 (dc1) acked at 10, then a read on `node` at 20 returning `siblings`.
fn dc1_write_then_read_on(node: &str, siblings: &[(Option<String>, Version)]) -> History {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 5, 10);
    b.at(20).invoke_read(1, "k", node);
    b.at(30).ok_read(1, "k", siblings);
    b.build()
}

#[test]
fn stale_reads_split_by_writer_and_reader_datacenter() {
    // Planted: a read in dc2 misses the write acknowledged in dc1.
    let cross = stale_reads::check(&dc1_write_then_read_on("n3", &[]), &two_dcs());
    let split = cross.figure("by_dc").expect("a multi-DC run is split");
    assert_eq!(split["dc1->dc2"], json!({"checked": 1, "stale": 1, "stale_fraction": 1.0}));
    assert!(split.get("dc1->dc1").is_none());
    // Clean: the writer's own DC sees it.
    let fresh = [sib(Some("p0-1"), v(&[("n1", 1)], 100))];
    let home = stale_reads::check(&dc1_write_then_read_on("n2", &fresh), &two_dcs());
    assert_eq!(home.figure("by_dc").unwrap()["dc1->dc1"], json!({"checked": 1, "stale": 0, "stale_fraction": 0.0}));
    // Not understood: a node the run's map does not name is `unknown`, not guessed.
    let stranger = stale_reads::check(&dc1_write_then_read_on("n9", &[]), &two_dcs());
    assert_eq!(stranger.figure("by_dc").unwrap()["dc1->unknown"]["stale"], json!(1));
    // One DC: no split at all.
    assert!(stale_reads::check(&dc1_write_then_read_on("n3", &[]), &run(3, 1, 1)).figure("by_dc").is_none());
}
