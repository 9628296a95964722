//! PBS prediction: P(a read covers a write | t ms after its ack), simulated
//! from the run's own WARS latency distributions.
//!
//! The closed form `C(N-W, R) / C(N, R)` ([`pbs_p_stale`], defined here)
//! assumes a write reaches its W acknowledgers and nobody else, ever. A
//! healthy cluster propagates to every replica within a round trip, so a
//! W=R=1 run measures almost no stale reads while the closed form says
//! two-thirds: a comparison that says nothing. Bailis et al. (VLDB 2012)
//! instead draw each replica's four latencies from measured distributions
//! and replay the quorum protocol, Monte Carlo:
//!
//! - **W**: the coordinator's store reaching replica i's apply; **A**: the
//!   ack coming back. The write is acknowledged at the W-th smallest
//!   `W_i + A_i`; call that instant 0.
//! - **R**: a read sent `t` later reaching replica i; **S**: its reply
//!   coming back. The coordinator answers from the R replicas with the
//!   smallest `R_i + S_i`.
//! - The read covers the write when one of those R had applied it by the
//!   time the read reached it: `W_i <= t + R_i`.
//!
//! The distributions are the nodes' own (`wars.json`, see
//! `history::WarsFile`), in two classes: a replica that is the coordinator
//! itself answers by a direct call in microseconds, the others over the
//! network. A write's and a read's coordinator is a replica of the key
//! with probability `min(1, N / nodes)` (clients pick coordinators
//! uniformly), and then it is one replica of the N, drawn anew for each.
//! Every draw is independent and comes from a fixed seed, so the same
//! `wars.json` always predicts the same curve.
//!
//! The client's legs. The measured `t` runs from the client's receipt of
//! the ack to its next read's invoke, while the model's runs from the
//! coordinator's ack to the read's arrival there: the ack's way back to
//! the client and the read's way to the coordinator lie between. Where the
//! replicas answer in a few hundred microseconds those legs are as long as
//! W itself, so leaving them out predicts far too much staleness (measured
//! on Docker: 0.60 predicted against 0.03 measured in the first bin at W=R=1).
//! The model therefore adds one client round trip to every `t`, estimated
//! from the run itself ([`WarsModel::client_round_trip_ms`]): the median
//! `ok` read latency the clients saw, minus the median read latency the
//! model predicts at the coordinator.
//!
//! What the model leaves out, as PBS does: read repair and anti-entropy
//! (they only make reads fresher), and faults (a crashed or cut-off
//! replica is not a slow one; a latency nemesis slows every link at once,
//! where the model draws each replica's latency on its own). So the
//! prediction is for runs without faults, and a run with them shows how
//! far faults move staleness from what latency alone explains.

use history::WarsFile;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `C(n, k)` as a float (exact for the small n of a cluster).
pub fn binomial(n: u32, k: u32) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}

/// PBS: the probability that a read quorum of R misses a write quorum of W
/// among N replicas, right at the acknowledgement.
pub fn pbs_p_stale(n: u32, w: u32, r: u32) -> f64 {
    assert!(w <= n && r <= n, "W={w} R={r} must not exceed N={n}");
    binomial(n - w, r) / binomial(n, r)
}

/// Trials per predicted point.
pub const TRIALS: u32 = 20_000;

/// The seed of every prediction (a prediction is a pure function of its input).
pub const SEED: u64 = 0x5eed_0bb5;

/// One leg's samples in ms, by class.
#[derive(Debug, Clone, Default, PartialEq)]
struct Leg {
    /// The replica was the coordinator.
    local: Vec<f64>,
    /// Another node.
    remote: Vec<f64>,
}

impl Leg {
    fn from_file(file: &WarsFile, name: &str) -> Leg {
        let ms = |us: Vec<u32>| us.into_iter().map(|u| f64::from(u) / 1_000.0).collect();
        Leg { local: ms(file.samples(name, true)), remote: ms(file.samples(name, false)) }
    }

    /// A draw for a replica of the given class; a class with no samples
    /// borrows the other's (a 1-node run has no remote replica at all).
    fn draw(&self, local: bool, rng: &mut impl Rng) -> f64 {
        let (first, other) = if local { (&self.local, &self.remote) } else { (&self.remote, &self.local) };
        let from = if first.is_empty() { other } else { first };
        debug_assert!(!from.is_empty(), "a leg without samples is refused by WarsModel::new");
        from[rng.random_range(0..from.len())]
    }

    fn is_empty(&self) -> bool {
        self.local.is_empty() && self.remote.is_empty()
    }
}

/// The quorum shape being predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// Replicas per key.
    pub n: u32,
    /// Acks a write waits for.
    pub w: u32,
    /// Replies a read waits for.
    pub r: u32,
    /// Nodes in the cluster (for how often a coordinator is a replica).
    pub nodes: u32,
}

/// The four distributions of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct WarsModel {
    /// Store send to apply.
    w: Leg,
    /// Apply to ack.
    a: Leg,
    /// Fetch send to read.
    r: Leg,
    /// Read to reply.
    s: Leg,
}

impl WarsModel {
    /// The model of `file`; None when some leg has no sample at all (the
    /// run made no request of that kind, or its nodes report no timings).
    pub fn new(file: &WarsFile) -> Option<WarsModel> {
        let model = WarsModel {
            w: Leg::from_file(file, "w"),
            a: Leg::from_file(file, "a"),
            r: Leg::from_file(file, "r"),
            s: Leg::from_file(file, "s"),
        };
        let legs = [&model.w, &model.a, &model.r, &model.s];
        (!legs.iter().any(|l| l.is_empty())).then_some(model)
    }

    /// A model from samples given directly, in ms, every replica remote
    /// (for tests and for distributions known exactly).
    pub fn remote(w: Vec<f64>, a: Vec<f64>, r: Vec<f64>, s: Vec<f64>) -> Option<WarsModel> {
        let leg = |remote: Vec<f64>| Leg { local: Vec::new(), remote };
        let model = WarsModel { w: leg(w), a: leg(a), r: leg(r), s: leg(s) };
        let legs = [&model.w, &model.a, &model.r, &model.s];
        (!legs.iter().any(|l| l.is_empty())).then_some(model)
    }

    /// The client's round trip to and from its coordinator, ms: the median
    /// of `client_read_ms` (the `ok` read latencies the clients saw) minus
    /// the median read latency the model predicts at the coordinator (the
    /// R-th fastest `R_i + S_i`); 0 when no read completed or the model is
    /// slower than the clients.
    pub fn client_round_trip_ms(&self, quorum: Quorum, client_read_ms: &[f64]) -> f64 {
        let Some(client) = median(client_read_ms.to_vec()) else { return 0.0 };
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        let p_replica = (f64::from(quorum.n) / f64::from(quorum.nodes.max(1))).min(1.0);
        let coordinator_ms: Vec<f64> = (0..TRIALS)
            .map(|_| {
                let reader = coordinator(p_replica, quorum.n as usize, &mut rng);
                let replies: Vec<f64> = (0..quorum.n as usize)
                    .map(|i| self.r.draw(reader == Some(i), &mut rng) + self.s.draw(reader == Some(i), &mut rng))
                    .collect();
                kth_smallest(&replies, quorum.r as usize)
            })
            .collect();
        median(coordinator_ms).map_or(0.0, |c| (client - c).max(0.0))
    }

    /// P(a read begun `t_ms` after the ack covers the write), for each of
    /// `ts_ms`, each from [`TRIALS`] trials. `t` is the coordinator's: add
    /// the client's round trip to a `t` the clients measured.
    pub fn predict(&self, quorum: Quorum, ts_ms: &[f64]) -> Vec<f64> {
        assert!(quorum.n as usize <= MAX_N, "N={} is more than {MAX_N} replicas", quorum.n);
        assert!(
            quorum.w >= 1 && quorum.r >= 1 && quorum.w <= quorum.n && quorum.r <= quorum.n,
            "bad quorum {quorum:?}"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(SEED);
        ts_ms
            .iter()
            .map(|t| {
                let covered = (0..TRIALS).filter(|_| self.trial(quorum, *t, &mut rng)).count();
                covered as f64 / f64::from(TRIALS)
            })
            .collect()
    }

    /// One write and one read `t_ms` after its ack; true when the read covers it.
    fn trial(&self, q: Quorum, t_ms: f64, rng: &mut impl Rng) -> bool {
        let n = q.n as usize;
        let p_replica_coordinates = (f64::from(q.n) / f64::from(q.nodes.max(1))).min(1.0);
        let (writer, reader) = (coordinator(p_replica_coordinates, n, rng), coordinator(p_replica_coordinates, n, rng));
        let mut applied_ms = [0f64; MAX_N];
        let mut acked_ms = [0f64; MAX_N];
        for i in 0..n {
            applied_ms[i] = self.w.draw(writer == Some(i), rng);
            acked_ms[i] = applied_ms[i] + self.a.draw(writer == Some(i), rng);
        }
        let ack = kth_smallest(&acked_ms[..n], q.w as usize);
        // Each replica: when the read reaches it (after the ack), when its reply is back.
        let mut replies: [(f64, f64); MAX_N] = [(0.0, 0.0); MAX_N];
        for (i, reply) in replies.iter_mut().enumerate().take(n) {
            let reach_ms = ack + t_ms + self.r.draw(reader == Some(i), rng);
            *reply = (reach_ms + self.s.draw(reader == Some(i), rng), reach_ms);
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|a, b| replies[*a].0.total_cmp(&replies[*b].0));
        order.iter().take(q.r as usize).any(|i| applied_ms[*i] <= replies[*i].1)
    }
}

/// Which of the `n` replicas coordinates a request, if any: with
/// probability `p_replica` one of them, uniformly.
fn coordinator(p_replica: f64, n: usize, rng: &mut impl Rng) -> Option<usize> {
    rng.random_bool(p_replica).then(|| rng.random_range(0..n))
}

/// The most replicas a prediction handles (fixed arrays keep a trial allocation-free).
pub const MAX_N: usize = 16;

/// The k-th smallest (1-based) of `values`.
fn kth_smallest(values: &[f64], k: usize) -> f64 {
    assert!(k >= 1 && k <= values.len() && values.len() <= MAX_N);
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[k - 1]
}

/// The median of `values` (the upper one of an even count); None when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Root mean square of `predicted - measured` over the pairs given.
pub fn rmse(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let sum: f64 = pairs.iter().map(|(p, m)| (p - m).powi(2)).sum();
    Some((sum / pairs.len() as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exponential samples with mean `mean_ms`, seeded.
    fn exponential(mean_ms: f64, count: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..count).map(|_| -mean_ms * (1.0 - rng.random::<f64>()).ln()).collect()
    }

    #[test]
    fn with_no_propagation_it_is_the_closed_form() {
        // The closed form's world: the ack comes back at once (A = 0) and a
        // read reaches its replicas at once (R = 0), so at t = 0 exactly the
        // W acknowledgers hold the write, and replies in random order (S)
        // make the read quorum a uniformly random R of the N.
        for (n, w, r) in [(3, 1, 1), (3, 1, 2), (5, 2, 2), (5, 1, 3), (3, 2, 2)] {
            let model = WarsModel::remote(exponential(1.0, 5_000, 1), vec![0.0], vec![0.0], exponential(1.0, 5_000, 2))
                .unwrap();
            let p = model.predict(Quorum { n, w, r, nodes: 100 }, &[0.0])[0];
            let closed = 1.0 - pbs_p_stale(n, w, r);
            // 20,000 trials: the standard error is at most 0.0035.
            assert!((p - closed).abs() < 0.015, "N{n} W{w} R{r}: predicted {p:.4}, closed form {closed:.4}");
        }
    }

    #[test]
    fn propagation_makes_later_reads_fresher_until_all_are() {
        let model = WarsModel::remote(
            exponential(10.0, 5_000, 3),
            exponential(1.0, 5_000, 4),
            exponential(1.0, 5_000, 5),
            exponential(1.0, 5_000, 6),
        )
        .unwrap();
        let q = Quorum { n: 3, w: 1, r: 1, nodes: 3 };
        let p = model.predict(q, &[0.0, 5.0, 20.0, 200.0]);
        assert!(p.windows(2).all(|x| x[0] <= x[1] + 0.01), "not rising: {p:?}");
        assert!(p[0] < 0.75 && p[3] > 0.999, "{p:?}");
        // A strict quorum always covers, at any t.
        let strict = model.predict(Quorum { n: 3, w: 2, r: 2, nodes: 3 }, &[0.0, 5.0]);
        assert_eq!(strict, vec![1.0, 1.0]);
    }

    #[test]
    fn a_model_needs_every_leg_and_predicts_the_same_twice() {
        assert!(WarsModel::remote(vec![1.0], vec![], vec![1.0], vec![1.0]).is_none());
        assert!(WarsModel::new(&WarsFile::default()).is_none());
        let model = WarsModel::remote(exponential(5.0, 100, 7), vec![0.1], vec![0.1], vec![0.1]).unwrap();
        let q = Quorum { n: 3, w: 1, r: 1, nodes: 5 };
        assert_eq!(model.predict(q, &[1.0, 2.0]), model.predict(q, &[1.0, 2.0]));
        assert_eq!(rmse(&[(0.5, 0.4), (1.0, 1.0)]).map(|e| (e * 1e6).round()), Some(70_711.0));
        assert_eq!(rmse(&[]), None);
    }

    #[test]
    fn the_client_round_trip_is_what_the_clients_saw_beyond_the_coordinator() {
        // Coordinator reads take R + S = 2 ms; clients saw 5 ms: 3 ms are theirs.
        let model = WarsModel::remote(vec![1.0], vec![1.0], vec![1.0], vec![1.0]).unwrap();
        let q = Quorum { n: 3, w: 1, r: 1, nodes: 3 };
        assert_eq!(model.client_round_trip_ms(q, &[4.0, 5.0, 9.0]), 3.0);
        assert_eq!(model.client_round_trip_ms(q, &[1.0]), 0.0, "never negative");
        assert_eq!(model.client_round_trip_ms(q, &[]), 0.0);
    }
}
