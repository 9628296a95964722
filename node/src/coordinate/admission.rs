//! Admission control: how many client requests this node coordinates at
//! once, and the fast refusal of the rest.
//!
//! Under overload a node that takes every request it is offered collapses:
//! requests queue in the runtime, each waits longer than its client's
//! deadline, and the node spends its time on work nobody waits for any
//! more (a 3-node cluster under 2,000 clients completed 0.7% of its ops).
//! A store run in production refuses the excess at once and keeps serving
//! at capacity, as Cassandra's native transport does with its overload
//! errors. Here every client request takes a [`Permit`] before the
//! coordinator sees it. Over the limit it waits at most [`QUEUE_WAIT_MS`]
//! for one, in a queue no longer than the limit; without one it is answered
//! `RESOURCE_EXHAUSTED` with the reason `overloaded`, before any replica saw
//! it, so a client may count it as failed (not indeterminate) and back off.
//! The short wait is what keeps goodput under bursts: refused at once,
//! clients slept while permits freed a moment later and the node ran
//! below capacity (figures in `docs/performance.md`, "Overload").
//!
//! The limit is one of three ([`ClientLimit`], `--client-limit`):
//! - `adaptive` (the default): Netflix's gradient limiter (`Gradient2`,
//!   from the `tower-acc` crate) moves the limit with the latency of the
//!   requests it admitted: when the recent latency rises above the smoothed
//!   long-term one, requests are queueing somewhere, and the limit shrinks;
//!   when they agree, it grows by a small queue allowance. It is kept
//!   between [`ADAPTIVE_MIN`] and [`ADAPTIVE_MAX`]: the floor is above the
//!   concurrency any test or benchmark of this project drives a node with
//!   by design, so only real overload ever meets a refusal;
//! - a number: a fixed limit;
//! - `off`: every request is admitted (as before admission control).
//!
//! Replica requests from peers never pass through here: a round another
//! coordinator already started must be able to finish, so the replica side
//! serves it whatever this node's client load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tower_acc::{Algorithm, Gradient2};

pub use crate::config::ClientLimit;

/// The adaptive limit's floor: never fewer requests admitted than this.
pub const ADAPTIVE_MIN: usize = 64;
/// The adaptive limit's ceiling.
pub const ADAPTIVE_MAX: usize = 4_096;
/// The adaptive limit at start.
pub const ADAPTIVE_INITIAL: usize = 256;

/// How long a request over the limit waits for a permit before it is
/// refused, ms. Why wait at all: closed-loop clients arrive in bursts, and a
/// request refused at once sends its client to sleep while the permits
/// free up a moment later; the node then runs below capacity with clients
/// asleep. A wait this short still answers a refusal well within 10 ms.
pub const QUEUE_WAIT_MS: u64 = 5;

/// A client request refused for the node's load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("overloaded: {in_flight} client requests in flight, limit {limit}")]
pub struct Overloaded {
    /// Requests in flight when this one came.
    pub in_flight: usize,
    /// The limit then.
    pub limit: usize,
}

/// The node's admission of client requests.
#[derive(Debug)]
pub struct Admission {
    /// Which limit applies.
    mode: ClientLimit,
    /// The gradient limiter (adaptive mode only).
    adaptive: Mutex<Gradient2>,
    /// Client requests admitted and not yet answered.
    in_flight: AtomicUsize,
    /// Requests refused since start.
    refused: AtomicUsize,
    /// Requests waiting for a permit now (at most the limit).
    waiting: AtomicUsize,
    /// Woken once per released permit.
    released: Notify,
}

impl Admission {
    /// Admission under `mode`.
    pub fn new(mode: ClientLimit) -> Self {
        let gradient = Gradient2::builder()
            .initial_limit(ADAPTIVE_INITIAL)
            .min_limit(ADAPTIVE_MIN)
            .max_limit(ADAPTIVE_MAX)
            .build();
        Admission {
            mode,
            adaptive: Mutex::new(gradient),
            in_flight: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            released: Notify::new(),
        }
    }

    /// The limit now (`usize::MAX` when off).
    pub fn limit(&self) -> usize {
        match self.mode {
            ClientLimit::Off => usize::MAX,
            ClientLimit::Fixed(limit) => limit,
            ClientLimit::Adaptive => self.adaptive.lock().map_or(ADAPTIVE_MIN, |g| g.max_concurrency()),
        }
    }

    /// Admits one client request, or refuses it at once (the tests' way in;
    /// requests come through [`Admission::admit_within`]).
    #[cfg(test)]
    fn admit(self: &Arc<Self>) -> Result<Permit, Overloaded> {
        self.try_admit().inspect_err(|_| {
            self.refused.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// Admits one client request, waiting up to `wait` for a permit when
    /// the limit is reached; refuses it when the wait runs out, or at once
    /// when as many requests already wait as the limit admits (the queue
    /// is bounded).
    pub async fn admit_within(self: &Arc<Self>, wait: Duration) -> Result<Permit, Overloaded> {
        let first = match self.try_admit() {
            Ok(permit) => return Ok(permit),
            Err(refused) => refused,
        };
        let queued =
            self.waiting.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < first.limit).then_some(n + 1));
        if queued.is_err() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(first);
        }
        let admitted = tokio::time::timeout(wait, self.wait_for_permit()).await;
        let waited = self.waiting.fetch_sub(1, Ordering::AcqRel);
        assert!(waited >= 1, "a waiter left the queue twice");
        admitted.map_err(|_| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Overloaded { in_flight: self.in_flight(), limit: self.limit() }
        })
    }

    /// Waits until a released permit lets this request in.
    async fn wait_for_permit(self: &Arc<Self>) -> Permit {
        loop {
            let released = self.released.notified();
            if let Ok(permit) = self.try_admit() {
                return permit;
            }
            released.await;
        }
    }

    /// A permit if the limit allows one now.
    fn try_admit(self: &Arc<Self>) -> Result<Permit, Overloaded> {
        let limit = self.limit();
        let admitted =
            self.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1));
        match admitted {
            Ok(_) => Ok(Permit { admission: Arc::clone(self), started: Instant::now(), finished: false }),
            Err(in_flight) => Err(Overloaded { in_flight, limit }),
        }
    }

    /// Client requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Client requests refused since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed) as u64
    }

    /// The named counters `Admin.Status` and Prometheus show: refused,
    /// in flight, and the limit now (`u64::MAX` when off).
    pub fn counters(&self) -> [(&'static str, u64); 3] {
        let limit = u64::try_from(self.limit()).unwrap_or(u64::MAX);
        [
            ("client_requests_refused", self.refused()),
            ("client_requests_in_flight", self.in_flight() as u64),
            ("client_limit", limit),
        ]
    }

    /// A request admitted `started` ended after `latency` (`failed`: it
    /// did not meet its quorum); the adaptive limit learns from it.
    fn release(&self, latency: Duration, failed: bool) {
        let in_flight = self.in_flight.fetch_sub(1, Ordering::AcqRel);
        assert!(in_flight >= 1, "a permit was released twice");
        self.released.notify_one();
        if self.mode == ClientLimit::Adaptive {
            if let Ok(mut gradient) = self.adaptive.lock() {
                gradient.update(latency, in_flight, failed, false);
            }
        }
    }
}

/// One admitted client request; released when dropped (a request whose
/// client went away counts as neither fast nor slow: it is not measured).
#[derive(Debug)]
pub struct Permit {
    /// Where it was taken.
    admission: Arc<Admission>,
    /// When it was admitted.
    started: Instant,
    /// Whether [`Permit::finish`] released it already.
    finished: bool,
}

impl Permit {
    /// The request ended (`failed`: without its quorum): releases the
    /// permit and feeds its latency to the limiter.
    pub fn finish(mut self, failed: bool) {
        self.finished = true;
        self.admission.release(self.started.elapsed(), failed);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.finished {
            let in_flight = self.admission.in_flight.fetch_sub(1, Ordering::AcqRel);
            assert!(in_flight >= 1, "a permit was released twice");
            self.admission.released.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_print_back() {
        for text in ["adaptive", "off", "12"] {
            assert_eq!(text.parse::<ClientLimit>().unwrap().to_string(), text);
        }
        assert!("0".parse::<ClientLimit>().is_err(), "a limit of 0 admits nothing");
        assert!("lots".parse::<ClientLimit>().unwrap_err().contains("adaptive, off"));
    }

    #[tokio::test]
    async fn a_fixed_limit_refuses_the_excess_at_once_and_counts_it() {
        let admission = Arc::new(Admission::new(ClientLimit::Fixed(2)));
        let first = admission.admit().unwrap();
        let second = admission.admit().unwrap();
        let refused = admission.admit().unwrap_err();
        assert_eq!(refused, Overloaded { in_flight: 2, limit: 2 });
        assert!(refused.to_string().starts_with("overloaded"), "the reason a client keys on");
        assert_eq!((admission.in_flight(), admission.refused()), (2, 1));
        first.finish(false);
        drop(second);
        assert_eq!(admission.in_flight(), 0, "a finished and a dropped permit both free their slot");
        assert!(admission.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn over_the_limit_a_request_waits_for_a_released_permit_then_is_refused_and_the_queue_is_bounded() {
        let admission = Arc::new(Admission::new(ClientLimit::Fixed(1)));
        let wait = Duration::from_millis(QUEUE_WAIT_MS);
        let held = admission.admit_within(wait).await.unwrap();
        let waiter = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move { admission.admit_within(wait).await.map(|p| p.finish(false)) }
        });
        tokio::task::yield_now().await;
        assert!(
            admission.admit_within(wait).await.is_err(),
            "one waiter fills a queue as long as the limit: refused at once"
        );
        assert_eq!(admission.refused(), 1);
        held.finish(false);
        assert!(waiter.await.unwrap().is_ok(), "the waiter takes the released permit");
        let held = admission.admit_within(wait).await.unwrap();
        let started = Instant::now();
        assert!(admission.admit_within(wait).await.is_err(), "no permit frees within the wait: refused");
        assert_eq!(started.elapsed(), wait, "refused when the wait runs out, not before, not later");
        assert_eq!((admission.refused(), admission.in_flight()), (2, 1));
        drop(held);
        assert!(admission.admit_within(wait).await.is_ok(), "a dropped permit frees its slot too");
    }

    #[tokio::test]
    async fn off_admits_everything_and_adaptive_starts_within_its_bounds() {
        let off = Arc::new(Admission::new(ClientLimit::Off));
        let permits: Vec<Permit> = (0..10_000).map(|_| off.admit().unwrap()).collect();
        assert_eq!(off.in_flight(), permits.len());
        let adaptive = Admission::new(ClientLimit::Adaptive);
        assert!((ADAPTIVE_MIN..=ADAPTIVE_MAX).contains(&adaptive.limit()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_adaptive_limit_grows_while_latency_holds_shrinks_when_it_jumps_and_stays_in_bounds() {
        let admission = Arc::new(Admission::new(ClientLimit::Adaptive));
        // A full window of requests at a time, all answered after `ms`.
        let windows = |count: usize, ms: u64| {
            let admission = Arc::clone(&admission);
            async move {
                for _ in 0..count {
                    let permits: Vec<Permit> = (0..admission.limit()).map(|_| admission.admit().unwrap()).collect();
                    tokio::time::advance(Duration::from_millis(ms)).await;
                    permits.into_iter().for_each(|p| p.finish(false));
                    let limit = admission.limit();
                    assert!((ADAPTIVE_MIN..=ADAPTIVE_MAX).contains(&limit), "{limit} out of bounds");
                }
            }
        };
        windows(10, 1).await;
        let settled = admission.limit();
        assert!(settled > ADAPTIVE_INITIAL, "a store that stays quick under its load is given more: {settled}");
        windows(1, 100).await;
        let after = admission.limit();
        assert!(after < settled / 2, "latency 100x its baseline more than halves the limit: {settled} -> {after}");
        windows(30, 100).await;
        assert_eq!(admission.refused(), 0, "a full window is admitted, never more");
    }
}
