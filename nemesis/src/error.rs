//! Why a nemesis could not do what it was asked: [`NemesisError`].
//!
//! Below every effectful module ([`crate::partition`], `perform`, `execute`),
//! which all return it, so none of them imports another for its error type.
//! A fault the backend cannot perform is [`NemesisError::Unsupported`]:
//! reported as such, never faked.

use docker::ClusterError;

/// Why a nemesis could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// The backend cannot perform this fault; reported, never faked.
    #[error("the {backend} backend cannot do {fault}; reported as unsupported, not faked")]
    Unsupported {
        /// The backend's name.
        backend: &'static str,
        /// The fault asked for.
        fault: String,
    },
    /// A command inside a node failed.
    #[error("on {node}, `{command}` failed: {detail}")]
    Command {
        /// The node it ran in.
        node: String,
        /// The shell command.
        command: String,
        /// Exit status and output.
        detail: String,
    },
    /// The backend failed (kill, restart, exec, ...).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The history could not be written.
    #[error("cannot record a nemesis event: {0}")]
    Record(#[from] history::HistoryError),
}
