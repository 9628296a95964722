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
}

impl Fault {
    /// Every fault a nemesis may need.
    pub const ALL: [Fault; 6] = [Fault::Partition, Fault::Kill, Fault::Pause, Fault::Clock, Fault::Latency, Fault::Membership];
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
