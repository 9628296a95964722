//! Arrivals: closed loop (each client waits for its answer, then goes
//! again) or open loop (operations arrive at a target rate whatever the
//! store does).
//!
//! Why both. A closed-loop generator slows down when the store does: a
//! partition that makes every write wait for its timeout also stops the
//! clients from offering more, so latency under faults is measured on a
//! load that quietly shrank ("coordinated omission"). An open-loop
//! generator keeps offering `rate` ops/s; what the store cannot absorb shows
//! up as queueing and, here, as dropped arrivals.
//!
//! Open loop under the history's rule of one op outstanding per process: a
//! pool of `concurrency` logical processes (slots). An arrival takes the
//! free slot with the lowest index; when every slot is busy the arrival is
//! not issued and is counted in `dropped_arrivals`, because a generator that
//! drops silently would report an offered load it never offered.
//!
//! The schedule is Poisson: inter-arrival times drawn from an exponential
//! distribution with mean `1 / rate`, from the run's seed. Poisson rather than
//! fixed spacing because independent users arrive that way, and because
//! fixed spacing never bunches up: it would march in step with the nodes'
//! own periodic work (gossip, hint delivery, anti-entropy ticks) and never
//! offer the short bursts that make queues and tails. The schedule is a pure
//! function of (seed, rate), so the same seed gives the same arrival times;
//! what each arrival does is drawn, in arrival order, from another stream of
//! the seed, also for arrivals that are dropped, so the op sequence does not
//! depend on timing either (only which of its ops were dropped does).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::seeded_rng;

pub use history::Arrival;

/// The Poisson arrival times of a run: offsets from its start, seeded.
pub struct Schedule {
    /// The seed stream of the inter-arrival gaps, and only of them.
    rng: ChaCha8Rng,
    /// Mean arrivals per second.
    rate_per_s: f64,
    /// The previous arrival's offset.
    at: Duration,
}

impl Schedule {
    /// Arrivals at `rate_per_s` (must be positive) for the run seeded `seed`.
    pub fn new(seed: u64, rate_per_s: f64) -> Schedule {
        assert!(rate_per_s > 0.0 && rate_per_s.is_finite(), "an open loop needs a positive rate");
        Schedule { rng: seeded_rng(seed, "arrival-times", 0), rate_per_s, at: Duration::ZERO }
    }
}

impl Iterator for Schedule {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        // Inverse transform: -ln(U) / rate is exponential; U in (0, 1] keeps ln finite.
        let u: f64 = 1.0 - self.rng.random::<f64>();
        self.at += Duration::from_secs_f64(-u.ln() / self.rate_per_s);
        Some(self.at)
    }
}

/// A client worker: a logical process that runs one op at a time, in a
/// closed loop on its own or as a slot of the open loop's pool.
pub(crate) trait Slot: Send + 'static {
    /// One op, drawn before it is sent.
    type Plan: Send + 'static;
    /// Closed loop: draws this worker's next op from its own stream.
    fn next_plan(&mut self) -> Self::Plan;
    /// Runs one op (invocation and completion recorded).
    fn perform(&mut self, plan: Self::Plan) -> impl Future<Output = ()> + Send;
    /// The process id it will use next (for the run summary).
    fn process(&self) -> u64;
}

/// Closed loop: `slot` draws and runs its own ops, one start per `period`
/// at most (zero: as fast as it gets answers), until `deadline`, starting
/// after `jitter` of a period (in [0, 1), from the seed) so that a rate
/// limit does not fire the workers in lockstep. Returns (ops, last process id).
pub(crate) async fn closed_loop<S: Slot>(mut slot: S, period: Duration, jitter: f64, deadline: Instant) -> (u64, u64) {
    assert!((0.0..1.0).contains(&jitter), "the start jitter is a fraction of a period");
    let mut next = Instant::now() + period.mul_f64(jitter);
    let mut ops = 0;
    while next < deadline {
        tokio::time::sleep_until(next).await;
        next = next.max(Instant::now().checked_sub(period).unwrap_or(next)) + period;
        let plan = slot.next_plan();
        slot.perform(plan).await;
        ops += 1;
    }
    (ops, slot.process())
}

/// What an open-loop run offered and what it issued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenLoopCounts {
    /// Arrivals scheduled before the deadline.
    pub arrivals: u64,
    /// Arrivals issued to a free process.
    pub issued: u64,
    /// Arrivals that found every process busy: never issued.
    pub dropped_arrivals: u64,
    /// The highest process id any slot ended with.
    pub max_process: u64,
}

/// Offers ops on `schedule` until `deadline`, each to the lowest free slot,
/// dropping (and counting) arrivals that find none; waits for the ops in
/// flight before returning. `draw` gives each arrival its plan, in arrival
/// order, also to a dropped one; it is told the index of the slot the plan
/// goes to (0 for a dropped arrival), for sticky clients.
pub(crate) async fn open_loop<S: Slot>(
    slots: Vec<S>,
    schedule: Schedule,
    deadline: Instant,
    mut draw: impl FnMut(usize) -> S::Plan,
) -> OpenLoopCounts {
    assert!(!slots.is_empty(), "an open loop needs at least one process");
    let free: Arc<Mutex<BTreeMap<usize, S>>> = Arc::new(Mutex::new(slots.into_iter().enumerate().collect()));
    let start = Instant::now();
    let mut counts = OpenLoopCounts::default();
    let mut in_flight = JoinSet::new();
    for offset in schedule {
        let at = start + offset;
        if at >= deadline {
            break;
        }
        tokio::time::sleep_until(at).await;
        counts.arrivals += 1;
        let taken = free.lock().expect("slot pool lock").pop_first();
        let Some((index, mut slot)) = taken else {
            draw(0);
            counts.dropped_arrivals += 1;
            continue;
        };
        let plan = draw(index);
        counts.issued += 1;
        let free = free.clone();
        in_flight.spawn(async move {
            slot.perform(plan).await;
            free.lock().expect("slot pool lock").insert(index, slot);
        });
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
    let free = free.lock().expect("slot pool lock");
    counts.max_process = free.values().map(Slot::process).max().unwrap_or(0);
    assert_eq!(counts.issued + counts.dropped_arrivals, counts.arrivals, "every arrival is issued or dropped");
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot whose op takes `busy_ms` and logs (arrival number, slot, start).
    struct Sleepy {
        index: u64,
        busy_ms: u64,
        log: Arc<Mutex<Vec<(u64, u64, Instant)>>>,
        rng: ChaCha8Rng,
    }

    impl Slot for Sleepy {
        type Plan = u64;
        fn next_plan(&mut self) -> u64 {
            self.rng.random()
        }
        async fn perform(&mut self, plan: u64) {
            self.log.lock().unwrap().push((plan, self.index, Instant::now()));
            tokio::time::sleep(Duration::from_millis(self.busy_ms)).await;
        }
        fn process(&self) -> u64 {
            self.index
        }
    }

    /// Runs `slots` slots whose ops take `busy_ms` at `rate` for 10 s.
    async fn drive(slots: u64, busy_ms: u64, rate: f64) -> (OpenLoopCounts, Vec<(u64, u64, Instant)>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let rng = |i| seeded_rng(7, "test-slot", i);
        let pool = (0..slots).map(|index| Sleepy { index, busy_ms, log: log.clone(), rng: rng(index) }).collect();
        let mut n = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        let counts = open_loop(pool, Schedule::new(7, rate), deadline, |_| {
            n += 1;
            n
        })
        .await;
        let log = log.lock().unwrap().clone();
        (counts, log)
    }

    #[test]
    fn same_seed_same_arrival_times_and_the_mean_gap_is_one_over_rate() {
        let a: Vec<Duration> = Schedule::new(42, 200.0).take(20_000).collect();
        let b: Vec<Duration> = Schedule::new(42, 200.0).take(20_000).collect();
        let c: Vec<Duration> = Schedule::new(43, 200.0).take(20_000).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.windows(2).all(|w| w[0] <= w[1]), "offsets only grow");
        let mean_s = a.last().unwrap().as_secs_f64() / a.len() as f64;
        assert!((mean_s - 1.0 / 200.0).abs() < 0.05 / 200.0, "mean gap {mean_s}");
    }

    #[tokio::test(start_paused = true)]
    async fn arrivals_keep_coming_when_ops_are_slow_and_busy_pools_drop_them() {
        // 2 processes whose ops take 100 ms can serve 20/s; 100/s arrive.
        let (counts, log) = drive(2, 100, 100.0).await;
        let expected = Schedule::new(7, 100.0).take_while(|d| *d < Duration::from_secs(10)).count() as u64;
        assert_eq!(counts.arrivals, expected, "the arrivals do not wait for the store");
        assert!(counts.dropped_arrivals > counts.arrivals / 2, "{counts:?}");
        assert!(counts.issued <= 2 * 10 * 10 + 2, "never more than one op per process at a time: {counts:?}");
        assert_eq!(log.len() as u64, counts.issued);
        // One op outstanding per process: a slot's starts are >= 100 ms apart.
        for slot in 0..2 {
            let starts: Vec<Instant> = log.iter().filter(|e| e.1 == slot).map(|e| e.2).collect();
            assert!(starts.windows(2).all(|w| w[1] - w[0] >= Duration::from_millis(100)));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_store_gets_every_arrival_and_the_same_seed_repeats_exactly() {
        let (counts, log) = drive(4, 1, 50.0).await;
        assert_eq!(counts.dropped_arrivals, 0, "{counts:?}");
        assert_eq!(counts.issued, counts.arrivals);
        let plans: Vec<u64> = log.iter().map(|e| e.0).collect();
        assert_eq!(plans, (1..=counts.arrivals).collect::<Vec<_>>(), "each arrival's plan in order");
        let (again, log_again) = drive(4, 1, 50.0).await;
        assert_eq!(again, counts);
        let key = |l: &[(u64, u64, Instant)]| l.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>();
        assert_eq!(key(&log), key(&log_again), "same plans to the same processes");
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_loop_paces_one_worker_at_its_period_after_its_jitter() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let slot = Sleepy { index: 3, busy_ms: 1, log: log.clone(), rng: seeded_rng(7, "test-slot", 3) };
        let start = Instant::now();
        let (ops, process) = closed_loop(slot, Duration::from_millis(100), 0.5, start + Duration::from_secs(1)).await;
        assert_eq!((ops, process), (10, 3), "starts at 50, 150, ..., 950 ms");
        let first = log.lock().unwrap()[0].2 - start;
        assert_eq!(first, Duration::from_millis(50));
    }
}
