//! Checker tests: for every checker, a history with a planted anomaly it
//! must flag and a clean history it must pass.

mod admin;
mod builder;
mod cas_register;
mod consistent_prefix;
mod hint_homes;
mod latency;
mod linearizable;
mod lost_writes;
mod monotonic_reads;
mod not_understood;
mod phantom_reads;
mod quorum;
mod read_your_writes;
mod results;
mod sentences;
mod siblings;
mod stale_reads;
mod stats;
mod t_visibility;
