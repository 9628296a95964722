use checker::{monotonic_reads, Validity};
use serde_json::json;

use crate::builder::*;

#[test]
fn later_read_losing_a_seen_write_is_counted() {
    let mut b = HistoryBuilder::new();
    read(&mut b, 0, "k", &[sib(Some("a"), v(&[("n1", 1)], 100))], 5, 10);
    read(&mut b, 0, "k", &[], 20, 30);
    let result = monotonic_reads::check(&b.build(), &strict());
    assert_eq!(count(&result, "violations"), 1);
    assert_eq!(count(&result, "reads_checked"), 1);
    // Not promised by Dynamo, even with strict quorums: reported, valid.
    assert_eq!(result.valid, Validity::True);
    assert_eq!(result.figure("expected_zero"), Some(&json!(false)));
    let example = &result.figure("examples").unwrap()[0];
    assert_eq!(example["read_index"], json!(2));
    assert_eq!(example["earlier_read_index"], json!(0));
    assert_eq!(example["lost_value"], json!("a"));
}

#[test]
fn losing_one_of_two_concurrent_siblings_is_counted() {
    let mut b = HistoryBuilder::new();
    let a = sib(Some("a"), v(&[("n1", 1)], 100));
    let c = sib(Some("c"), v(&[("n2", 1)], 101));
    read(&mut b, 0, "k", &[a, c.clone()], 5, 10);
    read(&mut b, 0, "k", &[c], 20, 30);
    assert_eq!(count(&monotonic_reads::check(&b.build(), &strict()), "violations"), 1);
}

#[test]
fn advancing_reads_and_other_processes_are_clean() {
    let mut b = HistoryBuilder::new();
    read(&mut b, 0, "k", &[sib(Some("a"), v(&[("n1", 1)], 100))], 5, 10);
    // Another process, another key: no earlier read of theirs saw "a".
    read(&mut b, 1, "k", &[], 12, 14);
    read(&mut b, 0, "j", &[], 15, 18);
    // The same process and key, seeing a descendant, then the same again.
    read(&mut b, 0, "k", &[sib(Some("b"), v(&[("n1", 2)], 90))], 20, 30);
    read(&mut b, 0, "k", &[sib(Some("b"), v(&[("n1", 2)], 90))], 40, 50);
    let result = monotonic_reads::check(&b.build(), &strict());
    assert_eq!(result.valid, Validity::True);
    assert_eq!(count(&result, "violations"), 0);
    assert_eq!(count(&result, "reads_checked"), 2);
}
