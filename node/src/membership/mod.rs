//! Membership: who is in the cluster, and moving data when that changes.
//!
//! [`gossip`] is the pure membership list and failure detector (time and
//! messages are inputs, peer choice comes from the node's seed);
//! [`gossiper`] puts it on the network (the loop and the Gossip RPC);
//! [`streaming`] joins and leaves, moving ranges to their new owners. The
//! view coordinators plan against is derived from gossip in
//! `placement::view`.

pub mod gossip;
pub mod gossiper;
pub mod streaming;
