//! Checker tests: for every checker, a history with a planted anomaly it
//! must flag and a clean history it must pass.

mod builder;
mod latency;
mod monotonic_reads;
mod read_your_writes;
mod results;
mod stale_reads;
mod stats;
