//! Errors a cluster backend reports; each says what it was doing and to whom.

/// Why a cluster backend could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No Docker engine answered on its socket; holds the client's error.
    #[error("no Docker engine answers ({0}); is the daemon running? (the local-process backend needs none)")]
    DockerUnavailable(String),
    /// A request to the Docker engine failed.
    #[error("docker: {context}: {source}")]
    Docker {
        /// What we asked the engine to do, and to which object.
        context: String,
        /// The engine's (or bollard's) error.
        source: bollard::errors::Error,
    },
    /// A node id the cluster does not have (it holds the id asked for).
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    /// The backend cannot perform this fault or action on this cluster.
    #[error("the {backend} backend cannot {what}")]
    Unsupported {
        /// The backend's name: `"docker"`, `"local"` or `"sim"`.
        backend: &'static str,
        /// The action that was refused.
        what: String,
    },
    /// A node started but did not answer `Admin.Status` before the deadline.
    #[error("node {node} did not answer its admin status within {timeout_ms} ms: {last_error}")]
    NotReady {
        /// The node that never answered.
        node: String,
        /// How long we waited.
        timeout_ms: u64,
        /// The last attempt's error (connect refused, timeout, ...).
        last_error: String,
    },
    /// The node image (its tag is held) is not in the Docker engine.
    #[error("image {0:?} is not present; run `make image` first")]
    MissingImage(String),
    /// A file or process operation on the host failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing, and to which path.
        context: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Any other failure, as a sentence that says what and to whom.
    #[error("{0}")]
    Other(String),
}
