//! Which partition a window installs: a scheme drawn from those valid for
//! the cluster's size, then its grudge, both from the schedule's stream.

use rand::Rng;

use crate::grudge::{self, Grudge};

/// Partition shapes valid for this many nodes.
pub fn schemes(node_count: usize) -> Vec<&'static str> {
    let mut s = vec!["isolate-one", "random-halves", "one-way"];
    if node_count >= 3 {
        s.push("bridge");
    }
    if node_count >= 5 {
        s.push("majorities-ring");
    }
    s
}

/// A scheme and its grudge.
pub fn draw(nodes: &[String], rng: &mut impl Rng) -> (String, Grudge) {
    let offered = schemes(nodes.len());
    let scheme = offered[rng.random_range(0..offered.len())];
    let grudge = match scheme {
        "isolate-one" => grudge::isolate_one(nodes, rng),
        "random-halves" => grudge::random_halves(nodes, rng),
        "one-way" => grudge::one_way(nodes, rng),
        "bridge" => grudge::bridge(nodes, rng),
        "majorities-ring" => grudge::majorities_ring(nodes, rng),
        other => unreachable!("scheme {other} is not offered by schemes()"),
    };
    (scheme.to_string(), grudge)
}
