use std::collections::BTreeMap;

use checker::{check_all, CheckResult, Results, Validity};
use serde_json::json;

use crate::builder::*;

#[test]
fn validity_serializes_as_bool_or_unknown_string() {
    assert_eq!(serde_json::to_value(Validity::True).unwrap(), json!(true));
    assert_eq!(serde_json::to_value(Validity::False).unwrap(), json!(false));
    assert_eq!(serde_json::to_value(Validity::Unknown).unwrap(), json!("unknown"));
    assert_eq!(serde_json::from_value::<Validity>(json!("unknown")).unwrap(), Validity::Unknown);
    assert!(serde_json::from_value::<Validity>(json!("maybe")).is_err());
}

#[test]
fn overall_verdict_false_beats_unknown_beats_true() {
    use Validity::*;
    assert_eq!(Validity::all([True, Unknown, False]), False);
    assert_eq!(Validity::all([True, Unknown]), Unknown);
    assert_eq!(Validity::all([True, True]), True);
}

#[test]
fn results_json_shape_and_round_trip() {
    let mut checkers = BTreeMap::new();
    checkers.insert("a".to_string(), CheckResult::new(Validity::True).with("n", json!(3)));
    checkers.insert("b".to_string(), CheckResult::new(Validity::Unknown).with("reason", json!("none")));
    let results = Results::from_checkers(checkers);
    let value = serde_json::to_value(&results).unwrap();
    assert_eq!(
        value,
        json!({"valid": "unknown", "checkers": {
            "a": {"valid": true, "n": 3},
            "b": {"valid": "unknown", "reason": "none"}
        }})
    );
    let text = serde_json::to_string(&results).unwrap();
    assert_eq!(serde_json::from_str::<Results>(&text).unwrap(), results);
}

#[test]
fn check_all_runs_every_checker() {
    let mut b = HistoryBuilder::new();
    acked_write(&mut b, 0, "k", "p0-1", v(&[("n1", 1)], 100), 5, 10);
    read(&mut b, 1, "k", &[], 20, 30);
    let results = check_all(&b.build(), &strict(), &[]);
    let names: Vec<&str> = results.checkers.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "latency",
            "linearizable",
            "monotonic-reads",
            "phantom-reads",
            "quorum",
            "read-your-writes",
            "siblings",
            "stale-reads",
            "stats",
            "t-visibility"
        ]
    );
    assert_eq!(value_of(&results, "quorum"), json!(false));
    assert_eq!(results.valid, Validity::False);
    let value = serde_json::to_value(&results).unwrap();
    assert_eq!(value["valid"], json!(false));
    assert_eq!(value["checkers"]["stale-reads"]["stale"], json!(1));
    assert_eq!(value["checkers"]["monotonic-reads"]["valid"], json!("unknown"));
    assert_eq!(value["checkers"]["stats"]["valid"], json!(true));

    let empty = check_all(&HistoryBuilder::new().build(), &strict(), &[]);
    assert_eq!(serde_json::to_value(&empty).unwrap()["valid"], json!("unknown"));
}

fn value_of(results: &Results, checker: &str) -> serde_json::Value {
    serde_json::to_value(results.checkers[checker].valid).unwrap()
}

#[test]
fn set_runs_get_the_lost_writes_checker_and_register_runs_do_not() {
    let mut run = strict();
    run.workload = "set".into();
    let results = check_all(&HistoryBuilder::new().build(), &run, &[]);
    assert!(results.checkers.contains_key("lost-writes"));
    let results = check_all(&HistoryBuilder::new().build(), &strict(), &[]);
    assert!(!results.checkers.contains_key("lost-writes"));
    assert!(!results.checkers.contains_key("hint-delivery"), "no counters: not applicable");
}
