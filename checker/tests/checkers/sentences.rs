//! The sentence on each anomaly example: it names the write and its ack,
//! the read with its coordinator and answering replicas, and the faults in
//! force; and it says so when the store did not report the replicas.

use checker::{lost_writes, monotonic_reads, read_your_writes, stale_reads};
use history::History;
use serde_json::json;

use crate::builder::*;

const MS: u64 = 1_000_000;

/// A partition from 2 to 50 ms; p0 writes `p0-1` (5-10 ms); p1 reads
/// nothing through n3 (20-30 ms), answered by n3 alone when `reported`.
fn stale_under_partition(reported: bool) -> History {
    let mut b = HistoryBuilder::new();
    b.at(2 * MS).nemesis_value("start-partition", json!({"grudge": {"n3": ["n1", "n2"]}}));
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 5 * MS, 10 * MS);
    read(&mut b, 1, "k", &[], 20 * MS, 30 * MS);
    if reported {
        b.answered_by(&["n3"]);
    }
    b.at(50 * MS).nemesis_value("stop-partition", json!({}));
    b.at(60 * MS).nemesis_value("kill", json!({"node": "n2"}));
    b.build()
}

fn sentence(result: &checker::CheckResult) -> String {
    result.figure("examples").unwrap()[0]["sentence"].as_str().expect("a sentence").to_string()
}

#[test]
fn a_stale_read_names_write_ack_read_coordinator_replicas_and_faults() {
    let text = sentence(&stale_reads::check(&stale_under_partition(true), &strict()));
    assert_eq!(
        text,
        "read of k by p1 (invoked 20.00 ms, completed 30.00 ms) through coordinator n3, answered by replicas n3, \
         returned nothing (the key absent) and missed write p0-1 by p0 through n1, acknowledged at 10.00 ms, \
         10.00 ms before the read began; faults in force during 5.00-30.00 ms: partition 2.00-50.00 ms"
    );
    let result = stale_reads::check(&stale_under_partition(true), &strict());
    assert_eq!(result.figure("examples").unwrap()[0]["answered_by"], json!(["n3"]));
}

#[test]
fn without_the_replicas_reported_the_sentence_says_so() {
    let result = stale_reads::check(&stale_under_partition(false), &strict());
    let text = sentence(&result);
    assert!(text.contains("through coordinator n3, the store did not report which replicas answered,"), "{text}");
    assert_eq!(result.figure("examples").unwrap()[0]["answered_by"], json!(null));
}

#[test]
fn a_read_your_writes_violation_says_its_own_write_and_no_fault() {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 5 * MS, 10 * MS);
    read(&mut b, 0, "k", &[sib(Some("old"), v(&[("n2", 1)], 50))], 20 * MS, 30 * MS);
    b.answered_by(&["n2", "n3"]);
    let text = sentence(&read_your_writes::check(&b.build(), &strict()));
    assert!(text.contains("answered by replicas n2, n3, returned old and missed its own write p0-1 by p0"), "{text}");
    assert!(text.ends_with("no fault window overlapped 5.00-30.00 ms"), "{text}");
}

#[test]
fn a_monotonic_violation_names_the_earlier_read() {
    let mut b = HistoryBuilder::new();
    read(&mut b, 0, "k", &[sib(Some("a"), v(&[("n1", 1)], 100))], 5 * MS, 10 * MS);
    b.answered_by(&["n1", "n2"]);
    b.at(12 * MS).nemesis_value("pause", json!({"node": "n1"}));
    read(&mut b, 0, "k", &[], 20 * MS, 30 * MS);
    b.answered_by(&["n3"]);
    let text = sentence(&monotonic_reads::check(&b.build(), &strict()));
    assert!(text.contains("returned nothing (the key absent) and lost a, which the same process's earlier read (invoked 5.00 ms, completed 10.00 ms) through n3, answered by replicas n1, n2, had seen"), "{text}");
    assert!(text.contains("faults in force during 5.00-30.00 ms: pause 12.00-30.00 ms"), "{text}");
}

#[test]
fn a_lost_add_names_the_add_and_every_final_read() {
    let mut run = strict();
    run.workload = "set".into();
    let mut b = HistoryBuilder::new();
    b.at(10 * MS).invoke_add(0, "k", "a", "n1");
    b.at(20 * MS).ok_add(0, "k", "a", v(&[("n1", 1)], 100));
    b.at(25 * MS).nemesis_value("kill", json!({"node": "n1"}));
    b.at(35 * MS).nemesis_value("restart", json!({"node": "n1"}));
    b.at(50 * MS).phase("final");
    b.at(60 * MS).invoke_read(5, "k", "n1");
    b.at(70 * MS).ok_read_set(5, "k", &[(&[], v(&[("n2", 1)], 100))]);
    b.answered_by(&["n1", "n2"]);
    b.at(80 * MS).invoke_read(6, "k", "n2");
    b.at(90 * MS).ok_read_set(6, "k", &[(&[], v(&[("n2", 1)], 100))]);
    let text = sentence(&lost_writes::check(&b.build(), &run));
    assert_eq!(
        text,
        "add of a to k by p0 (invoked 10.00 ms, acknowledged 20.00 ms) through n1 is in none of the 2 ok final reads of k \
         (through n1 at 60.00 ms, answered by replicas n1, n2; through n2 at 80.00 ms, the store did not report which \
         replicas answered); faults in force during 10.00-60.00 ms: kill 25.00-35.00 ms"
    );
}
