//! Stale reads split by datacenter: of the writes acknowledged in one DC,
//! how many did reads in each DC miss.
//!
//! Across datacenters the figure people want is not one number. Under
//! `local` quorums a write is acknowledged by its own DC and reaches the
//! others asynchronously, so a read in the writer's DC should miss nothing
//! while a read in another DC may ("read in dc2 of a write acknowledged in
//! dc1"). This pass answers that for every (writer DC, reader DC) pair with
//! the stale-read definition of [`crate::stale_reads`]: a read of key `k`
//! begun at `t` is stale *for writer DC w* when some write of `k`
//! acknowledged before `t` by a client of DC `w` is covered by none of the
//! read's siblings. It keeps one frontier of maximal versions per (key,
//! writer DC), so it is as exact as the undivided count and linear in the
//! history for a fixed number of DCs.
//!
//! The session checkers (read-your-writes, monotonic reads) split too,
//! with [`SessionTally`]: a client stays in its DC, so their split is by
//! the client's DC alone.
//!
//! An op's DC is its `node`'s (a client talks to its own DC's nodes only),
//! as `run.json`'s `datacenters` says. An op without a node, or with one
//! the map does not name, is counted under `unknown` rather than guessed.

use std::collections::{BTreeMap, HashMap};

use history::RunConfig;
use serde_json::{json, Value};

use crate::frontier::Frontier;
use crate::observe::Observed;
use crate::stale_reads::{fraction, merged, seen_of, Event};

/// The DC name for an op whose node the run's map does not name.
pub const UNKNOWN_DC: &str = "unknown";

/// Per (writer DC, reader DC): reads checked and reads stale.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Pair {
    /// Reads that began after some write of their key from the writer DC was acknowledged.
    checked: usize,
    /// Of those, reads that missed such a write.
    stale: usize,
}

/// The split, as `results.json` records it under `by_dc`: keys
/// `"dc1->dc2"` (writes acknowledged in dc1, read in dc2); `None` for a
/// run of one DC.
pub fn split(run: &RunConfig, observed: &Observed<'_>) -> Option<Value> {
    if !run.topology.is_multi_dc() {
        return None;
    }
    let dc = |node: Option<&str>| node.and_then(|n| run.topology.dc_of(n)).unwrap_or(UNKNOWN_DC).to_string();
    // key -> writer DC -> the maximal versions acknowledged there so far.
    let mut frontiers: HashMap<&str, BTreeMap<String, Frontier>> = HashMap::new();
    let mut pairs: BTreeMap<(String, String), Pair> = BTreeMap::new();
    for event in merged(observed) {
        match event {
            Event::Ack(ack) => frontiers
                .entry(ack.key)
                .or_default()
                .entry(dc(ack.node))
                .or_insert_with(|| Frontier::new(run.resolution))
                .insert(seen_of(ack)),
            Event::Read(read) => {
                let reader = dc(read.node);
                let Some(by_writer) = frontiers.get(read.key) else { continue };
                for (writer, frontier) in by_writer.iter().filter(|(_, f)| !f.is_empty()) {
                    let pair = pairs.entry((writer.clone(), reader.clone())).or_default();
                    pair.checked += 1;
                    pair.stale += usize::from(frontier.first_uncovered(&read.siblings).is_some());
                }
            }
        }
    }
    Some(to_json(&pairs))
}

/// Reads checked and violations by the reading client's DC, for a
/// session checker; a no-op for a run of one DC.
#[derive(Debug)]
pub struct SessionTally<'r> {
    /// The run, for its map of nodes to DCs; `None`: one DC, nothing kept.
    run: Option<&'r RunConfig>,
    /// DC -> (checked, violations).
    by_dc: BTreeMap<String, Pair>,
}

impl<'r> SessionTally<'r> {
    /// A tally for `run` (which keeps nothing unless the run has several DCs).
    pub fn new(run: &'r RunConfig) -> SessionTally<'r> {
        SessionTally { run: run.topology.is_multi_dc().then_some(run), by_dc: BTreeMap::new() }
    }

    /// One checked read on `node`, and whether it was a violation.
    pub fn count(&mut self, node: Option<&str>, violated: bool) {
        let Some(run) = self.run else { return };
        let dc = node.and_then(|n| run.topology.dc_of(n)).unwrap_or(UNKNOWN_DC).to_string();
        let pair = self.by_dc.entry(dc).or_default();
        pair.checked += 1;
        pair.stale += usize::from(violated);
    }

    /// `{"dc1": {"checked": .., "violations": .., "violation_fraction": ..}}`, or `None` for one DC.
    pub fn to_json(&self) -> Option<Value> {
        self.run?;
        let entries = self.by_dc.iter().map(|(dc, p)| {
            let figures = json!({"checked": p.checked, "violations": p.stale, "violation_fraction": fraction(p.stale, p.checked)});
            (dc.clone(), figures)
        });
        Some(Value::Object(entries.collect()))
    }
}

fn to_json(pairs: &BTreeMap<(String, String), Pair>) -> Value {
    let entries = pairs.iter().map(|((w, r), p)| {
        let figures = json!({"checked": p.checked, "stale": p.stale, "stale_fraction": fraction(p.stale, p.checked)});
        (format!("{w}->{r}"), figures)
    });
    Value::Object(entries.collect())
}
