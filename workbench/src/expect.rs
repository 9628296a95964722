//! What a campaign claims, checked against what it measured.
//!
//! Every run must be valid by its own checkers (a strict quorum that served
//! a stale read is a bug). With `--expect-anomalies` the campaign also claims
//! the things a Dynamo-style store is known to do, so a workbench that
//! stopped finding them fails loudly instead of reporting a clean bill:
//! no stale reads with no faults at all, and stale reads under partitions
//! for weak settings (W + R <= N). A run that could not be performed
//! (unsupported fault) makes the verdict unknown, never a pass.

use checker::{Results, Validity};
use history::RunConfig;

use crate::table::{config_label, nemesis_label};

/// One run as the expectations see it; `results` is None when unsupported.
pub struct Measured<'a> {
    pub run: &'a RunConfig,
    pub results: Option<&'a Results>,
}

/// The campaign's verdict and the reasons for it.
#[derive(Debug, Default)]
pub struct Verdict {
    pub failures: Vec<String>,
    pub unknowns: Vec<String>,
}

impl Verdict {
    /// 0 all as expected, 1 something is not, 2 something could not be decided.
    pub fn exit_code(&self) -> i32 {
        if !self.failures.is_empty() {
            1
        } else if !self.unknowns.is_empty() {
            2
        } else {
            0
        }
    }
}

fn stale(results: &Results) -> Option<u64> {
    results.checkers.get("stale-reads")?.figure("stale")?.as_u64()
}

pub fn evaluate(measured: &[Measured<'_>], expect_anomalies: bool) -> Verdict {
    let mut v = Verdict::default();
    for m in measured {
        let label = format!("[{}] {}", nemesis_label(m.run), config_label(m.run));
        let Some(results) = m.results else {
            v.unknowns.push(format!("{label}: not performed (unsupported by the backend)"));
            continue;
        };
        match results.valid {
            Validity::False => v.failures.push(format!("{label}: invalid (see its results.json)")),
            Validity::Unknown => v.unknowns.push(format!("{label}: a checker could not decide")),
            Validity::True => {}
        }
        if expect_anomalies {
            expect_known_behaviour(m.run, results, &label, &mut v);
        }
    }
    v
}

fn expect_known_behaviour(run: &RunConfig, results: &Results, label: &str, v: &mut Verdict) {
    let stale = stale(results);
    if run.nemesis.is_empty() && stale != Some(0) {
        v.failures.push(format!("{label}: expected 0 stale reads without faults, found {stale:?}"));
    }
    let partitioned = run.nemesis.iter().any(|n| n == "partition");
    if partitioned && run.w + run.r <= run.n && !matches!(stale, Some(s) if s > 0) {
        v.failures.push(format!("{label}: expected stale reads under partitions (W+R<=N), found {stale:?}"));
    }
}
