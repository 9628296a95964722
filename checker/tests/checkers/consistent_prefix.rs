//! Consistent-prefix reads: a planted observer that sees an answer without
//! its question must be flagged; one that sees both must pass.

use checker::{check_all, consistent_prefix, Validity};
use history::{answer_value, History, OpType, RunConfig, Version};
use serde_json::json;

use crate::builder::*;

const MS: u64 = 1_000_000;

/// The question `p0-0` on k0, acknowledged at 2 ms.
fn question() -> Version {
    v(&[("n1", 1)], 100)
}

/// p0 asks `p0-0` on k0 (1-2 ms), reads it back (3-4 ms) and answers it on
/// k1 (5-6 ms); p1 then reads the answer (7-8 ms).
fn answer_read() -> HistoryBuilder {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k0", "p0-0", question(), MS, 2 * MS);
    read(&mut b, 0, "k0", &[sib(Some("p0-0"), question())], 3 * MS, 4 * MS);
    let answer = answer_value("p0-1", &["p0-0"]);
    acked_write(&mut b, 0, "k1", &answer, v(&[("n2", 1)], 101), 5 * MS, 6 * MS);
    read(&mut b, 1, "k1", &[sib(Some(&answer), v(&[("n2", 1)], 101))], 7 * MS, 8 * MS);
    b
}

/// [`answer_read`], then p1 reads k0, which returns `question_read` (9-10 ms).
fn observed(question_read: &[(Option<String>, Version)]) -> HistoryBuilder {
    let mut b = answer_read();
    read(&mut b, 1, "k0", question_read, 9 * MS, 10 * MS);
    b
}

fn prefix_run(mut run: RunConfig) -> RunConfig {
    run.workload = "prefix".into();
    run
}

fn check(history: &History, run: &RunConfig) -> checker::CheckResult {
    consistent_prefix::check(history, &prefix_run(run.clone()))
}

#[test]
fn an_answer_seen_without_its_acknowledged_question_is_flagged() {
    let h = observed(&[]).build();
    let result = check(&h, &strict());
    assert_eq!(count(&result, "observations"), 1);
    assert_eq!(count(&result, "violations"), 1);
    assert_eq!(count(&result, "violations_after_ack"), 1);
    assert_eq!(result.valid, Validity::False, "a strict quorum promised the acknowledged question");
    let example = &result.figure("examples").unwrap()[0];
    assert_eq!(example["answer_read_index"], json!(6));
    assert_eq!(example["question_read_index"], json!(8));
    assert_eq!(example["question_write_index"], json!(0));
    assert_eq!(example["missing_question"], json!("p0-0"));
    assert_eq!(example["question_acknowledged_before_read"], json!(true));
    assert_eq!(
        example["sentence"].as_str().unwrap(),
        "read of k1 by p1 (invoked 7.00 ms, completed 8.00 ms) through coordinator n3, the store did not report \
         which replicas answered, returned p0-1 answers p0-0, so it saw answer p0-1 to question p0-0 (written to \
         k0 by p0 through n1, acknowledged at 2.00 ms, 7.00 ms before the question read began); then the same \
         process's read of k0 by p1 (invoked 9.00 ms, completed 10.00 ms) through coordinator n3, the store did \
         not report which replicas answered, returned nothing (the key absent), which does not cover p0-0: the \
         answer was seen without its question; no fault window overlapped 1.00-10.00 ms"
    );
}

#[test]
fn an_answer_seen_with_its_question_passes() {
    let result = check(&observed(&[sib(Some("p0-0"), question())]).build(), &strict());
    assert_eq!((count(&result, "observations"), count(&result, "violations")), (1, 0));
    assert_eq!(result.valid, Validity::True);
}

#[test]
fn an_older_question_is_flagged_and_a_newer_one_covers_it_under_lww() {
    let older = [sib(Some("p9-0"), v(&[("n1", 1)], 50))];
    let newer = [sib(Some("p9-0"), v(&[("n3", 1)], 150))];
    let mut with_older = observed(&older);
    let mut with_newer = observed(&newer);
    for b in [&mut with_older, &mut with_newer] {
        acked_write(b, 9, "k0", "p9-0", v(&[("n3", 1)], 150), 20 * MS, 21 * MS);
    }
    assert_eq!(count(&check(&with_older.build(), &lww(strict())), "violations"), 1);
    assert_eq!(count(&check(&with_newer.build(), &lww(strict())), "violations"), 0);
    // Under siblings the newer question is concurrent with p0-0: it does not cover it.
    assert_eq!(count(&check(&with_newer.build(), &strict()), "violations"), 1);
}

#[test]
fn a_question_read_in_flight_is_counted_but_promised_by_no_quorum() {
    // p2's question is read back by p0 while in flight (acknowledged at 30 ms), and answered.
    let mut b = HistoryBuilder::new();
    let q = v(&[("n2", 1)], 100);
    b.at(MS).invoke_write(2, "k0", "p2-0", "n2");
    read(&mut b, 0, "k0", &[sib(Some("p2-0"), q.clone())], 3 * MS, 4 * MS);
    let answer = answer_value("p0-1", &["p2-0"]);
    acked_write(&mut b, 0, "k1", &answer, v(&[("n1", 1)], 101), 5 * MS, 6 * MS);
    read(&mut b, 1, "k1", &[sib(Some(&answer), v(&[("n1", 1)], 101))], 7 * MS, 8 * MS);
    read(&mut b, 1, "k0", &[], 9 * MS, 10 * MS);
    b.at(30 * MS).ok_write(2, "k0", "p2-0", q);
    let result = check(&b.build(), &strict());
    assert_eq!(count(&result, "violations_in_flight"), 1);
    assert_eq!(count(&result, "violations_after_ack"), 0);
    assert_eq!(result.valid, Validity::True, "no quorum setting promises what was read in flight");
    let text = result.figure("examples").unwrap()[0]["sentence"].as_str().unwrap().to_string();
    assert!(text.contains("acknowledged only at 30.00 ms, after the question read began"), "{text}");
}

#[test]
fn weak_quorums_measure_without_failing() {
    let result = check(&observed(&[]).build(), &run(3, 1, 1));
    assert_eq!(count(&result, "violations"), 1);
    assert_eq!(result.valid, Validity::True);
    assert_eq!(result.figure("expected_zero_after_ack"), Some(&json!(false)));
}

#[test]
fn only_the_next_op_of_the_same_process_on_the_question_key_is_an_observation() {
    // The answer read is followed by a read of another key (as the final reads do), and
    // another process reads k0: neither is this observation's question read.
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k0", "p0-0", question(), MS, 2 * MS);
    let answer = answer_value("p0-1", &["p0-0"]);
    acked_write(&mut b, 0, "k1", &answer, v(&[("n2", 1)], 101), 5 * MS, 6 * MS);
    read(&mut b, 1, "k1", &[sib(Some(&answer), v(&[("n2", 1)], 101))], 7 * MS, 8 * MS);
    read(&mut b, 1, "k2", &[], 9 * MS, 10 * MS);
    read(&mut b, 3, "k0", &[], 11 * MS, 12 * MS);
    let result = check(&b.build(), &strict());
    assert_eq!(count(&result, "observations"), 0);
    assert_eq!(result.valid, Validity::Unknown);
}

#[test]
fn a_question_read_that_did_not_complete_is_incomplete_not_judged() {
    let mut b = answer_read();
    b.at(9 * MS).invoke_read(1, "k0", "n3").end(1, OpType::Info, "read", "k0");
    let result = check(&b.build(), &strict());
    assert_eq!((count(&result, "observations"), count(&result, "incomplete_observations")), (0, 1));
    assert_eq!(result.valid, Validity::Unknown);
}

#[test]
fn an_answer_to_a_question_never_written_is_unresolved_not_a_violation() {
    let mut b = HistoryBuilder::new();
    let answer = answer_value("p0-1", &["p7-7"]);
    acked_write(&mut b, 0, "k1", &answer, v(&[("n2", 1)], 101), MS, 2 * MS);
    read(&mut b, 1, "k1", &[sib(Some(&answer), v(&[("n2", 1)], 101))], 3 * MS, 4 * MS);
    read(&mut b, 1, "k0", &[], 5 * MS, 6 * MS);
    read(&mut b, 2, "k1", &[sib(Some(&answer), v(&[("n2", 1)], 101))], 3 * MS, 4 * MS);
    let result = check(&b.build(), &strict());
    assert_eq!((count(&result, "unresolved_questions"), count(&result, "violations")), (1, 0));
}

#[test]
fn the_catalogue_runs_it_on_prefix_runs_only() {
    let h = observed(&[]).build();
    assert!(check_all(&h, &prefix_run(strict()), &[]).checkers.contains_key(consistent_prefix::NAME));
    assert!(!check_all(&h, &strict(), &[]).checkers.contains_key(consistent_prefix::NAME));
}
