use checker::{linearizable, stale_reads, Validity};
use history::History;
use serde_json::json;

use crate::builder::*;

/// Write p0-1 acked; write p1-2 in flight from 40 ns to 200 ns; read A
/// (p2, 50..60) sees p1-2; read B (p3, 70..80), begun after A ended, sees
/// the older p0-1. No stale read (p1-2 was not acknowledged when B began),
/// yet no order of the four is a register's.
fn in_flight_write_seen_then_missed() -> History {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 0, 10);
    b.at(40).invoke_write(1, "k", "p1-2", "n2");
    read(&mut b, 2, "k", &[sib(Some("p1-2"), v(&[("n1", 1), ("n2", 1)], 200))], 50, 60);
    read(&mut b, 3, "k", &[sib(Some("p0-1"), v(&[("n1", 1)], 100))], 70, 80);
    b.at(200).ok_write(1, "k", "p1-2", v(&[("n1", 1), ("n2", 1)], 200));
    b.build()
}

#[test]
fn planted_non_linearizable_history_without_a_stale_read_is_flagged_with_its_witness() {
    let history = in_flight_write_seen_then_missed();
    let run = lww(strict());
    assert_eq!(count(&stale_reads::check(&history, &run), "stale"), 0, "the stale-read checker cannot see it");
    let result = linearizable::check(&history, &run);
    assert_eq!(result.figure("linearizable"), Some(&json!(false)));
    assert_eq!(result.figure("keys_violating"), Some(&json!(["k"])));
    assert_eq!(result.valid, Validity::True, "a measurement: no quorum setting promises linearizability");
    let example = &result.figure("examples").unwrap()[0];
    assert_eq!(example["minimal"], json!(true));
    assert_eq!(example["witness_indices"].as_array().unwrap().len(), 4);
    let sentence = example["sentence"].as_str().unwrap();
    assert!(sentence.contains("read (p2, 0.00-0.00 ms) saw p1-2"), "{sentence}");
    assert!(sentence.contains("so write p1-2 took effect before"), "{sentence}");
    assert!(sentence.contains("read by p3 began at"), "{sentence}");
    assert!(sentence.contains("saw the older p0-1"), "{sentence}");
}

#[test]
fn the_same_reads_in_the_other_order_are_linearizable() {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 0, 10);
    b.at(40).invoke_write(1, "k", "p1-2", "n2");
    read(&mut b, 3, "k", &[sib(Some("p0-1"), v(&[("n1", 1)], 100))], 50, 60);
    read(&mut b, 2, "k", &[sib(Some("p1-2"), v(&[("n1", 1), ("n2", 1)], 200))], 70, 80);
    b.at(200).ok_write(1, "k", "p1-2", v(&[("n1", 1), ("n2", 1)], 200));
    let result = linearizable::check(&b.build(), &lww(strict()));
    assert_eq!(result.figure("linearizable"), Some(&json!(true)));
    assert_eq!(result.figure("keys_decided"), Some(&json!(1)));
    assert_eq!(result.valid, Validity::True);
}

#[test]
fn a_read_of_several_siblings_leaves_its_key_undecided_never_guessed() {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "a", v(&[("n1", 1)], 100), 0, 10);
    acked_write(&mut b, 1, "k", "b", v(&[("n2", 1)], 100), 0, 10);
    read(&mut b, 2, "k", &[sib(Some("a"), v(&[("n1", 1)], 100)), sib(Some("b"), v(&[("n2", 1)], 100))], 20, 30);
    let result = linearizable::check(&b.build(), &strict());
    assert_eq!(result.figure("linearizable"), Some(&json!("unknown")));
    let why = &result.figure("keys_unknown").unwrap()["k"];
    assert!(why.as_str().unwrap().contains("2 concurrent versions"), "{why}");
    assert_eq!(result.valid, Validity::True, "a measurement that does not apply leaves the run's verdict alone");
}
