//! Errors of the proxy and its control protocol.

/// What can go wrong in the proxy or on its control socket.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A socket could not be opened, read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A fault whose values mean nothing.
    #[error("bad fault: {0}")]
    BadFault(String),
    /// A control line that is not a request.
    #[error("bad control request: {0}")]
    BadRequest(String),
    /// The proxy answered a control request with an error.
    #[error("linkproxy refused the request: {0}")]
    Refused(String),
}
