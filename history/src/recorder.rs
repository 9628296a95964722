//! The recorder: many client tasks and the nemesis append to one history.
//!
//! It assigns each op its `index` and its `time` (nanoseconds since the run
//! started, on the monotonic clock) under one lock, so indices and times are
//! both in file order. Each line is flushed as written: if the harness dies,
//! what was observed is still on disk.
//!
//! It writes and forgets: a run of hours records millions of ops, and a
//! copy of each kept in memory for the run's whole length grew the
//! harness by kilobytes per op. What was recorded is read back from the
//! file ([`Recorder::read_back`]), the same bytes a later `workbench check`
//! reads. It keeps only what the end of a run asks of it: the keys whose
//! writes were hinted, and for whom ([`Recorder::hinted_keys`]).
//!
//! Across datacenters it also stamps each client op with its client's DC
//! ([`Recorder::with_datacenters`]): a client talks to its own DC's nodes
//! only, so the DC of the node an op went to is its client's, and the
//! stamp is made in this one place for every workload and the final reads.
//!
//! Which monotonic clock is the caller's choice ([`Recorder::with_clock`]):
//! a real run reads the host's, a simulated run the simulator's (tokio's
//! paused clock, advanced tick by tick), so that the same seed stamps the
//! same times and `history.jsonl` is byte-identical between two runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use crate::{read_history, History, HistoryError, JsonlWriter, Op, OpType};

/// Nanoseconds since the run's time zero, from whichever clock the run uses.
pub type ElapsedNs = Box<dyn Fn() -> u64 + Send + Sync>;

/// The one writer of a run's `history.jsonl`: shared by every client task
/// and the nemesis, it stamps each op with its `index` and `time` and
/// appends it to the file, keeping nothing of it.
pub struct Recorder {
    /// The run's time zero and clock; every `time` field is measured by it.
    elapsed_ns: ElapsedNs,
    /// The index counter and the file, under one lock so both are in file order.
    inner: Mutex<Inner>,
    /// Where the history is written, to read it back.
    path: std::path::PathBuf,
    /// Node -> its datacenter, to stamp each client op's `dc`; empty for a
    /// run of one DC (nothing stamped).
    datacenters: BTreeMap<String, String>,
}

/// What the lock guards: the next index and the file, in step.
struct Inner {
    /// The index the next op is stamped with: the ops written so far.
    next_index: u64,
    /// `history.jsonl`, flushed after every line.
    writer: JsonlWriter,
    /// Key -> the home replicas its acknowledged writes were hinted for.
    hinted: BTreeMap<String, BTreeSet<String>>,
}

impl Recorder {
    /// A recorder whose times are measured from `start` on the host's monotonic clock.
    pub fn create(path: &Path, start: Instant) -> Result<Recorder, HistoryError> {
        Recorder::with_clock(path, Box::new(move || start.elapsed().as_nanos() as u64))
    }

    /// A recorder whose times come from `elapsed_ns` (e.g. a simulator's clock).
    pub fn with_clock(path: &Path, elapsed_ns: ElapsedNs) -> Result<Recorder, HistoryError> {
        let writer = JsonlWriter::create(path)?;
        Ok(Recorder {
            elapsed_ns,
            inner: Mutex::new(Inner { next_index: 0, writer, hinted: BTreeMap::new() }),
            path: path.to_path_buf(),
            datacenters: BTreeMap::new(),
        })
    }

    /// The same recorder, stamping every client op sent to a node of
    /// `datacenters` (node -> DC) with that DC as the op's `dc`.
    pub fn with_datacenters(mut self, datacenters: BTreeMap<String, String>) -> Recorder {
        self.datacenters = datacenters;
        self
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        (self.elapsed_ns)()
    }

    /// Stamps `op` with its index and time, writes it, and returns the stamped op.
    pub fn record(&self, mut op: Op) -> Result<Op, HistoryError> {
        let mut inner = self.inner.lock().expect("recorder lock poisoned");
        op.index = inner.next_index;
        op.time = self.now_ns();
        if let Some(dc) = op.node.as_ref().and_then(|node| self.datacenters.get(node)) {
            op.dc = Some(dc.clone());
        }
        inner.writer.append(&op)?;
        inner.next_index += 1;
        if let (OpType::Ok, Some(key), false) = (op.kind, &op.key, op.hinted_for.is_empty()) {
            inner.hinted.entry(key.clone()).or_default().extend(op.hinted_for.iter().cloned());
        }
        Ok(op)
    }

    /// Every key an acknowledged op was hinted for, with the homes owed it.
    pub fn hinted_keys(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.inner.lock().expect("recorder lock poisoned").hinted.clone()
    }

    /// Every op recorded so far, in order, read back from the file (each
    /// line was flushed as written; the lock keeps a line from being half
    /// written while it reads).
    pub fn read_back(&self) -> Result<History, HistoryError> {
        let _writing = self.inner.lock().expect("recorder lock poisoned");
        read_history(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder_in(dir: &Path) -> Recorder {
        Recorder::with_clock(&dir.join("history.jsonl"), Box::new(|| 7)).expect("a history file")
    }

    #[test]
    fn client_ops_carry_their_datacenter_and_one_dc_adds_nothing() {
        let dir = std::env::temp_dir().join(format!("recorder-dc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dcs: BTreeMap<String, String> = [("n1", "dc1"), ("n4", "dc2")].map(|(n, d)| (n.into(), d.into())).into();
        let across = recorder_in(&dir).with_datacenters(dcs);
        let op = across.record(Op::client(0, OpType::Invoke, "read", "k", "n4")).unwrap();
        assert_eq!(op.dc.as_deref(), Some("dc2"));
        // A node the map does not name (a joined spare) is not guessed.
        assert_eq!(across.record(Op::client(1, OpType::Invoke, "read", "k", "n9")).unwrap().dc, None);
        assert_eq!(across.record(Op::nemesis("kill", serde_json::json!({}))).unwrap().dc, None);
        let line = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
        assert!(line.lines().next().unwrap().ends_with(r#""dc":"dc2"}"#), "{line}");
        // One DC: the line is as it was before the field existed.
        let plain = recorder_in(&dir).record(Op::client(0, OpType::Invoke, "read", "k", "n4")).unwrap();
        assert_eq!(plain.dc, None);
        assert!(!std::fs::read_to_string(dir.join("history.jsonl")).unwrap().contains("\"dc\""));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
