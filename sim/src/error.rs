//! Why a simulation failed: [`SimError`].
//!
//! Its own module, below the ones that return it: [`crate::world`] (a bad
//! node configuration, the simulator stopping, the harness's error) and
//! [`crate::log`] (the log file), so neither imports the other for it.

use std::path::PathBuf;

/// Why a simulation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A node's configuration is invalid.
    #[error("node {node}: invalid configuration: {reason}")]
    Config {
        /// The node.
        node: String,
        /// What the node's own parser said.
        reason: String,
    },
    /// The simulator stopped: a host failed, or the run passed its limit.
    #[error("the simulation failed: {0}")]
    Sim(String),
    /// The harness returned an error.
    #[error("{0}")]
    Harness(String),
    /// The log file could not be created.
    #[error("cannot create the simulation log {path}: {source}")]
    Log {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}
