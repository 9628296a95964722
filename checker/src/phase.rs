//! Phases of a run, as the workload marks them.
//!
//! The workload records a nemesis-process event with `f = "phase"` and
//! `value = {"phase": "run" | "heal" | "quiet" | "final"}` whenever a phase
//! starts. An op belongs to the phase its *invocation* falls in: that is the
//! moment the client chose to issue it, so a read invoked during the fault
//! window and answered after the heal still counts against the faults. Ops
//! before any marker are in [`DEFAULT_PHASE`]. Markers are located by file
//! position (`index`), which is the order the harness observed events in.

use history::{History, Process};

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
    pub fn of(history: &History) -> Phases {
        let mut starts: Vec<(u64, String)> = history
            .ops
            .iter()
            .filter(|op| op.process == Process::Nemesis && op.f == PHASE_F)
            .map(|op| {
                let name = op.value.get("phase").and_then(|p| p.as_str()).unwrap_or("unknown");
                (op.index, name.to_string())
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

/// The time (ns) at which phase `name` started, if it was marked.
pub fn start_time(history: &History, name: &str) -> Option<u64> {
    history
        .ops
        .iter()
        .find(|op| {
            op.process == Process::Nemesis
                && op.f == PHASE_F
                && op.value.get("phase").and_then(|p| p.as_str()) == Some(name)
        })
        .map(|op| op.time)
}
