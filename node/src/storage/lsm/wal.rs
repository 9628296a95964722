//! The write-ahead log: every write is appended here before it is visible
//! in the memtable, so a process killed at any moment can replay it.
//!
//! ## Record format
//! ```text
//! | payload_len u32 LE | crc32c(payload_len) u32 | crc32c(payload) u32 | payload |
//! payload = | kind u8 (1 put, 2 delete) | key_len u32 | key | value (put) or deleted_at_ms u64 (delete) |
//! ```
//! The length has its own checksum so that a flipped length is caught
//! before it is trusted: otherwise a corrupt length in the middle of a log
//! could point past the end of the file and look like a torn tail, and the
//! records after it would be silently dropped.
//!
//! ## Torn tails versus corruption
//! A crash can only tear the end of the newest segment, where the last
//! write was in flight. Recovery therefore truncates (and logs) a bad record
//! only when it is in the newest segment and no whole record follows it
//! (a record cut short, the zeros a file size extended before its data
//! leaves, or the zeros a `batch` segment is written ahead with, damaged
//! or not: they hold no record). A bad record anywhere else is an error
//! naming the file and the offset: it is never skipped and never served. A record
//! that was truncated was never acknowledged, because acknowledgement waits
//! for the fsync that covers it (policies `always` and `batch`).
//!
//! ## Fsync policies
//! `always` fsyncs each record before the write returns; `batch` is group
//! commit: a writer appends, then either becomes the leader that fsyncs for
//! everyone appended so far (after a short bounded delay to gather more
//! writers) or waits for the leader, so concurrent writers share one fsync;
//! `never` leaves the data in the OS page cache (survives SIGKILL, not a
//! power cut).
//!
//! Under `batch` a record is not written to the file at once: appends
//! gather in a buffer, and the group commit's leader writes the buffer and
//! fsyncs it (one `write` per group commit instead of one per record). A
//! 3-node cluster under 32 clients made about seven WAL writes per fsync,
//! each a system call on the node's one runtime thread. Nothing is lost
//! that was promised: a `batch` record is acknowledged only once the fsync
//! that covers it returned, and SIGKILL before that loses only records
//! nobody was told about, as a power cut always could.
//!
//! A `batch` segment is also written ahead with zeros, a MiB at a time
//! ([`ZERO_AHEAD_BYTES`]), and records overwrite them: a record written
//! inside the file's size changes no metadata, so its fdatasync writes the
//! data block alone instead of the data and the inode (on this project's
//! machines a profile showed `ext4_write_inode` in a third of the syncer's
//! fsync time, each block request a VM exit). Recovery already reads an
//! all-zero tail as a torn tail; a segment is cut to its records when it is
//! closed or rotated, so only a crash leaves zeros behind. Should the disk
//! have no room for the zeros, the segment simply grows record by record.
//!
//! ## Segments
//! The log is a sequence of files `wal-<seq>.log`. The engine rotates to a
//! new segment whenever it freezes a memtable, so that once that memtable is
//! flushed to an SSTable (and the manifest says so) the older segments can
//! be deleted whole.

use std::fs::{File, OpenOptions};
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::disk::{self, DiskBudget};
use super::memtable::Slot;
use super::{FsyncPolicy, LsmError, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::storage::DurableMark;

/// Bytes before a record's payload.
pub const RECORD_HEADER_BYTES: usize = 12;
/// Largest payload a valid record can have.
pub const MAX_PAYLOAD_BYTES: usize = 1 + 4 + MAX_KEY_BYTES + MAX_VALUE_BYTES;
/// How long a writer waits for a group-commit fsync before giving up.
const GROUP_COMMIT_TIMEOUT_MS: u64 = 60_000;
/// Buffered `batch` records written out by the appender itself once they
/// reach this size, should no group commit have come for them.
const MAX_PENDING_BYTES: usize = 1 << 20;
/// How far past its records a `batch` segment is written with zeros.
pub const ZERO_AHEAD_BYTES: u64 = 1 << 20;

const KIND_PUT: u8 = 1;
const KIND_DELETE: u8 = 2;

/// One logged mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOp {
    /// The key written.
    pub key: Vec<u8>,
    /// What it now maps to.
    pub slot: Slot,
}

/// Why bytes do not decode as a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the record needs: a possibly torn tail.
    Incomplete,
    /// The length field fails its checksum.
    HeaderChecksum,
    /// The payload fails its checksum.
    PayloadChecksum,
    /// The checksums pass but the payload is not a valid record.
    Malformed(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Incomplete => write!(f, "record cut short"),
            DecodeError::HeaderChecksum => write!(f, "record length fails its checksum"),
            DecodeError::PayloadChecksum => write!(f, "record payload fails its checksum"),
            DecodeError::Malformed(why) => write!(f, "malformed record: {why}"),
        }
    }
}

/// Appends the encoding of `op` to `out`.
pub fn encode_record(op: &WalOp, out: &mut Vec<u8>) {
    let mut payload = Vec::with_capacity(16 + op.key.len());
    match &op.slot {
        Slot::Value(v) => {
            payload.push(KIND_PUT);
            payload.extend_from_slice(&(op.key.len() as u32).to_le_bytes());
            payload.extend_from_slice(&op.key);
            payload.extend_from_slice(v);
        }
        Slot::Tombstone { deleted_at_ms } => {
            payload.push(KIND_DELETE);
            payload.extend_from_slice(&(op.key.len() as u32).to_le_bytes());
            payload.extend_from_slice(&op.key);
            payload.extend_from_slice(&deleted_at_ms.to_le_bytes());
        }
    }
    debug_assert!(payload.len() <= MAX_PAYLOAD_BYTES);
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c::crc32c(&len).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

/// The payload length a record header announces, once the header checks out.
pub fn decode_header(buf: &[u8]) -> Result<usize, DecodeError> {
    if buf.len() < RECORD_HEADER_BYTES {
        return Err(DecodeError::Incomplete);
    }
    if crc32c::crc32c(&buf[0..4]) != u32_at(buf, 4) {
        return Err(DecodeError::HeaderChecksum);
    }
    let len = u32_at(buf, 0) as usize;
    if len > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::Malformed("length above the record limit"));
    }
    Ok(len)
}

/// Decodes the record at the start of `buf`: the op and the bytes it used.
pub fn decode_record(buf: &[u8]) -> Result<(WalOp, usize), DecodeError> {
    let len = decode_header(buf)?;
    let end = RECORD_HEADER_BYTES + len;
    if buf.len() < end {
        return Err(DecodeError::Incomplete);
    }
    let payload = &buf[RECORD_HEADER_BYTES..end];
    if crc32c::crc32c(payload) != u32_at(buf, 8) {
        return Err(DecodeError::PayloadChecksum);
    }
    Ok((decode_payload(payload)?, end))
}

fn decode_payload(p: &[u8]) -> Result<WalOp, DecodeError> {
    if p.len() < 5 {
        return Err(DecodeError::Malformed("payload shorter than its fixed fields"));
    }
    let key_len = u32_at(p, 1) as usize;
    if key_len > MAX_KEY_BYTES || p.len() < 5 + key_len {
        return Err(DecodeError::Malformed("key length out of range"));
    }
    let key = p[5..5 + key_len].to_vec();
    let rest = &p[5 + key_len..];
    let slot = match p[0] {
        KIND_PUT => Slot::Value(rest.to_vec()),
        KIND_DELETE if rest.len() == 8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(rest);
            Slot::Tombstone { deleted_at_ms: u64::from_le_bytes(b) }
        }
        KIND_DELETE => return Err(DecodeError::Malformed("delete without a timestamp")),
        _ => return Err(DecodeError::Malformed("unknown record kind")),
    };
    Ok(WalOp { key, slot })
}

/// The file name of segment `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("wal-{seq:020}.log")
}

/// The sequence number of a segment file name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?.strip_suffix(".log")?.parse().ok()
}

/// What replaying one segment found.
#[derive(Debug)]
pub struct Replayed {
    /// The records, in log order.
    pub ops: Vec<WalOp>,
    /// Bytes cut off a torn tail (0 when the segment was clean).
    pub truncated_bytes: u64,
}

/// Reads every record of a segment; `newest` allows a torn tail, which is
/// then truncated from the file.
pub fn replay_segment(path: &Path, newest: bool) -> Result<Replayed, LsmError> {
    let buf = std::fs::read(path).map_err(disk::io_err("read", path))?;
    let mut ops = Vec::new();
    let mut at = 0usize;
    while at < buf.len() {
        match decode_record(&buf[at..]) {
            Ok((op, used)) => {
                ops.push(op);
                at += used;
            }
            Err(e) if newest && is_torn_tail(&buf[at..], &e) => {
                let cut = (buf.len() - at) as u64;
                truncate(path, at as u64)?;
                tracing::warn!(file = %path.display(), offset = at, bytes = cut, reason = %e, "WAL: truncated a torn final record");
                return Ok(Replayed { ops, truncated_bytes: cut });
            }
            Err(e) => {
                return Err(LsmError::Corrupt {
                    what: "WAL record",
                    path: path.to_path_buf(),
                    offset: at as u64,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(Replayed { ops, truncated_bytes: 0 })
}

/// True when a bad record at the start of `rest` is a torn tail: no whole
/// record follows it anywhere in the file. That is what an interrupted
/// append leaves (a record cut short, or cut short and followed by the
/// zeros a batch segment was written ahead with, or those zeros alone), and
/// damage to the zeros beyond the last record touches no record. A bad
/// record with a good one after it is corruption in the middle of the log,
/// and a record whose checksums hold but whose contents do not parse was
/// never a tear.
fn is_torn_tail(rest: &[u8], err: &DecodeError) -> bool {
    match err {
        DecodeError::Malformed(_) => false,
        DecodeError::Incomplete | DecodeError::HeaderChecksum | DecodeError::PayloadChecksum => {
            !(1..rest.len()).any(|offset| decode_record(&rest[offset..]).is_ok())
        }
    }
}

/// Cuts the segment at `len` bytes and fsyncs it.
pub(super) fn truncate(path: &Path, len: u64) -> Result<(), LsmError> {
    let f = OpenOptions::new().write(true).open(path).map_err(disk::io_err("open for truncation", path))?;
    f.set_len(len).map_err(disk::io_err("truncate", path))?;
    disk::sync_file(&f, path)
}

/// The appending end of the log. The engine holds it under its write lock,
/// so appends (and the memtable inserts that follow them) are serialized.
#[derive(Debug)]
pub struct WalWriter {
    /// The directory holding the segments.
    dir: PathBuf,
    /// The segment being appended to, shared with the group commit's
    /// leader, which fsyncs it outside the write lock.
    file: Arc<File>,
    /// Its path, for error messages.
    path: PathBuf,
    /// Its sequence number.
    seq: u64,
    /// Records appended since the engine opened (a log sequence number).
    appended_lsn: u64,
    /// Bytes in the live segments (for stats).
    live_bytes: u64,
    /// When to fsync.
    policy: FsyncPolicy,
    /// Simulated disk capacity, for tests.
    budget: Option<Arc<DiskBudget>>,
    /// Reused encoding buffer.
    scratch: Vec<u8>,
    /// `batch` records appended but not yet written to `file` (see the
    /// module's "Fsync policies").
    pending: Vec<u8>,
    /// Bytes of records written to `file`: where the next one goes.
    written_bytes: u64,
    /// The file's size: records, then zeros written ahead (`batch` only).
    zeroed_bytes: u64,
    /// Whether zeros are still written ahead: false once the disk had no
    /// room for them, for the rest of the segment.
    zero_ahead: bool,
}

impl WalWriter {
    /// Creates segment `seq` in `dir` and appends to it.
    pub fn create(
        dir: &Path,
        seq: u64,
        policy: FsyncPolicy,
        budget: Option<Arc<DiskBudget>>,
        live_bytes: u64,
    ) -> Result<Self, LsmError> {
        let path = dir.join(segment_name(seq));
        let file = disk::create(&path)?;
        disk::sync_dir(dir)?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            file: Arc::new(file),
            path,
            seq,
            appended_lsn: 0,
            live_bytes,
            policy,
            budget,
            scratch: Vec::new(),
            pending: Vec::new(),
            written_bytes: 0,
            zeroed_bytes: 0,
            zero_ahead: policy == FsyncPolicy::Batch,
        })
    }

    /// Appends one record; with `always`, it is durable when this returns;
    /// with `batch`, it is buffered for the group commit (see [`Self::sync_target`]).
    /// Returns the record's log sequence number.
    pub fn append(&mut self, op: &WalOp) -> Result<u64, LsmError> {
        self.scratch.clear();
        encode_record(op, &mut self.scratch);
        if self.policy == FsyncPolicy::Batch {
            self.pending.extend_from_slice(&self.scratch);
            if self.pending.len() >= MAX_PENDING_BYTES {
                self.flush()?;
            }
        } else {
            let record = mem::take(&mut self.scratch);
            let written = self.write_records(&record);
            self.scratch = record;
            written?;
            if self.policy == FsyncPolicy::Always {
                disk::sync_file(&self.file, &self.path)?;
            }
        }
        self.live_bytes += self.scratch.len() as u64;
        self.appended_lsn += 1;
        Ok(self.appended_lsn)
    }

    /// Writes the buffered `batch` records to the segment.
    fn flush(&mut self) -> Result<(), LsmError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = mem::take(&mut self.pending);
        let written = self.write_records(&pending);
        self.pending = pending;
        self.pending.clear();
        written
    }

    /// Writes encoded records after the ones already in the file, zeros
    /// ahead of them first when they would reach past the file's size.
    fn write_records(&mut self, records: &[u8]) -> Result<(), LsmError> {
        let end = self.written_bytes + records.len() as u64;
        if self.zero_ahead && end > self.zeroed_bytes {
            self.write_zeros_past(end);
        }
        let new_bytes = end.saturating_sub(self.zeroed_bytes.max(self.written_bytes));
        let budget = self.budget.as_deref();
        disk::write_all_at(&self.file, records, self.written_bytes, new_bytes, budget, &self.path)?;
        self.written_bytes = end;
        self.zeroed_bytes = self.zeroed_bytes.max(end);
        Ok(())
    }

    /// Extends the file with zeros to `ZERO_AHEAD_BYTES` past `end`; on any
    /// failure (no room) it stops writing ahead for this segment.
    fn write_zeros_past(&mut self, end: u64) {
        let from = self.zeroed_bytes.max(self.written_bytes);
        let to = end + ZERO_AHEAD_BYTES;
        let zeros = vec![0u8; (to - from) as usize];
        let budget = self.budget.as_deref();
        match disk::write_all_at(&self.file, &zeros, from, to - from, budget, &self.path) {
            Ok(()) => self.zeroed_bytes = to,
            Err(error) => {
                tracing::warn!(%error, "WAL: no room to write the segment ahead; it grows record by record");
                self.zero_ahead = false;
            }
        }
    }

    /// Cuts the zeros written ahead off the segment, so that only records
    /// remain (before it is closed).
    fn cut_zeros(&mut self) -> Result<(), LsmError> {
        if self.zeroed_bytes > self.written_bytes {
            disk::set_len(&self.file, self.written_bytes, &self.path)?;
            self.zeroed_bytes = self.written_bytes;
        }
        Ok(())
    }

    /// Closes the current segment (fsynced unless the policy is `never`)
    /// and starts the next one. Returns the closed segment's number.
    pub fn rotate(&mut self) -> Result<u64, LsmError> {
        self.flush()?;
        self.cut_zeros()?;
        if self.policy != FsyncPolicy::Never {
            disk::sync_file(&self.file, &self.path)?;
        }
        let old = self.seq;
        let next = WalWriter::create(&self.dir, old + 1, self.policy, self.budget.clone(), self.live_bytes)?;
        let lsn = self.appended_lsn;
        *self = WalWriter {
            appended_lsn: lsn,
            scratch: mem::take(&mut self.scratch),
            pending: mem::take(&mut self.pending),
            ..next
        };
        Ok(old)
    }

    /// For a group-commit leader: writes the buffered records out and
    /// returns the current segment and the LSN it holds up to, to fsync
    /// without holding the write lock.
    pub fn sync_target(&mut self) -> Result<(Arc<File>, PathBuf, u64), LsmError> {
        self.flush()?;
        Ok((Arc::clone(&self.file), self.path.clone(), self.appended_lsn))
    }

    /// Writes out and fsyncs the current segment (used when the engine closes).
    pub fn sync(&mut self) -> Result<(), LsmError> {
        self.flush()?;
        self.cut_zeros()?;
        disk::sync_file(&self.file, &self.path)
    }

    /// The LSN of the newest appended record.
    pub fn appended_lsn(&self) -> u64 {
        self.appended_lsn
    }

    /// The current segment's number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Bytes in live segments.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Forgets the bytes of segments that were deleted.
    pub fn release_bytes(&mut self, bytes: u64) {
        self.live_bytes = self.live_bytes.saturating_sub(bytes);
    }
}

/// Group commit state: how far the log is known durable, and whether a
/// leader is fsyncing right now.
#[derive(Debug, Default)]
struct SyncState {
    /// Every record with an LSN up to this one is on disk.
    durable_lsn: u64,
    /// A writer is fsyncing on behalf of the others.
    leader_active: bool,
    /// The error of a failed fsync: after it nothing is known durable.
    failed: Option<String>,
}

/// Makes concurrent `batch` writers share fsyncs.
///
/// Blocking writers call [`GroupCommit::wait_durable`]: one of them leads
/// the fsync, the others sleep on `done`. Async writers call
/// [`GroupCommit::request`] and await the published [`DurableMark`]; the
/// engine's syncer thread picks their requests up ([`GroupCommit::next_request`])
/// and leads fsyncs for them through the same `wait_durable`, so both
/// kinds share every fsync.
#[derive(Debug)]
pub struct GroupCommit {
    /// Durability progress.
    state: Mutex<SyncState>,
    /// Wakes writers waiting for a leader's fsync.
    done: Condvar,
    /// How long a leader waits for more writers before its fsync.
    delay: Duration,
    /// Durability progress published to async waiters after every change.
    mark: tokio::sync::watch::Sender<DurableMark>,
    /// What async writers wait for, and whether the syncer sleeps.
    requests: Mutex<Requests>,
    /// Wakes the syncer thread when `requests.lsn` grows while it sleeps.
    wanted: Condvar,
}

/// The async writers' side of group commit.
#[derive(Debug, Default)]
struct Requests {
    /// The highest LSN async writers are waiting for (0: none yet).
    lsn: u64,
    /// The syncer thread is asleep on `wanted`. Only then does a request
    /// notify it: while it fsyncs it looks at `lsn` again before sleeping,
    /// and a notification per write (a futex system call each) was most of
    /// what a write cost the syncer under load.
    syncer_waiting: bool,
}

impl GroupCommit {
    /// Group commit with a leader delay of `delay`.
    pub fn new(delay: Duration) -> Self {
        GroupCommit {
            state: Mutex::new(SyncState::default()),
            done: Condvar::new(),
            delay,
            mark: tokio::sync::watch::Sender::new(DurableMark::default()),
            requests: Mutex::new(Requests::default()),
            wanted: Condvar::new(),
        }
    }

    /// Asks the syncer thread to make `lsn` durable; the receiver sees the
    /// progress (see `storage::Durability`).
    pub fn request(&self, lsn: u64) -> tokio::sync::watch::Receiver<DurableMark> {
        let receiver = self.mark.subscribe();
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests.lsn = requests.lsn.max(lsn);
        if requests.syncer_waiting {
            // Under the lock, so the syncer cannot be between its check of
            // `lsn` and its sleep: the wake-up is never lost.
            self.wanted.notify_one();
        }
        receiver
    }

    /// For the syncer thread: the highest requested LSN not yet durable,
    /// waiting up to `timeout` for one; `None` when there is none.
    pub fn next_request(&self, timeout: Duration) -> Option<u64> {
        let pending = |requested: u64| requested > self.mark.borrow().durable_lsn;
        let mut requests = self.requests.lock().ok()?;
        if pending(requests.lsn) {
            return Some(requests.lsn);
        }
        requests.syncer_waiting = true;
        let (mut requests, _) = self.wanted.wait_timeout(requests, timeout).ok()?;
        requests.syncer_waiting = false;
        pending(requests.lsn).then_some(requests.lsn)
    }

    /// Tells async waiters what `st` says (called under the state lock, so
    /// publications are in order).
    fn publish(&self, st: &SyncState) {
        self.mark.send_if_modified(|m| {
            let next = DurableMark { durable_lsn: st.durable_lsn, failed: st.failed.clone() };
            let changed = *m != next;
            *m = next;
            changed
        });
    }

    /// Records that everything up to `lsn` is durable (e.g. after a rotation).
    pub fn mark_durable(&self, lsn: u64) {
        if let Ok(mut st) = self.state.lock() {
            st.durable_lsn = st.durable_lsn.max(lsn);
            self.publish(&st);
        }
        self.done.notify_all();
    }

    /// Returns once record `lsn` is durable, fsyncing as the leader if no
    /// one else is. `target` gives the file to sync and the LSN it covers.
    pub fn wait_durable<F>(&self, lsn: u64, target: F) -> Result<(), LsmError>
    where
        F: Fn() -> Result<(Arc<File>, PathBuf, u64), LsmError>,
    {
        self.wait_durable_after(lsn, target, self.delay)
    }

    /// For the syncer thread: like `wait_durable`, but a leader fsyncs at
    /// once. Its writers are already queued by the time it runs (they
    /// arrive during the previous fsync), so waiting for company only adds
    /// latency.
    pub fn sync_requested<F>(&self, lsn: u64, target: F) -> Result<(), LsmError>
    where
        F: Fn() -> Result<(Arc<File>, PathBuf, u64), LsmError>,
    {
        self.wait_durable_after(lsn, target, Duration::ZERO)
    }

    fn wait_durable_after<F>(&self, lsn: u64, target: F, delay: Duration) -> Result<(), LsmError>
    where
        F: Fn() -> Result<(Arc<File>, PathBuf, u64), LsmError>,
    {
        let deadline = Instant::now() + Duration::from_millis(GROUP_COMMIT_TIMEOUT_MS);
        let mut st = self.state.lock().map_err(|_| LsmError::Poisoned)?;
        while st.durable_lsn < lsn {
            if let Some(e) = &st.failed {
                return Err(LsmError::Failed(e.clone()));
            }
            if Instant::now() > deadline {
                return Err(LsmError::Failed("group commit fsync timed out".into()));
            }
            if !st.leader_active {
                st.leader_active = true;
                drop(st);
                let outcome = Self::lead(&target, delay);
                st = self.state.lock().map_err(|_| LsmError::Poisoned)?;
                st.leader_active = false;
                match outcome {
                    Ok(upto) => st.durable_lsn = st.durable_lsn.max(upto),
                    Err(e) => st.failed = Some(e.to_string()),
                }
                self.publish(&st);
                self.done.notify_all();
            } else {
                st = self.done.wait_timeout(st, Duration::from_millis(10)).map_err(|_| LsmError::Poisoned)?.0;
            }
        }
        Ok(())
    }

    fn lead<F>(target: &F, delay: Duration) -> Result<u64, LsmError>
    where
        F: Fn() -> Result<(Arc<File>, PathBuf, u64), LsmError>,
    {
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let (file, path, upto) = target()?;
        disk::sync_file(&file, &path)?;
        Ok(upto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &[u8], v: &[u8]) -> WalOp {
        WalOp { key: k.to_vec(), slot: Slot::Value(v.to_vec()) }
    }

    #[test]
    fn a_request_reaches_a_sleeping_syncer_and_a_busy_one() {
        let group = Arc::new(GroupCommit::new(Duration::ZERO));
        // Busy (not asleep): the request is only recorded, and found next time.
        drop(group.request(3));
        assert_eq!(group.next_request(Duration::from_secs(5)), Some(3));
        group.mark_durable(3);
        assert_eq!(group.next_request(Duration::from_millis(1)), None, "nothing pending");
        // Asleep: a request wakes it long before its timeout.
        let syncer = {
            let group = Arc::clone(&group);
            std::thread::spawn(move || {
                let started = Instant::now();
                (group.next_request(Duration::from_secs(30)), started.elapsed())
            })
        };
        while !group.requests.lock().unwrap().syncer_waiting {
            std::thread::yield_now();
        }
        drop(group.request(7));
        let (lsn, waited) = syncer.join().unwrap();
        assert_eq!(lsn, Some(7));
        assert!(waited < Duration::from_secs(10), "woken by the request, not the timeout: {waited:?}");
    }

    #[test]
    fn records_round_trip() {
        let mut buf = Vec::new();
        let a = put(b"k", b"v");
        let b = WalOp { key: b"gone".to_vec(), slot: Slot::Tombstone { deleted_at_ms: 77 } };
        encode_record(&a, &mut buf);
        encode_record(&b, &mut buf);
        let (got_a, used) = decode_record(&buf).unwrap();
        assert_eq!(got_a, a);
        let (got_b, used_b) = decode_record(&buf[used..]).unwrap();
        assert_eq!(got_b, b);
        assert_eq!(used + used_b, buf.len());
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let mut buf = Vec::new();
        encode_record(&put(b"key", b"value"), &mut buf);
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(decode_record(&bad).is_err(), "flip at byte {i} bit {bit} undetected");
            }
        }
    }

    #[test]
    fn batch_records_reach_the_file_at_the_group_commit_or_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::create(dir.path(), 1, FsyncPolicy::Batch, None, 0).unwrap();
        let first = dir.path().join(segment_name(1));
        assert_eq!(w.append(&put(b"a", b"1")).unwrap(), 1);
        assert_eq!(w.append(&put(b"b", b"2")).unwrap(), 2);
        assert_eq!(std::fs::metadata(&first).unwrap().len(), 0, "buffered until a leader syncs");
        let (_, path, upto) = w.sync_target().unwrap();
        assert_eq!((path, upto), (first.clone(), 2));
        let size = std::fs::metadata(&first).unwrap().len();
        assert!(size > ZERO_AHEAD_BYTES, "written ahead with zeros: {size} bytes");
        let crashed = dir.path().join("crashed.log");
        std::fs::copy(&first, &crashed).unwrap();
        let replayed = replay_segment(&crashed, true).unwrap();
        assert_eq!(replayed.ops, vec![put(b"a", b"1"), put(b"b", b"2")], "a crash leaves the zeros as a torn tail");
        assert_eq!(replayed.truncated_bytes + w.written_bytes, size);
        w.append(&put(b"c", b"3")).unwrap();
        assert_eq!(w.rotate().unwrap(), 1, "the closed segment");
        assert_eq!(
            replay_segment(&first, false).unwrap().ops.len(),
            3,
            "rotation writes the buffer and cuts the zeros"
        );
        w.append(&put(b"d", b"4")).unwrap();
        w.sync().unwrap();
        let closed = replay_segment(&dir.path().join(segment_name(2)), true).unwrap();
        assert_eq!((closed.ops, closed.truncated_bytes), (vec![put(b"d", b"4")], 0), "a closed segment has no zeros");
    }

    #[test]
    fn what_follows_the_last_record_of_a_written_ahead_segment_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_name(1));
        let mut records = Vec::new();
        for i in 0..3u8 {
            encode_record(&put(&[i], b"value"), &mut records);
        }
        let ahead = |mut bytes: Vec<u8>| {
            bytes.resize(records.len() + 4096, 0);
            bytes
        };
        let cases = [
            ("zeros", ahead(records.clone()), 3),
            (
                "a flipped byte among the zeros",
                {
                    let mut b = ahead(records.clone());
                    b[records.len() + 700] ^= 0x40;
                    b
                },
                3,
            ),
            ("a record cut short before the zeros", ahead(records[..records.len() - 4].to_vec()), 2),
        ];
        for (what, bytes, kept) in cases {
            std::fs::write(&path, &bytes).unwrap();
            let replayed = replay_segment(&path, true).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(replayed.ops.len(), kept, "{what}");
            assert!(replayed.truncated_bytes > 0, "{what}");
        }
        let mut middle = ahead(records.clone());
        middle[RECORD_HEADER_BYTES + 1] ^= 0x01;
        std::fs::write(&path, &middle).unwrap();
        let err = replay_segment(&path, true).unwrap_err().to_string();
        assert!(err.contains("offset 0"), "a bad record with good ones after it is corruption: {err}");
    }

    #[test]
    fn other_policies_write_each_record_at_once() {
        for policy in [FsyncPolicy::Always, FsyncPolicy::Never] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = WalWriter::create(dir.path(), 1, policy, None, 0).unwrap();
            w.append(&put(b"a", b"1")).unwrap();
            let ops = replay_segment(&dir.path().join(segment_name(1)), true).unwrap().ops;
            assert_eq!(ops, vec![put(b"a", b"1")], "{policy:?}");
        }
    }

    #[test]
    fn torn_tail_is_truncated_but_middle_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_name(1));
        let mut buf = Vec::new();
        for i in 0..3u8 {
            encode_record(&put(&[i], b"value"), &mut buf);
        }
        let full = buf.len();
        std::fs::write(&path, &buf[..full - 3]).unwrap();
        let r = replay_segment(&path, true).unwrap();
        assert_eq!(r.ops.len(), 2);
        assert!(r.truncated_bytes > 0);
        assert!(replay_segment(&path, false).is_ok(), "truncated file is clean");
        let mut bad = buf.clone();
        bad[RECORD_HEADER_BYTES + 2] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        let err = replay_segment(&path, true).unwrap_err().to_string();
        assert!(err.contains("offset 0"), "{err}");
        std::fs::write(&path, &buf[..full - 3]).unwrap();
        assert!(replay_segment(&path, false).is_err(), "older segments may not be torn");
    }
}
