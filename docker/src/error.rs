//! Errors a cluster backend reports; each says what it was doing and to whom.

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no Docker engine answers ({0}); is the daemon running? (the local-process backend needs none)")]
    DockerUnavailable(String),
    #[error("docker: {context}: {source}")]
    Docker {
        /// What we asked the engine to do, and to which object.
        context: String,
        /// The engine's (or bollard's) error.
        source: bollard::errors::Error,
    },
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    #[error("the {backend} backend cannot {what}")]
    Unsupported {
        /// `"docker"` or `"local"`.
        backend: &'static str,
        /// The action that was refused.
        what: String,
    },
    #[error("node {node} did not answer its admin status within {timeout_ms} ms: {last_error}")]
    NotReady {
        /// The node that never answered.
        node: String,
        /// How long we waited.
        timeout_ms: u64,
        /// The last attempt's error (connect refused, timeout, ...).
        last_error: String,
    },
    #[error("image {0:?} is not present; run `make image` first")]
    MissingImage(String),
    #[error("{context}: {source}")]
    Io {
        /// What we were doing, and to which path.
        context: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}
