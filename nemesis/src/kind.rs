//! The nemeses by name, and compositions of them (`kill+clock`).
//!
//! A run's nemesis is a list of kinds; `none` is the control group. The
//! names are what `--nemesis` takes, what `run.json` records and what the
//! tables group by, so they never change.

use serde::{Deserialize, Serialize};

/// The nemeses this crate knows how to schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisKind {
    /// No faults: the control group.
    None,
    /// iptables partitions: isolate one, random halves, majorities ring, bridge, one-way.
    Partition,
    /// SIGKILL a node and restart it on the same data.
    Kill,
    /// SIGSTOP / SIGCONT.
    Pause,
    /// libfaketime clock offsets: bump, strobe, reset.
    Clock,
    /// tc netem delay, jitter and loss.
    Latency,
    /// Fresh nodes join the ring and members leave it (`Admin.Leave`).
    Membership,
    /// The partitions of `partition` (same windows and grudges for a seed),
    /// but the links hold their messages and deliver them at the heal, as
    /// TCP retransmits what an iptables DROP swallowed once the rule goes.
    /// Needs a backend with its own network (the simulator).
    PartitionHold,
    /// SIGKILL a node, flip bits in or cut short one of its WAL segments
    /// or SSTables, restart it later on the damaged data.
    Corrupt,
    /// Cut a node's power: SIGKILL it and drop every write it had not
    /// synced (a lazy filesystem on Docker; the simulator's kill), restart
    /// it later on what survived.
    PowerLoss,
    /// Every link between one datacenter and the others cut (both ways, or
    /// one way); needs `--dcs` 2 or more.
    DcPartition,
    /// Links between datacenters slowed by 50-150 ms with jitter, links
    /// inside a DC untouched; needs `--dcs` and a backend with its own links.
    WanLatency,
    /// Every node of one datacenter killed, restarted later.
    DcOutage,
}

/// Every kind, in the order `--help` lists them.
pub const ALL_KINDS: [NemesisKind; 13] = [
    NemesisKind::None,
    NemesisKind::Partition,
    NemesisKind::Kill,
    NemesisKind::Pause,
    NemesisKind::Clock,
    NemesisKind::Latency,
    NemesisKind::Membership,
    NemesisKind::PartitionHold,
    NemesisKind::Corrupt,
    NemesisKind::PowerLoss,
    NemesisKind::DcPartition,
    NemesisKind::WanLatency,
    NemesisKind::DcOutage,
];

impl NemesisKind {
    /// The kind's name on the command line and in `run.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            NemesisKind::None => "none",
            NemesisKind::Partition => "partition",
            NemesisKind::Kill => "kill",
            NemesisKind::Pause => "pause",
            NemesisKind::Clock => "clock",
            NemesisKind::Latency => "latency",
            NemesisKind::Membership => "membership",
            NemesisKind::PartitionHold => "partition-hold",
            NemesisKind::Corrupt => "corrupt",
            NemesisKind::PowerLoss => "power-loss",
            NemesisKind::DcPartition => "dc-partition",
            NemesisKind::WanLatency => "wan-latency",
            NemesisKind::DcOutage => "dc-outage",
        }
    }

    /// The backend fault this kind needs, if any.
    pub fn fault(self) -> Option<docker::Fault> {
        match self {
            NemesisKind::None => None,
            NemesisKind::Partition => Some(docker::Fault::Partition),
            NemesisKind::Kill => Some(docker::Fault::Kill),
            NemesisKind::Pause => Some(docker::Fault::Pause),
            NemesisKind::Clock => Some(docker::Fault::Clock),
            NemesisKind::Latency => Some(docker::Fault::Latency),
            NemesisKind::Membership => Some(docker::Fault::Membership),
            NemesisKind::PartitionHold => Some(docker::Fault::Partition),
            NemesisKind::Corrupt => Some(docker::Fault::Corrupt),
            NemesisKind::PowerLoss => Some(docker::Fault::PowerLoss),
            NemesisKind::DcPartition => Some(docker::Fault::Partition),
            NemesisKind::WanLatency => Some(docker::Fault::Latency),
            NemesisKind::DcOutage => Some(docker::Fault::Kill),
        }
    }

    /// Whether this kind acts on whole datacenters (and needs several).
    pub fn needs_datacenters(self) -> bool {
        matches!(self, NemesisKind::DcPartition | NemesisKind::WanLatency | NemesisKind::DcOutage)
    }

    /// The name of the random stream this kind's schedule is drawn from:
    /// `partition-hold` draws `partition`'s, so one seed gives both the same
    /// windows and grudges and the two differ only in cut versus hold.
    pub fn stream_name(self) -> &'static str {
        match self {
            NemesisKind::PartitionHold => NemesisKind::Partition.as_str(),
            other => other.as_str(),
        }
    }
}

impl std::str::FromStr for NemesisKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_KINDS.iter().copied().find(|k| k.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = ALL_KINDS.iter().map(|k| k.as_str()).collect();
            format!("unknown nemesis {s:?} (known: {})", known.join(", "))
        })
    }
}

/// Several nemeses in one run, each on its own schedule: `kill+clock`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Composition {
    /// Sorted, without duplicates or `none` (empty: no faults).
    pub kinds: Vec<NemesisKind>,
}

impl Composition {
    /// The name tables and run directories use: `none`, `kill`, `clock+kill`.
    pub fn label(&self) -> String {
        if self.kinds.is_empty() {
            return "none".into();
        }
        self.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join("+")
    }

    /// The names `run.json` records (empty for no faults).
    pub fn names(&self) -> Vec<String> {
        self.kinds.iter().map(|k| k.as_str().to_string()).collect()
    }

    /// Whether this composition includes `kind`.
    pub fn has(&self, kind: NemesisKind) -> bool {
        self.kinds.contains(&kind)
    }
}

impl std::str::FromStr for Composition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut kinds = s.split('+').map(|k| k.trim().parse::<NemesisKind>()).collect::<Result<Vec<_>, _>>()?;
        kinds.retain(|k| *k != NemesisKind::None);
        kinds.sort();
        kinds.dedup();
        Ok(Composition { kinds })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compositions_parse_sorted_without_none() {
        let c: Composition = "kill+clock+none+kill".parse().unwrap();
        assert_eq!(c.kinds, vec![NemesisKind::Kill, NemesisKind::Clock]);
        assert_eq!(c.label(), "kill+clock");
        assert_eq!("none".parse::<Composition>().unwrap().label(), "none");
        assert!("kil".parse::<Composition>().is_err());
    }
}
