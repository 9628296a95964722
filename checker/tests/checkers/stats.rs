use checker::{stats, Validity};
use history::{History, OpType};
use serde_json::json;

use crate::builder::*;

/// Phase "run" (implicit): write ok, write fail, read ok, read info.
/// Phase "heal": read ok, delete ok, write fail, read never completed.
fn fixed_history() -> History {
    let mut b = HistoryBuilder::new();
    b.invoke_write(0, "k", "p0-1", "n1").ok_write(0, "k", "p0-1", v(&[("n1", 1)], 1));
    b.invoke_write(0, "k", "p0-2", "n1").end(0, OpType::Fail, "write", "k");
    b.invoke_read(1, "k", "n2").ok_read(1, "k", &[]);
    b.invoke_read(1, "k", "n2").end(1, OpType::Info, "read", "k");
    b.nemesis("start-partition").phase("heal");
    b.invoke_read(2, "k", "n2").ok_read(2, "k", &[]);
    b.invoke_delete(0, "k", "n1").ok_delete(0, "k", v(&[("n1", 2)], 2));
    b.invoke_write(0, "k", "p0-3", "n1").end(0, OpType::Fail, "write", "k");
    b.invoke_read(3, "k", "n3");
    b.build()
}

#[test]
fn percentages_are_exact_on_a_fixed_history() {
    let result = stats::check(&fixed_history(), &strict());
    assert_eq!(result.valid, Validity::True);
    let f = &result.figures;
    assert_eq!(f["total"], json!(8));
    assert_eq!((f["ok"].clone(), f["fail"].clone(), f["info"].clone()), (json!(4), json!(2), json!(2)));
    assert_eq!(f["ok_pct"], json!(50.0));
    assert_eq!(f["fail_pct"], json!(25.0));
    assert_eq!(f["info_pct"], json!(25.0));
    assert_eq!(f["availability"], json!(0.5));
    assert_eq!(f["incomplete"], json!(1));
    assert_eq!(f["nemesis_events"], json!(1));
    let write = &f["by_f"]["write"];
    assert_eq!((write["total"].clone(), write["ok"].clone(), write["fail"].clone()), (json!(3), json!(1), json!(2)));
    assert_eq!(f["by_f"]["read"]["info_pct"], json!(50.0));
    assert_eq!(f["by_f"]["delete"]["availability"], json!(1.0));
    let run = &f["by_phase"]["run"];
    assert_eq!((run["ok"].clone(), run["fail"].clone(), run["info"].clone()), (json!(2), json!(1), json!(1)));
    let heal = &f["by_phase"]["heal"];
    assert_eq!((heal["ok"].clone(), heal["fail"].clone(), heal["info"].clone()), (json!(2), json!(1), json!(1)));
    assert_eq!(f["by_phase"].as_object().unwrap().len(), 2);
}

#[test]
fn op_invoked_before_a_phase_marker_stays_in_its_phase() {
    let mut b = HistoryBuilder::new();
    b.invoke_read(0, "k", "n1").phase("quiet").ok_read(0, "k", &[]);
    let result = stats::check(&b.build(), &strict());
    assert_eq!(result.figures["by_phase"]["run"]["ok"], json!(1));
    assert!(result.figures["by_phase"].get("quiet").is_none());
}

#[test]
fn no_client_ops_is_unknown() {
    let mut b = HistoryBuilder::new();
    b.phase("run").nemesis("kill");
    let result = stats::check(&b.build(), &strict());
    assert_eq!(result.valid, Validity::Unknown);
    assert_eq!(result.figures["total"], json!(0));
}

#[test]
fn offered_load_reports_the_achieved_rate_and_the_dropped_arrivals() {
    let mut b = HistoryBuilder::new();
    b.invoke_write(0, "k", "p0-1", "n1").ok_write(0, "k", "p0-1", v(&[("n1", 1)], 1));
    let summary = json!({"arrival": "open", "target_rate_per_s": 200.0, "duration_s": 10.0,
                         "arrivals": 2000, "issued": 1500, "dropped_arrivals": 500});
    b.nemesis_value("workload", summary);
    let result = stats::check(&b.build(), &strict());
    let load = &result.figures["offered_load"];
    assert_eq!(load["achieved_rate_per_s"], json!(150.0));
    assert_eq!(load["dropped_fraction"], json!(0.25));
    assert_eq!(load["dropped_arrivals"], json!(500));
    assert_eq!(result.figures["nemesis_events"], json!(0), "the summary is not a fault");
    assert_eq!(stats::check(&fixed_history(), &strict()).figures["offered_load"], json!(null));
}
