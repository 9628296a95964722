//! Versions and what clients say about them.
//!
//! [`vclock`] holds dotted version vectors, sibling sets and the one merge
//! rule every replica path uses (stores, read repair, handoff, streaming,
//! anti-entropy); [`context`] the opaque causal context a read returns and
//! the next write carries; [`validate`] checks client requests against the
//! configured limits before anything is minted. Pure logic.

pub mod context;
pub mod validate;
pub mod vclock;
