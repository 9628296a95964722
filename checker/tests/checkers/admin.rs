//! hint-delivery and convergence, from admin snapshots.

use std::collections::BTreeMap;

use checker::{convergence, hint_delivery, Validity};
use history::AdminSnapshot;
use serde_json::json;

use crate::builder::*;

const S: u64 = 1_000_000_000;

fn snap(time: u64, node: &str, counters: &[(&str, u64)], roots: &[(&str, &str)]) -> AdminSnapshot {
    AdminSnapshot {
        time,
        node: node.into(),
        reachable: true,
        counters: counters.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
        merkle_roots: roots.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

fn healed_at(t: u64) -> history::History {
    let mut b = HistoryBuilder::new();
    b.at(t).phase("heal");
    b.build()
}

#[test]
fn hints_drain_after_heal_is_measured() {
    let admin = vec![
        snap(S, "n1", &[("hints_stored", 5), ("hints_pending", 5)], &[]),
        snap(3 * S, "n1", &[("hints_stored", 5), ("hints_delivered", 5), ("hints_pending", 0)], &[]),
    ];
    let r = hint_delivery::check(&healed_at(2 * S), &strict(), &admin, None).expect("applies");
    assert_eq!(r.valid, Validity::True);
    assert_eq!(count(&r, "delivered"), 5);
    assert_eq!(count(&r, "drain_ms_after_heal"), 1_000);
    assert_eq!(r.figure("drained"), Some(&json!(true)));
}

#[test]
fn planted_impossible_counters_fail_and_no_counters_do_not_apply() {
    let admin = vec![snap(S, "n1", &[("hints_stored", 1), ("hints_delivered", 3)], &[])];
    let r = hint_delivery::check(&healed_at(0), &strict(), &admin, None).unwrap();
    assert_eq!(r.valid, Validity::False);
    let none = vec![snap(S, "n1", &[("requests", 1)], &[])];
    assert!(hint_delivery::check(&healed_at(0), &strict(), &none, None).is_none());
}

#[test]
fn a_restarted_node_sums_its_incarnations_and_is_not_judged() {
    let admin = vec![
        snap(S, "n2", &[("hints_stored", 4), ("hints_pending", 4)], &[]),
        // Killed and restarted: counters start again; the persisted hints are delivered.
        snap(3 * S, "n2", &[("hints_stored", 0), ("hints_delivered", 4), ("hints_pending", 0)], &[]),
    ];
    let r = hint_delivery::check(&healed_at(2 * S), &strict(), &admin, None).unwrap();
    assert_eq!(r.valid, Validity::True, "{:?}", r.figures);
    assert_eq!(count(&r, "stored"), 4);
    assert_eq!(count(&r, "delivered"), 4);
    assert_eq!(r.figure("restarted_nodes"), Some(&json!(["n2"])));
}

#[test]
fn planted_diverged_roots_never_converge() {
    let admin = vec![snap(3 * S, "n1", &[], &[("n1+n2", "aa")]), snap(3 * S, "n2", &[], &[("n1+n2", "bb")])];
    let r = convergence::check(&healed_at(2 * S), &strict(), &admin).expect("applies");
    assert_eq!(r.figure("converged"), Some(&json!(false)));
    assert_eq!(r.figure("converged_ms_after_heal"), Some(&json!(null)));
}

#[test]
fn roots_that_agree_later_converge_with_a_time() {
    let admin = vec![
        snap(3 * S, "n1", &[], &[("n1+n2", "aa")]),
        snap(3 * S, "n2", &[], &[("n1+n2", "bb")]),
        snap(5 * S, "n2", &[], &[("n1+n2", "aa")]),
    ];
    let r = convergence::check(&healed_at(2 * S), &strict(), &admin).unwrap();
    assert_eq!(r.figure("converged"), Some(&json!(true)));
    assert_eq!(count(&r, "converged_ms_after_heal"), 3_000);
    let mut b = HistoryBuilder::new();
    b.at(2 * S).phase("heal");
    b.at(4 * S).phase("final");
    let r = convergence::check(&b.build(), &strict(), &admin).unwrap();
    assert_eq!(count(&r, "converged_ms_after_writes_stop"), 1_000);
    assert!(convergence::check(&healed_at(0), &strict(), &[snap(S, "n1", &[], &[])]).is_none());
}

/// Heal at 2 s, writes stop at 4 s; `roots` per node from then on, the
/// last snapshot `watched_s` after the writes stopped.
fn settled(roots: [&str; 2], watched_s: u64) -> (history::History, Vec<AdminSnapshot>) {
    let mut b = HistoryBuilder::new();
    b.at(2 * S).phase("heal");
    b.at(4 * S).phase("final");
    let end = (4 + watched_s) * S;
    let admin = vec![
        snap(3 * S, "n1", &[], &[("n1+n2", "aa")]),
        snap(3 * S, "n2", &[], &[("n1+n2", "bb")]),
        snap(end, "n1", &[], &[("n1+n2", roots[0])]),
        snap(end, "n2", &[], &[("n1+n2", roots[1])]),
    ];
    (b.build(), admin)
}

fn with_anti_entropy(on: bool) -> history::RunConfig {
    let mut run = strict();
    run.anti_entropy = on;
    run
}

#[test]
fn planted_replicas_that_never_agree_with_anti_entropy_on_are_invalid() {
    let (history, admin) = settled(["aa", "bb"], 8);
    let r = convergence::check(&history, &with_anti_entropy(true), &admin).unwrap();
    assert_eq!(r.valid, Validity::False, "{r:?}");
    assert_eq!(r.figure("converged"), Some(&json!(false)));
    assert_eq!(count(&r, "watched_ms_after_writes_stop"), 8_000);
}

#[test]
fn replicas_that_agree_after_the_writes_stop_are_valid() {
    let (history, admin) = settled(["aa", "aa"], 8);
    let r = convergence::check(&history, &with_anti_entropy(true), &admin).unwrap();
    assert_eq!(r.valid, Validity::True, "{r:?}");
    assert_eq!(count(&r, "converged_ms_after_writes_stop"), 8_000);
}

#[test]
fn a_watch_shorter_than_a_few_intervals_or_anti_entropy_off_cannot_fail() {
    let (history, admin) = settled(["aa", "bb"], 2);
    let r = convergence::check(&history, &with_anti_entropy(true), &admin).unwrap();
    assert_eq!(r.valid, Validity::Unknown, "{r:?}");
    assert!(r.figure("undecided").and_then(|w| w.as_str()).unwrap().contains("fewer than 3 anti-entropy intervals"));
    let (history, admin) = settled(["aa", "bb"], 8);
    let r = convergence::check(&history, &with_anti_entropy(false), &admin).unwrap();
    assert_eq!(r.valid, Validity::True, "nothing promises agreement without anti-entropy");
}

#[test]
fn a_node_that_left_stops_counting_once_its_last_snapshot_is_stale() {
    // n3 left after its snapshot at 1 s; n1 and n2 agree from 5 s on.
    let admin = vec![
        snap(S, "n3", &[], &[("n1+n2+n3", "old")]),
        snap(5 * S, "n1", &[], &[("n1+n2+n3", "aa")]),
        snap(5 * S, "n2", &[], &[("n1+n2+n3", "aa")]),
    ];
    let r = convergence::check(&healed_at(0), &with_anti_entropy(true), &admin).unwrap();
    assert_eq!(r.figure("converged"), Some(&json!(true)), "{r:?}");
}
