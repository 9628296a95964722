use checker::latency::{self, nearest_rank};
use checker::Validity;
use history::OpType;
use serde_json::json;

use crate::builder::*;

const MS: u64 = 1_000_000;

#[test]
fn nearest_rank_percentiles_of_known_durations() {
    let mut b = HistoryBuilder::new();
    // 100 reads taking 1..=100 ms, one after another; shuffled order
    // (durations 100, 1, 99, 2, ...) so sorting matters.
    let mut t = 0;
    for i in 0..100u64 {
        let ms = if i % 2 == 0 { 100 - i / 2 } else { 1 + i / 2 };
        b.at(t).invoke_read(i, "k", "n1");
        t += ms * MS;
        b.at(t).ok_read(i, "k", &[]);
    }
    b.at(t).invoke_write(200, "k", "p200-1", "n1");
    b.at(t + 7 * MS).end(200, OpType::Fail, "write", "k");
    b.at(t + 8 * MS).invoke_write(201, "k", "p201-1", "n1");
    let result = latency::check(&b.build(), &strict());
    assert_eq!(result.valid, Validity::True);
    let read_ok = &result.figures["by_f"]["read"]["ok"];
    assert_eq!(read_ok["count"], json!(100));
    assert_eq!(read_ok["p50_ms"], json!(50.0));
    assert_eq!(read_ok["p95_ms"], json!(95.0));
    assert_eq!(read_ok["p99_ms"], json!(99.0));
    assert_eq!(read_ok["max_ms"], json!(100.0));
    let write_fail = &result.figures["by_f"]["write"]["fail"];
    assert_eq!(write_fail["count"], json!(1));
    assert_eq!(write_fail["p99_ms"], json!(7.0));
    assert_eq!(result.figures["incomplete"], json!({"write": 1}));
    assert_eq!(result.figures["ok_ops"], json!(100));
    // Span: 0 to the fail at sum(1..=100) + 7 ms = 5057 ms.
    assert_eq!(result.figures["span_s"], json!(5.057));
    let throughput = result.figures["throughput_ok_per_s"].as_f64().unwrap();
    assert!((throughput - 100.0 / 5.057).abs() < 1e-9);
    assert_eq!(result.figures["by_phase"]["run"]["read"]["ok"]["count"], json!(100));
    assert_eq!(result.figures["percentile_method"], json!("nearest-rank"));
}

#[test]
fn nearest_rank_small_samples() {
    let s = [10.0, 20.0, 30.0, 40.0];
    assert_eq!(nearest_rank(&s, 50), Some(20.0));
    assert_eq!(nearest_rank(&s, 95), Some(40.0));
    assert_eq!(nearest_rank(&s, 0), Some(10.0));
    assert_eq!(nearest_rank(&[5.0], 99), Some(5.0));
    assert_eq!(nearest_rank(&[], 50), None);
}

#[test]
fn empty_history_is_unknown() {
    let result = latency::check(&HistoryBuilder::new().build(), &strict());
    assert_eq!(result.valid, Validity::Unknown);
}

/// Reads of `ms` each from `t0`, one after another, on process `p`.
fn reads(b: &mut HistoryBuilder, p: u64, t0: u64, n: u64, ms: u64) -> u64 {
    let mut t = t0;
    for _ in 0..n {
        b.at(t).invoke_read(p, "k", "n1");
        t += ms * MS;
        b.at(t).ok_read(p, "k", &[]);
    }
    t
}

#[test]
fn ops_in_a_latency_window_are_grouped_apart_and_their_slowdown_measured() {
    let mut b = HistoryBuilder::new();
    let t = reads(&mut b, 0, 0, 10, 2);
    b.at(t).nemesis("start-latency");
    let t = reads(&mut b, 0, t + MS, 10, 102);
    b.at(t).nemesis("stop-latency");
    reads(&mut b, 0, t + MS, 10, 3);
    let result = latency::check(&b.build(), &strict());
    let by_window = &result.figures["by_window"];
    assert_eq!(by_window["latency"]["read"]["ok"]["count"], json!(10));
    assert_eq!(by_window["none"]["read"]["ok"]["count"], json!(20));
    // Median outside: the 10th of ten 2s and ten 3s is 2 ms; inside 102 ms.
    assert_eq!(result.figures["latency_window_p50_shift_ms"], json!(100.0));
}

#[test]
fn no_latency_window_no_shift() {
    let mut b = HistoryBuilder::new();
    reads(&mut b, 0, 0, 5, 2);
    let result = latency::check(&b.build(), &strict());
    assert_eq!(result.figures["latency_window_p50_shift_ms"], json!(null));
    assert_eq!(result.figures["by_window"]["none"]["read"]["ok"]["count"], json!(5));
}
