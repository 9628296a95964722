//! A grudge: for each node, the set of nodes whose packets it drops.
//!
//! Partitions are expressed as grudges because that is what iptables rules
//! implement (`-A INPUT -s <peer> -j DROP` on the node holding the grudge)
//! and because a grudge can be asymmetric (one-way partitions) while a list
//! of components cannot. The schemes below are Jepsen's: isolate one node,
//! random halves, the bridge, one-way, and the majorities ring in which every node sees a
//! majority but no two nodes see the same majority.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::Rng;

/// node -> the peers whose packets it drops.
pub type Grudge = BTreeMap<String, BTreeSet<String>>;

/// Every node in one component drops packets from every node in the others.
pub fn from_components(components: &[Vec<String>]) -> Grudge {
    let mut grudge = Grudge::new();
    for (i, comp) in components.iter().enumerate() {
        for node in comp {
            let others: BTreeSet<String> =
                components.iter().enumerate().filter(|(j, _)| *j != i).flat_map(|(_, c)| c.iter().cloned()).collect();
            if !others.is_empty() {
                grudge.insert(node.clone(), others);
            }
        }
    }
    grudge
}

/// One node, chosen from `rng`, cut off from all others.
pub fn isolate_one(nodes: &[String], rng: &mut impl Rng) -> Grudge {
    assert!(nodes.len() >= 2, "isolating needs at least two nodes");
    let victim = nodes[rng.random_range(0..nodes.len())].clone();
    let rest: Vec<String> = nodes.iter().filter(|n| **n != victim).cloned().collect();
    from_components(&[vec![victim], rest])
}

/// A random split into a smaller and a larger half.
pub fn random_halves(nodes: &[String], rng: &mut impl Rng) -> Grudge {
    assert!(nodes.len() >= 2, "halves need at least two nodes");
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let (a, b) = shuffled.split_at(nodes.len() / 2);
    from_components(&[a.to_vec(), b.to_vec()])
}

/// Jepsen's majorities ring: nodes in a shuffled ring; each node sees itself
/// and its nearest neighbours up to a bare majority, and drops the rest.
///
/// Needs at least five nodes: with three, a symmetric cut in which every node
/// keeps a majority and no two share one does not exist (TCP needs both
/// directions, so an asymmetric grudge would cut every link).
pub fn majorities_ring(nodes: &[String], rng: &mut impl Rng) -> Grudge {
    let n = nodes.len();
    assert!(n >= 5, "a majorities ring needs at least five nodes");
    let mut ring = nodes.to_vec();
    ring.shuffle(rng);
    let majority = n / 2 + 1;
    let mut grudge = Grudge::new();
    for (i, node) in ring.iter().enumerate() {
        // Visible: a window of `majority` nodes around i (itself included).
        let back = (majority - 1) / 2;
        let visible: BTreeSet<&String> = (0..majority).map(|k| &ring[(i + n - back + k) % n]).collect();
        let dropped: BTreeSet<String> = ring.iter().filter(|p| !visible.contains(p)).cloned().collect();
        if !dropped.is_empty() {
            grudge.insert(node.clone(), dropped);
        }
    }
    symmetric(grudge)
}

/// Jepsen's bridge: two halves that cannot see each other, and one node in
/// the middle that sees both (and is seen by both).
pub fn bridge(nodes: &[String], rng: &mut impl Rng) -> Grudge {
    assert!(nodes.len() >= 3, "a bridge needs at least three nodes");
    let mut ring = nodes.to_vec();
    ring.shuffle(rng);
    let middle = ring.len() / 2;
    let (left, rest) = ring.split_at(middle);
    let right = &rest[1..];
    let mut grudge = Grudge::new();
    for a in left {
        grudge.insert(a.clone(), right.iter().cloned().collect());
    }
    symmetric(grudge)
}

/// A one-way partition: one node drops the packets of some others, who
/// still hear it (`A` drops `B`, `B` still hears `A`). Not symmetrised.
pub fn one_way(nodes: &[String], rng: &mut impl Rng) -> Grudge {
    assert!(nodes.len() >= 2, "one-way needs at least two nodes");
    let deaf = nodes[rng.random_range(0..nodes.len())].clone();
    let others: Vec<String> = nodes.iter().filter(|n| **n != deaf).cloned().collect();
    let count = rng.random_range(1..=others.len());
    let mut shuffled = others;
    shuffled.shuffle(rng);
    Grudge::from([(deaf, shuffled.into_iter().take(count).collect())])
}

/// Makes a grudge symmetric: if a drops b, b drops a. TCP needs both ways
/// cut for a clean partition; one-way partitions skip this on purpose.
pub fn symmetric(mut grudge: Grudge) -> Grudge {
    let pairs: Vec<(String, String)> =
        grudge.iter().flat_map(|(a, bs)| bs.iter().map(move |b| (a.clone(), b.clone()))).collect();
    for (a, b) in pairs {
        grudge.entry(b).or_default().insert(a);
    }
    grudge
}

/// The nodes `node` can still hear from.
pub fn visible_from(grudge: &Grudge, nodes: &[String], node: &str) -> BTreeSet<String> {
    let dropped = grudge.get(node).cloned().unwrap_or_default();
    nodes.iter().filter(|p| !dropped.contains(*p)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn isolate_one_cuts_exactly_one_node_both_ways() {
        let ns = nodes(5);
        let g = isolate_one(&ns, &mut ChaCha8Rng::seed_from_u64(7));
        let victim = g.iter().find(|(_, d)| d.len() == 4).map(|(n, _)| n.clone()).expect("a victim");
        for n in ns.iter().filter(|n| **n != victim) {
            assert_eq!(g[n], BTreeSet::from([victim.clone()]));
        }
    }

    #[test]
    fn halves_split_two_and_three() {
        let ns = nodes(5);
        let g = random_halves(&ns, &mut ChaCha8Rng::seed_from_u64(1));
        let mut sizes: Vec<usize> = g.values().map(|d| d.len()).collect();
        sizes.sort();
        assert_eq!(sizes, vec![2, 2, 2, 3, 3]);
    }

    #[test]
    fn majorities_ring_every_node_sees_a_majority_and_no_two_the_same() {
        for seed in 0..20 {
            let ns = nodes(5);
            let g = majorities_ring(&ns, &mut ChaCha8Rng::seed_from_u64(seed));
            let views: Vec<BTreeSet<String>> = ns.iter().map(|n| visible_from(&g, &ns, n)).collect();
            for v in &views {
                assert!(v.len() >= 3, "a node sees only {v:?}");
            }
            let distinct: BTreeSet<_> = views.iter().collect();
            assert_eq!(distinct.len(), ns.len(), "views repeat: {views:?}");
            // Symmetric: if a drops b then b drops a.
            for (a, ds) in &g {
                for b in ds {
                    assert!(g[b].contains(a));
                }
            }
        }
    }

    #[test]
    fn bridge_node_sees_everyone_and_halves_do_not_see_each_other() {
        for seed in 0..10 {
            let ns = nodes(5);
            let g = bridge(&ns, &mut ChaCha8Rng::seed_from_u64(seed));
            let views: Vec<BTreeSet<String>> = ns.iter().map(|n| visible_from(&g, &ns, n)).collect();
            assert_eq!(views.iter().filter(|v| v.len() == 5).count(), 1, "{g:?}");
            assert_eq!(views.iter().filter(|v| v.len() == 3).count(), 4, "{g:?}");
        }
    }

    #[test]
    fn one_way_is_not_symmetric() {
        let ns = nodes(3);
        let g = one_way(&ns, &mut ChaCha8Rng::seed_from_u64(4));
        assert_eq!(g.len(), 1, "{g:?}");
        let (deaf, dropped) = g.iter().next().unwrap();
        for d in dropped {
            assert!(visible_from(&g, &ns, d).contains(deaf), "{d} must still hear {deaf}");
        }
    }

    #[test]
    fn same_seed_same_grudge() {
        let ns = nodes(5);
        let a = random_halves(&ns, &mut ChaCha8Rng::seed_from_u64(3));
        let b = random_halves(&ns, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a, b);
    }
}
