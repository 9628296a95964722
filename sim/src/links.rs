//! What the simulated network is told to do to each pair of hosts.
//!
//! turmoil keeps one state per link and direction, and its operations do
//! not compose: releasing a hold heals a cut, a hold cannot coexist with a
//! one-way cut. So the faults live here, as the union of what every nemesis
//! asked for (cuts per direction, holds per reason: a pause holds every
//! link of its node, a hold nemesis the pairs of its grudge), and each
//! change recomputes the affected pairs and says what to apply
//! ([`LinkOp`]): a held pair is held (a cut under it waits), an unheld pair
//! is released (held messages delivered), repaired, then cut one way or
//! both. Pure, so the composition rules are tested without a simulation.

use std::collections::{BTreeMap, BTreeSet};

/// An unordered pair of hosts, smaller name first.
pub type Pair = (String, String);

/// The pair of `a` and `b`, in order.
pub fn pair(a: &str, b: &str) -> Pair {
    assert_ne!(a, b, "a link joins two different hosts");
    if a < b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// One operation on the simulator's network.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkOp {
    /// Queue every message between the two, both ways.
    Hold(Pair),
    /// Deliver what was held; the link flows both ways.
    Release(Pair),
    /// Both directions healthy (without delivering anything held).
    Repair(Pair),
    /// Drop every message from the first host to the second.
    CutOneWay(String, String),
    /// Latency on the pair: at least `min_ms`, at most `max_ms`.
    Latency {
        /// The two hosts; the latency applies both ways.
        pair: Pair,
        /// The least delay of a message, in simulated milliseconds.
        min_ms: u64,
        /// The most delay of a message, in simulated milliseconds (turmoil draws
        /// each message's delay between the two).
        max_ms: u64,
    },
    /// Each message fails with this probability (a link flap drops what is in flight).
    FailRate {
        /// The two hosts; the rate applies both ways.
        pair: Pair,
        /// The probability, from 0 (none fails) to 1 (every one does).
        rate: f64,
    },
}

/// The faults in force on the network.
#[derive(Debug, Default)]
pub struct Links {
    /// Directed cuts (`from`, `to`).
    cuts: BTreeSet<(String, String)>,
    /// Pairs held, with the reasons (`pause n1`, `hold`) holding each.
    holds: BTreeMap<Pair, BTreeSet<String>>,
    /// Pairs that were held when last applied (their release delivers).
    held_applied: BTreeSet<Pair>,
}

impl Links {
    /// Adds directed cuts; returns what to apply.
    pub fn cut(&mut self, links: &[(String, String)]) -> Vec<LinkOp> {
        let touched: BTreeSet<Pair> = links.iter().map(|(a, b)| pair(a, b)).collect();
        self.cuts.extend(links.iter().cloned());
        self.apply(touched)
    }

    /// Removes every cut; returns what to apply.
    pub fn heal_cuts(&mut self) -> Vec<LinkOp> {
        let touched: BTreeSet<Pair> = self.cuts.iter().map(|(a, b)| pair(a, b)).collect();
        self.cuts.clear();
        self.apply(touched)
    }

    /// Holds `pairs` for `reason`; returns what to apply.
    pub fn hold(&mut self, pairs: &[Pair], reason: &str) -> Vec<LinkOp> {
        for p in pairs {
            self.holds.entry(p.clone()).or_default().insert(reason.to_string());
        }
        self.apply(pairs.iter().cloned().collect())
    }

    /// Drops `reason`'s holds; returns what to apply.
    pub fn release(&mut self, reason: &str) -> Vec<LinkOp> {
        let mut touched = BTreeSet::new();
        for (p, reasons) in self.holds.iter_mut() {
            if reasons.remove(reason) {
                touched.insert(p.clone());
            }
        }
        self.holds.retain(|_, reasons| !reasons.is_empty());
        self.apply(touched)
    }

    /// Whether the directed link `from -> to` drops messages now.
    pub fn is_cut(&self, from: &str, to: &str) -> bool {
        self.cuts.contains(&(from.to_string(), to.to_string()))
    }

    /// The operations that bring each touched pair to its desired state.
    fn apply(&mut self, touched: BTreeSet<Pair>) -> Vec<LinkOp> {
        let mut ops = Vec::new();
        for p in touched {
            if self.holds.contains_key(&p) {
                self.held_applied.insert(p.clone());
                ops.push(LinkOp::Hold(p));
                continue;
            }
            if self.held_applied.remove(&p) {
                ops.push(LinkOp::Release(p.clone()));
            }
            ops.push(LinkOp::Repair(p.clone()));
            let (a, b) = &p;
            for (from, to) in [(a, b), (b, a)] {
                if self.is_cut(from, to) {
                    ops.push(LinkOp::CutOneWay(from.clone(), to.clone()));
                }
            }
        }
        ops
    }
}

/// Latency with jitter as turmoil draws it: `min + (max - min) * Exp(5)`
/// capped at `max`, so the mean is `min + (max - min) / 5`. A window of
/// `delay_ms` with `jitter_ms` spread gets `min = delay - jitter` and
/// `max = delay + 4 * jitter`: mean `delay_ms`, standard deviation about
/// `jitter_ms` (an exponential tail instead of netem's normal one).
pub fn latency_bounds_ms(delay_ms: u64, jitter_ms: u64) -> (u64, u64) {
    let min = delay_ms.saturating_sub(jitter_ms);
    (min, delay_ms + 4 * jitter_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn a_one_way_cut_repairs_then_cuts_one_direction() {
        let mut links = Links::default();
        let ops = links.cut(&[(s("n2"), s("n1"))]);
        assert_eq!(ops, vec![LinkOp::Repair(pair("n1", "n2")), LinkOp::CutOneWay(s("n2"), s("n1"))]);
        assert!(links.is_cut("n2", "n1") && !links.is_cut("n1", "n2"));
        assert_eq!(links.heal_cuts(), vec![LinkOp::Repair(pair("n1", "n2"))]);
    }

    #[test]
    fn releasing_a_pause_keeps_a_partition_that_came_meanwhile() {
        let mut links = Links::default();
        links.hold(&[pair("n1", "n2")], "pause n1");
        // The partition arrives while the pair is held: it waits under the hold.
        assert_eq!(links.cut(&[(s("n1"), s("n2")), (s("n2"), s("n1"))]), vec![LinkOp::Hold(pair("n1", "n2"))]);
        let ops = links.release("pause n1");
        assert_eq!(
            ops,
            vec![
                LinkOp::Release(pair("n1", "n2")),
                LinkOp::Repair(pair("n1", "n2")),
                LinkOp::CutOneWay(s("n1"), s("n2")),
                LinkOp::CutOneWay(s("n2"), s("n1")),
            ]
        );
    }

    #[test]
    fn a_pair_stays_held_until_every_reason_released_it() {
        let mut links = Links::default();
        links.hold(&[pair("n1", "n2")], "pause n1");
        links.hold(&[pair("n1", "n2")], "pause n2");
        assert_eq!(links.release("pause n1"), vec![LinkOp::Hold(pair("n1", "n2"))]);
        assert_eq!(
            links.release("pause n2"),
            vec![LinkOp::Release(pair("n1", "n2")), LinkOp::Repair(pair("n1", "n2"))]
        );
        assert!(links.release("pause n2").is_empty(), "nothing left to release");
    }

    #[test]
    fn latency_bounds_have_the_asked_mean() {
        let (min, max) = latency_bounds_ms(50, 10);
        assert_eq!((min, max), (40, 90));
        assert_eq!(min + (max - min) / 5, 50);
        assert_eq!(latency_bounds_ms(5, 10), (0, 45), "never below zero");
    }
}
