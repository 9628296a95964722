use checker::{read_your_writes, Validity};
use serde_json::json;

use crate::builder::*;

#[test]
fn own_write_missed_fails_a_strict_quorum_run() {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 5, 10);
    read(&mut b, 0, "k", &[], 20, 30);
    let result = read_your_writes::check(&b.build(), &strict());
    assert_eq!(result.valid, Validity::False);
    assert_eq!(count(&result, "violations"), 1);
    let example = &result.figure("examples").unwrap()[0];
    assert_eq!(example["process"], json!(0));
    assert_eq!(example["missed_value"], json!("p0-1"));
    // Weak settings: counted, not failed.
    let weak = read_your_writes::check(&b.build(), &run(3, 1, 1));
    assert_eq!(weak.valid, Validity::True);
    assert_eq!(count(&weak, "violations"), 1);
    assert_eq!(weak.figure("expected_zero"), Some(&json!(false)));
}

#[test]
fn own_write_seen_passes_and_others_writes_are_not_owed() {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 5, 10);
    // Process 1 misses p0's write: a stale read, but not its own write.
    read(&mut b, 1, "k", &[], 20, 30);
    // Process 0 sees a descendant of its write.
    read(&mut b, 0, "k", &[sib(Some("p1-1"), v(&[("n1", 1), ("n2", 1)], 120))], 40, 50);
    let result = read_your_writes::check(&b.build(), &strict());
    assert_eq!(result.valid, Validity::True);
    assert_eq!(count(&result, "violations"), 0);
    assert_eq!(count(&result, "reads_checked"), 1);
}

#[test]
fn no_read_after_own_write_is_unknown() {
    let mut b = HistoryBuilder::new();
    read(&mut b, 0, "k", &[], 5, 10);
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 20, 30);
    let result = read_your_writes::check(&b.build(), &strict());
    assert_eq!(result.valid, Validity::Unknown);
    assert!(result.figure("reason").is_some());
}

#[test]
fn violations_split_by_the_clients_datacenter() {
    // Planted: a client of dc1 (its write on n1, its read on n2) misses its own write.
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 5, 10);
    b.at(20).invoke_read(0, "k", "n2");
    b.at(30).ok_read(0, "k", &[]);
    // Clean: a client of dc2 reads its own write back.
    b.at(40).invoke_write(1, "j", "p1-1", "n3");
    b.at(50).ok_write(1, "j", "p1-1", v(&[("n3", 1)], 200));
    b.at(60).invoke_read(1, "j", "n4");
    b.at(70).ok_read(1, "j", &[sib(Some("p1-1"), v(&[("n3", 1)], 200))]);
    // Not understood: a read on a node the run's map does not name.
    b.at(80).invoke_read(0, "k", "n9");
    b.at(90).ok_read(0, "k", &[]);
    let split = read_your_writes::check(&b.build(), &two_dcs()).figure("by_dc").cloned().expect("split by DC");
    assert_eq!(split["dc1"]["violations"], json!(1));
    assert_eq!(split["dc2"], json!({"checked": 1, "violations": 0, "violation_fraction": 0.0}));
    assert_eq!(split["unknown"]["violations"], json!(1));
}
