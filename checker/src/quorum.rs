//! Quorum: whether the run kept the promise its configuration makes.
//!
//! With strict quorums (`W + R > N`, no sloppy quorum) every read quorum
//! meets every write quorum, so a read that began after a write's
//! acknowledgement must see it, and a client must read its own writes. Any
//! stale read or read-your-writes violation there is a quorum-guarantee
//! violation and the run is invalid (`false`). With weak settings the same
//! figures are reported and the verdict is `true`: nothing was promised.
//! `unknown` when neither underlying check had evidence.

use history::RunConfig;
use serde_json::json;

use crate::observe::ObservedSource;
use crate::result::{CheckResult, Validity};

/// The checker's name in `results.json`.
pub const NAME: &str = "quorum";

fn count(result: &CheckResult, key: &str) -> u64 {
    result.figure(key).and_then(|v| v.as_u64()).unwrap_or(0)
}

/// Judges the run's quorum promise; see the module documentation.
pub fn check(history: &impl ObservedSource, run: &RunConfig) -> CheckResult {
    // The two checkers' own results (judged once, when they run together
    // with this one) and the acks and reads they judged.
    let (stale, ryw) = (history.stale_reads(run), history.read_your_writes(run));
    let observed = history.observed();
    let strict = run.is_strict_quorum();
    let (stale_n, ryw_n) = (count(&stale, "stale"), count(&ryw, "violations"));
    let evidence = stale.valid != Validity::Unknown || ryw.valid != Validity::Unknown;
    let valid = if !evidence { Validity::Unknown } else { Validity::from(!(strict && stale_n + ryw_n > 0)) };
    let mut result = CheckResult::new(valid)
        .with("strict", json!(strict))
        .with("w_plus_r", json!(run.w + run.r))
        .with("n", json!(run.n))
        .with("sloppy_quorum", json!(run.sloppy_quorum))
        .with("stale_reads", json!(stale_n))
        .with("ryw_violations", json!(ryw_n));
    if valid == Validity::False {
        result = result
            .with("reason", json!("W + R > N promised every read sees every acknowledged write; the run is invalid"));
    }
    if !evidence {
        result = result.with("reason", json!("no read followed an acknowledged write"));
    }
    observed.not_understood.judge(result)
}
