//! `dynamo-sim`: the real `dynamo-node` library, every node of a cluster in
//! one process, under a deterministic simulator (turmoil).
//!
//! Why: a real cluster gives one verdict per 10 to 20 s and only the faults
//! the kernel allows. Here the network, the clocks and the disks are
//! simulated, so every fault is native (partitions one-way or not, messages
//! held across a heal, per-link latency and loss, power loss of unsynced
//! writes, clock skew, pauses, joins and leaves), simulated time runs as
//! fast as the CPU allows, and every choice comes from one seed: the same
//! seed replays the same history byte for byte.
//!
//! The pieces:
//! - [`world`]: [`simulate`] builds the simulation (a host per node, the
//!   harness as a client), runs the step loop and applies the harness's
//!   requests ([`control`]) between steps;
//! - [`cluster`]: [`SimCluster`], the `docker::Cluster` (and `LinkFaults`)
//!   the unchanged harness drives;
//! - [`links`]: how faults on one link compose; [`net`]: tonic over turmoil
//!   sockets; [`clock`]: simulated time plus a per-node offset; [`disk`]:
//!   the power-loss engine the node runs inline; [`log`]:
//!   the nodes' logs in one file per run, stamped with simulated time;
//!   [`SimError`]: why a simulation failed (its own module, which the step
//!   loop and the log both return).
//!
//! turmoil rather than madsim: turmoil simulates only the network and time
//! under a stock tokio, so the node, tonic and hyper build unchanged and the
//! real binary and the simulated hosts are the same code; madsim replaces
//! tokio and tonic with its own crates at build time.

pub mod clock;
pub mod cluster;
pub mod control;
pub mod disk;
mod error;
pub mod links;
pub mod log;
pub mod net;
mod task_ids;
pub mod world;

pub use cluster::{SimCluster, BACKEND};
pub use error::SimError;
pub use world::{node_seed, simulate, SimReport, SimSpec};
