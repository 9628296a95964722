//! The pure half of a nemesis: what to do, when, and to whom.
//!
//! A schedule alternates fault and heal windows across the run's fault phase:
//! wait a seeded interval, start a fault, hold it for a seeded duration, heal,
//! repeat until the time limit; the executor heals everything at the end
//! whatever the schedule says. Times are offsets from the start of the fault
//! phase, in milliseconds, so two runs with the same seed have the same
//! schedule exactly (and, executed, the same actions within scheduling noise).

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::grudge::{self, Grudge};

/// The nemeses this crate knows how to schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisKind {
    /// No faults: the control group.
    None,
    /// iptables partitions: isolate one, random halves, majorities ring.
    Partition,
}

impl NemesisKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NemesisKind::None => "none",
            NemesisKind::Partition => "partition",
        }
    }
}

impl std::str::FromStr for NemesisKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(NemesisKind::None),
            "partition" => Ok(NemesisKind::Partition),
            other => Err(format!("unknown nemesis {other:?} (known: none, partition)")),
        }
    }
}

/// One thing the nemesis does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Action {
    /// Install a grudge (scheme names which partition shape it is).
    StartPartition { scheme: String, grudge: Grudge },
    /// Remove every partition rule.
    StopPartition,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledAction {
    /// Milliseconds after the fault phase starts.
    pub at_ms: u64,
    pub action: Action,
}

/// The whole plan for one run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schedule {
    pub actions: Vec<ScheduledAction>,
}

/// Knobs of the fault rhythm.
#[derive(Debug, Clone, Copy)]
pub struct Rhythm {
    /// Quiet time before a fault, drawn uniformly from this range.
    pub calm_ms: (u64, u64),
    /// How long a fault is held, drawn uniformly from this range.
    pub fault_ms: (u64, u64),
}

impl Default for Rhythm {
    fn default() -> Self {
        Rhythm { calm_ms: (1_000, 3_000), fault_ms: (4_000, 8_000) }
    }
}

/// Partition shapes valid for this many nodes.
fn schemes(node_count: usize) -> Vec<&'static str> {
    let mut s = vec!["isolate-one", "random-halves"];
    if node_count >= 5 {
        s.push("majorities-ring");
    }
    s
}

fn draw_grudge(scheme: &str, nodes: &[String], rng: &mut impl Rng) -> Grudge {
    match scheme {
        "isolate-one" => grudge::isolate_one(nodes, rng),
        "random-halves" => grudge::random_halves(nodes, rng),
        "majorities-ring" => grudge::majorities_ring(nodes, rng),
        other => unreachable!("scheme {other} is not offered by schemes()"),
    }
}

fn draw_ms(range: (u64, u64), rng: &mut impl Rng) -> u64 {
    if range.1 <= range.0 {
        return range.0;
    }
    rng.random_range(range.0..=range.1)
}

/// The schedule of `kind` over `fault_phase_ms` for `nodes`, from `rng`.
pub fn plan(kind: NemesisKind, nodes: &[String], fault_phase_ms: u64, rhythm: Rhythm, rng: &mut impl Rng) -> Schedule {
    let mut actions = Vec::new();
    if kind == NemesisKind::None || nodes.len() < 2 {
        return Schedule { actions };
    }
    let offered = schemes(nodes.len());
    let mut t = 0;
    // Bounded: every iteration advances t by at least calm_ms.0 + 1.
    while actions.len() < 10_000 {
        t += draw_ms(rhythm.calm_ms, rng).max(1);
        if t >= fault_phase_ms {
            break;
        }
        let scheme = offered[rng.random_range(0..offered.len())];
        let grudge = draw_grudge(scheme, nodes, rng);
        actions.push(ScheduledAction { at_ms: t, action: Action::StartPartition { scheme: scheme.into(), grudge } });
        t = (t + draw_ms(rhythm.fault_ms, rng).max(1)).min(fault_phase_ms);
        actions.push(ScheduledAction { at_ms: t, action: Action::StopPartition });
    }
    Schedule { actions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn nodes() -> Vec<String> {
        (1..=3).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn same_seed_same_schedule_different_seed_differs() {
        let a = plan(NemesisKind::Partition, &nodes(), 30_000, Rhythm::default(), &mut ChaCha8Rng::seed_from_u64(9));
        let b = plan(NemesisKind::Partition, &nodes(), 30_000, Rhythm::default(), &mut ChaCha8Rng::seed_from_u64(9));
        let c = plan(NemesisKind::Partition, &nodes(), 30_000, Rhythm::default(), &mut ChaCha8Rng::seed_from_u64(10));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(!a.actions.is_empty());
    }

    #[test]
    fn starts_and_stops_alternate_within_the_phase() {
        let s = plan(NemesisKind::Partition, &nodes(), 20_000, Rhythm::default(), &mut ChaCha8Rng::seed_from_u64(1));
        for (i, a) in s.actions.iter().enumerate() {
            assert!(a.at_ms <= 20_000);
            let is_start = matches!(a.action, Action::StartPartition { .. });
            assert_eq!(is_start, i % 2 == 0, "action {i} out of order: {s:?}");
        }
        assert!(s.actions.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert_eq!(s.actions.len() % 2, 0, "every start has its stop");
    }

    #[test]
    fn no_nemesis_no_actions() {
        let s = plan(NemesisKind::None, &nodes(), 20_000, Rhythm::default(), &mut ChaCha8Rng::seed_from_u64(1));
        assert!(s.actions.is_empty());
    }
}
