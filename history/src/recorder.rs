//! The recorder: many client tasks and the nemesis append to one history.
//!
//! It assigns each op its `index` and its `time` (nanoseconds since the run
//! started, on the monotonic clock) under one lock, so indices and times are
//! both in file order. Each line is flushed as written: if the harness dies,
//! what was observed is still on disk.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use crate::{HistoryError, JsonlWriter, Op};

pub struct Recorder {
    /// The run's time zero; every `time` field is measured from here.
    start: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    next_index: u64,
    writer: JsonlWriter,
    /// A copy kept in memory so the run can be checked without re-reading.
    ops: Vec<Op>,
}

impl Recorder {
    pub fn create(path: &Path, start: Instant) -> Result<Recorder, HistoryError> {
        let writer = JsonlWriter::create(path)?;
        Ok(Recorder { start, inner: Mutex::new(Inner { next_index: 0, writer, ops: Vec::new() }) })
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn start(&self) -> Instant {
        self.start
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
