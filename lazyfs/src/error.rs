//! The failures of the library: mounting, the backing directory, and the
//! control socket (both ends).

use std::path::PathBuf;

/// A failure of lazyfs.
#[derive(Debug, thiserror::Error)]
pub enum LazyError {
    /// The backing directory cannot be used.
    #[error("backing directory {0}: {1}")]
    Backing(PathBuf, #[source] std::io::Error),
    /// The backing path is not a directory.
    #[error("backing path {0} is not a directory")]
    NotADirectory(PathBuf),
    /// The FUSE mount failed (no `/dev/fuse`, no permission, no `fusermount3`).
    #[error("mounting at {0}: {1}")]
    Mount(PathBuf, #[source] std::io::Error),
    /// The control socket failed.
    #[error("control socket {0}: {1}")]
    Control(PathBuf, #[source] std::io::Error),
    /// The control socket answered something that is not an answer.
    #[error("control answer not understood: {0}")]
    BadAnswer(String),
    /// The control socket answered with an error.
    #[error("control command refused: {0}")]
    Refused(String),
}
