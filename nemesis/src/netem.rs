//! Latency and loss with `tc netem` on each container's interface.
//!
//! Jepsen's defaults: 50 ms mean delay with 10 ms of normally distributed
//! jitter; loss is drawn per window from a few percent. The qdisc goes on
//! `eth0` as the root qdisc (`replace`, so a second start does not fail) and
//! is deleted on heal. Since it sits on the node's egress, it slows the
//! node's replies to clients as well as its messages to peers, as a slow
//! network would. A backend with its own links (the simulator, link proxies
//! in front of local processes) gets the same window as
//! [`docker::LinkFaults::slow`] instead, and the event names its mechanism.

use rand::Rng;

use crate::action::{Action, ScheduledAction};

/// The interface the qdisc goes on inside each container.
pub const INTERFACE: &str = "eth0";
/// Mean delay, ms.
pub const DELAY_MS: u64 = 50;
/// Standard deviation of the delay, ms.
pub const JITTER_MS: u64 = 10;
/// Loss percentages a window draws from.
pub const LOSS_PCT: [u32; 3] = [0, 1, 5];

/// One latency window on every node.
pub fn window(nodes: &[String], start_ms: u64, end_ms: u64, rng: &mut impl Rng) -> Vec<ScheduledAction> {
    let loss_pct = LOSS_PCT[rng.random_range(0..LOSS_PCT.len())];
    let start = Action::StartLatency { nodes: nodes.to_vec(), delay_ms: DELAY_MS, jitter_ms: JITTER_MS, loss_pct };
    vec![
        ScheduledAction { at_ms: start_ms, action: start },
        ScheduledAction { at_ms: end_ms, action: Action::StopLatency },
    ]
}

/// The shell command that installs the qdisc.
pub fn start_command(delay_ms: u64, jitter_ms: u64, loss_pct: u32) -> String {
    format!(
        "tc qdisc replace dev {INTERFACE} root netem delay {delay_ms}ms {jitter_ms}ms distribution normal loss {loss_pct}%"
    )
}

/// The shell command that removes it; succeeds when there was none.
pub fn stop_command() -> String {
    format!("tc qdisc del dev {INTERFACE} root 2>/dev/null || true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_is_jepsens_shape() {
        assert_eq!(
            start_command(50, 10, 1),
            "tc qdisc replace dev eth0 root netem delay 50ms 10ms distribution normal loss 1%"
        );
    }
}
