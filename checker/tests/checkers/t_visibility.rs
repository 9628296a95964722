//! t-visibility: P(covered | t), its intervals, k-staleness and PBS.

use checker::t_visibility::{self, clopper_pearson, pbs_p_stale};
use checker::Validity;
use serde_json::Value;

use crate::builder::*;

const MS: u64 = 1_000_000;

#[test]
fn pbs_closed_form_matches_hand_computation() {
    assert!((pbs_p_stale(3, 1, 1) - 2.0 / 3.0).abs() < 1e-12);
    assert!((pbs_p_stale(5, 2, 2) - 3.0 / 10.0).abs() < 1e-12);
    assert_eq!(pbs_p_stale(3, 2, 2), 0.0);
}

#[test]
fn clopper_pearson_brackets_the_estimate() {
    let (lo, hi) = clopper_pearson(5, 10);
    assert!(lo < 0.5 && hi > 0.5 && lo > 0.15 && hi < 0.85, "{lo} {hi}");
    assert_eq!(clopper_pearson(0, 4).0, 0.0);
    assert_eq!(clopper_pearson(4, 4).1, 1.0);
    let (lo, _) = clopper_pearson(4, 4);
    assert!((lo - 0.025f64.powf(0.25)).abs() < 1e-6, "{lo}");
}

#[test]
fn planted_stale_read_lowers_the_early_bin_and_counts_in_k() {
    let mut b = HistoryBuilder::new();
    let w = v(&[("n1", 1)], 100);
    acked_write(&mut b, 0, "k", "p0-0", w.clone(), 0, MS);
    // 0.5 ms after the ack: misses it (k = 1). 300 ms after: sees it.
    read(&mut b, 1, "k", &[], MS + MS / 2, 2 * MS);
    read(&mut b, 2, "k", &[sib(Some("p0-0"), w)], 301 * MS, 302 * MS);
    let r = t_visibility::check(&b.build(), &run(3, 1, 1));
    assert_eq!(r.valid, Validity::True);
    let curve = r.figure("curve").and_then(Value::as_array).unwrap();
    assert_eq!(curve.len(), 2, "{curve:?}");
    assert_eq!(curve[0]["p_covered"].as_f64(), Some(0.0));
    assert_eq!(curve[1]["p_covered"].as_f64(), Some(1.0));
    assert_eq!(r.figure("k_staleness").unwrap()["1"], 1);
    assert_eq!(r.figure("k_staleness").unwrap()["0"], 1);
    assert!((r.figure("pbs_p_stale").unwrap().as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn clean_history_is_all_covered_and_empty_is_unknown() {
    let mut b = HistoryBuilder::new();
    let w = v(&[("n1", 1)], 100);
    acked_write(&mut b, 0, "k", "p0-0", w.clone(), 0, MS);
    read(&mut b, 1, "k", &[sib(Some("p0-0"), w)], 3 * MS, 4 * MS);
    let r = t_visibility::check(&b.build(), &strict());
    assert_eq!(r.figure("fresh_read_fraction").unwrap().as_f64(), Some(1.0));
    assert_eq!(t_visibility::check(&HistoryBuilder::new().build(), &strict()).valid, Validity::Unknown);
}

/// A `wars.json` whose every replica is remote with the given latencies, ms.
fn wars(w_ms: u32, a_ms: u32, r_ms: u32, s_ms: u32) -> history::WarsFile {
    let leg = |ms: u32| history::LegSamples { local: Vec::new(), remote: vec![ms * 1_000] };
    let legs = [("w", leg(w_ms)), ("a", leg(a_ms)), ("r", leg(r_ms)), ("s", leg(s_ms))];
    let node =
        history::NodeWars { legs: legs.into_iter().map(|(k, l)| (k.to_string(), l)).collect(), ..Default::default() };
    history::WarsFile { clock: "test".into(), nodes: [("n1".to_string(), node)].into() }
}

#[test]
fn with_timings_each_bin_gets_a_prediction_and_the_fit_its_rmse() {
    let mut b = HistoryBuilder::new();
    let w = v(&[("n1", 1)], 100);
    acked_write(&mut b, 0, "k", "p0-0", w.clone(), 0, MS);
    read(&mut b, 1, "k", &[sib(Some("p0-0"), w)], 300 * MS, 301 * MS);
    // Every replica applies within 1 ms and answers within 2: a read 300 ms
    // later must be predicted fresh, as it was measured.
    let r = t_visibility::check_with_wars(&b.build(), &run(3, 1, 1), Some(&wars(1, 1, 1, 1)));
    let curve = r.figure("curve").and_then(Value::as_array).unwrap();
    assert_eq!(curve[0]["p_predicted"].as_f64(), Some(1.0));
    assert_eq!(r.figure("pbs_rmse_bins").and_then(Value::as_u64), Some(0), "one pair is below the RMSE's minimum");
    assert_eq!(r.figure("pbs_prediction").and_then(Value::as_str), Some("wars monte carlo"));
    // (How spread in the latencies makes a prediction stale is the pbs
    // unit tests' subject.) Without timings for some leg there is no
    // prediction, and the result says so.
    let mut empty = wars(1, 1, 1, 1);
    empty.nodes.get_mut("n1").unwrap().legs.remove("s");
    let r = t_visibility::check_with_wars(&b.build(), &run(3, 1, 1), Some(&empty));
    assert!(r.figure("pbs_prediction").and_then(Value::as_str).unwrap().starts_with("none"));
    assert!(r.figure("curve").and_then(Value::as_array).unwrap()[0].get("p_predicted").is_none());
}

#[test]
fn split_by_writer_and_reader_datacenter() {
    // A write acknowledged in dc1 (on n1). Planted: a read in dc2 (n3)
    // 0.5 ms after the ack misses it. Clean: a read in dc1 (n2) sees it.
    let mut b = HistoryBuilder::new();
    let w = v(&[("n1", 1)], 100);
    acked_write(&mut b, 0, "k", "p0-0", w.clone(), 0, MS);
    b.at(MS + MS / 2).invoke_read(1, "k", "n3").invoke_read(2, "k", "n2");
    b.at(2 * MS).ok_read(1, "k", &[]).ok_read(2, "k", &[sib(Some("p0-0"), w)]);
    let r = t_visibility::check(&b.build(), &two_dcs());
    let split = r.figure("by_dc").expect("a multi-DC run is split");
    assert_eq!(split["dc1->dc2"]["pairs"], 1);
    assert_eq!(split["dc1->dc2"]["p_stale_first_bin"].as_f64(), Some(1.0));
    assert_eq!(split["dc1->dc1"]["p_stale_first_bin"].as_f64(), Some(0.0));
    assert!(split.get("dc2->dc1").is_none(), "no write was acknowledged in dc2: {split}");
    // One DC: no split at all.
    assert!(t_visibility::check(&b.build(), &run(3, 1, 1)).figure("by_dc").is_none());
}
