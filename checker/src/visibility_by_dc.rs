//! t-visibility split by datacenter: how soon a write acknowledged in one
//! DC becomes visible to reads in each DC.
//!
//! Under `local` quorums a write is acknowledged inside its own DC and
//! crosses the WAN afterwards, so the single t-visibility curve of a
//! multi-DC run averages two very different ones: reads at home see a
//! write almost at once, reads across the WAN only after a replication
//! delay. This pass gives each (writer DC, reader DC) pair its own
//! figures, counted by the same pairing as the undivided curve
//! ([`crate::visibility_pairs::Pairs::of`]) over that pair's acks and
//! reads alone. With D datacenters that is D² passes over slices that add
//! up to the history D times, so the cost stays linear in the history for
//! a fixed D (D is a handful; the campaign refuses more DCs than nodes).
//!
//! An op's DC is its `node`'s, as `run.json`'s `datacenters` says (a
//! client talks to its own DC's nodes only); an op whose node the map
//! does not name is counted under [`UNKNOWN_DC`], never guessed.

use std::collections::BTreeMap;

use history::RunConfig;
use serde_json::{json, Value};

use crate::observe::{Ack, Observed, Read};
use crate::stale_by_dc::UNKNOWN_DC;
use crate::visibility_pairs::{Bin, Pairs};

/// The split, as `results.json` records it under t-visibility's `by_dc`:
/// keys `"dc1->dc2"` (writes acknowledged in dc1, read in dc2), each with
/// its pairs, the stale fraction of its first non-empty `t` bin and its
/// curve; `None` for a run of one DC.
pub fn split(run: &RunConfig, observed: &Observed<'_>) -> Option<Value> {
    if !run.topology.is_multi_dc() {
        return None;
    }
    let dc = |node: Option<&str>| node.and_then(|n| run.topology.dc_of(n)).unwrap_or(UNKNOWN_DC).to_string();
    let acks = by_dc(&observed.acks, |a: &Ack<'_>| dc(a.node));
    let reads = by_dc(&observed.reads, |r: &Read<'_>| dc(r.node));
    let mut entries = serde_json::Map::new();
    for (writer, writer_acks) in &acks {
        for (reader, reader_reads) in &reads {
            let counted = Pairs::of(writer_acks, reader_reads, run.resolution);
            if counted.examined > 0 {
                entries.insert(format!("{writer}->{reader}"), figures(&counted));
            }
        }
    }
    Some(Value::Object(entries))
}

/// `items` grouped by `dc_of`, each group in the input's (invocation) order.
fn by_dc<T: Clone>(items: &[T], dc_of: impl Fn(&T) -> String) -> BTreeMap<String, Vec<T>> {
    let mut groups: BTreeMap<String, Vec<T>> = BTreeMap::new();
    for item in items {
        groups.entry(dc_of(item)).or_default().push(item.clone());
    }
    groups
}

/// One (writer DC, reader DC) pair's figures.
fn figures(counted: &Pairs) -> Value {
    let first = counted.bins.iter().find(|b| b.total > 0);
    let curve: Vec<Value> = counted
        .bins
        .iter()
        .filter(|b| b.total > 0)
        .map(|b: &Bin| json!({"t_mean_ms": b.t_mean_ms(), "pairs": b.total, "p_covered": b.covered as f64 / b.total as f64}))
        .collect();
    json!({
        "pairs": counted.examined,
        "pairs_not_examined": counted.skipped,
        "p_stale_first_bin": first.map(|b| 1.0 - b.covered as f64 / b.total as f64),
        "curve": curve,
    })
}
