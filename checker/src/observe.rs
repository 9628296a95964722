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

use history::{OpPair, OpType, Process, SiblingRef, Version};
use serde_json::Value;

use crate::understood::NotUnderstood;

/// The `f`s that install a version a later read must see (`add` is the set
/// workload's read-merge-write).
pub const WRITE_FS: [&str; 3] = ["write", "delete", "add"];

/// Every client `f` the anomaly checkers understand: the writes and `read`.
pub const KNOWN_FS: [&str; 4] = ["read", "write", "delete", "add"];

/// The value of a delete's ack: a tombstone.
static TOMBSTONE: Value = Value::Null;

/// An acknowledged write or delete; value and version borrowed from the
/// history, which every checker holds for longer.
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
    pub value: &'a Value,
    /// Version the store assigned.
    pub version: &'a Version,
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
    /// The siblings returned (empty: key absent), values borrowed.
    pub siblings: Vec<SiblingRef<'a>>,
    /// The replicas that answered it, if the store reported them.
    pub answered_by: Option<&'a [String]>,
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
    /// Extracts acks and reads from paired client ops.
    pub fn from_pairs(pairs: &[OpPair<'a>]) -> Observed<'a> {
        let mut out = Observed::default();
        for pair in pairs {
            let index = pair.invoke.index;
            if !KNOWN_FS.contains(&pair.invoke.f.as_str()) {
                out.not_understood.note_unknown_f(&pair.invoke.f, index);
                continue;
            }
            let Some(done) = pair.complete else { continue };
            if done.kind != OpType::Ok {
                continue;
            }
            if pair.invoke.f == "read" {
                match read_of(pair) {
                    Some(read) => out.reads.push(read),
                    None => {
                        out.unparsed_reads += 1;
                        out.not_understood.note(UNPARSED_READ, index);
                    }
                }
            } else {
                match ack_of(pair) {
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

/// Why an `ok` read is not understood.
pub const UNPARSED_READ: &str = "an ok read without a key, or whose value is not a list of {value, version} siblings";

/// Why an acknowledged write is not understood.
pub const UNVERSIONED_ACK: &str = "an ok write, delete or add without a key or a version";

/// The client process id of a pair; nemesis ops never pair, but be total.
fn process_of(pair: &OpPair<'_>) -> Option<u64> {
    match pair.invoke.process {
        Process::Client(p) => Some(p),
        Process::Nemesis => None,
    }
}

fn read_of<'a>(pair: &OpPair<'a>) -> Option<Read<'a>> {
    let done = pair.complete?;
    Some(Read {
        process: process_of(pair)?,
        index: pair.invoke.index,
        invoke_time: pair.invoke.time,
        complete_time: done.time,
        key: pair.invoke.key.as_deref()?,
        node: pair.invoke.node.as_deref().or(done.node.as_deref()),
        siblings: done.sibling_refs()?,
        answered_by: done.answered_by.as_deref(),
    })
}

fn ack_of<'a>(pair: &OpPair<'a>) -> Option<Ack<'a>> {
    let done = pair.complete?;
    let value = if pair.invoke.f == "delete" {
        &TOMBSTONE
    } else if done.value.is_null() {
        &pair.invoke.value
    } else {
        &done.value
    };
    Some(Ack {
        process: process_of(pair)?,
        index: pair.invoke.index,
        invoke_time: pair.invoke.time,
        ack_time: done.time,
        key: pair.invoke.key.as_deref()?,
        node: pair.invoke.node.as_deref().or(done.node.as_deref()),
        value,
        version: done.version.as_ref()?,
    })
}
