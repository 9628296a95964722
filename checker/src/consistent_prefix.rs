//! Consistent-prefix reads (DDIA ch. 5): a reader that sees an answer must
//! also see the question it answers.
//!
//! The `prefix` workload writes a question to a question key, reads it back,
//! and writes an answer naming every question that read returned
//! ([`history::Answer`]) to an answer key; observers read the answer key and
//! then, as their very next op, the question key. DDIA's anomaly is the
//! observer who hears the answer before the question: the writes were made
//! in one causal order and read in another.
//!
//! Definition. An *observation* is an `ok` read that returned at least one
//! answer, followed by the same process's next client op: a read of the key
//! the named question was written to (pairing by process order; a process
//! has one op outstanding, so the second read began after the first one
//! ended). If that second read is not `ok` the observation is *incomplete*
//! and not judged. An observation is a *violation* when, for some question
//! named by some answer it saw, none of the question read's siblings covers
//! the question's version ([`history::Version::covers`] under the run's
//! resolution): the question read returned nothing, or only an older
//! question, or (under siblings) only a concurrent one. A question's version
//! comes from its acknowledged write or from any read that returned it (the
//! asker's read-back always did); a question an answer names whose version
//! appears nowhere is counted once in `unresolved_questions`, never as a
//! violation.
//!
//! Two kinds, and what is promised. The question an answer names may be the
//! asker's own, acknowledged before its read-back, or another client's,
//! read while still in flight. If the missing question was acknowledged
//! before the question read began (`violations_after_ack`), the question
//! read is also a stale read, and strict quorums (`W + R > N`, not sloppy)
//! forbid it: the verdict is then `false`. If it was not yet acknowledged
//! (`violations_in_flight`), no quorum setting promises it, for the reason
//! W + R > N is not linearizable: one read quorum can meet a write in flight
//! and the next miss it. Those, and every violation under weak settings, are
//! the measurement, and the verdict stays `true`. `unknown` when no
//! observation was complete.
//!
//! Cost: one pass over the history's pairs, then one over its reads;
//! each observation tests its named questions against its siblings.

use std::collections::{HashMap, HashSet};

use history::compact::{CompactHistory, CompactOp, LinePair, Sibling, VersionRef};
use history::{Answer, OpType, Process, RunConfig};
use serde_json::{json, Value};

use crate::explain;
use crate::observe::{Observed, ObservedSource, Read};
use crate::result::{CheckResult, Validity};
use crate::stale_reads::{fraction, MAX_EXAMPLES};
use crate::windows::{fault_windows, Window};

/// The checker's name in `results.json`.
pub const NAME: &str = "consistent-prefix";

/// A question as the history knows it: where and when it was written.
#[derive(Debug, Clone)]
struct Question<'a> {
    /// Key it was written to.
    key: &'a str,
    /// History index of its write's invocation.
    index: u64,
    /// The process that asked it.
    process: u64,
    /// Node the write went to, if recorded.
    node: Option<&'a str>,
    /// Invocation time of its write, ns.
    invoke_time: u64,
    /// Time of its write's `ok`; None if never acknowledged.
    ack_time: Option<u64>,
    /// Its version: from the ack, else from a read that returned it.
    version: Option<VersionRef<'a>>,
}

/// Every written value by its text, with what is known of its write.
fn questions<'a>(history: &'a CompactHistory, observed: &Observed<'a>) -> HashMap<String, Question<'a>> {
    let (ops, write) = (history.ops(), history.name_id("write"));
    let mut out: HashMap<String, Question<'_>> = HashMap::new();
    for pair in history.pairs() {
        let (invoke, complete) = pair.ops(ops);
        if Some(invoke.f) != write {
            continue;
        }
        let value = invoke.value.and_then(|v| history.value(v).as_str());
        let (Some(value), Some(key), Process::Client(process)) = (value, invoke.key, invoke.process) else {
            continue;
        };
        let acked = complete.filter(|c| c.kind == OpType::Ok);
        out.insert(
            value,
            Question {
                key: history.name(key),
                index: invoke.index,
                process,
                node: invoke.node.map(|n| history.name(n)),
                invoke_time: invoke.time_ns,
                ack_time: acked.map(|c| c.time_ns),
                version: acked.and_then(|c| c.version).map(|v| history.version(v)),
            },
        );
    }
    for read in &observed.reads {
        for sibling in &read.siblings {
            let Some(q) = sibling.value.as_str().and_then(|v| out.get_mut(v.as_str())) else {
                continue;
            };
            q.version.get_or_insert(sibling.version);
        }
    }
    out
}

/// The texts of a read's siblings that are strings (answers among them).
fn texts(siblings: &[Sibling<'_>]) -> Vec<String> {
    siblings.iter().filter_map(|s| s.value.as_str()).collect()
}

/// The answers among a read's siblings' texts.
fn answers(texts: &[String]) -> Vec<Answer<'_>> {
    texts.iter().filter_map(|text| Answer::parse(text)).collect()
}

/// One judged observation: the answer read and the question read after it.
struct Observation<'r, 'a> {
    /// The read that returned an answer.
    answer_read: &'r Read<'a>,
    /// The same process's next op, a read of the question's key.
    question_read: &'r Read<'a>,
}

/// What the pass over the processes found.
#[derive(Default)]
struct Tally {
    /// Complete observations (both reads `ok`).
    observations: usize,
    /// An answer was read, but the question read after it did not complete `ok`.
    incomplete: usize,
    /// Observations missing a question acknowledged before the question read began.
    after_ack: usize,
    /// Observations missing only questions not yet acknowledged then.
    in_flight: usize,
    /// Named questions whose version the history never shows (distinct values).
    unresolved: HashSet<String>,
    /// The first violations, described.
    examples: Vec<Value>,
}

/// Counts consistent-prefix violations; see the module documentation.
pub fn check(history: &impl ObservedSource, run: &RunConfig) -> CheckResult {
    let observed = history.observed();
    let history = history.as_ref();
    let pairs = history.pairs();
    let questions = questions(history, &observed);
    let reads: HashMap<u64, &Read<'_>> = observed.reads.iter().map(|r| (r.index, r)).collect();
    let (ops, read) = (history.ops(), history.name_id("read"));
    let next_ops = next_ops(ops, pairs);
    let windows = fault_windows(history);
    let mut tally = Tally::default();
    // Reads are in invocation order, so the examples are in time order.
    for answer_read in &observed.reads {
        let texts = texts(&answer_read.siblings);
        let answers = answers(&texts);
        let named = answers.iter().flat_map(|a| a.questions.iter());
        let (known, unknown): (Vec<&&str>, Vec<&&str>) =
            named.partition(|q| questions.get(**q).is_some_and(|q| q.version.is_some()));
        tally.unresolved.extend(unknown.into_iter().map(|q| q.to_string()));
        let Some(first) = known.first().and_then(|q| questions.get(**q)) else {
            continue;
        };
        let Some(next) = next_ops.get(&answer_read.index) else {
            continue;
        };
        let next = &ops[next.invoke];
        if Some(next.f) != read || next.key.map(|k| history.name(k)) != Some(first.key) {
            continue;
        }
        let Some(&question_read) = reads.get(&next.index) else {
            tally.incomplete += 1;
            continue;
        };
        let observation = Observation { answer_read, question_read };
        judge(&observation, &answers, &questions, run, &windows, &mut tally);
    }
    observed.not_understood.judge(figures(run, tally))
}

/// Each client op's successor in its process (by the invocation index of
/// the op), so an answer read finds the read that followed it.
fn next_ops<'p>(ops: &[CompactOp], pairs: &'p [LinePair]) -> HashMap<u64, &'p LinePair> {
    let mut latest: HashMap<u64, u64> = HashMap::new();
    let mut out = HashMap::new();
    for pair in pairs {
        let invoke = &ops[pair.invoke];
        if let Process::Client(p) = invoke.process {
            if let Some(previous) = latest.insert(p, invoke.index) {
                out.insert(previous, pair);
            }
        }
    }
    out
}

/// Tests every question the observation's answers name against its question read.
fn judge(
    observation: &Observation<'_, '_>,
    answers: &[Answer<'_>],
    questions: &HashMap<String, Question<'_>>,
    run: &RunConfig,
    windows: &[Window],
    tally: &mut Tally,
) {
    tally.observations += 1;
    let read = observation.question_read;
    let mut missing: Vec<(&Answer<'_>, &str, &Question<'_>)> = Vec::new();
    for answer in answers {
        for name in &answer.questions {
            // Unresolved questions were counted where the answer was read.
            let Some(question) = questions.get(*name) else {
                continue;
            };
            let Some(version) = question.version else {
                continue;
            };
            if question.key == read.key && !read.siblings.iter().any(|s| s.version.covers(version, run.resolution)) {
                missing.push((answer, *name, question));
            }
        }
    }
    if missing.is_empty() {
        return;
    }
    let owed = |q: &Question<'_>| q.ack_time.is_some_and(|t| t < read.invoke_time);
    // Described by the worst miss: one a strict quorum promised away, if any.
    missing.sort_by_key(|(_, _, q)| !owed(q));
    let (answer, name, question) = missing[0];
    if owed(question) {
        tally.after_ack += 1;
    } else {
        tally.in_flight += 1;
    }
    if tally.examples.len() < MAX_EXAMPLES {
        tally.examples.push(example(observation, answer, name, question, owed(question), windows));
    }
}

fn example(
    observation: &Observation<'_, '_>,
    answer: &Answer<'_>,
    name: &str,
    question: &Question<'_>,
    owed: bool,
    windows: &[Window],
) -> Value {
    let (answer_read, question_read) = (observation.answer_read, observation.question_read);
    json!({
        "sentence": sentence(observation, answer, name, question, windows),
        "answered_by": question_read.answered_by,
        "answer_read_index": answer_read.index,
        "question_read_index": question_read.index,
        "question_write_index": question.index,
        "process": question_read.process,
        "answer_key": answer_read.key,
        "question_key": question_read.key,
        "node": question_read.node,
        "answer": answer.id,
        "missing_question": name,
        "question_version": question.version,
        "question_acknowledged_before_read": owed,
    })
}

/// The violation as a story: the answer read, the question it named and
/// its write, the question read that missed it, and the faults in force.
fn sentence(
    observation: &Observation<'_, '_>,
    answer: &Answer<'_>,
    name: &str,
    question: &Question<'_>,
    windows: &[Window],
) -> String {
    let (answer_read, question_read) = (observation.answer_read, observation.question_read);
    let acked = match question.ack_time {
        Some(t) if t < question_read.invoke_time => {
            format!(
                "acknowledged at {} ms, {} ms before the question read began",
                explain::ms(t),
                explain::ms(question_read.invoke_time - t)
            )
        }
        Some(t) => format!(
            "acknowledged only at {} ms, after the question read began (the answerer read it in flight)",
            explain::ms(t)
        ),
        None => "never acknowledged (the answerer read it in flight)".to_string(),
    };
    format!(
        "{} returned {}, so it saw answer {} to question {} (written to {} by p{} through {}, {}); then the same process's {} returned {}, which does not cover {}: the answer was seen without its question; {}",
        explain::read_clause(answer_read),
        explain::returned(&answer_read.siblings),
        answer.id,
        name,
        question.key,
        question.process,
        question.node.unwrap_or("an unrecorded node"),
        acked,
        explain::read_clause(question_read),
        explain::returned(&question_read.siblings),
        name,
        explain::faults_clause(windows, question.invoke_time.min(answer_read.invoke_time), question_read.complete_time)
    )
}

fn figures(run: &RunConfig, tally: Tally) -> CheckResult {
    let promised = run.is_strict_quorum();
    let violations = tally.after_ack + tally.in_flight;
    let mut result = CheckResult::new(Validity::for_promise(promised, tally.after_ack, tally.observations))
        .with("observations", json!(tally.observations))
        .with("incomplete_observations", json!(tally.incomplete))
        .with("violations", json!(violations))
        .with("violations_after_ack", json!(tally.after_ack))
        .with("violations_in_flight", json!(tally.in_flight))
        .with("violation_fraction", json!(fraction(violations, tally.observations)))
        .with("unresolved_questions", json!(tally.unresolved.len()))
        .with("expected_zero_after_ack", json!(promised))
        .with("examples", Value::Array(tally.examples));
    if tally.observations == 0 {
        result =
            result.with("reason", json!("no ok read of an answer was followed by an ok read of its question's key"));
    }
    result
}
