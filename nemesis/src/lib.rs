//! Nemeses: the faults a run injects, split in two as Jepsen does.
//!
//! A *schedule* ([`schedule`]) is pure: from the run's seed, the nodes and the
//! time limit it decides what happens when and to whom, e.g. "at 4.2 s cut
//! n2 off from n1 and n3; at 9.0 s heal". It touches nothing, so a test can
//! compare the schedules of two runs with the same seed. Its steps are
//! [`Action`]s ([`action`]), the vocabulary every nemesis's schedule draws
//! and the executor performs. An *executor*
//! ([`execute`]) applies schedules to a [`docker::Cluster`] and records each
//! action in the history as a nemesis `info` event that says exactly what was
//! done (the grudge, the nodes killed, the clock offsets set and observed).
//!
//! The nemeses ([`NemesisKind`]): partitions (isolate one, random halves,
//! bridge, one-way, majorities ring; iptables inside the containers), kill
//! and restart, pause and resume, clock skew (libfaketime: bump, strobe,
//! reset), latency/loss (tc netem) and membership (nodes join with range
//! streaming and leave with `Admin.Leave`) and file faults on a killed node
//! (`corrupt`: bits flipped in, or a cut of, a WAL segment or SSTable), and
//! faults on whole datacenters ([`datacenter`]: a cut or slow WAN, a DC
//! outage). Kills and pauses hit one node, a
//! minority, or the home replicas of one key ([`targets`]). Several compose in one run
//! ([`Composition`]), each on its own seeded schedule.
//!
//! A fault the backend cannot perform (iptables on local processes) is an
//! [`NemesisError::Unsupported`]: the campaign reports the run as such rather
//! than pretending a partition happened.

pub mod action;
pub mod clock;
pub mod corrupt;
pub mod datacenter;
mod error;
mod execute;
pub mod grudge;
pub mod kind;
pub mod membership;
pub mod netem;
pub mod partition;
pub mod partition_plan;
mod perform;
pub mod schedule;
pub mod state;
pub mod targets;

pub use action::{Action, ScheduledAction};
pub use error::NemesisError;
pub use execute::{execute, execute_all, heal_all};
pub use grudge::Grudge;
pub use kind::{Composition, NemesisKind, ALL_KINDS};
pub use perform::observed_offset_s;
pub use schedule::{Rhythm, Schedule, Scope};
pub use state::FaultState;
