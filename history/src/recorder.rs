//! The recorder: many client tasks and the nemesis append to one history.
//!
//! It assigns each op its `index` and its `time` (nanoseconds since the run
//! started, on the monotonic clock) under one lock, so indices and times are
//! both in file order. Each line is flushed as written: if the harness dies,
//! what was observed is still on disk.
//!
//! Which monotonic clock is the caller's choice ([`Recorder::with_clock`]):
//! a real run reads the host's, a simulated run the simulator's (tokio's
//! paused clock, advanced tick by tick), so that the same seed stamps the
//! same times and `history.jsonl` is byte-identical between two runs.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use crate::{HistoryError, JsonlWriter, Op};

/// Nanoseconds since the run's time zero, from whichever clock the run uses.
pub type ElapsedNs = Box<dyn Fn() -> u64 + Send + Sync>;

/// The one writer of a run's `history.jsonl`: shared by every client task
/// and the nemesis, it stamps each op with its `index` and `time` and
/// appends it to the file and to a copy in memory.
pub struct Recorder {
    /// The run's time zero and clock; every `time` field is measured by it.
    elapsed_ns: ElapsedNs,
    inner: Mutex<Inner>,
}

struct Inner {
    next_index: u64,
    writer: JsonlWriter,
    /// A copy kept in memory so the run can be checked without re-reading.
    ops: Vec<Op>,
}

impl Recorder {
    /// A recorder whose times are measured from `start` on the host's monotonic clock.
    pub fn create(path: &Path, start: Instant) -> Result<Recorder, HistoryError> {
        Recorder::with_clock(path, Box::new(move || start.elapsed().as_nanos() as u64))
    }

    /// A recorder whose times come from `elapsed_ns` (e.g. a simulator's clock).
    pub fn with_clock(path: &Path, elapsed_ns: ElapsedNs) -> Result<Recorder, HistoryError> {
        let writer = JsonlWriter::create(path)?;
        Ok(Recorder { elapsed_ns, inner: Mutex::new(Inner { next_index: 0, writer, ops: Vec::new() }) })
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
        inner.writer.append(&op)?;
        inner.next_index += 1;
        inner.ops.push(op.clone());
        Ok(op)
    }

    /// Every op recorded so far, in order.
    pub fn snapshot(&self) -> Vec<Op> {
        self.inner.lock().expect("recorder lock poisoned").ops.clone()
    }
}
