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

/// The kinds of the windows in force at each of a run of times, found by
/// a sweep: a checker that asks once per op pays for the windows that
/// open and close, not for every window at every op (an hour under
/// partitions holds hundreds).
#[derive(Debug)]
pub struct InForce<'w> {
    /// The windows, in start order ([`fault_windows`]).
    windows: &'w [Window],
    /// How many have started by the last time asked.
    started: usize,
    /// The started ones not yet ended, by their place in `windows`.
    active: Vec<usize>,
    /// The last time asked, s.
    last_s: f64,
}

impl<'w> InForce<'w> {
    /// A sweep over `windows`, which must be in start order.
    pub fn new(windows: &'w [Window]) -> InForce<'w> {
        assert!(windows.is_sorted_by(|a, b| a.start_s <= b.start_s), "windows in start order");
        InForce { windows, started: 0, active: Vec::new(), last_s: f64::NEG_INFINITY }
    }

    /// Sets `kinds` to the kinds of the windows with `start_s <= t_s <
    /// end_s`, in the windows' order: what filtering every window gives.
    /// Fast when times do not decrease from one call to the next; a time
    /// earlier than the last starts the sweep over.
    pub fn kinds_at(&mut self, t_s: f64, kinds: &mut Vec<&'static str>) {
        if t_s < self.last_s {
            self.started = 0;
            self.active.clear();
        }
        self.last_s = t_s;
        while self.windows.get(self.started).is_some_and(|w| w.start_s <= t_s) {
            self.active.push(self.started);
            self.started += 1;
        }
        let windows = self.windows;
        self.active.retain(|&i| t_s < windows[i].end_s);
        kinds.clear();
        kinds.extend(self.active.iter().map(|&i| windows[i].kind));
    }
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

    #[test]
    fn the_sweep_finds_what_filtering_every_window_finds() {
        let kinds = ["partition", "kill", "clock", "latency"];
        let mut rng = 12_345u64;
        let mut next = |n: u64| {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (rng >> 33) % n
        };
        for _ in 0..50 {
            let mut windows: Vec<Window> = (0..next(12))
                .map(|_| {
                    let start_s = next(100) as f64 / 4.0;
                    let kind = kinds[next(4) as usize];
                    Window { kind, start_s, end_s: start_s + next(40) as f64 / 4.0 }
                })
                .collect();
            windows.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
            let mut sweep = InForce::new(&windows);
            let mut found = Vec::new();
            // Rising times with a step back now and then (a restart).
            let mut t_s = 0.0;
            for _ in 0..200 {
                t_s = if next(20) == 0 { t_s / 2.0 } else { t_s + next(3) as f64 / 8.0 };
                sweep.kinds_at(t_s, &mut found);
                let want: Vec<&str> =
                    windows.iter().filter(|w| w.start_s <= t_s && t_s < w.end_s).map(|w| w.kind).collect();
                assert_eq!(found, want, "at {t_s} s in {windows:?}");
            }
        }
    }
}
