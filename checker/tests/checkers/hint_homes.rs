//! hint-delivery's home check: every hinted write on its home replica.

use std::collections::BTreeMap;

use checker::{hint_delivery, CheckResult, Validity};
use history::{AdminSnapshot, History, ReplicaRead, RunConfig, Sibling, Version};
use serde_json::{json, Value};

use crate::builder::*;

const S: u64 = 1_000_000_000;

/// n1's hint counters at `time`, with `pending` hints still held.
fn pending_at(time: u64, pending: u64) -> AdminSnapshot {
    let counters = [("hints_stored", 1), ("hints_delivered", 1 - pending.min(1)), ("hints_pending", pending)];
    AdminSnapshot {
        time,
        node: "n1".into(),
        reachable: true,
        counters: counters.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
        merkle_roots: Default::default(),
    }
}

/// n3's own copy of `key` at 10 s: `siblings` (value, version).
fn on_n3(key: &str, siblings: Vec<(Value, Version)>) -> ReplicaRead {
    ReplicaRead {
        time: 10 * S,
        key: key.into(),
        node: "n3".into(),
        reachable: true,
        siblings: siblings.into_iter().map(|(value, version)| Sibling { value, version }).collect(),
        home: true,
        error: None,
    }
}

/// A register history: p0 writes k1 = "p0-1" at version {n1: 1}, acked at
/// 2 s by a stand-in for n3; healed at 5 s.
fn hinted_write() -> History {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k1", "p0-1", v(&[("n1", 1)], 100), S, 2 * S);
    b.hinted_for(&["n3"]);
    b.at(5 * S).phase("heal");
    b.build()
}

fn check(h: &History, run: &RunConfig, pending: u64, reads: Option<&[ReplicaRead]>) -> CheckResult {
    hint_delivery::check(h, run, &[pending_at(9 * S, pending)], reads).expect("applies")
}

fn home(r: &CheckResult, figure: &str) -> Value {
    r.figure("home_check").and_then(|h| h.get(figure)).cloned().unwrap_or(Value::Null)
}

#[test]
fn planted_write_missing_on_its_home_after_the_hints_drained_fails() {
    let reads = [on_n3("k1", vec![])];
    let r = check(&hinted_write(), &strict(), 0, Some(&reads));
    assert_eq!(r.valid, Validity::False, "{:?}", r.figures);
    assert_eq!(count(&r, "hinted_writes"), 1);
    assert_eq!(count(&r, "missing"), 1);
    assert_eq!(home(&r, "missing_examples"), json!([{"key": "k1", "value": "p0-1", "home": "n3"}]));
}

#[test]
fn a_home_holding_the_write_or_a_descendant_passes() {
    for version in [v(&[("n1", 1)], 100), v(&[("n1", 2), ("n2", 1)], 90)] {
        let reads = [on_n3("k1", vec![(json!("p1-7"), version)])];
        let r = check(&hinted_write(), &strict(), 0, Some(&reads));
        assert_eq!(r.valid, Validity::True, "{:?}", r.figures);
        assert_eq!((home(&r, "checked"), count(&r, "missing")), (json!(1), 0));
    }
}

#[test]
fn a_concurrent_sibling_does_not_cover_the_write() {
    let reads = [on_n3("k1", vec![(json!("p1-7"), v(&[("n2", 1)], 200))])];
    let r = check(&hinted_write(), &strict(), 0, Some(&reads));
    assert_eq!(r.valid, Validity::False, "{:?}", r.figures);
}

#[test]
fn missing_while_hints_are_pending_or_without_the_file_is_unknown() {
    let reads = [on_n3("k1", vec![])];
    let pending = check(&hinted_write(), &strict(), 1, Some(&reads));
    assert_eq!(pending.valid, Validity::Unknown, "{:?}", pending.figures);
    assert_eq!(home(&pending, "drained_before_reads"), json!(false));
    let absent = check(&hinted_write(), &strict(), 0, None);
    assert_eq!(absent.valid, Validity::Unknown);
    assert!(home(&absent, "reason").as_str().unwrap().contains("absent"));
}

#[test]
fn an_unreachable_home_is_counted_and_never_passes() {
    let mut read = on_n3("k1", vec![]);
    read.reachable = false;
    let r = check(&hinted_write(), &strict(), 0, Some(&[read]));
    assert_eq!(r.valid, Validity::Unknown, "{:?}", r.figures);
    assert_eq!(home(&r, "unreachable_homes"), json!(1));
    assert_eq!(home(&r, "checked"), json!(0));
}

#[test]
fn an_added_element_present_in_the_union_covers_the_add() {
    let mut run = lww(strict());
    run.workload = "set".into();
    let mut b = HistoryBuilder::new();
    b.at(S).invoke_add(0, "k1", "p0-1", "n1");
    b.at(2 * S).ok_add(0, "k1", "p0-1", v(&[("n1", 1)], 100)).hinted_for(&["n3"]);
    let h = b.build();
    // An older-by-lww sibling that still carries the element: covered.
    let kept = [on_n3("k1", vec![(json!(["p0-1", "p2-3"]), v(&[("n2", 1)], 50))])];
    assert_eq!(check(&h, &run, 0, Some(&kept)).valid, Validity::True);
    let lost = [on_n3("k1", vec![(json!(["p2-3"]), v(&[("n2", 1)], 50))])];
    let r = check(&h, &run, 0, Some(&lost));
    assert_eq!(r.valid, Validity::False, "{:?}", r.figures);
}

#[test]
fn a_home_killed_after_the_ack_on_memory_storage_is_not_judged() {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k1", "p0-1", v(&[("n1", 1)], 100), S, 2 * S);
    b.hinted_for(&["n3"]);
    b.at(3 * S).nemesis_value("kill", json!({"nodes": ["n3"]}));
    let mut run = strict();
    run.labels.storage = Some("memory".into());
    let reads = [on_n3("k1", vec![])];
    let r = check(&b.build(), &run, 0, Some(&reads));
    assert_eq!(home(&r, "lost_to_kill"), json!(1));
    assert_eq!(r.valid, Validity::Unknown, "nothing judged is never true: {:?}", r.figures);
    run.labels.storage = Some("lsm".into());
    assert_eq!(check(&b.build(), &run, 0, Some(&reads)).valid, Validity::False, "lsm keeps it");
}

#[test]
fn runs_without_hinted_writes_are_judged_by_their_counters_alone() {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k1", "p0-1", v(&[("n1", 1)], 100), S, 2 * S);
    let r = check(&b.build(), &strict(), 0, None);
    assert_eq!(r.valid, Validity::True, "{:?}", r.figures);
    assert_eq!(count(&r, "hinted_writes"), 0);
}
