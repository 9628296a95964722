//! Which key an op touches: uniform over `k0..k{n-1}`, or zipfian.
//!
//! Zipfian with exponent `s` gives key `i` (0-based rank) a weight of
//! `1 / (i + 1)^s`: a few hot keys take most ops, as in real carts and
//! counters, which is where concurrent writes and lost updates concentrate.
//! Sampling inverts the precomputed cumulative distribution with a binary
//! search on one uniform draw, so a draw costs O(log n) and consumes exactly
//! one random number either way (the op sequence stays seed-determined).

use rand::Rng;

pub use history::KeyShape;

/// A key distribution over `k0..k{keys-1}`.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyDist {
    /// Every key equally likely.
    Uniform {
        /// Number of keys.
        keys: u32,
    },
    /// Key of rank i with weight `1 / (i + 1)^exponent`.
    Zipfian {
        /// Number of keys.
        keys: u32,
        /// The skew; 1.0 is classic Zipf.
        exponent: f64,
        /// Cumulative probabilities, ascending, last = 1.
        cdf: Vec<f64>,
    },
}

impl KeyDist {
    /// A uniform distribution over `keys` keys.
    pub fn uniform(keys: u32) -> KeyDist {
        assert!(keys > 0, "a key space needs at least one key");
        KeyDist::Uniform { keys }
    }

    /// A zipfian distribution over `keys` keys with the given exponent.
    pub fn zipfian(keys: u32, exponent: f64) -> KeyDist {
        assert!(keys > 0 && exponent >= 0.0, "bad zipfian({keys}, {exponent})");
        let weights: Vec<f64> = (0..keys).map(|i| 1.0 / f64::from(i + 1).powf(exponent)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        if let Some(last) = cdf.last_mut() {
            *last = 1.0;
        }
        KeyDist::Zipfian { keys, exponent, cdf }
    }

    /// The distribution of `shape` over `keys` keys.
    pub fn new(shape: KeyShape, keys: u32) -> KeyDist {
        match shape {
            KeyShape::Uniform => KeyDist::uniform(keys),
            KeyShape::Zipfian { exponent } => KeyDist::zipfian(keys, exponent),
        }
    }

    /// Parses `uniform` or `zipfian` (exponent 1.0) or `zipfian:<s>`.
    pub fn parse(s: &str, keys: u32) -> Result<KeyDist, String> {
        Ok(KeyDist::new(s.parse()?, keys))
    }

    /// Its shape, without the size.
    pub fn shape(&self) -> KeyShape {
        match self {
            KeyDist::Uniform { .. } => KeyShape::Uniform,
            KeyDist::Zipfian { exponent, .. } => KeyShape::Zipfian { exponent: *exponent },
        }
    }

    /// The number of keys.
    pub fn keys(&self) -> u32 {
        match self {
            KeyDist::Uniform { keys } | KeyDist::Zipfian { keys, .. } => *keys,
        }
    }

    /// Its name for `run.json`.
    pub fn label(&self) -> String {
        self.shape().label()
    }

    /// A key rank in `0..keys`, from one uniform draw.
    pub fn sample_rank(&self, rng: &mut impl Rng) -> u32 {
        let u: f64 = rng.random();
        match self {
            KeyDist::Uniform { keys } => ((u * f64::from(*keys)) as u32).min(keys - 1),
            KeyDist::Zipfian { keys, cdf, .. } => (cdf.partition_point(|c| *c < u) as u32).min(keys - 1),
        }
    }

    /// A key name, `k<rank>`.
    pub fn sample(&self, rng: &mut impl Rng) -> String {
        key_name(self.sample_rank(rng))
    }
}

/// The name of key `rank`.
pub fn key_name(rank: u32) -> String {
    format!("k{rank}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeded_rng;

    #[test]
    fn zipfian_favours_low_ranks_and_uniform_does_not() {
        let mut rng = seeded_rng(1, "keys", 0);
        let z = KeyDist::zipfian(10, 1.0);
        let u = KeyDist::uniform(10);
        let mut zc = [0u32; 10];
        let mut uc = [0u32; 10];
        for _ in 0..20_000 {
            zc[z.sample_rank(&mut rng) as usize] += 1;
            uc[u.sample_rank(&mut rng) as usize] += 1;
        }
        assert!(zc[0] > 5 * zc[9], "{zc:?}");
        assert!(uc.iter().all(|c| (1_500..2_500).contains(c)), "{uc:?}");
    }

    #[test]
    fn parse_names() {
        assert_eq!(KeyDist::parse("zipfian:0.5", 4).unwrap().label(), "zipfian:0.5");
        assert!(KeyDist::parse("pareto", 4).is_err());
    }
}
