//! Input a checker does not understand: an op type it does not know (a
//! `cas`), or an answer it cannot parse (a read sibling without its
//! `version`). Each checker that interprets ops must count it and say
//! `unknown` with the reason, never pass or fail on the rest as if the
//! history held nothing else. `stats` and `latency` count every op by its
//! `f` and parse no answer, so every op is one they understand; their
//! tests show a `cas` counted, not dropped.

use checker::{
    consistent_prefix, linearizable, lost_writes, monotonic_reads, phantom_reads, quorum, read_your_writes, siblings,
    stale_reads, stats, t_visibility, CheckResult, Validity,
};
use history::{History, OpType, RunConfig};
use serde_json::{json, Value};

use crate::builder::*;

/// A clean history: a write acked, then a process reads it twice.
fn clean() -> HistoryBuilder {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "a", v(&[("n1", 1)], 100), 0, 10);
    read(&mut b, 0, "k", &[sib(Some("a"), v(&[("n1", 1)], 100))], 20, 30);
    read(&mut b, 0, "k", &[sib(Some("a"), v(&[("n1", 1)], 100))], 40, 50);
    b
}

/// [`clean`] plus an acknowledged `cas` from `a` to `b` on the same key.
fn with_cas() -> History {
    let mut b = clean();
    b.at(60).invoke_write(1, "k", "b", "n1");
    let mut ops = b.build().ops;
    let cas = ops.last_mut().expect("the cas invocation");
    cas.f = "cas".to_string();
    cas.value = json!(["a", "b"]);
    let mut done = cas.clone();
    (done.index, done.time, done.kind) = (done.index + 1, 70, OpType::Ok);
    ops.push(done);
    History::new(ops)
}

/// [`clean`] plus an `ok` read whose sibling has no `version`.
fn with_unversioned_sibling() -> History {
    let mut b = clean();
    b.at(60).invoke_read(1, "k", "n2");
    b.at(70).ok_read(1, "k", &[]);
    let mut ops = b.build().ops;
    ops.last_mut().expect("the read's ok").value = json!([{"value": "a"}]);
    History::new(ops)
}

/// The checker's verdict is `unknown`, and its reason names `what`.
fn assert_unknown_naming(result: &CheckResult, what: &str, checker: &str) {
    assert_eq!(result.valid, Validity::Unknown, "{checker}: {:?}", result.figures);
    assert_eq!(result.figure("ops_not_understood"), Some(&json!(1)), "{checker}");
    let reason = result.figure("reason").and_then(Value::as_str).unwrap_or_default();
    assert!(reason.contains(what) && reason.contains("not understood"), "{checker}: {reason}");
}

/// The clean history is judged (not `unknown`), and each malformed one is `unknown`.
fn judge_all(checker: &str, check: fn(&history::compact::CompactHistory, &RunConfig) -> CheckResult, run: &RunConfig) {
    let clean = check(clean().build().compact(), run);
    assert_ne!(clean.valid, Validity::Unknown, "{checker} decides the clean history: {:?}", clean.figures);
    assert_eq!(clean.figure("ops_not_understood"), Some(&json!(0)), "{checker}");
    assert_unknown_naming(&check(with_cas().compact(), run), "\"cas\"", checker);
    assert_unknown_naming(&check(with_unversioned_sibling().compact(), run), "{value, version}", checker);
}

#[test]
fn stale_reads_calls_an_unknown_op_or_an_unparsed_read_unknown() {
    judge_all(stale_reads::NAME, stale_reads::check, &strict());
}

#[test]
fn read_your_writes_calls_an_unknown_op_or_an_unparsed_read_unknown() {
    judge_all(read_your_writes::NAME, read_your_writes::check, &strict());
}

#[test]
fn monotonic_reads_calls_an_unknown_op_or_an_unparsed_read_unknown() {
    judge_all(monotonic_reads::NAME, monotonic_reads::check, &strict());
}

#[test]
fn quorum_calls_an_unknown_op_or_an_unparsed_read_unknown() {
    judge_all(quorum::NAME, quorum::check, &strict());
}

#[test]
fn siblings_calls_an_unknown_op_or_an_unparsed_read_unknown() {
    judge_all(siblings::NAME, siblings::check, &strict());
}

#[test]
fn t_visibility_calls_an_unknown_op_or_an_unparsed_read_unknown() {
    judge_all(t_visibility::NAME, t_visibility::check, &strict());
}

#[test]
fn phantom_reads_calls_an_unknown_op_or_an_unparsed_read_unknown() {
    judge_all(phantom_reads::NAME, phantom_reads::check, &strict());
}

#[test]
fn linearizable_calls_an_unknown_op_or_an_unparsed_read_unknown_and_leaves_the_key_undecided() {
    let run = lww(strict());
    judge_all(linearizable::NAME, linearizable::check, &run);
    for history in [with_cas(), with_unversioned_sibling()] {
        let result = linearizable::check(&history, &run);
        assert_eq!(result.figure("linearizable"), Some(&json!("unknown")), "never a verdict on the key");
        assert_eq!(result.figure("keys_decided"), Some(&json!(0)));
        let why = result.figure("keys_unknown").and_then(|u| u["k"].as_str()).unwrap_or_default();
        assert!(why.contains("is not understood"), "{why}");
    }
}

#[test]
fn linearizable_still_decides_the_keys_it_understands() {
    let mut ops = with_cas().ops;
    // The same history again on another key, without the cas: decided.
    let other: Vec<history::Op> = clean()
        .build()
        .ops
        .into_iter()
        .map(|mut op| {
            op.key = Some("j".to_string());
            op.process = history::Process::Client(10 + op.index);
            op.index += 100;
            op
        })
        .collect();
    ops.extend(other);
    let result = linearizable::check(&History::new(ops), &lww(strict()));
    assert_eq!(result.valid, Validity::Unknown);
    assert_eq!(result.figure("keys_decided"), Some(&json!(1)));
    assert_eq!(result.figure("linearizable"), Some(&json!("unknown")));
}

#[test]
fn linearizable_is_never_true_beside_an_op_it_could_not_place_on_a_key() {
    // Every keyed op is decided and linearizable; one client op has no key,
    // so no key's verdict covers it: the answer is not `true`.
    let mut ops = clean().build().ops;
    let mut keyless = ops[0].clone();
    (keyless.index, keyless.time, keyless.key) = (ops.len() as u64, 100, None);
    keyless.process = history::Process::Client(9);
    ops.push(keyless);
    let result = linearizable::check(&History::new(ops), &lww(strict()));
    assert_eq!(result.figure("keys_decided"), Some(&json!(1)));
    assert_eq!(result.valid, Validity::Unknown);
    assert_eq!(result.figure("linearizable"), Some(&json!("unknown")));
}

/// A register history is not a set, and a set run's checker says so.
fn set_run() -> RunConfig {
    let mut run = strict();
    run.workload = "set".to_string();
    run
}

/// Two adds acked, a final read holding both.
fn clean_set() -> HistoryBuilder {
    let mut b = HistoryBuilder::new();
    b.at(0).invoke_add(0, "k", "x", "n1");
    b.at(10).ok_add(0, "k", "x", v(&[("n1", 1)], 100));
    b.at(50).phase("final");
    b.at(60).invoke_read(5, "k", "n1");
    b.at(70).ok_read_set(5, "k", &[(&["x"], v(&[("n1", 1)], 100))]);
    b
}

#[test]
fn lost_writes_calls_an_unknown_op_or_an_unparsed_final_read_unknown() {
    let run = set_run();
    assert_eq!(lost_writes::check(&clean_set().build(), &run).valid, Validity::True);
    let mut remove = clean_set();
    remove.at(80).invoke_add(1, "k", "x", "n1");
    let mut ops = remove.build().ops;
    ops.last_mut().expect("the remove").f = "remove".to_string();
    assert_unknown_naming(&lost_writes::check(&History::new(ops), &run), "\"remove\"", lost_writes::NAME);
    let mut ops = clean_set().build().ops;
    ops.last_mut().expect("the final read's ok").value = json!([{"value": 3, "version": v(&[("n1", 1)], 100)}]);
    assert_unknown_naming(&lost_writes::check(&History::new(ops), &run), "final read", lost_writes::NAME);
}

#[test]
fn consistent_prefix_calls_an_unknown_op_or_an_unparsed_read_unknown() {
    let mut run = strict();
    run.workload = "prefix".to_string();
    for (history, what) in [(with_cas(), "\"cas\""), (with_unversioned_sibling(), "{value, version}")] {
        assert_unknown_naming(&consistent_prefix::check(&history, &run), what, consistent_prefix::NAME);
    }
}

#[test]
fn stats_counts_an_unknown_op_by_its_type_never_drops_it() {
    let result = stats::check(&with_cas(), &strict());
    let text = serde_json::to_string(&result.figures).expect("figures serialize");
    assert!(text.contains("\"cas\""), "{text}");
}
