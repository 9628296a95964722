//! A directed link: the bytes one side sends the other.

use serde::{Deserialize, Serialize};

/// `from` -> `to`: a peer's name, the node's, or [`crate::CLIENT`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Link {
    /// The sending side.
    pub from: String,
    /// The receiving side.
    pub to: String,
}

impl Link {
    /// The link `from` -> `to`.
    pub fn new(from: &str, to: &str) -> Link {
        assert_ne!(from, to, "a link joins two different sides");
        Link { from: from.to_string(), to: to.to_string() }
    }
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}->{}", self.from, self.to)
    }
}
