//! Fault windows: when each nemesis held a fault, read back from the history.
//!
//! A window opens at a fault-starting event (`start-partition`, `kill`, `corrupt` or `power-loss`,
//! `pause`, `clock-bump` other than a strobe flip, `start-latency`, `join`)
//! and closes at its kind's next ending event (`stop-partition`, `restart`,
//! `resume`, `clock-reset`, `stop-latency`, `leave`) or at the end of the
//! history.
//! Plots and the timeline shade them; the anomaly sentences name those in
//! force ([`crate::explain`]).

use std::collections::BTreeMap;

use history::compact::CompactHistory;

/// One fault held from `start_s` to `end_s` (seconds since the run began).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Which nemesis.
    pub kind: &'static str,
    /// Start, seconds.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
}

/// (kind, opens) for a nemesis event's `f`; None for phases and the like.
fn classify(f: &str, value: &serde_json::Value) -> Option<(&'static str, bool)> {
    Some(match f {
        "start-partition" => ("partition", true),
        "stop-partition" => ("partition", false),
        // A corrupt or power-loss window is a kill window (the node is down)
        // closed by its restart.
        "kill" | "corrupt" | "power-loss" => ("kill", true),
        "restart" => ("kill", false),
        "pause" => ("pause", true),
        "resume" => ("pause", false),
        "clock-bump" if value.get("mode").and_then(|m| m.as_str()) == Some("strobe") => return None,
        "clock-bump" => ("clock", true),
        "clock-reset" => ("clock", false),
        "start-latency" | "start-wan-latency" => ("latency", true),
        "stop-latency" => ("latency", false),
        "join" => ("membership", true),
        "leave" => ("membership", false),
        _ => return None,
    })
}

/// The nodes a nemesis event's value names in its `nodes` list (a kill's,
/// a restart's); none when it names none.
pub(crate) fn event_nodes(value: &serde_json::Value) -> Vec<String> {
    let listed = value.get("nodes").and_then(serde_json::Value::as_array);
    listed.into_iter().flatten().filter_map(serde_json::Value::as_str).map(str::to_string).collect()
}

/// Every fault window of the history, in start order.
pub fn fault_windows(history: &impl AsRef<CompactHistory>) -> Vec<Window> {
    let history = history.as_ref();
    let mut open: BTreeMap<&'static str, f64> = BTreeMap::new();
    let mut out = Vec::new();
    for op in history.nemesis_events() {
        let Some((kind, opens)) = classify(history.name(op.f), &history.value_json(op)) else { continue };
        let t = op.time_ns as f64 / 1e9;
        if opens {
            open.entry(kind).or_insert(t);
        } else if let Some(start_s) = open.remove(kind) {
            out.push(Window { kind, start_s, end_s: t });
        }
    }
    let end = history.end_ns() as f64 / 1e9;
    out.extend(open.into_iter().map(|(kind, start_s)| Window { kind, start_s, end_s: end }));
    out.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::{History, Op};
    use serde_json::json;

    fn at(f: &str, value: serde_json::Value, time: u64) -> Op {
        let mut op = Op::nemesis(f, value);
        op.time = time;
        op
    }

    #[test]
    fn windows_pair_starts_with_their_stops_and_ignore_strobe_flips() {
        let s = 1_000_000_000;
        let h = History::new(vec![
            at("phase", json!({"phase": "faults"}), 0),
            at("kill", json!({}), s),
            at("clock-bump", json!({"mode": "strobe-start"}), 2 * s),
            at("clock-bump", json!({"mode": "strobe"}), 3 * s),
            at("restart", json!({}), 4 * s),
            at("clock-reset", json!({}), 5 * s),
        ]);
        let w = fault_windows(&h);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].kind, w[0].start_s, w[0].end_s), ("kill", 1.0, 4.0));
        assert_eq!((w[1].kind, w[1].start_s, w[1].end_s), ("clock", 2.0, 5.0));
    }
}
