//! What a cluster is asked to be, and the small value types around it.

use std::path::PathBuf;

/// The description of a cluster to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Unique per run: names the network, containers and data directories.
    pub name: String,
    /// Node ids, e.g. `["n1", "n2", "n3"]`.
    pub nodes: Vec<String>,
    /// Flags every node gets (`--n 3 --w 2 --r 2 --resolution siblings ...`);
    /// the backend adds `--id`, `--listen`, `--peers` and `--data-dir`.
    pub node_args: Vec<String>,
    /// Where node logs are collected at the end.
    pub log_dir: PathBuf,
    /// `Some(seed)`: put a link-fault proxy (`linkproxy`) in front of every
    /// node, its latency and loss draws seeded with `seed` (the run's), so
    /// link faults are performed in userspace: on local processes,
    /// partitions, latency and loss. `None` (the default, and always for a
    /// benchmark) leaves the nodes' ports bare: nothing pays for a proxy
    /// no fault needs.
    pub link_proxy: Option<u64>,
    /// Whether the run may skew the nodes' clocks (a clock nemesis): only
    /// then do our nodes run under libfaketime. It intercepts every clock
    /// read, and with the per-node offset file re-read on each wall-clock
    /// read it cost a third of a 3-node cluster's throughput in Docker
    /// (`workbench bench-peers --backend docker --only dynamo3`: 3,499
    /// ops/s at 375 us of CPU per op with it, 4,660 at 273 without). A
    /// cluster started without it refuses to set a clock offset.
    pub clock_faults: bool,
    /// Whether the run may cut a node's power (a power-loss nemesis): only
    /// then does a backend put the node's data directory on a lazy
    /// filesystem (`dynamo-lazyfs`), which holds unsynced writes in memory
    /// so that they can be dropped. Every write and sync then crosses FUSE,
    /// and a Docker container needs `/dev/fuse` and `CAP_SYS_ADMIN`, so no
    /// other run pays for it. A cluster started without it refuses a power loss.
    pub power_loss: bool,
}

impl ClusterSpec {
    /// Whether a cluster started from this spec is ready for `fault`, as
    /// far as the spec decides it: a clock skew needs libfaketime preloaded
    /// at start, which only `clock_faults` asks for, and a power loss needs
    /// the data directory on a lazy filesystem, which only `power_loss` asks
    /// for; no other fault needs anything of the spec here. Each backend's
    /// `Cluster::supports` adds its own capabilities.
    pub fn prepared_for(&self, fault: Fault) -> bool {
        match fault {
            Fault::Clock => self.clock_faults,
            Fault::PowerLoss => self.power_loss,
            _ => true,
        }
    }

    /// Three nodes `n1`..`n3` with no extra flags, logs in a fresh
    /// directory under the system temp dir: the cluster the backends' own
    /// end-to-end tests start.
    pub fn three_nodes_for_test(name: &str, link_proxy: Option<u64>) -> ClusterSpec {
        let log_dir = std::env::temp_dir().join(format!("dwb-test-logs-{name}"));
        let _ = std::fs::remove_dir_all(&log_dir);
        ClusterSpec {
            name: name.to_string(),
            nodes: vec!["n1".into(), "n2".into(), "n3".into()],
            node_args: vec![],
            log_dir,
            link_proxy,
            clock_faults: false,
            power_loss: false,
        }
    }
}

/// Faults a backend may or may not be able to perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// iptables inside the nodes.
    Partition,
    /// SIGKILL and restart on the same data.
    Kill,
    /// SIGSTOP / SIGCONT.
    Pause,
    /// libfaketime offset per node.
    Clock,
    /// tc netem delay and loss.
    Latency,
    /// Nodes join (range streaming in) and leave (`Admin.Leave`) the ring.
    Membership,
    /// Bits flipped in, or a cut of, a stopped node's data files.
    Corrupt,
    /// SIGKILL, and the node's writes not yet synced are dropped, as a
    /// machine losing power drops its page cache.
    PowerLoss,
}

impl Fault {
    /// Every fault a nemesis may need.
    pub const ALL: [Fault; 8] = [
        Fault::Partition,
        Fault::Kill,
        Fault::Pause,
        Fault::Clock,
        Fault::Latency,
        Fault::Membership,
        Fault::Corrupt,
        Fault::PowerLoss,
    ];

    /// The fault's name where run files record it (`run.json`'s
    /// `fault_mechanisms` keys): fixed, whatever the variant is called.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Clock => "clock",
            Fault::Latency => "latency",
            Fault::Membership => "membership",
            Fault::Corrupt => "corrupt",
            Fault::PowerLoss => "power-loss",
        }
    }
}

/// A file in a node's data directory (top level only: the engine's WAL
/// segments, tables and manifest, not the hint store below it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// The file's name, e.g. `wal-00000000000000000003.log`.
    pub name: String,
    /// Its size, bytes.
    pub bytes: u64,
}

/// One change to one file of a stopped node's data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileDamage {
    /// XOR the byte at `offset` with `mask` (non-zero: at least one bit flips).
    Flip {
        /// The file's name in the data directory.
        file: String,
        /// Which byte, from the start of the file.
        offset: u64,
        /// The bits flipped.
        mask: u8,
    },
    /// Cut the file to `len` bytes (shorter than it was).
    Truncate {
        /// The file's name in the data directory.
        file: String,
        /// Its length afterwards, bytes.
        len: u64,
    },
}

impl FileDamage {
    /// The file it changes.
    pub fn file(&self) -> &str {
        match self {
            FileDamage::Flip { file, .. } | FileDamage::Truncate { file, .. } => file,
        }
    }

    /// A plain file name, so the damage cannot reach outside the data directory.
    pub fn check_name(&self) -> Result<(), String> {
        let f = self.file();
        let plain = !f.is_empty() && f != "." && f != ".." && !f.contains('/') && !f.contains('\0');
        if plain {
            Ok(())
        } else {
            Err(format!("{f:?} is not a plain file name"))
        }
    }
}

/// What a command run inside a node printed.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// The command's exit status (-1 if the engine did not report one).
    pub exit_code: i64,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}
