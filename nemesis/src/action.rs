//! What a nemesis does: the steps every schedule is made of.
//!
//! An [`Action`] is one thing done to the cluster (install a grudge, kill
//! nodes, bump clocks, damage a file, ...) and a [`ScheduledAction`] is one
//! at its time in the fault phase. The schedules draw them (the per-nemesis
//! `window`s in [`crate::clock`], [`crate::corrupt`], [`crate::membership`],
//! [`crate::netem`], and [`crate::schedule`] for the rest), the executor
//! performs and records them, serialized with the history's `f` names.
//!
//! This module imports none of those: it is the vocabulary below them. The
//! kind of file and the damage a corrupt window names ([`Target`],
//! [`Damage`]) live here with the action that carries them, and
//! [`crate::corrupt`] re-exports them beside the code that draws and
//! applies them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::grudge::Grudge;

/// One thing the nemesis does. Serialized with the history's `f` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Action {
    /// Install a grudge (scheme names which partition shape it is).
    StartPartition {
        /// `isolate-one`, `random-halves`, `majorities-ring`, `bridge` or `one-way`.
        scheme: String,
        /// Who drops whose packets.
        grudge: Grudge,
        /// Hold the grudge's pairs (both ways: messages queued, delivered at
        /// the heal) instead of cutting its links (`partition-hold`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        hold: bool,
    },
    /// Remove every partition rule.
    StopPartition,
    /// SIGKILL these nodes' processes (data directories kept).
    Kill {
        /// The victims; with `primaries_of`, only the fallback for stores
        /// that cannot tell a key's preference list.
        nodes: Vec<String>,
        /// Target the home replicas of this key instead (a minority of
        /// them, resolved when executed; see [`crate::targets`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primaries_of: Option<String>,
    },
    /// Cut these nodes' power: SIGKILL, and every write they had not synced
    /// is dropped; the window's [`Action::Restart`] brings them back.
    PowerLoss {
        /// The victims; with `primaries_of`, only the fallback for stores
        /// that cannot tell a key's preference list.
        nodes: Vec<String>,
        /// Target the home replicas of this key instead (a minority of
        /// them, resolved when executed; see [`crate::targets`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primaries_of: Option<String>,
    },
    /// Start killed nodes again on their data.
    Restart {
        /// The nodes to bring back; with `primaries_of`, only the fallback for stores
        /// that cannot tell a key's preference list.
        nodes: Vec<String>,
        /// Target the home replicas of this key instead (a minority of
        /// them, resolved when executed; see [`crate::targets`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primaries_of: Option<String>,
    },
    /// SIGSTOP these nodes.
    Pause {
        /// The victims; with `primaries_of`, only the fallback for stores
        /// that cannot tell a key's preference list.
        nodes: Vec<String>,
        /// Target the home replicas of this key instead (a minority of
        /// them, resolved when executed; see [`crate::targets`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primaries_of: Option<String>,
    },
    /// SIGCONT these nodes.
    Resume {
        /// The nodes to wake; with `primaries_of`, only the fallback for stores
        /// that cannot tell a key's preference list.
        nodes: Vec<String>,
        /// Target the home replicas of this key instead (a minority of
        /// them, resolved when executed; see [`crate::targets`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primaries_of: Option<String>,
    },
    /// Set these nodes' wall-clock offsets (libfaketime), in seconds.
    ClockBump {
        /// `bump` (one jump) or `strobe` (one of several back-and-forth jumps).
        mode: String,
        /// node -> offset from the true time, seconds.
        offsets_s: BTreeMap<String, i64>,
    },
    /// Reset these nodes' clocks to the true time.
    ClockReset {
        /// The nodes whose offset goes back to zero.
        nodes: Vec<String>,
    },
    /// `tc qdisc replace dev eth0 root netem ...` on these nodes.
    StartLatency {
        /// The nodes whose interface gets the qdisc.
        nodes: Vec<String>,
        /// Mean added delay, ms.
        delay_ms: u64,
        /// Standard deviation of the delay (normal distribution), ms.
        jitter_ms: u64,
        /// Packet loss, percent.
        loss_pct: u32,
    },
    /// Remove the netem qdisc from every node (and any WAN delay).
    StopLatency,
    /// Slow every link between two different datacenters, both ways;
    /// links inside a DC keep their speed (`wan-latency`).
    StartWanLatency {
        /// The nodes of each DC.
        dcs: Vec<Vec<String>>,
        /// Mean added delay, ms.
        delay_ms: u64,
        /// Spread of the delay, ms.
        jitter_ms: u64,
    },
    /// Start a fresh node that joins the ring (its ranges stream in).
    Join {
        /// Its id, past every name the run has used.
        node: String,
    },
    /// SIGKILL `node`, then damage one of its data files (it stays down
    /// until the window's `restart`); see [`crate::corrupt`]. The file and offset
    /// are the picks reduced over the files the node holds then.
    Corrupt {
        /// The victim.
        node: String,
        /// `wal` or `sstable`: the kind of file aimed at.
        target: Target,
        /// `flip` (XOR one byte with `mask`) or `truncate` (cut the file).
        damage: Damage,
        /// Which file: modulo the count of that kind, in name order.
        file_pick: u64,
        /// Which byte (flip) or the length cut to (truncate): modulo the file's size.
        offset_pick: u64,
        /// The bits a flip flips (never 0).
        mask: u8,
    },
    /// Decommission a node (`Admin.Leave`: its ranges stream away), then
    /// remove its container or process.
    Leave {
        /// The departing member.
        node: String,
    },
}

impl Action {
    /// The history's `f` for this action.
    pub fn name(&self) -> &'static str {
        match self {
            Action::StartPartition { .. } => "start-partition",
            Action::StopPartition => "stop-partition",
            Action::Kill { .. } => "kill",
            Action::PowerLoss { .. } => "power-loss",
            Action::Restart { .. } => "restart",
            Action::Pause { .. } => "pause",
            Action::Resume { .. } => "resume",
            Action::ClockBump { .. } => "clock-bump",
            Action::ClockReset { .. } => "clock-reset",
            Action::StartLatency { .. } => "start-latency",
            Action::StopLatency => "stop-latency",
            Action::StartWanLatency { .. } => "start-wan-latency",
            Action::Join { .. } => "join",
            Action::Leave { .. } => "leave",
            Action::Corrupt { .. } => "corrupt",
        }
    }

    /// Whether this action begins a fault window (the rest end one or adjust it).
    pub fn starts_fault(&self) -> bool {
        matches!(
            self,
            Action::StartPartition { .. }
                | Action::Kill { .. }
                | Action::PowerLoss { .. }
                | Action::Pause { .. }
                | Action::StartLatency { .. }
                | Action::StartWanLatency { .. }
                | Action::Join { .. }
                | Action::Corrupt { .. }
        ) || matches!(self, Action::ClockBump { mode, .. } if mode != "strobe")
    }
}

/// An action and when it happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledAction {
    /// Milliseconds after the fault phase starts.
    pub at_ms: u64,
    /// What is done then.
    pub action: Action,
}

/// Which of the engine's files a window aims at. An enum, not a string, so
/// a misspelt kind cannot compile; its name (`as_str`, and serde's) is what
/// schedules and history events have always written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// A commit-log segment, `wal-<n>.log`.
    Wal,
    /// A sorted table, `<n>.sst`.
    Sstable,
}

impl Target {
    /// Every kind, in the order a window draws from (the order fixes what a seed draws).
    pub const ALL: [Target; 2] = [Target::Wal, Target::Sstable];

    /// The name in schedules and history events.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Wal => "wal",
            Target::Sstable => "sstable",
        }
    }

    /// The other kind: what a window hits when the node holds none of this one.
    pub fn other(self) -> Target {
        match self {
            Target::Wal => Target::Sstable,
            Target::Sstable => Target::Wal,
        }
    }

    /// Whether `name` is one of the engine's files of this kind.
    pub fn matches(self, name: &str) -> bool {
        match self {
            Target::Wal => name.starts_with("wal-") && name.ends_with(".log"),
            Target::Sstable => name.ends_with(".sst"),
        }
    }
}

/// What a window does to the file; an enum for the same reason as [`Target`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Damage {
    /// XOR one byte with the window's mask.
    Flip,
    /// Cut the file short.
    Truncate,
}

impl Damage {
    /// Every damage, in the order a window draws from (the order fixes what a seed draws).
    pub const ALL: [Damage; 2] = [Damage::Flip, Damage::Truncate];

    /// The name in schedules and history events.
    pub fn as_str(self) -> &'static str {
        match self {
            Damage::Flip => "flip",
            Damage::Truncate => "truncate",
        }
    }
}
