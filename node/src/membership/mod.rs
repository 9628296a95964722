//! Membership: who is in the cluster, and moving data when that changes.
//!
//! [`gossip`] is the pure membership list and failure detector (time and
//! messages are inputs, peer choice comes from the node's seed). Putting
//! it on the network (`drivers::gossiper`) and moving ranges on a join or
//! leave (`drivers::streaming`) drive a node, so they live in `drivers/`. The
//! view coordinators plan against is derived from gossip in
//! `placement::view`.

pub mod gossip;
