//! phantom-reads: a read of a value (or set element) never written fails.

use checker::{phantom_reads, Validity};
use history::OpType;

use crate::builder::*;

fn register(read: Option<&str>) -> history::History {
    let mut b = HistoryBuilder::new();
    b.invoke_write(0, "k", "a", "n1").ok_write(0, "k", "a", v(&[("n1", 1)], 100));
    // A failed write may still have reached a replica: reading it is allowed.
    b.invoke_write(1, "k", "b", "n2").end(1, OpType::Fail, "write", "k");
    b.invoke_read(2, "k", "n3").ok_read(2, "k", &[sib(read, v(&[("n1", 1)], 100))]);
    b.build()
}

fn set(read: &[&str]) -> history::History {
    let mut b = HistoryBuilder::new();
    b.invoke_add(0, "k", "a", "n1").ok_add(0, "k", "a", v(&[("n1", 1)], 100));
    b.invoke_add(1, "k", "b", "n2").end(1, OpType::Info, "add", "k");
    b.invoke_add(2, "other", "z", "n2").ok_add(2, "other", "z", v(&[("n2", 1)], 100));
    b.invoke_read(3, "k", "n3").ok_read_set(3, "k", &[(read, v(&[("n1", 1)], 100))]);
    b.build()
}

#[test]
fn planted_register_value_never_written_fails() {
    let r = phantom_reads::check(&register(Some("garbage")), &strict());
    assert_eq!(count(&r, "phantoms"), 1, "{:?}", r.figures);
    assert_eq!(r.valid, Validity::False);
}

#[test]
fn planted_set_element_never_added_to_its_key_fails() {
    let r = phantom_reads::check(&set(&["a", "z"]), &strict());
    assert_eq!(count(&r, "phantoms"), 1, "an element of another key is a phantom here: {:?}", r.figures);
    assert_eq!(r.valid, Validity::False);
}

#[test]
fn written_failed_unknown_and_deleted_values_are_no_phantoms() {
    for read in [Some("a"), Some("b"), None] {
        let r = phantom_reads::check(&register(read), &strict());
        assert_eq!(r.valid, Validity::True, "{read:?}: {:?}", r.figures);
    }
    let r = phantom_reads::check(&set(&["a", "b"]), &strict());
    assert_eq!(r.valid, Validity::True, "{:?}", r.figures);
    assert_eq!(count(&r, "reads"), 1);
}

#[test]
fn no_reads_is_unknown() {
    let r = phantom_reads::check(&HistoryBuilder::new().build(), &strict());
    assert_eq!(r.valid, Validity::Unknown);
}
