//! Faults on whole datacenters: the WAN between them cut or slowed, or one
//! of them gone.
//!
//! Across datacenters the interesting failures are not one node's. A
//! transatlantic link goes down and the DCs carry on alone (`dc-partition`:
//! every link between one DC and the others cut, both ways, or one way in a
//! quarter of the windows); the WAN is slow (`wan-latency`: 50 to 150 ms
//! added with a fifth of that as jitter on links between DCs, links inside
//! a DC untouched); a DC loses power (`dc-outage`: every node of one DC
//! killed, and restarted at the window's end). These are the faults the
//! quorum words exist for: `local` keeps a DC serving through a cut WAN at
//! the cost of stale reads across it, `each` refuses writes rather than
//! serve them, and a WAN delay is what a `local` write does not wait for.
//!
//! Each window picks its DC from the seed. The actions are the ones node
//! faults use (a grudge, a kill and a restart) except the WAN's delay,
//! which slows chosen links, not nodes: [`Action::StartWanLatency`],
//! performed by the backend's own links (the simulator's network, link
//! proxies), since `tc netem` on an interface cannot tell a peer in the
//! same DC from one across the WAN.

use rand::Rng;

use crate::action::{Action, ScheduledAction};
use crate::grudge::{self, Grudge};

/// The least WAN delay a window adds, ms.
pub const WAN_DELAY_MIN_MS: u64 = 50;
/// The most WAN delay a window adds, ms.
pub const WAN_DELAY_MAX_MS: u64 = 150;

/// One `dc-partition` window: one DC cut off from the rest.
pub fn partition_window(dcs: &[Vec<String>], start_ms: u64, end_ms: u64, rng: &mut impl Rng) -> Vec<ScheduledAction> {
    if dcs.len() < 2 {
        return Vec::new();
    }
    let (cut_off, rest) = split(dcs, rng.random_range(0..dcs.len()));
    let one_way = rng.random_range(0..4) == 0;
    let (scheme, grudge) = if one_way {
        // The cut-off DC hears nothing from the rest; the rest still hears it.
        let grudge: Grudge = cut_off.iter().map(|n| (n.clone(), rest.iter().cloned().collect())).collect();
        ("dc-one-way", grudge)
    } else {
        ("dc-partition", grudge::from_components(&[cut_off, rest]))
    };
    let start = Action::StartPartition { scheme: scheme.into(), grudge, hold: false };
    vec![
        ScheduledAction { at_ms: start_ms, action: start },
        ScheduledAction { at_ms: end_ms, action: Action::StopPartition },
    ]
}

/// One `wan-latency` window: every link between two DCs slowed.
pub fn wan_window(dcs: &[Vec<String>], start_ms: u64, end_ms: u64, rng: &mut impl Rng) -> Vec<ScheduledAction> {
    if dcs.len() < 2 {
        return Vec::new();
    }
    let delay_ms = rng.random_range(WAN_DELAY_MIN_MS..=WAN_DELAY_MAX_MS);
    let start = Action::StartWanLatency { dcs: dcs.to_vec(), delay_ms, jitter_ms: delay_ms / 5 };
    vec![
        ScheduledAction { at_ms: start_ms, action: start },
        ScheduledAction { at_ms: end_ms, action: Action::StopLatency },
    ]
}

/// One `dc-outage` window: every node of one DC killed, then restarted.
pub fn outage_window(dcs: &[Vec<String>], start_ms: u64, end_ms: u64, rng: &mut impl Rng) -> Vec<ScheduledAction> {
    if dcs.len() < 2 {
        return Vec::new();
    }
    let nodes = dcs[rng.random_range(0..dcs.len())].clone();
    let kill = Action::Kill { nodes: nodes.clone(), primaries_of: None };
    let restart = Action::Restart { nodes, primaries_of: None };
    vec![ScheduledAction { at_ms: start_ms, action: kill }, ScheduledAction { at_ms: end_ms, action: restart }]
}

/// DC `chosen`'s nodes, and every other DC's.
fn split(dcs: &[Vec<String>], chosen: usize) -> (Vec<String>, Vec<String>) {
    let rest = dcs.iter().enumerate().filter(|(i, _)| *i != chosen).flat_map(|(_, dc)| dc.iter().cloned()).collect();
    (dcs[chosen].clone(), rest)
}

/// The directed links between different DCs (both directions of each pair).
pub fn wan_links(dcs: &[Vec<String>]) -> Vec<(String, String)> {
    let mut links = Vec::new();
    for (i, a) in dcs.iter().enumerate() {
        for b in dcs.iter().skip(i + 1) {
            for x in a {
                for y in b {
                    links.push((x.clone(), y.clone()));
                    links.push((y.clone(), x.clone()));
                }
            }
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn two_dcs() -> Vec<Vec<String>> {
        vec![vec!["n1".into(), "n2".into(), "n3".into()], vec!["n4".into(), "n5".into(), "n6".into()]]
    }

    #[test]
    fn a_dc_partition_cuts_only_links_between_dcs() {
        let dcs = two_dcs();
        for seed in 0..20 {
            let actions = partition_window(&dcs, 10, 20, &mut ChaCha8Rng::seed_from_u64(seed));
            let Action::StartPartition { scheme, grudge, .. } = &actions[0].action else { panic!("{actions:?}") };
            for (node, dropped) in grudge {
                let home = dcs.iter().find(|dc| dc.contains(node)).unwrap();
                assert!(dropped.iter().all(|d| !home.contains(d)), "{scheme}: {node} keeps its own DC");
            }
            let two_way = grudge.len() == 6;
            assert_eq!(two_way, scheme == "dc-partition", "{scheme}: {grudge:?}");
            assert_eq!(actions[1].action, Action::StopPartition);
        }
    }

    #[test]
    fn wan_latency_is_in_range_and_an_outage_is_a_whole_dc() {
        let dcs = two_dcs();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let wan = wan_window(&dcs, 0, 5, &mut rng);
        let Action::StartWanLatency { delay_ms, jitter_ms, .. } = wan[0].action else { panic!("{wan:?}") };
        assert!((WAN_DELAY_MIN_MS..=WAN_DELAY_MAX_MS).contains(&delay_ms) && jitter_ms == delay_ms / 5);
        let outage = outage_window(&dcs, 0, 5, &mut rng);
        let Action::Kill { nodes, .. } = &outage[0].action else { panic!("{outage:?}") };
        assert!(dcs.contains(nodes), "{nodes:?}");
        assert_eq!(wan_links(&dcs).len(), 18, "3 x 3 pairs, both ways");
        assert!(partition_window(&dcs[..1], 0, 5, &mut rng).is_empty(), "one DC: nothing to do");
    }
}
