//! Checkers run side by side: a few threads take the next checker from
//! one list until none is left.
//!
//! Why: every checker is a pure function of the same read-only history,
//! so they need no coordination beyond who takes which, and an hour's
//! re-check on two cores takes about half the wall time it took one
//! checker after another. What they share ([`crate::Checked`]) is built
//! once, by whichever needs it first (`OnceLock`), while the other waits.
//!
//! How many at once is bounded ([`MAX_AT_ONCE`]), not one per core: each
//! checker running holds its own working memory beside the history, and
//! the hour must be re-checked within its memory goal. The results are
//! keyed by name, so the order the threads finish in changes nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::{CheckFn, CheckResult};

/// Checkers running at once, at most (fewer on fewer cores).
pub(crate) const MAX_AT_ONCE: usize = 2;

/// Runs `one(name, check)` for every checker of `checkers`, up to
/// [`MAX_AT_ONCE`] at a time; the results by name.
pub(crate) fn run<F>(checkers: &[(&str, CheckFn)], one: F) -> BTreeMap<String, CheckResult>
where
    F: Fn(&str, &CheckFn) -> CheckResult + Sync,
{
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(MAX_AT_ONCE).min(checkers.len()).max(1);
    let next = AtomicUsize::new(0);
    let results = Mutex::new(BTreeMap::new());
    let work = || {
        // Each turn takes one checker: at most `checkers.len()` turns.
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some((name, check)) = checkers.get(i) else { return };
            let result = one(name, check);
            let earlier = results.lock().expect("no checker thread panics holding it").insert(name.to_string(), result);
            assert!(earlier.is_none(), "checker {name} listed twice");
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    let results = results.into_inner().expect("no checker thread panics holding it");
    assert_eq!(results.len(), checkers.len(), "every checker ran once");
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Checked;
    use history::compact::CompactHistory;
    use history::{Op, RunConfig};
    use serde_json::json;

    fn history() -> CompactHistory {
        let version = json!({"clock": {"n1": 1}, "ts": 5});
        let lines = [
            json!({"index": 0, "time": 1, "process": 0, "type": "invoke", "f": "write", "key": "k", "node": "n1", "value": "a"}),
            json!({"index": 1, "time": 2, "process": 0, "type": "ok", "f": "write", "key": "k", "node": "n1", "value": "a", "version": version}),
            json!({"index": 2, "time": 3, "process": 1, "type": "invoke", "f": "read", "key": "k", "node": "n2"}),
            json!({"index": 3, "time": 4, "process": 1, "type": "ok", "f": "read", "key": "k", "node": "n2", "value": [{"value": "a", "version": version}]}),
            json!({"index": 4, "time": 5, "process": 1, "type": "invoke", "f": "frobnicate", "key": "k", "node": "n2"}),
        ];
        let ops: Vec<Op> = lines.into_iter().map(|l| serde_json::from_value(l).unwrap()).collect();
        CompactHistory::from_ops(&ops)
    }

    fn register_run() -> RunConfig {
        serde_json::from_value(json!({
            "nodes": ["n1", "n2", "n3"], "n": 3, "w": 2, "r": 2, "sloppy_quorum": false, "resolution": "siblings",
            "hinted_handoff": true, "read_repair": true, "anti_entropy": true, "workload": "register",
            "nemesis": ["none"], "seed": 1, "time_limit_s": 1, "concurrency": 2, "rate": 10.0,
            "backend": "sim", "node_image": "test", "started_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn side_by_side_each_checker_runs_once_and_gives_what_it_gives_alone() {
        let history = history();
        let run_config = register_run();
        let shared = Checked::new(&history);
        let calls = AtomicUsize::new(0);
        let results = run(&crate::CHECKERS, |_, check| {
            calls.fetch_add(1, Ordering::Relaxed);
            check(&shared, &run_config)
        });
        assert_eq!(calls.into_inner(), crate::CHECKERS.len());
        assert_eq!(results.len(), crate::CHECKERS.len());
        for (name, check) in crate::CHECKERS {
            assert_eq!(results[name], check(&Checked::new(&history), &run_config), "{name}");
        }
    }
}
