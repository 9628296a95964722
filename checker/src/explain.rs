//! The sentence on every anomaly example: what happened, read as a story.
//!
//! An example in `results.json` used to be a row of indices and versions:
//! exact, but a reader had to open `history.jsonl` and search for the
//! indices to learn what it meant. The linearizability witness already
//! reads as a sentence ([`crate::linearizable::witness`]); this module
//! gives the other anomaly checkers theirs, in the same style (times in ms
//! since the run began, processes as `p<n>`, values as written). Each names:
//! - the write the read owed (or the earlier read it went back on, or the
//!   lost add), who issued it and when it was acknowledged;
//! - the read: its process, its invoke and completion times, the node that
//!   coordinated it, and the replicas whose answers that node merged, when
//!   the store reported them (our store does, per Get; a store that does
//!   not is said not to, never guessed at);
//! - the fault windows that overlapped the span in which the anomaly
//!   happened: from the write's (or earlier read's) invocation to the
//!   read's completion, because a fault anywhere in it can explain the miss.
//!
//! The sentences are pure text built from the history; nothing here
//! decides whether something is an anomaly (the checkers do that).

use history::compact::{Sibling, ValueRef};
use serde_json::Value;

use crate::frontier::Seen;
use crate::observe::{Ack, Read};
use crate::windows::Window;

/// Values listed from one read's siblings before "and N more".
pub const MAX_LISTED_VALUES: usize = 3;

/// Fault windows listed in one sentence before "and N more".
pub const MAX_LISTED_WINDOWS: usize = 4;

/// Nanoseconds since the run began as milliseconds, two decimals.
pub fn ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

/// A written value as a reader knows it: the text written, or a tombstone.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Null => "a tombstone (delete)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// [`value_text`] of a value held in the compact history.
pub fn value_ref_text(value: ValueRef<'_>) -> String {
    value_text(&value.to_value())
}

/// What a read returned: nothing, one value, or its siblings (a few).
pub(crate) fn returned(siblings: &[Sibling<'_>]) -> String {
    listed(siblings.iter().map(|s| value_ref_text(s.value)), siblings.len())
}

/// The first few of `count` values' texts, and how many more there are.
fn listed(texts: impl Iterator<Item = String>, count: usize) -> String {
    if count == 0 {
        return "nothing (the key absent)".to_string();
    }
    let mut shown: Vec<String> = texts.take(MAX_LISTED_VALUES).collect();
    if count > MAX_LISTED_VALUES {
        shown.push(format!("and {} more", count - MAX_LISTED_VALUES));
    }
    match count {
        1 => shown.remove(0),
        n => format!("{n} siblings ({})", shown.join(", ")),
    }
}

/// Who answered a read: the replicas, or that the store did not say.
pub fn answered_clause<S: AsRef<str>>(answered_by: Option<&[S]>) -> String {
    match answered_by {
        Some(nodes) if !nodes.is_empty() => {
            let names: Vec<&str> = nodes.iter().map(AsRef::as_ref).collect();
            format!("answered by replicas {}", names.join(", "))
        }
        Some(_) => "answered by no replica it named".to_string(),
        None => "the store did not report which replicas answered".to_string(),
    }
}

/// The node an op was sent to, or that the history does not say.
fn through(node: Option<&str>) -> String {
    node.map_or_else(|| "an unrecorded node".to_string(), str::to_string)
}

/// The read as a clause: `read of k1 by p3 (invoked 12.00 ms, completed
/// 14.50 ms) through coordinator n2, answered by replicas n2, n3,`.
pub(crate) fn read_clause(read: &Read<'_>) -> String {
    format!(
        "read of {} by p{} (invoked {} ms, completed {} ms) through coordinator {}, {},",
        read.key,
        read.process,
        ms(read.invoke_time),
        ms(read.complete_time),
        through(read.node),
        answered_clause(read.answered_by.as_deref())
    )
}

/// The fault windows overlapping `[from_ns, to_ns]`, as the sentence's end.
pub fn faults_clause(windows: &[Window], from_ns: u64, to_ns: u64) -> String {
    debug_assert!(from_ns <= to_ns, "a span runs forwards");
    let (from_s, to_s) = (from_ns as f64 / 1e9, to_ns as f64 / 1e9);
    let overlapping: Vec<&Window> = windows.iter().filter(|w| w.start_s <= to_s && w.end_s >= from_s).collect();
    let span = format!("{}-{} ms", ms(from_ns), ms(to_ns));
    if overlapping.is_empty() {
        return format!("no fault window overlapped {span}");
    }
    let mut shown: Vec<String> = overlapping
        .iter()
        .take(MAX_LISTED_WINDOWS)
        .map(|w| format!("{} {:.2}-{:.2} ms", w.kind, w.start_s * 1e3, w.end_s * 1e3))
        .collect();
    if overlapping.len() > MAX_LISTED_WINDOWS {
        shown.push(format!("and {} more", overlapping.len() - MAX_LISTED_WINDOWS));
    }
    format!("faults in force during {span}: {}", shown.join(", "))
}

/// A stale read (or, `own`, a read-your-writes violation): the read and
/// the acknowledged write it missed.
pub fn missed_write(read: &Read<'_>, write: &Ack<'_>, windows: &[Window], own: bool) -> String {
    debug_assert!(write.ack_time <= read.invoke_time, "only a write acknowledged before the read is owed");
    format!(
        "{} returned {} and missed {}write {} by p{} through {}, acknowledged at {} ms, {} ms before the read began; {}",
        read_clause(read),
        returned(&read.siblings),
        if own { "its own " } else { "" },
        value_ref_text(write.value),
        write.process,
        through(write.node),
        ms(write.ack_time),
        ms(read.invoke_time - write.ack_time),
        faults_clause(windows, write.invoke_time.min(read.invoke_time), read.complete_time)
    )
}

/// A monotonic-read violation: the read, and the earlier read of the same
/// process that saw the version this one lost.
pub fn went_back(read: &Read<'_>, earlier: &Read<'_>, lost: &Seen<'_>, windows: &[Window]) -> String {
    debug_assert_eq!(read.process, earlier.process, "monotonic reads are per process");
    format!(
        "{} returned {} and lost {}, which the same process's earlier read (invoked {} ms, completed {} ms) through {}, {}, had seen; {}",
        read_clause(read),
        returned(&read.siblings),
        value_ref_text(lost.value),
        ms(earlier.invoke_time),
        ms(earlier.complete_time),
        through(earlier.node),
        answered_clause(earlier.answered_by.as_deref()),
        faults_clause(windows, earlier.invoke_time, read.complete_time)
    )
}

/// An add as the lost-writes sentence names it.
#[derive(Debug, Clone, Copy)]
pub struct AddTrace<'a> {
    /// Client process.
    pub process: u64,
    /// Key added to.
    pub key: &'a str,
    /// Element added.
    pub element: &'a str,
    /// Node it was sent to.
    pub node: Option<&'a str>,
    /// Invocation time, ns.
    pub invoke_time: u64,
    /// Acknowledgement time, ns.
    pub ack_time: u64,
}

/// A final read as the lost-writes sentence names it.
#[derive(Debug, Clone)]
pub struct FinalReadTrace {
    /// Node it was sent to.
    pub node: Option<String>,
    /// Replicas that answered, if reported.
    pub answered_by: Option<Vec<String>>,
    /// Invocation time, ns.
    pub invoke_time: u64,
}

/// A lost add: the add, the final reads that all lack it, and the faults
/// between the add and the first of them (any of which could have lost it).
pub fn lost_add(add: AddTrace<'_>, finals: &[FinalReadTrace], windows: &[Window], lost_to_clock: bool) -> String {
    let reads: Vec<String> = finals
        .iter()
        .map(|f| {
            format!(
                "through {} at {} ms, {}",
                through(f.node.as_deref()),
                ms(f.invoke_time),
                answered_clause(f.answered_by.as_deref())
            )
        })
        .collect();
    let first_final = finals.iter().map(|f| f.invoke_time).min().unwrap_or(add.ack_time);
    let clock = if lost_to_clock {
        "; an add of this key acknowledged before it began carries a later timestamp, so it lost to a clock"
    } else {
        ""
    };
    format!(
        "add of {} to {} by p{} (invoked {} ms, acknowledged {} ms) through {} is in none of the {} ok final reads of {} ({}){clock}; {}",
        add.element,
        add.key,
        add.process,
        ms(add.invoke_time),
        ms(add.ack_time),
        through(add.node),
        finals.len(),
        add.key,
        reads.join("; "),
        faults_clause(windows, add.invoke_time, first_final.max(add.invoke_time))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(kind: &'static str, start_ms: f64, end_ms: f64) -> Window {
        Window { kind, start_s: start_ms / 1e3, end_s: end_ms / 1e3 }
    }

    #[test]
    fn only_windows_overlapping_the_span_are_named() {
        let windows = [window("kill", 0.0, 5.0), window("partition", 8.0, 20.0), window("pause", 30.0, 40.0)];
        let text = faults_clause(&windows, 10_000_000, 25_000_000);
        assert_eq!(text, "faults in force during 10.00-25.00 ms: partition 8.00-20.00 ms");
        assert_eq!(faults_clause(&windows, 21_000_000, 22_000_000), "no fault window overlapped 21.00-22.00 ms");
    }

    #[test]
    fn many_windows_and_siblings_are_cut_with_a_count() {
        let windows: Vec<Window> = (0..6).map(|i| window("kill", f64::from(i), f64::from(i) + 0.5)).collect();
        assert!(faults_clause(&windows, 0, 10_000_000).ends_with("and 2 more"));
        let five = || ["a", "b", "c", "d", "e"].iter().map(|v| value_text(&Value::from(*v)));
        assert_eq!(listed(five(), 5), "5 siblings (a, b, c, and 2 more)");
        assert_eq!(listed(five(), 1), "a");
        assert_eq!(returned(&[]), "nothing (the key absent)");
    }

    #[test]
    fn unreported_replicas_are_said_so() {
        assert_eq!(answered_clause::<&str>(None), "the store did not report which replicas answered");
        assert_eq!(answered_clause(Some(&["n1".to_string(), "n3".to_string()])), "answered by replicas n1, n3");
    }
}
