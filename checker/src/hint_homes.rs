//! The home half of hint delivery: is every hinted write on its home replica?
//!
//! Under a sloppy quorum a coordinator that cannot reach a key's home
//! replica sends the write to a stand-in, which keeps it as a hint and hands
//! it home later. The node says so on the write's answer, and the history
//! records it: an `ok` write/delete/add with `hinted_for: ["n3"]` owes n3
//! that version. The counters in `admin.jsonl` say how many hints were
//! delivered; only a read of n3's own copy says whether *this* write arrived.
//! That read is `replica_reads.jsonl`: after the final heal and quiet
//! period the harness asked each home replica of every key with a hinted
//! write for its stored siblings, bypassing any coordinator.
//!
//! A (write, home) pair is *covered* when some sibling the home holds covers
//! the write's version ([`history::Version::covers`] under the run's
//! resolution: a later write that descends from it counts, the write need not
//! survive as itself), or, for the set workload's `add`, when the element is
//! in the union of the home's sibling arrays (a later read-merge-write
//! carries it forward even where a concurrent write won under lww).
//!
//! Not judged, and counted as such: a home that did not answer
//! (`unreachable`), a home with no line in the file (`unread`), and a home
//! killed after the write was acknowledged on a run whose storage does not
//! survive a kill (`lost_to_kill`: the write may have arrived and died with
//! the process; that is the storage engine's promise, not hinted handoff's).
//!
//! The verdict is [`HomeCheck::verdict`]: a write missing on its home is a
//! failure only when the hints had drained before the replica reads (nothing
//! was still on its way); otherwise, or when the file is absent or a home
//! could not be read, `unknown` with the reason. It is `true` only when every
//! pair was read and covered.

use std::collections::{BTreeMap, BTreeSet};

use history::compact::CompactHistory;
use history::{OpType, ReplicaRead, Resolution, RunConfig, Version};
use serde_json::{json, Value};

use crate::lost_writes::elements_of;
use crate::observe::WRITE_FS;
use crate::result::Validity;

/// How many missing writes are listed as examples.
const EXAMPLES: usize = 5;

/// One acknowledged write that named home replicas in `hinted_for`.
#[derive(Debug, Clone)]
struct Hinted<'a> {
    /// `write`, `delete` or `add`.
    f: &'a str,
    /// Key written.
    key: &'a str,
    /// Value written (the element, for an add).
    value: Value,
    /// Version the store assigned.
    version: Version,
    /// Time of the `ok` (ns).
    ack_time: u64,
    /// The homes a stand-in held it for.
    homes: Vec<&'a str>,
}

/// What the replica reads showed about the hinted writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HomeCheck {
    /// Acknowledged writes with a non-empty `hinted_for`.
    pub hinted_writes: usize,
    /// (write, home) pairs owed: the sum of `hinted_for` lengths.
    pub owed: usize,
    /// Pairs whose home was read and judged.
    pub checked: usize,
    /// Judged pairs the home did not hold: `(key, value, home)`, all of them.
    pub missing: Vec<(String, Value, String)>,
    /// Pairs whose home did not answer the replica read.
    pub unreachable: usize,
    /// Pairs whose home has no line in the file.
    pub unread: usize,
    /// Pairs not judged because the home was killed after the ack and its
    /// storage does not survive a kill.
    pub lost_to_kill: usize,
    /// False when `replica_reads.jsonl` is absent.
    pub file_present: bool,
}

impl HomeCheck {
    /// Reads every hinted ack of `history` against `reads`.
    pub fn run(history: &CompactHistory, run: &RunConfig, reads: Option<&[ReplicaRead]>) -> HomeCheck {
        let hinted = hinted_acks(history);
        let mut out = HomeCheck {
            hinted_writes: hinted.len(),
            owed: hinted.iter().map(|h| h.homes.len()).sum(),
            file_present: reads.is_some(),
            ..HomeCheck::default()
        };
        let Some(reads) = reads else { return out };
        let latest = latest_reads(reads);
        let kills = if durable(run) { Vec::new() } else { kills(history) };
        for write in &hinted {
            for home in &write.homes {
                out.judge(write, home, latest.get(&(write.key, *home)), &kills, run.resolution);
            }
        }
        assert_eq!(
            out.checked + out.unreachable + out.unread + out.lost_to_kill,
            out.owed,
            "every owed pair is judged or counted as not judged"
        );
        out
    }

    fn judge(
        &mut self,
        write: &Hinted<'_>,
        home: &str,
        read: Option<&&ReplicaRead>,
        kills: &[(u64, String)],
        resolution: Resolution,
    ) {
        if kills.iter().any(|(t, n)| *t > write.ack_time && n == home) {
            self.lost_to_kill += 1;
            return;
        }
        match read {
            None => self.unread += 1,
            Some(r) if !r.reachable => self.unreachable += 1,
            Some(r) => {
                self.checked += 1;
                if !covered(write, r, resolution) {
                    self.missing.push((write.key.to_string(), write.value.clone(), home.to_string()));
                }
            }
        }
    }

    /// The home part's verdict and, unless `true`, why. `drained`: every
    /// node's hints had drained before the replica reads (None: unknown).
    pub fn verdict(&self, drained: Option<bool>) -> (Validity, Option<String>) {
        let not_judged = self.unreachable + self.unread;
        if !self.file_present {
            return (Validity::Unknown, Some("replica_reads.jsonl is absent: no home replica was read".into()));
        }
        if !self.missing.is_empty() {
            return match drained {
                Some(true) => (
                    Validity::False,
                    Some(format!(
                        "{} hinted writes missing on their home replica after the hints drained",
                        self.missing.len()
                    )),
                ),
                _ => (
                    Validity::Unknown,
                    Some(format!(
                        "{} hinted writes missing on their home, but hints had not drained (still on their way?)",
                        self.missing.len()
                    )),
                ),
            };
        }
        if not_judged > 0 {
            return (Validity::Unknown, Some(format!("{not_judged} (write, home) pairs could not be read")));
        }
        if self.checked == 0 {
            return (Validity::Unknown, Some("no (write, home) pair could be judged".into()));
        }
        (Validity::True, None)
    }

    /// The figures for `results.json`.
    pub fn figures(&self, drained: Option<bool>) -> Value {
        let (valid, reason) = self.verdict(drained);
        let examples: Vec<Value> = self
            .missing
            .iter()
            .take(EXAMPLES)
            .map(|(key, value, home)| json!({"key": key, "value": value, "home": home}))
            .collect();
        json!({
            "valid": valid,
            "reason": reason,
            "hinted_writes": self.hinted_writes,
            "owed": self.owed,
            "checked": self.checked,
            "missing": self.missing.len(),
            "missing_examples": examples,
            "unreachable_homes": self.unreachable,
            "unread_homes": self.unread,
            "lost_to_kill": self.lost_to_kill,
            "drained_before_reads": drained,
        })
    }
}

/// Acknowledged writes that carry a version and a non-empty `hinted_for`.
fn hinted_acks(history: &CompactHistory) -> Vec<Hinted<'_>> {
    let ops = history.ops();
    let mut out = Vec::new();
    for pair in history.pairs() {
        let (invoke, Some(done)) = pair.ops(ops) else { continue };
        let f = history.name(invoke.f);
        if done.kind != OpType::Ok || done.hinted_for.is_empty() || !WRITE_FS.contains(&f) {
            continue;
        }
        let (Some(key), Some(version)) = (invoke.key, done.version) else { continue };
        out.push(Hinted {
            f,
            key: history.name(key),
            value: history.value_json(invoke),
            version: history.version(version).to_version(),
            ack_time: done.time_ns,
            homes: history.names(done.hinted_for).collect(),
        });
    }
    out
}

/// The latest replica read of each (key, node).
fn latest_reads(reads: &[ReplicaRead]) -> BTreeMap<(&str, &str), &ReplicaRead> {
    let mut out: BTreeMap<(&str, &str), &ReplicaRead> = BTreeMap::new();
    for r in reads {
        let slot = out.entry((r.key.as_str(), r.node.as_str())).or_insert(r);
        if r.time >= slot.time {
            *slot = r;
        }
    }
    out
}

/// Whether the run's storage survives a kill (`storage`, as the campaign
/// recorded what the nodes reported).
fn durable(run: &RunConfig) -> bool {
    run.durable_storage()
}

/// `(time, node)` of every node the nemesis killed (a power loss is a kill too).
fn kills(history: &CompactHistory) -> Vec<(u64, String)> {
    let kills = history.nemesis_events().filter(|op| history.is(op.f, "kill") || history.is(op.f, "power-loss"));
    kills
        .flat_map(|op| crate::windows::event_nodes(&history.value_json(op)).into_iter().map(|n| (op.time_ns, n)))
        .collect()
}

/// Whether the home's replica-local read holds the write.
fn covered(write: &Hinted<'_>, read: &ReplicaRead, resolution: Resolution) -> bool {
    if read.siblings.iter().any(|s| s.version.covers(&write.version, resolution)) {
        return true;
    }
    if write.f != "add" {
        return false;
    }
    let Some(element) = write.value.as_str() else { return false };
    let as_read = serde_json::to_value(&read.siblings).unwrap_or_default();
    elements_of(&as_read).is_some_and(|els: BTreeSet<String>| els.contains(element))
}
