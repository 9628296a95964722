//! A witness for a non-linearizable register history: a small set of its
//! ops that already admits no linearization, and a sentence that reads it.
//!
//! The search says only "no order exists", which for a key with thousands
//! of ops tells a reader nothing. So the ops are shrunk by delta debugging
//! (Zeller's ddmin): drop chunks of ops, halving the chunk size, keeping any
//! drop after which the rest is still not linearizable. A read keeps the
//! write of the value it saw: without it the read would be "wrong" only
//! because the witness hid the write, which explains nothing. Run to the end the
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
    let writer: std::collections::HashMap<u32, usize> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o.kind {
            Kind::Write(v) => Some((v, i)),
            Kind::Read(_) => None,
        })
        .collect();
    // The candidate plus the write of every value a kept read saw.
    let close = |mut candidate: Vec<usize>| {
        let needed: Vec<usize> = candidate
            .iter()
            .filter_map(|&i| match ops[i].kind {
                Kind::Read(v) if v != 0 => writer.get(&v).copied(),
                _ => None,
            })
            .collect();
        candidate.extend(needed);
        candidate.sort_unstable();
        candidate.dedup();
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
    }
}

/// The witness as one paragraph: each op in time order; for every read of
/// a written value, that the write must have taken effect before the read
/// ended; for every read that began after an earlier read ended yet saw an
/// older value, that it went back; and what cannot be.
pub fn sentence(ops: &[Entry], about: &[Described], kept: &[usize]) -> String {
    let mut parts: Vec<String> = kept.iter().map(|&i| clause(&ops[i], &about[i])).collect();
    for &i in kept {
        if let (Kind::Read(v), Some(end)) = (ops[i].kind, Some(ops[i].return_ns).filter(|&t| t != u64::MAX)) {
            if v != 0 {
                parts.push(format!("so write {} took effect before {} ms", shown(&about[i].value), ms(end)));
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

/// Whether value `old` is older than `new` among the kept ops: the write of
/// `old` (or the absent key) began before the write of `new` did.
fn older(ops: &[Entry], kept: &[usize], old: u32, new: u32) -> bool {
    let write_call = |v: u32| kept.iter().find(|&&i| ops[i].kind == Kind::Write(v)).map(|&i| ops[i].call_ns);
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
                value: Some(match o.kind {
                    Kind::Write(v) | Kind::Read(v) => format!("v{v}"),
                }),
                node: None,
            })
            .collect();
        let text = sentence(&ops, &about, &shrunk.ops);
        assert!(text.contains("so write v101 took effect before 606.00 ms"), "{text}");
        assert!(text.contains("began at 607.00 ms, after the read by"), "{text}");
        assert!(text.contains("saw the older v100"), "{text}");
    }
}
