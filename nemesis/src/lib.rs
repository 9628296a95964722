//! Nemeses: the faults a run injects, split in two as Jepsen does.
//!
//! A *schedule* ([`schedule`]) is pure: from the run's seed, the nodes and the
//! time limit it decides what happens when and to whom, e.g. "at 4.2 s cut
//! n2 off from n1 and n3; at 9.0 s heal". It touches nothing, so a test can
//! compare the schedules of two runs with the same seed. An *executor*
//! ([`execute`]) applies a schedule to a [`docker::Cluster`] and records each
//! action in the history as a nemesis `info` event that says exactly what was
//! done (the grudge: who drops whose packets).
//!
//! A fault the backend cannot perform (iptables on local processes) is an
//! [`NemesisError::Unsupported`]: the campaign reports the run as such rather
//! than pretending a partition happened.

pub mod grudge;
pub mod partition;
pub mod schedule;
mod execute;

pub use execute::{execute, heal_all, NemesisError};
pub use grudge::Grudge;
pub use schedule::{Action, NemesisKind, Schedule, ScheduledAction};
