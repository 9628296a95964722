//! The `prefix` workload: causally related writes on two keys, and readers
//! that read them in the opposite order (DDIA ch. 5, "consistent prefix
//! reads").
//!
//! DDIA's example: Mr. Poons asks "How far into the future can you see, Mrs.
//! Cake?", Mrs. Cake reads the question and answers "About ten seconds
//! usually". An observer whose reads are served by replicas that got the
//! answer before the question hears the answer first: a violation of
//! consistent prefix, possible whenever the two writes live on different
//! partitions, as two keys do under consistent hashing.
//!
//! The keys come in pairs: pair `i` is question key `k{2i}` and answer key
//! `k{2i+1}` (so the final reads, which read `k0..k{keys-1}`, read every
//! pair; `--keys` gives `keys / 2` pairs and at least 2 keys are needed; an
//! odd last key is never written). Each client op is one of two things:
//! - **ask** (probability `1 - read_fraction`): write a fresh question
//!   (`p<process>-<seq>`) to the question key; once it is acknowledged, read
//!   the question key back, and if that read returned any question (its own,
//!   or a newer or concurrent one of another client) write an answer naming
//!   every question it read ([`history::answer_value`]) to the answer key.
//!   The answer is *causally dependent* on what the read returned, which is
//!   the dependency consistent prefix is about: the question it names may be
//!   another client's, read while still in flight.
//! - **observe** (probability `read_fraction`): read the answer key, then,
//!   right after it, the question key. The `consistent-prefix` checker pairs
//!   the two by process order: an `ok` read that returned an answer,
//!   followed by the same process's next op, a read of the key of the
//!   question it names.
//!
//! Every step is an ordinary `write` or `read` in the history, so every
//! register checker (stale reads, monotonic reads, phantom reads,
//! t-visibility) reads these ops too; no new `f` exists. Writes carry the
//! context of the client's latest read of their key, so under sibling
//! resolution the store replaces the siblings the client saw rather than
//! piling up a sibling per write.
//!
//! Pacing counts a whole ask or observation as one op of the rate, so a run
//! records about 2.5 client ops per op paced.
//!
//! Determinism: each worker draws pair, nodes and ask-or-observe from its
//! own stream of the seed whatever the outcomes; in open loop one stream
//! draws them in arrival order, as in [`crate::register`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use history::{answer_value, Recorder, Version};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::arrival::Slot;
use crate::register::{siblings_json, Pace, RunSummary, Target};
use crate::worker::WorkerCore;
use crate::{key_name, seeded_rng, KeyDist, ReadReply, WorkloadConfig};

/// Keys per pair: a question key and an answer key.
const KEYS_PER_PAIR: u32 = 2;

/// The question key of pair `pair`.
pub fn question_key(pair: u32) -> String {
    key_name(pair * KEYS_PER_PAIR)
}

/// The answer key of pair `pair`.
pub fn answer_key(pair: u32) -> String {
    key_name(pair * KEYS_PER_PAIR + 1)
}

/// Pairs over `keys` keys (an odd last key is left out).
pub fn pairs(keys: u32) -> u32 {
    keys / KEYS_PER_PAIR
}

/// Runs `config.knobs.concurrency` workers against `targets` for `duration`.
pub async fn run(
    config: &WorkloadConfig,
    targets: &[Target],
    recorder: Arc<Recorder>,
    duration: Duration,
) -> RunSummary {
    assert!(!targets.is_empty() && config.knobs.concurrency > 0);
    assert!(pairs(config.knobs.keys) > 0, "the prefix workload needs at least 2 keys (a question and an answer key)");
    let pair_dist = KeyDist::new(config.knobs.key_distribution, pairs(config.knobs.keys));
    let workers: Vec<Worker> = (0..config.knobs.concurrency)
        .map(|i| Worker::new(config.clone(), pair_dist.clone(), i, targets.to_vec(), recorder.clone()))
        .collect();
    let mut rng = seeded_rng(config.seed, "prefix-arrivals", 0);
    let draw = |slot: usize| draw_plan(config, &pair_dist, &mut rng, targets.len(), slot as u32);
    let pace = Pace { arrival: config.knobs.arrival, rate: config.knobs.rate, seed: config.seed, duration };
    RunSummary::drive(workers, pace, draw, &recorder, "prefix").await
}

/// One ask or observation, as drawn before it is sent.
pub(crate) struct Plan {
    /// Which key pair.
    pair: u32,
    /// Node of each step, in order: the question write (or answer read),
    /// the read-back (or question read), the answer write.
    targets: [usize; 3],
    /// Observe (read answer, then question), else ask.
    observe: bool,
}

/// Draws pair, three nodes and ask-or-observe; every draw is made whatever the choices.
fn draw_plan(config: &WorkloadConfig, pairs: &KeyDist, rng: &mut ChaCha8Rng, targets: usize, index: u32) -> Plan {
    let pair = pairs.sample_rank(rng);
    let random: [usize; 3] = std::array::from_fn(|_| rng.random_range(0..targets));
    let observe = rng.random_bool(config.knobs.read_fraction.clamp(0.0, 1.0));
    let targets = random.map(|r| config.pick_target(r, index, targets));
    Plan { pair, targets, observe }
}

/// One client of the prefix workload.
struct Worker {
    /// Knobs, seed stream, nodes, process id and unique values: what every
    /// workload's client has ([`WorkerCore`]).
    core: WorkerCore,
    /// Which pair each op touches.
    pairs: KeyDist,
    /// Context of this worker's latest read of each key, written back with its next write.
    contexts: HashMap<String, Vec<u8>>,
}

impl Worker {
    fn new(
        config: WorkloadConfig,
        pairs: KeyDist,
        index: u32,
        targets: Vec<Target>,
        recorder: Arc<Recorder>,
    ) -> Worker {
        Worker {
            core: WorkerCore::new(config, index, targets, recorder, "prefix-worker"),
            pairs,
            contexts: HashMap::new(),
        }
    }

    /// Reads `key` through `target` and records it; the reply if `ok`.
    async fn read(&mut self, key: &str, target: usize) -> Option<ReadReply> {
        let reply = self.core.read(key, target, siblings_json).await;
        if let Some(reply) = &reply {
            self.contexts.insert(key.to_string(), reply.context.clone());
        }
        reply
    }

    /// Writes `value` to `key` through `target` with the context of the
    /// latest read of `key`, and records it; whether it was acknowledged.
    async fn write(&mut self, key: &str, value: String, target: usize) -> bool {
        let context = self.contexts.get(key).cloned().unwrap_or_default();
        self.core.write(key, value, target, &context).await
    }

    /// Question, read-back, answer naming every question the read-back returned.
    async fn ask(&mut self, plan: &Plan) {
        let (question_key, answer_key) = (question_key(plan.pair), answer_key(plan.pair));
        let question = self.core.next_id();
        if !self.write(&question_key, question, plan.targets[0]).await {
            return;
        }
        let Some(read_back) = self.read(&question_key, plan.targets[1]).await else {
            return;
        };
        let seen = questions(&read_back.siblings);
        if seen.is_empty() {
            return;
        }
        let id = self.core.next_id();
        let answer = answer_value(&id, &seen.iter().map(String::as_str).collect::<Vec<_>>());
        self.write(&answer_key, answer, plan.targets[2]).await;
    }

    /// The answer key, then the question key.
    async fn observe(&mut self, plan: &Plan) {
        if self.read(&answer_key(plan.pair), plan.targets[0]).await.is_some() {
            self.read(&question_key(plan.pair), plan.targets[1]).await;
        }
    }
}

/// The question values a read of a question key returned (tombstones have none).
fn questions(siblings: &[(Option<String>, Version)]) -> Vec<String> {
    siblings.iter().filter_map(|(value, _)| value.clone()).collect()
}

impl Slot for Worker {
    type Plan = Plan;

    fn next_plan(&mut self) -> Plan {
        let core = &mut self.core;
        draw_plan(&core.config, &self.pairs, &mut core.rng, core.targets.len(), core.index)
    }

    /// An ask or an observation.
    async fn perform(&mut self, plan: Plan) {
        match plan.observe {
            true => self.observe(&plan).await,
            false => self.ask(&plan).await,
        }
    }

    fn process(&self) -> u64 {
        self.core.process
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::OpType;

    #[test]
    fn pairs_are_even_and_odd_neighbours_and_an_odd_last_key_is_unused() {
        assert_eq!((question_key(0), answer_key(0)), ("k0".to_string(), "k1".to_string()));
        assert_eq!((question_key(2), answer_key(2)), ("k4".to_string(), "k5".to_string()));
        assert_eq!((pairs(5), pairs(2), pairs(1)), (2, 1, 0));
    }

    #[test]
    fn a_read_back_names_every_question_but_no_tombstone() {
        let v = Version::default();
        let sibs = vec![(Some("p1-0".to_string()), v.clone()), (None, v.clone()), (Some("p2-3".to_string()), v)];
        assert_eq!(questions(&sibs), vec!["p1-0", "p2-3"]);
    }

    /// A one-copy in-memory store: every read sees every earlier write.
    #[derive(Default)]
    struct OneCopy {
        /// key -> (value, counter).
        data: std::sync::Mutex<HashMap<String, (String, u64)>>,
    }

    #[async_trait::async_trait]
    impl crate::Client for OneCopy {
        async fn read(&self, key: &str) -> Result<ReadReply, crate::ClientError> {
            let data = self.data.lock().expect("not poisoned");
            let version = |c: u64| Version { clock: [("m".to_string(), c)].into(), ts: c, dot: None };
            let siblings = data.get(key).map(|(v, c)| vec![(Some(v.clone()), version(*c))]).unwrap_or_default();
            Ok(ReadReply { siblings, context: Vec::new(), answered_by: None })
        }
        async fn write(
            &self,
            key: &str,
            value: &str,
            _context: &[u8],
        ) -> Result<crate::WriteReply, crate::ClientError> {
            let mut data = self.data.lock().expect("not poisoned");
            let counter = data.get(key).map_or(1, |(_, c)| c + 1);
            data.insert(key.to_string(), (value.to_string(), counter));
            let version = Version { clock: [("m".to_string(), counter)].into(), ts: counter, dot: None };
            Ok(crate::WriteReply { version, hinted_for: Vec::new() })
        }
    }

    /// Every client op of a short run against [`OneCopy`], as (process, f, key, value) of its completions.
    async fn completions(seed: u64) -> Vec<(u64, String, String, serde_json::Value)> {
        let dir = std::env::temp_dir().join(format!("wl-prefix-{}-{seed}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let recorder =
            Arc::new(Recorder::create(&dir.join("h.jsonl"), std::time::Instant::now()).expect("a history file"));
        let store: Arc<dyn crate::Client> = Arc::new(OneCopy::default());
        let targets: Vec<Target> = (1..=3).map(|i| Target { node: format!("n{i}"), client: store.clone() }).collect();
        let knobs =
            history::Knobs { concurrency: 3, keys: 4, rate: 600.0, read_fraction: 0.5, ..history::Knobs::default() };
        run(&WorkloadConfig::new(knobs, seed), &targets, recorder.clone(), Duration::from_millis(300)).await;
        let ops =
            recorder.read_back().expect("the history reads back").ops.into_iter().filter(|op| op.kind == OpType::Ok);
        ops.filter_map(|op| match op.process {
            history::Process::Client(p) => Some((p, op.f, op.key.unwrap_or_default(), op.value)),
            history::Process::Nemesis => None,
        })
        .collect()
    }

    #[tokio::test]
    async fn askers_answer_what_they_read_back_and_observers_read_answer_then_question() {
        let ops = completions(7).await;
        let key = |k: &str| k[1..].parse::<u32>().expect("k<n>");
        let (mut answers, mut observed) = (0, 0);
        for p in 0..3 {
            let mine: Vec<_> = ops.iter().filter(|o| o.0 == p).collect();
            for step in mine.windows(2) {
                let (first, second) = (step[0], step[1]);
                if (first.1.as_str(), second.1.as_str()) == ("read", "read") && key(&first.2) == key(&second.2) + 1 {
                    observed += 1;
                }
                let Some(answer) = second.3.as_str().and_then(history::Answer::parse) else {
                    continue;
                };
                answers += 1;
                assert_eq!((first.1.as_str(), second.1.as_str()), ("read", "write"), "an answer follows its read-back");
                assert_eq!(key(&first.2) + 1, key(&second.2), "the answer key follows its question key");
                assert_eq!(
                    answer.questions,
                    vec![first.3[0]["value"].as_str().expect("a question")],
                    "it names what it read"
                );
            }
        }
        assert!(answers > 10 && observed > 10, "only {answers} answers and {observed} observations");
    }
}
