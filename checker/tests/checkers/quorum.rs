//! quorum: strict runs are invalid on any stale read; weak runs report.

use checker::quorum;
use checker::Validity;

use crate::builder::*;

fn stale_history() -> history::History {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "p0-0", v(&[("n1", 1)], 100), 0, 10);
    read(&mut b, 1, "k", &[], 20, 30);
    b.build()
}

#[test]
fn planted_stale_read_invalidates_a_strict_run_only() {
    let r = quorum::check(&stale_history(), &strict());
    assert_eq!(r.valid, Validity::False);
    assert_eq!(count(&r, "stale_reads"), 1);
    let weak = quorum::check(&stale_history(), &run(3, 1, 1));
    assert_eq!(weak.valid, Validity::True);
    assert_eq!(count(&weak, "stale_reads"), 1);
}

#[test]
fn clean_strict_run_is_valid() {
    let mut b = HistoryBuilder::new();
    let w = v(&[("n1", 1)], 100);
    acked_write(&mut b, 0, "k", "p0-0", w.clone(), 0, 10);
    read(&mut b, 1, "k", &[sib(Some("p0-0"), w)], 20, 30);
    assert_eq!(quorum::check(&b.build(), &strict()).valid, Validity::True);
}
