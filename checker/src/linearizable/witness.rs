//! A witness for a non-linearizable register history: a small set of its
//! ops that already admits no linearization, and a sentence that reads it.
//!
//! The search says only "no order exists", which for a key with thousands
//! of ops tells a reader nothing. So the ops are shrunk by delta debugging
//! (Zeller's ddmin): drop chunks of ops, halving the chunk size, keeping any
//! drop after which the rest is still not linearizable. A read keeps
//! every write of the value it saw: without them the read would be "wrong"
//! only because the witness hid the write, which explains nothing. Every
//! write, not one: in a history whose values repeat (a foreign one; this
//! project's are unique) the write the read really saw may be any of them,
//! and the sentence must stay true of the one it names. Run to the end the
//! result is 1-minimal (removing any one op makes it linearizable): for a
//! register usually a write or two and two reads. The shrink is bounded by
//! a number of searches and a time budget; a witness cut short is still a
//! witness (every set kept was checked), only perhaps not the smallest,
//! and it says so.

use std::time::Instant;

use super::search::{search, Budget, Entry, Kind, Outcome};
use crate::explain::ms;

/// Searches a shrink may run.
pub const MAX_SHRINK_SEARCHES: usize = 2_000;

/// What a shrink found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shrunk {
    /// Positions (into the key's ops) of the ops kept, in time order.
    pub ops: Vec<usize>,
    /// Whether the shrink ran to the end (then no single op can be dropped).
    pub minimal: bool,
}

/// Shrinks `ops` (which must not be linearizable) to a small subset that is
/// not linearizable either.
pub fn shrink(ops: &[Entry], budget: Budget) -> Shrunk {
    let started = Instant::now();
    let violates = |kept: &[usize]| {
        let sub: Vec<Entry> = kept.iter().map(|&i| ops[i]).collect();
        search(&sub, budget) == Outcome::Violation
    };
    let mut writers: std::collections::HashMap<u32, Vec<usize>> = std::collections::HashMap::new();
    for (i, o) in ops.iter().enumerate() {
        if let Some(v) = o.kind.installs() {
            writers.entry(v).or_default().push(i);
        }
    }
    // The candidate plus every write of every value a kept read (or cas)
    // saw, to a fixpoint: a cas brought in as a write also observes a
    // value, whose writes must come too. Each pass adds ops or ends, so
    // at most `ops.len()` passes.
    let close = |mut candidate: Vec<usize>| {
        for _ in 0..=ops.len() {
            let before = candidate.len();
            let needed: Vec<usize> = candidate
                .iter()
                .filter_map(|&i| match ops[i].kind.observes() {
                    Some(v) if v != 0 => writers.get(&v),
                    _ => None,
                })
                .flatten()
                .copied()
                .collect();
            candidate.extend(needed);
            candidate.sort_unstable();
            candidate.dedup();
            if candidate.len() == before {
                break;
            }
        }
        candidate
    };
    let mut kept: Vec<usize> = (0..ops.len()).collect();
    let mut searches = 0usize;
    let mut chunk = kept.len().div_ceil(2).max(1);
    let out_of_budget = |searches: usize| searches >= MAX_SHRINK_SEARCHES || started.elapsed() > budget.time;
    loop {
        let mut dropped_any = false;
        let mut at = 0;
        while at < kept.len() {
            if out_of_budget(searches) {
                kept.sort_by_key(|&i| (ops[i].call_ns, i));
                return Shrunk { ops: kept, minimal: false };
            }
            let end = (at + chunk).min(kept.len());
            let candidate = close(kept[..at].iter().chain(&kept[end..]).copied().collect());
            searches += 1;
            if !candidate.is_empty() && candidate.len() < kept.len() && violates(&candidate) {
                kept = candidate;
                dropped_any = true;
            } else {
                at = end;
            }
        }
        if chunk == 1 && !dropped_any {
            break;
        }
        if !dropped_any {
            chunk = chunk.div_ceil(2);
        }
    }
    kept.sort_by_key(|&i| (ops[i].call_ns, i));
    Shrunk { ops: kept, minimal: true }
}

/// What a witness sentence names of an op besides its [`Entry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The client process.
    pub process: u64,
    /// The history index of its invocation (to find it, and in the timeline).
    pub index: u64,
    /// Its value: written, or seen (`None`: the key absent).
    pub value: Option<String>,
    /// The node it was sent to.
    pub node: Option<String>,
    /// A cas's expected value, as [`Described::value`] (`None` for other
    /// ops, and for a cas that expected the key absent).
    pub expected: Option<String>,
}

fn shown(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "nothing (the key absent)".to_string())
}

/// One op as a clause: `write p1-3 (p1, 4.00-5.00 ms)`.
fn clause(entry: &Entry, about: &Described) -> String {
    let end = if entry.return_ns == u64::MAX { "no answer".to_string() } else { format!("{} ms", ms(entry.return_ns)) };
    let at = format!("p{}, {}-{}", about.process, ms(entry.call_ns), end);
    match entry.kind {
        Kind::Write(_) => format!("write {} ({at})", shown(&about.value)),
        Kind::Read(_) => format!("read ({at}) saw {}", shown(&about.value)),
        Kind::Cas { .. } => format!("cas from {} to {} ({at})", shown(&about.expected), shown(&about.value)),
    }
}

/// The witness as one paragraph: each op in time order; for every read of
/// a written value, that the write must have taken effect before the read
/// ended; for every read that began after an earlier read ended yet saw an
/// older value, that it went back; and what cannot be.
pub fn sentence(ops: &[Entry], about: &[Described], kept: &[usize]) -> String {
    let mut parts: Vec<String> = kept.iter().map(|&i| clause(&ops[i], &about[i])).collect();
    for &i in kept {
        if let (Some(v), Some(end)) = (ops[i].kind.observes(), Some(ops[i].return_ns).filter(|&t| t != u64::MAX)) {
            if v != 0 {
                parts.push(took_effect(ops, about, kept, v, end));
            }
        }
    }
    for (a_pos, &a) in kept.iter().enumerate() {
        for &b in &kept[a_pos + 1..] {
            let (Kind::Read(va), Kind::Read(vb)) = (ops[a].kind, ops[b].kind) else { continue };
            if va != vb && ops[a].return_ns < ops[b].call_ns && older(ops, kept, vb, va) {
                parts.push(format!(
                    "read by p{} began at {} ms, after the read by p{} ended at {} ms, and saw the older {}",
                    about[b].process,
                    ms(ops[b].call_ns),
                    about[a].process,
                    ms(ops[a].return_ns),
                    shown(&about[b].value)
                ));
            }
        }
    }
    format!(
        "{}: no order of these {} ops keeps real time (an op that ended before another began comes first) and has every read return the latest write",
        parts.join("; "),
        kept.len()
    )
}

/// What a read of value `v` that ended at `end_ns` says of its writes: the
/// write that took effect before it, when one kept write of `v` began
/// before then; one of them, when several did; and when none did, that.
fn took_effect(ops: &[Entry], about: &[Described], kept: &[usize], v: u32, end_ns: u64) -> String {
    let before: Vec<usize> =
        kept.iter().copied().filter(|&w| ops[w].kind.installs() == Some(v) && ops[w].call_ns < end_ns).collect();
    let value = shown(&about[before.first().copied().unwrap_or(0)].value);
    match before.as_slice() {
        [] => format!("yet no write of the value it saw began before {} ms", ms(end_ns)),
        [w] if matches!(ops[*w].kind, Kind::Cas { .. }) => {
            format!("so the cas to {value} took effect before {} ms", ms(end_ns))
        }
        [_] => format!("so write {value} took effect before {} ms", ms(end_ns)),
        several => format!(
            "so one of the {} writes of {value} that began before {} ms took effect before it",
            several.len(),
            ms(end_ns)
        ),
    }
}

/// Whether value `old` is older than `new` among the kept ops: the write of
/// `old` (or the absent key) began before the write of `new` did.
/// When a value was written more than once, neither is said to be older.
fn older(ops: &[Entry], kept: &[usize], old: u32, new: u32) -> bool {
    let write_call = |v: u32| {
        let mut writes = kept.iter().filter(|&&i| ops[i].kind.installs() == Some(v));
        match (writes.next(), writes.next()) {
            (Some(&i), None) => Some(ops[i].call_ns),
            _ => None,
        }
    };
    match (old, write_call(old), write_call(new)) {
        (0, _, _) => true,
        (_, Some(o), Some(n)) => o < n,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const BUDGET: Budget = Budget { time: Duration::from_secs(5), memo_entries: 1_000_000 };

    fn e(call_ms: u64, return_ms: u64, kind: Kind) -> Entry {
        Entry { call_ns: call_ms * 1_000_000, return_ns: return_ms * 1_000_000, kind }
    }

    #[test]
    fn shrinks_a_long_history_to_the_ops_that_cannot_be_ordered() {
        // 50 clean write/read pairs, then the planted anomaly among more.
        let mut ops = Vec::new();
        for v in 1..=50u32 {
            let t = u64::from(v) * 10;
            ops.push(e(t, t + 1, Kind::Write(v)));
            ops.push(e(t + 2, t + 3, Kind::Read(v)));
        }
        ops.push(e(600, 601, Kind::Write(100)));
        ops.push(e(604, 700, Kind::Write(101)));
        ops.push(e(605, 606, Kind::Read(101)));
        ops.push(e(607, 608, Kind::Read(100)));
        assert_eq!(search(&ops, BUDGET), Outcome::Violation);
        let shrunk = shrink(&ops, BUDGET);
        assert!(shrunk.minimal);
        let kinds: Vec<Kind> = shrunk.ops.iter().map(|&i| ops[i].kind).collect();
        assert_eq!(kinds, vec![Kind::Write(100), Kind::Write(101), Kind::Read(101), Kind::Read(100)]);
        let about: Vec<Described> = ops
            .iter()
            .enumerate()
            .map(|(i, o)| Described {
                process: i as u64 % 3,
                index: i as u64,
                value: o.kind.installs().or(o.kind.observes()).map(|v| format!("v{v}")),
                node: None,
                expected: None,
            })
            .collect();
        let text = sentence(&ops, &about, &shrunk.ops);
        assert!(text.contains("so write v101 took effect before 606.00 ms"), "{text}");
        assert!(text.contains("began at 607.00 ms, after the read by"), "{text}");
        assert!(text.contains("saw the older v100"), "{text}");
    }

    fn described(ops: &[Entry]) -> Vec<Described> {
        let value = |o: &Entry| o.kind.installs().or(o.kind.observes()).map(|v| format!("v{v}"));
        ops.iter()
            .enumerate()
            .map(|(i, o)| Described { process: i as u64, index: i as u64, value: value(o), node: None, expected: None })
            .collect()
    }

    #[test]
    fn a_repeated_value_keeps_every_write_of_it_and_the_sentence_names_one_that_began_in_time() {
        // v1 written at 0 and again at 10, after the read of v1 (4-5 ms)
        // that v2 (2-3 ms) should have hidden. Keeping only the last write
        // of v1 would say it "took effect before 5 ms" though it began at 10.
        let ops =
            vec![e(0, 1, Kind::Write(1)), e(2, 3, Kind::Write(2)), e(4, 5, Kind::Read(1)), e(10, 11, Kind::Write(1))];
        assert_eq!(search(&ops, BUDGET), Outcome::Violation);
        let shrunk = shrink(&ops, BUDGET);
        assert!(shrunk.ops.contains(&0) && shrunk.ops.contains(&3), "both writes of v1 kept: {shrunk:?}");
        let text = sentence(&ops, &described(&ops), &shrunk.ops);
        assert!(text.contains("so write v1 took effect before 5.00 ms"), "{text}");
    }

    #[test]
    fn a_cas_kept_in_a_witness_keeps_the_writes_of_the_value_it_expected() {
        // write 1; cas 1->2; cas 2->5; then a read of 2 after cas 2->5
        // ended. Keeping cas 1->2 without write 1 would make a "witness" of
        // a cas that could never happen; the violation is the read.
        let ops = vec![
            e(0, 1, Kind::Write(1)),
            e(2, 3, Kind::Cas { from: 1, to: 2 }),
            e(4, 5, Kind::Read(2)),
            e(6, 7, Kind::Cas { from: 2, to: 5 }),
            e(8, 9, Kind::Read(2)),
        ];
        assert_eq!(search(&ops, BUDGET), Outcome::Violation);
        let shrunk = shrink(&ops, BUDGET);
        assert_eq!(shrunk.ops, vec![0, 1, 3, 4], "every op the violation needs: {shrunk:?}");
    }

    #[test]
    fn a_read_of_a_value_no_write_began_before_says_so() {
        let ops = vec![e(4, 5, Kind::Read(1)), e(10, 11, Kind::Write(1))];
        let shrunk = shrink(&ops, BUDGET);
        let text = sentence(&ops, &described(&ops), &shrunk.ops);
        assert!(text.contains("yet no write of the value it saw began before 5.00 ms"), "{text}");
        assert!(!text.contains("took effect"), "{text}");
    }

    #[test]
    fn several_writes_of_the_value_in_time_are_named_as_one_of_them() {
        let ops = vec![e(0, 1, Kind::Write(1)), e(2, 3, Kind::Write(2)), e(4, 5, Kind::Write(1))];
        let mut with_reads = ops.clone();
        with_reads.push(e(6, 7, Kind::Read(1)));
        with_reads.push(e(8, 9, Kind::Read(2)));
        let kept: Vec<usize> = (0..with_reads.len()).collect();
        let text = sentence(&with_reads, &described(&with_reads), &kept);
        assert!(
            text.contains("so one of the 2 writes of v1 that began before 7.00 ms took effect before it"),
            "{text}"
        );
    }
}
