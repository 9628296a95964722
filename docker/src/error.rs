//! Errors a cluster backend reports; each says what it was doing and to whom.

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no Docker engine answers ({0}); is the daemon running? (the local-process backend needs none)")]
    DockerUnavailable(String),
    #[error("docker: {context}: {source}")]
    Docker { context: String, source: bollard::errors::Error },
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    #[error("the {backend} backend cannot {what}")]
    Unsupported { backend: &'static str, what: String },
    #[error("node {node} did not answer its admin status within {timeout_ms} ms: {last_error}")]
    NotReady { node: String, timeout_ms: u64, last_error: String },
    #[error("image {0:?} is not present; run `make image` first")]
    MissingImage(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0}")]
    Other(String),
}
