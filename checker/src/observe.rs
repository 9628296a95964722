//! What the anomaly checkers need from a history: acknowledged writes and
//! successful reads, with their times, keys and versions.
//!
//! Only `ok` completions are evidence here. A `fail` certainly did not
//! happen, and an `info` (or an op the run ended before answering) may or
//! may not have: no read is obliged to see it, so it is never counted as
//! missed. An acknowledged `delete` is a write of a tombstone; its `ok`
//! carries a version like any write, and a read that returns the tombstone
//! (a sibling with `value: null`) covers it. Ops that cannot be interpreted
//! (an `ok` write without a version, a read whose value is not a sibling
//! list, an op whose `f` is none of [`KNOWN_FS`]) are counted, never
//! silently dropped: the figures show them, and [`NotUnderstood::judge`]
//! makes each checker that read them `unknown` ([`crate::understood`]).
//!
//! They are read from the history's compact form
//! ([`history::compact::CompactHistory`], built once per history): keys and
//! nodes borrowed from its interned names, values and versions as handles
//! into its tables, so no checker parses a version out of JSON again, and
//! comparing two versions compares rows of small integers.

use std::borrow::Cow;
use std::sync::OnceLock;

use history::compact::{CompactHistory, CompactOp, Id, Sibling, ValueRef, VersionRef};
use history::{History, OpType, Process, RunConfig};

use crate::result::CheckResult;
use crate::understood::NotUnderstood;
use crate::{read_your_writes, stale_reads};

/// The `f`s that install a version a later read must see (`add` is the set
/// workload's read-merge-write).
pub const WRITE_FS: [&str; 3] = ["write", "delete", "add"];

/// Every client `f` the anomaly checkers understand: the writes and `read`.
pub const KNOWN_FS: [&str; 4] = ["read", "write", "delete", "add"];

/// An acknowledged write or delete; key, value and version borrowed from
/// the history's compact form, which every checker holds for longer.
#[derive(Debug, Clone)]
pub struct Ack<'a> {
    /// Client process that issued it.
    pub process: u64,
    /// History index of its invocation.
    pub index: u64,
    /// Time of its invocation (ns).
    pub invoke_time: u64,
    /// Time of its `ok` (ns).
    pub ack_time: u64,
    /// Key written.
    pub key: &'a str,
    /// Node the request was sent to (its coordinator), if recorded.
    pub node: Option<&'a str>,
    /// Value written; null for a delete.
    pub value: ValueRef<'a>,
    /// Version the store assigned.
    pub version: VersionRef<'a>,
}

/// A successful read and the siblings it returned.
#[derive(Debug, Clone)]
pub struct Read<'a> {
    /// Client process that issued it.
    pub process: u64,
    /// History index of its invocation.
    pub index: u64,
    /// Time of its invocation (ns).
    pub invoke_time: u64,
    /// Time of its `ok` (ns).
    pub complete_time: u64,
    /// Key read.
    pub key: &'a str,
    /// Node the request was sent to, if recorded.
    pub node: Option<&'a str>,
    /// The siblings returned (empty: key absent).
    pub siblings: Vec<Sibling<'a>>,
    /// The replicas that answered it, if the store reported them.
    pub answered_by: Option<Vec<&'a str>>,
}

/// Client ops split into what the anomaly checkers use, in invocation order.
#[derive(Debug, Clone, Default)]
pub struct Observed<'a> {
    /// Acknowledged writes and deletes that carried a version.
    pub acks: Vec<Ack<'a>>,
    /// Successful reads whose value parsed as a sibling list.
    pub reads: Vec<Read<'a>>,
    /// Acknowledged writes/deletes without a version or key: uncheckable.
    pub unversioned_acks: usize,
    /// `ok` reads whose value was not a sibling list, or had no key.
    pub unparsed_reads: usize,
    /// Every op not understood, by reason (the two counts above among them).
    pub not_understood: NotUnderstood,
}

impl<'a> Observed<'a> {
    /// Extracts acks and reads from the history's paired client ops.
    pub fn of(compact: &'a CompactHistory) -> Observed<'a> {
        let mut out = Observed::default();
        let ops = compact.ops();
        for pair in compact.pairs() {
            let invoke = &ops[pair.invoke];
            let index = invoke.index;
            let f = compact.name(invoke.f);
            if !KNOWN_FS.contains(&f) {
                out.not_understood.note_unknown_f(f, index);
                continue;
            }
            let Some(done) = pair.complete.map(|c| &ops[c]) else { continue };
            if done.kind != OpType::Ok {
                continue;
            }
            let ends = Ends { compact, invoke, done };
            if f == "read" {
                match ends.read() {
                    Some(read) => out.reads.push(read),
                    None => {
                        out.unparsed_reads += 1;
                        out.not_understood.note(UNPARSED_READ, index);
                    }
                }
            } else {
                match ends.ack(f == "delete") {
                    Some(ack) => out.acks.push(ack),
                    None => {
                        out.unversioned_acks += 1;
                        out.not_understood.note(UNVERSIONED_ACK, index);
                    }
                }
            }
        }
        out
    }
}

/// What a checker reads: a history, and what several checkers need of it:
/// its [`Observed`] acks and reads, and the stale-read and read-your-writes
/// results (the quorum checker judges those two again).
pub trait ObservedSource: AsRef<CompactHistory> {
    /// The history's acks and reads: extracted now, or shared.
    fn observed(&self) -> Cow<'_, Observed<'_>>;

    /// The stale-reads checker's result for `run`: computed now, or shared.
    fn stale_reads(&self, run: &RunConfig) -> Cow<'_, CheckResult> {
        Cow::Owned(stale_reads::check_observed(self.as_ref(), run, &self.observed()))
    }

    /// The read-your-writes checker's result for `run`: computed now, or
    /// shared.
    fn read_your_writes(&self, run: &RunConfig) -> Cow<'_, CheckResult> {
        Cow::Owned(read_your_writes::check_observed(self.as_ref(), run, &self.observed()))
    }
}

impl ObservedSource for CompactHistory {
    fn observed(&self) -> Cow<'_, Observed<'_>> {
        Cow::Owned(Observed::of(self))
    }
}

impl ObservedSource for History {
    fn observed(&self) -> Cow<'_, Observed<'_>> {
        Cow::Owned(Observed::of(self.compact()))
    }
}

/// The item of `items` whose history index (`index_of`) is `index`: a
/// binary search, as acks and reads are in invocation order in a history
/// read from a file; a scan when a history built by hand is not.
pub(crate) fn by_index<T>(items: &[T], index: u64, index_of: impl Fn(&T) -> u64) -> Option<&T> {
    match items.binary_search_by_key(&index, &index_of) {
        Ok(at) => Some(&items[at]),
        Err(_) => items.iter().find(|item| index_of(item) == index),
    }
}

/// A history whose [`Observed`] is extracted once, by the first checker
/// that asks, and shared by the rest: what [`crate::check_run_files`]
/// hands each checker. Five of them read the acks and reads, and each
/// extracting its own was a sixth of a run's check. The stale-read and
/// read-your-writes results are kept too, for the quorum checker.
#[derive(Debug)]
pub struct Checked<'h> {
    /// The history.
    history: &'h CompactHistory,
    /// Its acks and reads, once asked for.
    observed: OnceLock<Observed<'h>>,
    /// The stale-reads result, with the run it was judged for.
    stale_reads: OnceLock<(RunConfig, CheckResult)>,
    /// The read-your-writes result, with the run it was judged for.
    read_your_writes: OnceLock<(RunConfig, CheckResult)>,
}

impl<'h> Checked<'h> {
    /// `history`, nothing extracted yet.
    pub fn new(history: &'h CompactHistory) -> Checked<'h> {
        Checked { history, observed: OnceLock::new(), stale_reads: OnceLock::new(), read_your_writes: OnceLock::new() }
    }
}

/// The result `kept` holds for `run`, judged by `judge` the first time; a
/// result for another run is judged anew and not kept.
fn kept_for<'c>(
    kept: &'c OnceLock<(RunConfig, CheckResult)>,
    run: &RunConfig,
    judge: impl FnOnce() -> CheckResult,
) -> Cow<'c, CheckResult> {
    match kept.get() {
        Some((for_run, result)) if for_run == run => Cow::Borrowed(result),
        Some(_) => Cow::Owned(judge()),
        None => Cow::Borrowed(&kept.get_or_init(|| (run.clone(), judge())).1),
    }
}

impl AsRef<CompactHistory> for Checked<'_> {
    fn as_ref(&self) -> &CompactHistory {
        self.history
    }
}

impl ObservedSource for Checked<'_> {
    fn observed(&self) -> Cow<'_, Observed<'_>> {
        Cow::Borrowed(self.observed.get_or_init(|| Observed::of(self.history)))
    }

    fn stale_reads(&self, run: &RunConfig) -> Cow<'_, CheckResult> {
        kept_for(&self.stale_reads, run, || stale_reads::check_observed(self.history, run, &self.observed()))
    }

    fn read_your_writes(&self, run: &RunConfig) -> Cow<'_, CheckResult> {
        kept_for(&self.read_your_writes, run, || read_your_writes::check_observed(self.history, run, &self.observed()))
    }
}

/// Why an `ok` read is not understood.
pub const UNPARSED_READ: &str = "an ok read without a key, or whose value is not a list of {value, version} siblings";

/// Why an acknowledged write is not understood.
pub const UNVERSIONED_ACK: &str = "an ok write, delete or add without a key or a version";

/// A client op's invocation and `ok`, as compact lines.
struct Ends<'a> {
    /// The history they are lines of.
    compact: &'a CompactHistory,
    /// The invocation.
    invoke: &'a CompactOp,
    /// The `ok`.
    done: &'a CompactOp,
}

impl<'a> Ends<'a> {
    /// The client process; nemesis ops never pair, but be total.
    fn process(&self) -> Option<u64> {
        match self.invoke.process {
            Process::Client(p) => Some(p),
            Process::Nemesis => None,
        }
    }

    fn name(&self, id: Option<Id>) -> Option<&'a str> {
        id.map(|id| self.compact.name(id))
    }

    fn read(&self) -> Option<Read<'a>> {
        let compact = self.compact;
        Some(Read {
            process: self.process()?,
            index: self.invoke.index,
            invoke_time: self.invoke.time_ns,
            complete_time: self.done.time_ns,
            key: self.name(self.invoke.key)?,
            node: self.name(self.invoke.node.or(self.done.node)),
            siblings: compact.siblings(self.done.siblings?).collect(),
            answered_by: self.done.answered_by.map(|span| compact.names(span).collect()),
        })
    }

    /// The ack; a delete's value is a tombstone, and a write's is its
    /// completion's when that carries one, else its invocation's.
    fn ack(&self, delete: bool) -> Option<Ack<'a>> {
        let compact = self.compact;
        let value = if delete {
            compact.null()
        } else {
            match self.done.value.map(|v| compact.value(v)).filter(|v| !v.is_null()) {
                Some(value) => value,
                None => self.invoke.value.map_or(compact.null(), |v| compact.value(v)),
            }
        };
        Some(Ack {
            process: self.process()?,
            index: self.invoke.index,
            invoke_time: self.invoke.time_ns,
            ack_time: self.done.time_ns,
            key: self.name(self.invoke.key)?,
            node: self.name(self.invoke.node.or(self.done.node)),
            value,
            version: compact.version(self.done.version?),
        })
    }
}
