//! Whom a process or clock fault hits: one node or a minority, from the seed.
//!
//! A minority (at most `(n - 1) / 2` nodes) is the most a fault can take
//! while a majority still runs; one node is the common case. Which of the
//! two, and which nodes, are drawn from the schedule's stream. (Targeting
//! the primaries of one key's preference list needs the node's ring and is
//! not offered yet.)

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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn never_more_than_a_minority() {
        for n in [3usize, 5, 7] {
            let nodes: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
            for seed in 0..30 {
                let t = draw(&nodes, &mut ChaCha8Rng::seed_from_u64(seed));
                assert!(!t.is_empty() && t.len() <= minority_size(n), "{t:?}");
            }
        }
    }
}
