//! `NodeId`: the name of a physical node (`n1`, `n2`, ...).
//!
//! Node ids appear everywhere: as ring members, as the keys of vector clocks,
//! as the targets of replica RPCs. A named type instead of a bare `String`
//! keeps those roles apart from keys and addresses in signatures, and its
//! ordering is exactly `String`'s, which matters because the LWW tiebreak
//! compares clocks by their map ordering and must agree with the workbench's
//! checkers (`history::Version::lww_cmp`), which key clocks by `String`.

use std::fmt;

/// The identifier of one physical node, unique within a cluster.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

impl NodeId {
    /// Wraps a node name. Names are compared and hashed byte-wise.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        debug_assert!(!name.is_empty(), "a node id must not be empty");
        NodeId(name)
    }

    /// The name as a string slice (what goes on the wire).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Debug prints the bare quoted name (`"n1"`), which keeps logged maps of
/// node ids readable.
impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NodeId {
    fn from(name: &str) -> Self {
        NodeId::new(name)
    }
}

impl From<String> for NodeId {
    fn from(name: String) -> Self {
        NodeId::new(name)
    }
}
