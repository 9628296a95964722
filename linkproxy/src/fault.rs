//! What one directed link suffers, and the per-chunk draws that apply it.
//!
//! A [`LinkFault`] is the whole state of a link: latency with jitter drawn
//! from a distribution, loss with a probability (a lost chunk is dropped, or
//! delayed by a retransmission timeout as TCP would redeliver it), a
//! bandwidth limit, a blackhole, and a hold (nothing read, so nothing lost:
//! what TCP does with the segments an iptables DROP swallowed, delivered
//! when the rule goes). It is validated before it is installed
//! ([`LinkFault::validate`]), so a bad control request is refused with a
//! clear error instead of half-applied. The draws take the proxy's seeded
//! RNG, so a run's faults follow its seed.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::ProxyError;

/// The longest latency a link may be given: beyond it a fault is a typo
/// (a minute of delay is a blackhole, and there is a fault for that).
pub const MAX_LATENCY_MS: u64 = 60_000;

/// How long a lost chunk waits by default in [`LossMode::Delay`]: Linux's
/// minimum TCP retransmission timeout, the cost of one lost segment.
pub const DEFAULT_LOSS_DELAY_MS: u64 = 200;

/// How a link's extra delay spreads around its mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// `latency + N(0, jitter)`, cut at zero (netem's `distribution normal`).
    #[default]
    Normal,
    /// `latency - jitter + Exp(mean jitter)`, so the mean is `latency` and
    /// the tail is long (a congested link).
    Exponential,
    /// Uniform over `latency ± jitter`.
    Uniform,
}

/// What happens to a chunk the loss draw picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LossMode {
    /// Held `loss_delay_ms` more, then delivered: what a lost TCP segment
    /// costs the application (a retransmission), with the stream intact.
    #[default]
    Delay,
    /// Thrown away. The TCP stream above loses bytes, so its protocol
    /// breaks and the connection dies: a harsher fault than packet loss.
    Drop,
}

/// Every fault on one directed link; the default is a healthy link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LinkFault {
    /// Mean extra delay of every chunk, ms.
    pub latency_ms: u64,
    /// Spread of the delay around the mean, ms (its meaning per [`Distribution`]).
    pub jitter_ms: u64,
    /// How the delay spreads.
    pub distribution: Distribution,
    /// Probability, in percent, that a chunk is lost.
    pub loss_pct: f64,
    /// What a lost chunk becomes.
    pub loss: LossMode,
    /// Extra delay of a lost chunk in [`LossMode::Delay`], ms.
    pub loss_delay_ms: Option<u64>,
    /// Bytes per second the link carries at most; `None` is unlimited.
    pub bandwidth_bytes_per_s: Option<u64>,
    /// Drop every byte while the connection stays open (iptables DROP).
    pub blackhole: bool,
    /// Read nothing more until released: the sender's TCP buffers fill
    /// and it stalls, and everything flows again at the release (TCP
    /// retransmitting across a healed partition). Bounded by the kernel's
    /// socket buffers, not the proxy's memory.
    pub hold: bool,
}

/// What the draws decided for one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Deliver after this extra delay, ms (0: at once).
    Deliver {
        /// Extra delay, ms.
        delay_ms: u64,
    },
    /// Throw away.
    Drop,
}

impl LinkFault {
    /// A blackhole: every byte dropped.
    pub fn blackhole() -> LinkFault {
        LinkFault { blackhole: true, ..LinkFault::default() }
    }

    /// A hold: nothing read until released.
    pub fn hold() -> LinkFault {
        LinkFault { hold: true, ..LinkFault::default() }
    }

    /// Latency `latency_ms` with `jitter_ms` spread, normal.
    pub fn latency(latency_ms: u64, jitter_ms: u64) -> LinkFault {
        LinkFault { latency_ms, jitter_ms, ..LinkFault::default() }
    }

    /// Whether this is a healthy link (nothing to apply).
    pub fn is_healthy(&self) -> bool {
        *self == LinkFault::default()
    }

    /// Refuses values that cannot mean anything.
    pub fn validate(&self) -> Result<(), ProxyError> {
        let bad = |why: String| Err(ProxyError::BadFault(why));
        if self.latency_ms > MAX_LATENCY_MS || self.jitter_ms > MAX_LATENCY_MS {
            return bad(format!(
                "latency_ms {} and jitter_ms {} must be at most {MAX_LATENCY_MS}",
                self.latency_ms, self.jitter_ms
            ));
        }
        if !(0.0..=100.0).contains(&self.loss_pct) {
            return bad(format!("loss_pct {} is not a percentage in 0..=100", self.loss_pct));
        }
        if self.loss_delay_ms.is_some_and(|d| d > MAX_LATENCY_MS) {
            return bad(format!("loss_delay_ms must be at most {MAX_LATENCY_MS}"));
        }
        if self.bandwidth_bytes_per_s == Some(0) {
            return bad("bandwidth_bytes_per_s 0 would carry nothing; use blackhole".into());
        }
        Ok(())
    }

    /// The fate of the next chunk on this link.
    pub fn draw(&self, rng: &mut impl Rng) -> Fate {
        if self.blackhole {
            return Fate::Drop;
        }
        let mut delay_ms = self.draw_latency_ms(rng);
        if self.loss_pct > 0.0 && rng.random_bool(self.loss_pct / 100.0) {
            match self.loss {
                LossMode::Drop => return Fate::Drop,
                LossMode::Delay => delay_ms += self.loss_delay_ms.unwrap_or(DEFAULT_LOSS_DELAY_MS),
            }
        }
        Fate::Deliver { delay_ms }
    }

    /// One latency draw, ms, never negative.
    fn draw_latency_ms(&self, rng: &mut impl Rng) -> u64 {
        let (mean, spread) = (self.latency_ms as f64, self.jitter_ms as f64);
        if spread == 0.0 {
            return self.latency_ms;
        }
        let ms = match self.distribution {
            Distribution::Normal => mean + spread * standard_normal(rng),
            Distribution::Uniform => mean + spread * (2.0 * rng.random::<f64>() - 1.0),
            Distribution::Exponential => mean - spread - spread * (1.0 - rng.random::<f64>()).ln(),
        };
        ms.max(0.0).round() as u64
    }
}

/// A standard normal draw (Box-Muller).
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // in (0, 1]: ln is finite
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn delays(fault: &LinkFault, n: usize) -> Vec<u64> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        (0..n)
            .map(|_| match fault.draw(&mut rng) {
                Fate::Deliver { delay_ms } => delay_ms,
                Fate::Drop => panic!("no loss asked"),
            })
            .collect()
    }

    fn mean(v: &[u64]) -> f64 {
        v.iter().sum::<u64>() as f64 / v.len() as f64
    }

    #[test]
    fn every_distribution_has_the_asked_mean() {
        for distribution in [Distribution::Normal, Distribution::Exponential, Distribution::Uniform] {
            let fault = LinkFault { latency_ms: 50, jitter_ms: 5, distribution, ..LinkFault::default() };
            let m = mean(&delays(&fault, 20_000));
            assert!((m - 50.0).abs() < 0.5, "{distribution:?}: mean {m}");
        }
    }

    #[test]
    fn normal_jitter_spreads_by_the_asked_deviation_and_uniform_stays_in_its_window() {
        let normal = delays(&LinkFault::latency(50, 5), 20_000);
        let m = mean(&normal);
        let sd = (normal.iter().map(|d| (*d as f64 - m).powi(2)).sum::<f64>() / normal.len() as f64).sqrt();
        assert!((sd - 5.0).abs() < 0.3, "sd {sd}");
        let uniform = LinkFault { distribution: Distribution::Uniform, ..LinkFault::latency(50, 5) };
        assert!(delays(&uniform, 5_000).iter().all(|d| (45..=55).contains(d)));
    }

    #[test]
    fn loss_drops_or_delays_the_asked_share() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let drop = LinkFault { loss_pct: 20.0, loss: LossMode::Drop, ..LinkFault::default() };
        let dropped = (0..10_000).filter(|_| drop.draw(&mut rng) == Fate::Drop).count();
        assert!((1_800..2_200).contains(&dropped), "{dropped}");
        let delay = LinkFault { loss_pct: 20.0, ..LinkFault::default() };
        let late =
            (0..10_000).filter(|_| delay.draw(&mut rng) == Fate::Deliver { delay_ms: DEFAULT_LOSS_DELAY_MS }).count();
        assert!((1_800..2_200).contains(&late), "{late}");
    }

    #[test]
    fn a_blackhole_drops_everything_and_a_default_fault_is_healthy() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!((0..100).all(|_| LinkFault::blackhole().draw(&mut rng) == Fate::Drop));
        assert!(LinkFault::default().is_healthy());
        assert_eq!(LinkFault::default().draw(&mut rng), Fate::Deliver { delay_ms: 0 });
    }

    #[test]
    fn meaningless_faults_are_refused() {
        let refused = |f: LinkFault| f.validate().unwrap_err().to_string();
        assert!(refused(LinkFault { loss_pct: 120.0, ..LinkFault::default() }).contains("loss_pct 120"));
        assert!(refused(LinkFault { bandwidth_bytes_per_s: Some(0), ..LinkFault::default() }).contains("use blackhole"));
        assert!(refused(LinkFault::latency(MAX_LATENCY_MS + 1, 0)).contains("at most"));
        assert!(LinkFault::latency(50, 5).validate().is_ok());
    }
}
