//! Clock skew through libfaketime, never the host clock.
//!
//! Each node runs under libfaketime with its own timestamp file; the
//! backend's [`docker::Cluster::set_clock_offset`] rewrites it and the node's
//! wall clock follows within ~0.1 s (monotonic time is left alone, so the
//! node's timers keep working). A window is either a *bump* (the targets jump
//! by a seeded offset of either sign and stay there) or a *strobe* (the
//! targets flip between +d and -d every second); it ends with a reset to the
//! true time. Under last-write-wins, a node whose clock runs behind stamps
//! new writes older than acknowledged ones, and they lose: that is the
//! anomaly the `lost-writes` checker attributes to clocks.

use std::collections::BTreeMap;

use rand::Rng;

use crate::action::{Action, ScheduledAction};
use crate::targets;

/// Offsets are drawn from this range of magnitudes, seconds.
pub const OFFSET_RANGE_S: (i64, i64) = (5, 60);

/// Time between two flips of a strobe, ms.
pub const STROBE_PERIOD_MS: u64 = 1_000;

/// The most flips one strobe window holds.
const MAX_FLIPS: u64 = 50;

fn offset(rng: &mut impl Rng) -> i64 {
    let magnitude = rng.random_range(OFFSET_RANGE_S.0..=OFFSET_RANGE_S.1);
    if rng.random_bool(0.5) {
        magnitude
    } else {
        -magnitude
    }
}

/// One clock window from `start_ms` to `end_ms`.
pub fn window(nodes: &[String], start_ms: u64, end_ms: u64, rng: &mut impl Rng) -> Vec<ScheduledAction> {
    let victims = targets::draw(nodes, rng);
    let offsets: BTreeMap<String, i64> = victims.iter().map(|n| (n.clone(), offset(rng))).collect();
    let strobe = rng.random_bool(0.3);
    let mut out = Vec::new();
    let first_mode = if strobe { "strobe-start" } else { "bump" };
    out.push(ScheduledAction {
        at_ms: start_ms,
        action: Action::ClockBump { mode: first_mode.into(), offsets_s: offsets.clone() },
    });
    if strobe {
        let flips = ((end_ms - start_ms) / STROBE_PERIOD_MS).min(MAX_FLIPS);
        for k in 1..flips {
            let sign = if k % 2 == 0 { 1 } else { -1 };
            let flipped = offsets.iter().map(|(n, o)| (n.clone(), sign * o)).collect();
            out.push(ScheduledAction {
                at_ms: start_ms + k * STROBE_PERIOD_MS,
                action: Action::ClockBump { mode: "strobe".into(), offsets_s: flipped },
            });
        }
    }
    out.push(ScheduledAction { at_ms: end_ms, action: Action::ClockReset { nodes: victims } });
    out
}
