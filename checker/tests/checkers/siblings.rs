//! siblings: the histogram of versions per read.

use checker::siblings;
use checker::Validity;

use crate::builder::*;

#[test]
fn planted_multi_version_read_is_counted() {
    let mut b = HistoryBuilder::new();
    read(&mut b, 0, "k", &[sib(Some("a"), v(&[("n1", 1)], 1)), sib(Some("b"), v(&[("n2", 1)], 1))], 10, 20);
    read(&mut b, 1, "k", &[sib(Some("a"), v(&[("n1", 1)], 1))], 30, 40);
    let r = siblings::check(&b.build(), &strict());
    assert_eq!(count(&r, "multi_version_reads"), 1);
    assert_eq!(count(&r, "max_siblings"), 2);
    assert_eq!(r.figure("single_version_fraction").unwrap().as_f64(), Some(0.5));
}

#[test]
fn clean_reads_are_all_single_version_and_no_reads_is_unknown() {
    let mut b = HistoryBuilder::new();
    read(&mut b, 0, "k", &[], 10, 20);
    read(&mut b, 1, "k", &[sib(Some("a"), v(&[("n1", 1)], 1))], 30, 40);
    let r = siblings::check(&b.build(), &strict());
    assert_eq!(count(&r, "multi_version_reads"), 0);
    assert_eq!(r.valid, Validity::True);
    assert_eq!(siblings::check(&HistoryBuilder::new().build(), &strict()).valid, Validity::Unknown);
}
