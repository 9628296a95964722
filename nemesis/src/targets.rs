//! Whom a process fault hits: one node, a minority, or the primaries of
//! one key's preference list, from the seed.
//!
//! A minority (at most `(n - 1) / 2` nodes) is the most a fault can take
//! while a majority still runs; one node is the common case. The third
//! kind aims at one key: its home replicas, truncated to a minority of the
//! cluster so the cluster stays up (5 nodes, N=3: 2 of the key's 3
//! replicas), which forces that key's writes onto stand-ins (sloppy quorum,
//! hints) while every other key may be untouched. Which kind, which nodes
//! and which key (from the run's key space) are drawn from the schedule's
//! stream; the schedule stays pure because it records only "primaries of
//! key k" (with a drawn fallback of one node or a minority): the replicas
//! come from the ring when the action runs ([`primaries`]), and the event
//! says which they were, or that the store could not tell and the fallback
//! was hit instead.

use rand::seq::SliceRandom;
use rand::Rng;

/// The largest minority of `n` nodes (at least one).
pub fn minority_size(n: usize) -> usize {
    ((n.saturating_sub(1)) / 2).max(1)
}

/// One node or a minority, sorted by name.
pub fn draw(nodes: &[String], rng: &mut impl Rng) -> Vec<String> {
    assert!(!nodes.is_empty(), "no nodes to target");
    let count = if rng.random_bool(0.5) { 1 } else { minority_size(nodes.len()) };
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let mut chosen: Vec<String> = shuffled.into_iter().take(count).collect();
    chosen.sort();
    debug_assert!(chosen.len() < nodes.len() || nodes.len() == 1);
    chosen
}

/// A kill or pause target: (one node or a minority, Some(key) when the
/// window aims at that key's primaries and those nodes are only the
/// fallback). One draw in three aims at a key when there are keys.
pub fn draw_target(nodes: &[String], keys: &[String], rng: &mut impl Rng) -> (Vec<String>, Option<String>) {
    let aim_at_key = !keys.is_empty() && rng.random_range(0..3) == 0;
    let key = aim_at_key.then(|| keys[rng.random_range(0..keys.len())].clone());
    (draw(nodes, rng), key)
}

/// The primaries of a key: the first nodes of its preference list (ring
/// order), at most a minority of the `members` the cluster has now.
pub fn primaries(preference_list: &[String], members: usize) -> Vec<String> {
    let chosen: Vec<String> = preference_list.iter().take(minority_size(members)).cloned().collect();
    assert!(chosen.len() <= minority_size(members));
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn names(prefix: char, n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn never_more_than_a_minority() {
        for n in [3usize, 5, 7] {
            let nodes = names('n', n);
            for seed in 0..30 {
                let t = draw(&nodes, &mut ChaCha8Rng::seed_from_u64(seed));
                assert!(!t.is_empty() && t.len() <= minority_size(n), "{t:?}");
            }
        }
    }

    #[test]
    fn key_targets_come_from_the_key_space_and_the_seed() {
        let (nodes, keys) = (names('n', 5), names('k', 20));
        let draws: Vec<_> =
            (0..60).map(|seed| draw_target(&nodes, &keys, &mut ChaCha8Rng::seed_from_u64(seed))).collect();
        let aimed = draws.iter().filter(|(_, key)| key.is_some()).count();
        assert!((8..=35).contains(&aimed), "{aimed} of 60 aimed at a key");
        assert!(draws.iter().filter_map(|(_, k)| k.as_ref()).all(|k| keys.contains(k)));
        assert!(draws.iter().all(|(fallback, _)| !fallback.is_empty() && fallback.len() <= minority_size(5)));
        let again: Vec<_> =
            (0..60).map(|seed| draw_target(&nodes, &keys, &mut ChaCha8Rng::seed_from_u64(seed))).collect();
        assert_eq!(draws, again);
        assert!(draws.iter().all(|(_, key)| key.is_none()) == keys.is_empty());
        assert_eq!(draw_target(&nodes, &[], &mut ChaCha8Rng::seed_from_u64(1)).1, None);
    }

    #[test]
    fn primaries_are_a_minority_and_a_prefix_of_the_preference_list() {
        let list = vec!["n4".to_string(), "n1".into(), "n3".into()];
        assert_eq!(primaries(&list, 5), vec!["n4", "n1"], "5 nodes, N=3: 2 of the 3 replicas");
        assert_eq!(primaries(&list, 3), vec!["n4"]);
        for members in 1..=9 {
            let p = primaries(&list, members);
            assert!(p.len() <= minority_size(members) && p.iter().all(|n| list.contains(n)), "{p:?}");
            assert!(!p.is_empty());
        }
    }
}
