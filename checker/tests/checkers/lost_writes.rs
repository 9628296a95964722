//! lost-writes: acknowledged adds missing from every final read are lost.

use checker::lost_writes;
use checker::Validity;
use history::OpType;

use crate::builder::*;

fn set_run(lww_mode: bool) -> history::RunConfig {
    let mut run = strict();
    run.workload = "set".into();
    if lww_mode {
        run = lww(run);
    }
    run
}

/// Two adds to k, both acked; final reads on two nodes.
fn history(final_sets: [&[&str]; 2]) -> history::History {
    let mut b = HistoryBuilder::new();
    b.at(10).invoke_add(0, "k", "a", "n1");
    b.at(20).ok_add(0, "k", "a", v(&[("n1", 1)], 100));
    b.at(30).invoke_add(1, "k", "b", "n2");
    b.at(40).ok_add(1, "k", "b", v(&[("n2", 1)], 200));
    b.at(45).invoke_add(2, "k", "c", "n3");
    b.at(46).end(2, OpType::Info, "add", "k");
    b.at(50).phase("final");
    b.at(60).invoke_read(5, "k", "n1");
    b.at(70).ok_read_set(5, "k", &[(final_sets[0], v(&[("n1", 1)], 100))]);
    b.at(80).invoke_read(6, "k", "n2");
    b.at(90).ok_read_set(6, "k", &[(final_sets[1], v(&[("n2", 1)], 200))]);
    b.build()
}

#[test]
fn planted_lost_add_is_found_and_fails_siblings_mode() {
    let h = history([&["a"], &["a"]]);
    let r = lost_writes::check(&h, &set_run(false));
    assert_eq!(count(&r, "lost"), 1, "{:?}", r.figures);
    assert_eq!(r.valid, Validity::False);
    let r = lost_writes::check(&h, &set_run(true));
    assert_eq!(count(&r, "lost"), 1);
    assert_eq!(r.valid, Validity::True, "LWW promises nothing: measured, not failed");
}

#[test]
fn union_over_nodes_counts_and_info_adds_are_recovered() {
    let h = history([&["a", "c"], &["b"]]);
    let r = lost_writes::check(&h, &set_run(false));
    assert_eq!(count(&r, "lost"), 0, "{:?}", r.figures);
    assert_eq!(count(&r, "recovered"), 1);
    assert_eq!(r.valid, Validity::True);
}

#[test]
fn a_later_add_stamped_older_is_lost_to_the_clock() {
    let mut b = HistoryBuilder::new();
    b.at(10).invoke_add(0, "k", "a", "n1");
    b.at(20).ok_add(0, "k", "a", v(&[("n1", 1)], 5_000));
    // Invoked after a's ack, but its coordinator's clock runs 4 s behind.
    b.at(30).invoke_add(1, "k", "b", "n2");
    b.at(40).ok_add(1, "k", "b", v(&[("n2", 1)], 1_000));
    b.at(50).phase("final");
    b.at(60).invoke_read(5, "k", "n1");
    b.at(70).ok_read_set(5, "k", &[(&["a"], v(&[("n1", 1)], 5_000))]);
    let r = lost_writes::check(&b.build(), &set_run(true));
    assert_eq!(count(&r, "lost"), 1);
    assert_eq!(count(&r, "lost_to_clock"), 1);
    assert_eq!(count(&r, "ts_inversions"), 1);
}

#[test]
fn no_final_read_is_unknown() {
    let mut b = HistoryBuilder::new();
    b.at(10).invoke_add(0, "k", "a", "n1");
    b.at(20).ok_add(0, "k", "a", v(&[("n1", 1)], 100));
    let r = lost_writes::check(&b.build(), &set_run(false));
    assert_eq!(r.valid, Validity::Unknown);
    assert_eq!(count(&r, "unchecked"), 1);
}
