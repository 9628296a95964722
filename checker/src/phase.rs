//! Phases of a run, as the workload marks them.
//!
//! The workload records a nemesis-process event with `f = "phase"` and
//! `value = {"phase": "run" | "heal" | "quiet" | "final"}` whenever a phase
//! starts. An op belongs to the phase its *invocation* falls in: that is the
//! moment the client chose to issue it, so a read invoked during the fault
//! window and answered after the heal still counts against the faults. Ops
//! before any marker are in [`DEFAULT_PHASE`]. Markers are located by file
//! position (`index`), which is the order the harness observed events in.

use history::compact::{CompactHistory, CompactOp};

/// The phase of ops recorded before any phase marker.
pub const DEFAULT_PHASE: &str = "run";

/// The `f` of a phase marker event.
pub const PHASE_F: &str = "phase";

/// Phase starts in file order.
#[derive(Debug, Clone, Default)]
pub struct Phases {
    /// (index of the marker event, phase name), sorted by index.
    starts: Vec<(u64, String)>,
}

impl Phases {
    /// Collects the phase markers of a history. A marker whose value lacks a
    /// string `phase` is named `"unknown"` rather than dropped, so a bad
    /// marker shows up in the tables instead of silently merging phases.
    pub fn of(history: &impl AsRef<CompactHistory>) -> Phases {
        let history = history.as_ref();
        let mut starts: Vec<(u64, String)> = markers(history)
            .map(|op| {
                let name = marker_name(history, op).unwrap_or_else(|| "unknown".to_string());
                (op.index, name)
            })
            .collect();
        starts.sort_by_key(|(index, _)| *index);
        Phases { starts }
    }

    /// The phase in force at file position `index`.
    pub fn at(&self, index: u64) -> &str {
        let after = self.starts.partition_point(|(start, _)| *start <= index);
        match after.checked_sub(1) {
            Some(i) => self.starts[i].1.as_str(),
            None => DEFAULT_PHASE,
        }
    }
}

/// The phase markers, in file order.
fn markers(history: &CompactHistory) -> impl Iterator<Item = &CompactOp> + '_ {
    let phase_f = history.name_id(PHASE_F);
    history.nemesis_events().filter(move |op| Some(op.f) == phase_f)
}

/// The phase a marker starts, when its value names one.
fn marker_name(history: &CompactHistory, marker: &CompactOp) -> Option<String> {
    history.value_json(marker).get("phase").and_then(|p| p.as_str()).map(str::to_string)
}

/// The time (ns) at which phase `name` started, if it was marked.
pub fn start_time(history: &impl AsRef<CompactHistory>, name: &str) -> Option<u64> {
    let history = history.as_ref();
    markers(history).find(|op| marker_name(history, op).as_deref() == Some(name)).map(|op| op.time_ns)
}
