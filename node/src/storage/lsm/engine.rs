//! The engine proper: recovery, the write and read paths, and the two
//! background threads (flusher, compactor) that keep the tree in shape.
//!
//! ## Locks, in acquisition order
//! 1. `compaction` — one compaction at a time (background or requested).
//! 2. `writer` — the write lock: WAL append + memtable insert are one
//!    critical section, so the memtable sees writes in log order.
//! 3. `commit` — serializes manifest changes (flush and compaction both
//!    replace the live table set), and holds the durable manifest.
//! 4. `state` — the in-memory tree (memtables and open tables); readers
//!    take it shared and briefly, then work on `Arc` snapshots unlocked.
//!
//! No thread takes a lock earlier in this list while holding a later one.
//!
//! ## Recovery
//! Open reads the manifest, deletes files it does not list (leftovers of a
//! flush or compaction that crashed before its manifest commit) and WAL
//! segments below its `log_floor`, opens the listed tables (verifying their
//! footers, indexes, Bloom filters and every data block) and replays the
//! remaining WAL segments into a fresh memtable, tolerating a torn tail
//! only in the newest one. A table or segment that fails verification is
//! quarantined (see [`super::quarantine`]) or, under the `Refuse` policy,
//! fails the open.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::cache::BlockCache;
use super::compaction::{self, MergeIter, Source, Throttle};
use super::disk;
use super::manifest::{Manifest, TableEntry};
use super::memtable::{Frozen, FrozenCursor, Memtable, Slot};
use super::quarantine::{self, CorruptionPolicy};
use super::sstable::{Lookup, Table, TableBuilder, TableCursor};
use super::wal::{self, GroupCommit, WalOp, WalWriter};
use super::{FsyncPolicy, LsmError, LsmOptions, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::storage::{Durability, Entry, Storage, StorageError};

/// How long a stalled writer waits for the flusher before failing.
const MAX_STALL_MS: u64 = 120_000;

/// How often the idle syncer thread looks at the shutdown flag.
const SYNC_POLL_MS: u64 = 50;
/// How often idle background threads look for work.
const IDLE_POLL_MS: u64 = 100;

/// A table in the live set.
#[derive(Debug)]
struct LiveTable {
    /// File id (`<id>.sst`), as listed in the manifest.
    id: u64,
    /// Size tier, for compaction.
    tier: u32,
    /// The open table.
    table: Arc<Table>,
}

/// The in-memory tree.
#[derive(Debug, Default)]
struct State {
    /// The memtable taking writes.
    active: Memtable,
    /// Frozen memtables waiting for a flush, oldest first.
    frozen: VecDeque<Arc<Frozen>>,
    /// Live tables, newest first (same order as the manifest).
    tables: Vec<Arc<LiveTable>>,
}

/// Counters for the admin API.
#[derive(Debug, Default)]
struct Stats {
    /// Memtables flushed.
    flushes: AtomicU64,
    /// Total time spent flushing.
    flush_ms_total: AtomicU64,
    /// Compactions run.
    compactions: AtomicU64,
    /// Total time spent compacting.
    compaction_ms_total: AtomicU64,
    /// Tombstones dropped by compactions.
    tombstones_dropped: AtomicU64,
    /// Table lookups the Bloom filter ruled out.
    bloom_negatives: AtomicU64,
    /// Table lookups the Bloom filter let through for an absent key.
    bloom_false_positives: AtomicU64,
    /// Writes that waited for the flusher.
    write_stalls: AtomicU64,
    /// Bytes cut off torn WAL tails at open.
    wal_truncated_bytes: AtomicU64,
    /// Tables and WAL segments quarantined at open for corruption.
    corrupt_files_quarantined: AtomicU64,
    /// Checksum failures seen: one per quarantined file at open, plus
    /// every read that met a corrupt block while running.
    corrupt_blocks_detected: AtomicU64,
    /// WAL bytes dropped from the bad record on, in quarantined segments.
    wal_corrupt_bytes_dropped: AtomicU64,
}

/// What an open found corrupt and set aside.
#[derive(Debug, Default)]
struct Recovered {
    /// Tables quarantined.
    tables: u64,
    /// WAL segments quarantined (cut at their bad record).
    segments: u64,
    /// WAL bytes dropped by those cuts.
    wal_corrupt_bytes: u64,
    /// Bytes cut off a torn tail.
    torn_bytes: u64,
}

/// State shared by the handle and the background threads.
#[derive(Debug)]
struct Inner {
    /// The data directory.
    dir: PathBuf,
    /// Tunables.
    opts: LsmOptions,
    /// The write lock, holding the WAL's appending end.
    writer: Mutex<WalWriter>,
    /// Shared fsyncs for the `batch` policy.
    group: GroupCommit,
    /// The durable manifest; its lock serializes changes to it.
    commit: Mutex<Manifest>,
    /// The in-memory tree.
    state: RwLock<State>,
    /// One compaction at a time.
    compaction: Mutex<()>,
    /// Paired with `wake`: background work and stalled writers wait here.
    wake_lock: Mutex<()>,
    /// Signals new frozen memtables, finished flushes and shutdown.
    wake: Condvar,
    /// Set when the engine is dropped.
    shutdown: AtomicBool,
    /// The first write-path failure; after it, writes are refused.
    failure: Mutex<Option<String>>,
    /// Counters.
    stats: Stats,
    /// Decompressed blocks shared by all tables.
    cache: Arc<BlockCache>,
    /// The open `LOCK` file, exclusively locked while the engine lives, so
    /// a second engine (in this or another process) cannot open the same
    /// directory and interleave its writes.
    _lock: std::fs::File,
}

/// The LSM engine: open it on a directory, use it through [`Storage`].
#[derive(Debug)]
pub struct LsmStorage {
    /// Everything shared with the background threads.
    inner: Arc<Inner>,
    /// The flusher and compactor, joined on drop.
    workers: Vec<JoinHandle<()>>,
}

fn table_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.sst"))
}

fn parse_table_name(name: &str) -> Option<u64> {
    name.strip_suffix(".sst")?.parse().ok()
}

/// Files found in the data directory.
#[derive(Debug, Default)]
struct Listing {
    /// WAL segment numbers, ascending.
    segments: Vec<u64>,
    /// SSTable ids.
    tables: Vec<u64>,
}

fn list_dir(dir: &Path) -> Result<Listing, LsmError> {
    let mut out = Listing::default();
    for entry in std::fs::read_dir(dir).map_err(disk::io_err("read directory", dir))? {
        let entry = entry.map_err(disk::io_err("read directory", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(seq) = wal::parse_segment_name(&name) {
            out.segments.push(seq);
        } else if let Some(id) = parse_table_name(&name) {
            out.tables.push(id);
        }
    }
    out.segments.sort_unstable();
    Ok(out)
}

fn prepare_dir(dir: &Path, create: bool) -> Result<(), LsmError> {
    if !dir.exists() {
        if !create {
            return Err(LsmError::DataDirMissing(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(disk::io_err("create data directory", dir))?;
    }
    let meta = std::fs::metadata(dir).map_err(disk::io_err("stat data directory", dir))?;
    if !meta.is_dir() {
        return Err(LsmError::Io {
            op: "use as data directory",
            path: dir.to_path_buf(),
            source: std::io::Error::other("not a directory"),
        });
    }
    Ok(())
}

/// Takes the directory's exclusive lock (released by the OS if we die).
fn lock_dir(dir: &Path) -> Result<std::fs::File, LsmError> {
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(disk::io_err("open", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LsmError::Io {
            op: "lock",
            path,
            source: std::io::Error::other("the data directory is in use by another engine"),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(disk::io_err("lock", &path)(e)),
    }
}

impl LsmStorage {
    /// Opens (recovering) or creates the engine in `dir`.
    pub fn open(dir: &Path, opts: LsmOptions) -> Result<LsmStorage, LsmError> {
        assert!(opts.memtable_bytes > 0 && opts.max_frozen_memtables > 0);
        prepare_dir(dir, opts.create_dir)?;
        let lock = lock_dir(dir)?;
        let manifest = match Manifest::load(dir)? {
            Some(m) => m,
            None => {
                let m = Manifest { next_file_id: 1, log_floor: 1, tables: Vec::new() };
                m.store(dir, opts.disk_budget.as_deref())?;
                m
            }
        };
        let listing = list_dir(dir)?;
        remove_unlisted(dir, &manifest, &listing)?;
        let cache = Arc::new(BlockCache::new(opts.block_cache_bytes));
        let mut found = Recovered::default();
        let (tables, manifest) = open_tables(dir, manifest, &cache, &opts, &mut found)?;
        let live_segments: Vec<u64> = listing.segments.iter().copied().filter(|s| *s >= manifest.log_floor).collect();
        let active = replay(dir, &live_segments, opts.on_corruption, &mut found)?;
        let next_seq = live_segments.last().copied().unwrap_or(manifest.log_floor.saturating_sub(1)) + 1;
        let writer = WalWriter::create(dir, next_seq, opts.fsync, opts.disk_budget.clone(), 0)?;
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            group: GroupCommit::new(opts.batch_delay),
            opts,
            writer: Mutex::new(writer),
            commit: Mutex::new(manifest),
            state: RwLock::new(State { active, frozen: VecDeque::new(), tables }),
            compaction: Mutex::new(()),
            wake_lock: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            failure: Mutex::new(None),
            stats: Stats::default(),
            cache,
            _lock: lock,
        });
        inner.stats.record_recovery(&found);
        let workers = spawn_workers(&inner)?;
        Ok(LsmStorage { inner, workers })
    }

    /// Freezes the memtable and waits until every frozen memtable is on disk.
    pub fn flush(&self) -> Result<(), LsmError> {
        {
            let mut w = self.inner.lock_writer()?;
            if !self.inner.read_state()?.active.is_empty() {
                self.inner.freeze(&mut w)?;
            }
        }
        let deadline = Instant::now() + Duration::from_millis(MAX_STALL_MS);
        while !self.inner.read_state()?.frozen.is_empty() {
            self.inner.check_failure()?;
            if Instant::now() > deadline {
                return Err(LsmError::Failed("flush did not finish in time".into()));
            }
            self.inner.wait_for_work(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Runs compactions until no tier is full.
    pub fn compact(&self) -> Result<(), LsmError> {
        let bound = self.inner.read_state()?.tables.len() + 1;
        for _ in 0..bound {
            if !self.inner.compact_once(false)? {
                break;
            }
        }
        Ok(())
    }

    /// Merges every table into one (dropping tombstones past their grace).
    pub fn compact_all(&self) -> Result<(), LsmError> {
        self.inner.compact_once(true).map(|_| ())
    }

    /// Number of live tables.
    pub fn table_count(&self) -> usize {
        self.inner.read_state().map(|s| s.tables.len()).unwrap_or(0)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn write(&self, key: &[u8], slot: Slot) -> Result<(), LsmError> {
        let lsn = self.apply(key, slot)?;
        if self.inner.opts.fsync == FsyncPolicy::Batch {
            let inner = &self.inner;
            let synced = inner.group.wait_durable(lsn, || inner.lock_writer()?.sync_target());
            synced.map_err(|e| inner.fail(e))?;
        }
        Ok(())
    }

    /// Like `write`, but under `batch` returns before the group commit with
    /// the LSN to await (the syncer thread fsyncs for it).
    fn write_deferred(&self, key: &[u8], slot: Slot) -> Result<Durability, LsmError> {
        let lsn = self.apply(key, slot)?;
        Ok(match self.inner.opts.fsync {
            FsyncPolicy::Batch => Durability::After { lsn, mark: self.inner.group.request(lsn) },
            // `always` synced in the append; `never` promises nothing more.
            FsyncPolicy::Always | FsyncPolicy::Never => Durability::Now,
        })
    }

    /// Checks the limits, appends to the commit log and the memtable;
    /// returns the record's LSN.
    fn apply(&self, key: &[u8], slot: Slot) -> Result<u64, LsmError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(LsmError::KeyTooLarge(key.len()));
        }
        if let Slot::Value(v) = &slot {
            if v.len() > MAX_VALUE_BYTES {
                return Err(LsmError::ValueTooLarge(v.len()));
            }
        }
        self.inner.check_failure()?;
        self.inner.append(key, slot)
    }

    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LsmError> {
        let tables = {
            let st = self.inner.read_state()?;
            if let Some(slot) = st.active.get(key) {
                return Ok(slot.value().cloned());
            }
            for f in st.frozen.iter().rev() {
                if let Some(slot) = f.table.get(key) {
                    return Ok(slot.value().cloned());
                }
            }
            st.tables.clone()
        };
        let stats = &self.inner.stats;
        for t in tables {
            match t.table.get(key).map_err(|e| self.inner.noticed(e))? {
                Lookup::BloomNegative => stats.bloom_negatives.fetch_add(1, Ordering::Relaxed),
                Lookup::FalsePositive => stats.bloom_false_positives.fetch_add(1, Ordering::Relaxed),
                Lookup::Found(slot) => return Ok(slot.value().cloned()),
            };
        }
        Ok(None)
    }

    /// A merged iterator over everything, newest source first; the active
    /// memtable is copied up to its `limit`-th live value (no result can
    /// lie beyond it, since the active memtable shadows everything).
    fn merged(&self, from: &[u8], limit: usize) -> Result<MergeIter, LsmError> {
        let st = self.inner.read_state()?;
        let mut active: Vec<Result<(Vec<u8>, Slot), LsmError>> = Vec::new();
        let mut values = 0usize;
        for (k, s) in st.active.range_from(from) {
            if values >= limit {
                break;
            }
            values += usize::from(s.value().is_some());
            active.push(Ok((k.clone(), s.clone())));
        }
        let mut sources: Vec<Source> = vec![Box::new(active.into_iter())];
        for f in st.frozen.iter().rev() {
            sources.push(Box::new(FrozenCursor::new(Arc::clone(f), from).map(Ok)));
        }
        for t in &st.tables {
            sources.push(Box::new(TableCursor::new(Arc::clone(&t.table), from)));
        }
        Ok(MergeIter::new(sources))
    }

    fn scan_entries(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, LsmError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for item in self.merged(from, limit)? {
            let (k, slot) = item.map_err(|e| self.inner.noticed(e))?;
            if let Slot::Value(v) = slot {
                out.push((k, v));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn count(&self) -> Result<u64, LsmError> {
        let mut n = 0u64;
        for item in self.merged(b"", usize::MAX)? {
            n += u64::from(item.map_err(|e| self.inner.noticed(e))?.1.value().is_some());
        }
        Ok(n)
    }

    fn collect_stats(&self) -> Result<Vec<(String, u64)>, LsmError> {
        let s = &self.inner.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out: Vec<(String, u64)> = Vec::new();
        let (memtable_bytes, frozen, tables) = {
            let st = self.inner.read_state()?;
            (st.active.approx_bytes() as u64, st.frozen.len() as u64, st.tables.clone())
        };
        let max_tier = tables.iter().map(|t| t.tier).max().unwrap_or(0);
        for tier in 0..=max_tier {
            let n = tables.iter().filter(|t| t.tier == tier).count() as u64;
            out.push((format!("lsm_tables_tier{tier}"), n));
        }
        let table_bytes: u64 = tables.iter().map(|t| t.table.size_bytes()).sum();
        let (neg, fp) = (get(&s.bloom_negatives), get(&s.bloom_false_positives));
        let fp_ppm = (fp * 1_000_000).checked_div(neg + fp).unwrap_or(0);
        let named = [
            ("lsm_tables", tables.len() as u64),
            ("lsm_table_bytes", table_bytes),
            ("lsm_wal_bytes", wal_bytes(&self.inner.dir)),
            ("lsm_memtable_bytes", memtable_bytes),
            ("lsm_block_cache_bytes", self.inner.cache.bytes() as u64),
            ("lsm_frozen_memtables", frozen),
            ("lsm_flushes", get(&s.flushes)),
            ("lsm_flush_ms_total", get(&s.flush_ms_total)),
            ("lsm_compactions", get(&s.compactions)),
            ("lsm_compaction_ms_total", get(&s.compaction_ms_total)),
            ("lsm_tombstones_dropped", get(&s.tombstones_dropped)),
            ("lsm_bloom_negatives", neg),
            ("lsm_bloom_false_positives", fp),
            ("lsm_bloom_false_positive_ppm", fp_ppm),
            ("lsm_write_stalls", get(&s.write_stalls)),
            ("lsm_wal_truncated_bytes", get(&s.wal_truncated_bytes)),
            ("lsm_corrupt_files_quarantined", get(&s.corrupt_files_quarantined)),
            ("lsm_corrupt_blocks_detected", get(&s.corrupt_blocks_detected)),
            ("lsm_wal_corrupt_bytes_dropped", get(&s.wal_corrupt_bytes_dropped)),
        ];
        out.extend(named.iter().map(|(k, v)| (k.to_string(), *v)));
        Ok(out)
    }
}

fn wal_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| wal::parse_segment_name(&e.file_name().to_string_lossy()).is_some())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn remove_unlisted(dir: &Path, manifest: &Manifest, listing: &Listing) -> Result<(), LsmError> {
    for id in &listing.tables {
        if !manifest.tables.iter().any(|t| t.id == *id) {
            tracing::info!(table = id, "removing a table left by an interrupted flush or compaction");
            disk::remove_file(&table_path(dir, *id))?;
        }
    }
    for seq in listing.segments.iter().filter(|s| **s < manifest.log_floor) {
        disk::remove_file(&dir.join(wal::segment_name(*seq)))?;
    }
    disk::remove_file(&dir.join("MANIFEST.tmp"))
}

/// Opens one listed table and verifies every block of it.
fn open_verified(dir: &Path, id: u64, cache: &Arc<BlockCache>) -> Result<Table, LsmError> {
    let table = Table::open_cached(&table_path(dir, id), id, Arc::clone(cache))?;
    table.verify()?;
    Ok(table)
}

/// Opens the manifest's tables; under `Quarantine`, a corrupt one is moved
/// aside and the manifest (returned) is rewritten without it.
fn open_tables(
    dir: &Path,
    mut manifest: Manifest,
    cache: &Arc<BlockCache>,
    opts: &LsmOptions,
    found: &mut Recovered,
) -> Result<(Vec<Arc<LiveTable>>, Manifest), LsmError> {
    let mut live = Vec::with_capacity(manifest.tables.len());
    let mut kept: Vec<TableEntry> = Vec::with_capacity(manifest.tables.len());
    for e in &manifest.tables {
        match open_verified(dir, e.id, cache) {
            Ok(table) => {
                live.push(Arc::new(LiveTable { id: e.id, tier: e.tier, table: Arc::new(table) }));
                kept.push(*e);
            }
            Err(err) if opts.on_corruption == CorruptionPolicy::Quarantine && quarantine::is_corruption(&err) => {
                let to = quarantine::move_aside(dir, &table_path(dir, e.id))?;
                tracing::error!(table = e.id, error = %err, moved_to = %to.display(), "LSM: quarantined a corrupt table; its keys are repaired from the other replicas");
                found.tables += 1;
            }
            Err(err) => return Err(err),
        }
    }
    if kept.len() < manifest.tables.len() {
        manifest.tables = kept;
        manifest.store(dir, opts.disk_budget.as_deref())?;
    }
    Ok((live, manifest))
}

/// Replays segments (ascending) into a memtable, noting in `found` the
/// bytes cut from a torn tail and the segments quarantined.
fn replay(dir: &Path, segments: &[u64], policy: CorruptionPolicy, found: &mut Recovered) -> Result<Memtable, LsmError> {
    let mut mem = Memtable::new();
    for (i, seq) in segments.iter().enumerate() {
        let newest = i + 1 == segments.len();
        let path = dir.join(wal::segment_name(*seq));
        let r = match wal::replay_segment(&path, newest) {
            Err(LsmError::Corrupt { offset, reason, .. }) if policy == CorruptionPolicy::Quarantine => {
                cut_corrupt_segment(dir, &path, offset, &reason, found)?;
                wal::replay_segment(&path, newest)?
            }
            other => other?,
        };
        found.torn_bytes += r.truncated_bytes;
        for op in r.ops {
            mem.insert(&op.key, op.slot);
        }
    }
    Ok(mem)
}

/// Copies a segment with a bad record at `offset` into quarantine, then cuts
/// it there: the verified records before it stay, the rest are dropped.
fn cut_corrupt_segment(
    dir: &Path,
    path: &Path,
    offset: u64,
    reason: &str,
    found: &mut Recovered,
) -> Result<(), LsmError> {
    let len = std::fs::metadata(path).map_err(disk::io_err("stat", path))?.len();
    assert!(offset < len, "a bad record lies inside its segment");
    let copy = quarantine::copy_aside(dir, path)?;
    wal::truncate(path, offset)?;
    tracing::error!(file = %path.display(), offset, dropped_bytes = len - offset, reason, copy = %copy.display(), "LSM: quarantined a corrupt WAL segment, cut at its bad record; the records after it are repaired from the other replicas");
    found.segments += 1;
    found.wal_corrupt_bytes += len - offset;
    Ok(())
}

fn spawn_workers(inner: &Arc<Inner>) -> Result<Vec<JoinHandle<()>>, LsmError> {
    let spawn = |name: &str, body: fn(&Inner)| {
        let inner = Arc::clone(inner);
        std::thread::Builder::new().name(name.to_string()).spawn(move || body(&inner)).map_err(|source| LsmError::Io {
            op: "spawn thread for",
            path: inner_dir(name),
            source,
        })
    };
    let mut workers = vec![spawn("lsm-flush", Inner::flush_loop)?, spawn("lsm-compact", Inner::compact_loop)?];
    if inner.opts.fsync == FsyncPolicy::Batch {
        workers.push(spawn("lsm-sync", Inner::sync_loop)?);
    }
    Ok(workers)
}

fn inner_dir(name: &str) -> PathBuf {
    PathBuf::from(name)
}

impl Stats {
    /// Counts what an open found.
    fn record_recovery(&self, found: &Recovered) {
        let quarantined = found.tables + found.segments;
        self.wal_truncated_bytes.store(found.torn_bytes, Ordering::Relaxed);
        self.corrupt_files_quarantined.store(quarantined, Ordering::Relaxed);
        self.corrupt_blocks_detected.store(quarantined, Ordering::Relaxed);
        self.wal_corrupt_bytes_dropped.store(found.wal_corrupt_bytes, Ordering::Relaxed);
    }
}

impl Inner {
    /// Counts and logs a corrupt block met by a read; the error goes on to
    /// the caller (a read fails rather than serve it).
    fn noticed(&self, e: LsmError) -> LsmError {
        if quarantine::is_corruption(&e) {
            self.stats.corrupt_blocks_detected.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "LSM: a read met a corrupt block; refused (the next open quarantines the table)");
        }
        e
    }

    fn lock_writer(&self) -> Result<MutexGuard<'_, WalWriter>, LsmError> {
        self.writer.lock().map_err(|_| LsmError::Poisoned)
    }

    fn read_state(&self) -> Result<RwLockReadGuard<'_, State>, LsmError> {
        self.state.read().map_err(|_| LsmError::Poisoned)
    }

    fn write_state(&self) -> Result<RwLockWriteGuard<'_, State>, LsmError> {
        self.state.write().map_err(|_| LsmError::Poisoned)
    }

    fn check_failure(&self) -> Result<(), LsmError> {
        match self.failure.lock().map_err(|_| LsmError::Poisoned)?.as_ref() {
            Some(e) => Err(LsmError::Failed(e.clone())),
            None => Ok(()),
        }
    }

    /// Records the first failure (writes stop) and passes the error on.
    fn fail(&self, e: LsmError) -> LsmError {
        if let Ok(mut f) = self.failure.lock() {
            if f.is_none() {
                tracing::error!(error = %e, "LSM engine failed; refusing further writes");
                *f = Some(e.to_string());
            }
        }
        self.wake.notify_all();
        e
    }

    /// The syncer thread: leads a group-commit fsync whenever async writers
    /// wait for one (`put_deferred`), until shutdown.
    fn sync_loop(&self) {
        let poll = Duration::from_millis(SYNC_POLL_MS);
        while !self.shutdown.load(Ordering::Acquire) {
            let Some(lsn) = self.group.next_request(poll) else { continue };
            let synced = self.group.sync_requested(lsn, || self.lock_writer()?.sync_target());
            if let Err(e) = synced {
                // Recorded and published by the group commit; the engine
                // refuses further writes.
                self.fail(e);
            }
        }
    }

    fn wait_for_work(&self, timeout: Duration) {
        if let Ok(g) = self.wake_lock.lock() {
            let _ = self.wake.wait_timeout(g, timeout);
        }
    }

    /// Appends to the WAL and applies to the memtable, under the write lock.
    fn append(&self, key: &[u8], slot: Slot) -> Result<u64, LsmError> {
        let mut w = self.lock_writer()?;
        self.make_room(&mut w)?;
        let op = WalOp { key: key.to_vec(), slot };
        let lsn = w.append(&op).map_err(|e| self.fail(e))?;
        self.write_state()?.active.insert(&op.key, op.slot);
        Ok(lsn)
    }

    /// Freezes a full memtable, stalling (bounded) while too many wait.
    fn make_room(&self, w: &mut WalWriter) -> Result<(), LsmError> {
        let deadline = Instant::now() + Duration::from_millis(MAX_STALL_MS);
        let mut stalled = false;
        loop {
            let (full, backlog) = {
                let st = self.read_state()?;
                (st.active.approx_bytes() >= self.opts.memtable_bytes, st.frozen.len())
            };
            if !full {
                return Ok(());
            }
            if backlog < self.opts.max_frozen_memtables {
                return self.freeze(w);
            }
            self.check_failure()?;
            if Instant::now() > deadline {
                return Err(LsmError::Failed(format!("write stalled {MAX_STALL_MS} ms waiting for a flush")));
            }
            if !stalled {
                stalled = true;
                self.stats.write_stalls.fetch_add(1, Ordering::Relaxed);
            }
            self.wait_for_work(Duration::from_millis(10));
        }
    }

    /// Rotates the WAL and hands the memtable to the flusher.
    fn freeze(&self, w: &mut WalWriter) -> Result<(), LsmError> {
        let closed = w.rotate().map_err(|e| self.fail(e))?;
        if self.opts.fsync != FsyncPolicy::Never {
            self.group.mark_durable(w.appended_lsn());
        }
        {
            let mut st = self.write_state()?;
            let table = std::mem::take(&mut st.active);
            st.frozen.push_back(Arc::new(Frozen { table, last_wal_seq: closed }));
        }
        self.wake.notify_all();
        Ok(())
    }

    fn flush_loop(&self) {
        while !self.shutdown.load(Ordering::Acquire) {
            let next = self.read_state().ok().and_then(|st| st.frozen.front().cloned());
            match next {
                Some(frozen) => {
                    if let Err(e) = self.flush_one(&frozen) {
                        self.fail(e);
                        return;
                    }
                }
                None => self.wait_for_work(Duration::from_millis(IDLE_POLL_MS)),
            }
        }
    }

    fn alloc_file_id(&self) -> Result<u64, LsmError> {
        let mut m = self.commit.lock().map_err(|_| LsmError::Poisoned)?;
        let id = m.next_file_id;
        m.next_file_id += 1;
        Ok(id)
    }

    /// A fresh table file id, its path, and a builder writing to it with
    /// this engine's compression, Bloom and disk-budget settings.
    fn new_table(&self) -> Result<(u64, PathBuf, TableBuilder), LsmError> {
        let id = self.alloc_file_id()?;
        let path = table_path(&self.dir, id);
        let builder = TableBuilder::create(
            &path,
            self.opts.compression,
            self.opts.bloom_bits_per_key,
            self.opts.disk_budget.clone(),
        )?;
        Ok((id, path, builder))
    }

    /// Writes a frozen memtable as a tier-0 table and commits it.
    fn flush_one(&self, frozen: &Arc<Frozen>) -> Result<(), LsmError> {
        let started = Instant::now();
        let (id, path, mut b) = self.new_table()?;
        for (k, s) in frozen.table.iter() {
            b.add(k, s)?;
        }
        b.finish()?;
        let live = Arc::new(LiveTable {
            id,
            tier: 0,
            table: Arc::new(Table::open_cached(&path, id, Arc::clone(&self.cache))?),
        });
        let floor = frozen.last_wal_seq + 1;
        {
            let mut m = self.commit.lock().map_err(|_| LsmError::Poisoned)?;
            let mut next = m.clone();
            next.log_floor = floor;
            next.tables.insert(0, TableEntry { id, tier: 0 });
            next.store(&self.dir, self.opts.disk_budget.as_deref())?;
            *m = next;
            let mut st = self.write_state()?;
            st.tables.insert(0, live);
            let done = st.frozen.pop_front();
            assert!(done.is_some_and(|d| Arc::ptr_eq(&d, frozen)), "flushes happen in freeze order");
        }
        self.wake.notify_all();
        self.remove_segments_below(floor)?;
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        self.stats.flush_ms_total.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn remove_segments_below(&self, floor: u64) -> Result<(), LsmError> {
        let listing = list_dir(&self.dir)?;
        for seq in listing.segments.iter().filter(|s| **s < floor) {
            disk::remove_file(&self.dir.join(wal::segment_name(*seq)))?;
        }
        Ok(())
    }

    fn compact_loop(&self) {
        while !self.shutdown.load(Ordering::Acquire) {
            match self.compact_once(false) {
                Ok(true) => {}
                Ok(false) => self.wait_for_work(Duration::from_millis(IDLE_POLL_MS)),
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
    }

    /// Runs one compaction if one is due (or, with `all`, merges every
    /// table). Returns whether it did anything.
    fn compact_once(&self, all: bool) -> Result<bool, LsmError> {
        let _one = self.compaction.lock().map_err(|_| LsmError::Poisoned)?;
        let (inputs, bottom) = {
            let st = self.read_state()?;
            let tiers: Vec<u32> = st.tables.iter().map(|t| t.tier).collect();
            let window = if all {
                Some(0..tiers.len()).filter(|w| w.len() >= 2)
            } else {
                compaction::pick_window(&tiers, self.opts.compaction_fanout)
            };
            let Some(w) = window else { return Ok(false) };
            (st.tables[w.clone()].to_vec(), w.end == st.tables.len())
        };
        let started = Instant::now();
        let out_tier = inputs.iter().map(|t| t.tier).max().unwrap_or(0) + 1;
        let output = self.merge_tables(&inputs, bottom, out_tier)?;
        self.commit_compaction(&inputs, output)?;
        for t in &inputs {
            disk::remove_file(t.table.path())?;
        }
        self.stats.compactions.fetch_add(1, Ordering::Relaxed);
        self.stats.compaction_ms_total.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        Ok(true)
    }

    /// Writes the merge of `inputs`; `None` when nothing survives.
    fn merge_tables(
        &self,
        inputs: &[Arc<LiveTable>],
        bottom: bool,
        tier: u32,
    ) -> Result<Option<Arc<LiveTable>>, LsmError> {
        let (id, path, mut b) = self.new_table()?;
        let sources: Vec<Source> =
            inputs.iter().map(|t| Box::new(TableCursor::uncached(Arc::clone(&t.table))) as Source).collect();
        let drop_upto = if bottom { self.opts.clock.now_ms().checked_sub(self.opts.tombstone_grace_ms) } else { None };
        let throttle = Throttle::new(self.opts.compaction_max_bytes_per_sec);
        let outcome = compaction::merge_into(&mut b, sources, drop_upto, &throttle)?;
        b.finish()?;
        self.stats.tombstones_dropped.fetch_add(outcome.tombstones_dropped, Ordering::Relaxed);
        if outcome.written == 0 {
            disk::remove_file(&path)?;
            return Ok(None);
        }
        Ok(Some(Arc::new(LiveTable {
            id,
            tier,
            table: Arc::new(Table::open_cached(&path, id, Arc::clone(&self.cache))?),
        })))
    }

    /// Replaces `inputs` (adjacent in the live set) by `output`, durably.
    fn commit_compaction(&self, inputs: &[Arc<LiveTable>], output: Option<Arc<LiveTable>>) -> Result<(), LsmError> {
        let first = inputs.first().map(|t| t.id);
        let mut m = self.commit.lock().map_err(|_| LsmError::Poisoned)?;
        let at = m.tables.iter().position(|t| Some(t.id) == first);
        let at = at.ok_or_else(|| LsmError::Failed("compaction input vanished from the manifest".into()))?;
        let ids: Vec<u64> = inputs.iter().map(|t| t.id).collect();
        let listed: Vec<u64> = m.tables.iter().skip(at).take(ids.len()).map(|t| t.id).collect();
        assert_eq!(listed, ids, "compaction inputs must be adjacent in the manifest");
        let mut next = m.clone();
        let replacement: Vec<TableEntry> = output.iter().map(|o| TableEntry { id: o.id, tier: o.tier }).collect();
        next.tables.splice(at..at + ids.len(), replacement);
        next.store(&self.dir, self.opts.disk_budget.as_deref())?;
        *m = next;
        let mut st = self.write_state()?;
        let pos = st.tables.iter().position(|t| Some(t.id) == first).unwrap_or(at);
        st.tables.splice(pos..pos + ids.len(), output);
        Ok(())
    }
}

impl Drop for LsmStorage {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::Release);
        self.inner.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if self.inner.opts.fsync != FsyncPolicy::Never {
            if let Ok(mut w) = self.inner.writer.lock() {
                let _ = w.sync();
            }
        }
    }
}

fn lsm(e: LsmError) -> StorageError {
    StorageError::Lsm(e)
}

impl Storage for LsmStorage {
    fn name(&self) -> &'static str {
        "lsm"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.read(key).map_err(lsm)
    }

    fn put(&self, key: &[u8], value: Vec<u8>) -> Result<(), StorageError> {
        self.write(key, Slot::Value(value)).map_err(lsm)
    }

    fn put_deferred(&self, key: &[u8], value: Vec<u8>) -> Result<Durability, StorageError> {
        self.write_deferred(key, Slot::Value(value)).map_err(lsm)
    }

    fn sync_barrier(&self) -> Result<Durability, StorageError> {
        if self.inner.opts.fsync != FsyncPolicy::Batch {
            return Ok(Durability::Now);
        }
        let lsn = self.inner.lock_writer().map_err(lsm)?.appended_lsn();
        Ok(Durability::After { lsn, mark: self.inner.group.request(lsn) })
    }

    fn put_may_block(&self) -> bool {
        self.inner.opts.fsync == FsyncPolicy::Always
    }

    fn delete(&self, key: &[u8]) -> Result<(), StorageError> {
        self.write(key, Slot::Tombstone { deleted_at_ms: self.inner.opts.clock.now_ms() }).map_err(lsm)
    }

    fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StorageError> {
        self.scan_entries(from, limit).map_err(lsm)
    }

    fn len(&self) -> Result<u64, StorageError> {
        self.count().map_err(lsm)
    }

    fn stats(&self) -> Vec<(String, u64)> {
        self.collect_stats().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// A tombstone survives a full compaction within its grace and is
    /// dropped by one after it, by the engine's clock alone (no sleep).
    #[test]
    fn tombstone_grace_follows_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_ms(1_000_000));
        let opts = LsmOptions { tombstone_grace_ms: 60_000, clock: clock.clone(), ..LsmOptions::default() };
        let engine = LsmStorage::open(dir.path(), opts).unwrap();
        engine.put(b"k", b"v".to_vec()).unwrap();
        engine.flush().unwrap();
        engine.delete(b"k").unwrap();
        engine.flush().unwrap();
        let dropped = |e: &LsmStorage| e.stats().into_iter().find(|(n, _)| n == "lsm_tombstones_dropped").unwrap().1;
        clock.advance_ms(59_999);
        engine.compact_all().unwrap();
        assert_eq!(engine.table_count(), 1);
        assert_eq!(dropped(&engine), 0, "within the grace the tombstone stays");
        // A second table, so that a full compaction has something to merge.
        engine.put(b"other", b"v".to_vec()).unwrap();
        engine.flush().unwrap();
        clock.advance_ms(2);
        engine.compact_all().unwrap();
        assert_eq!(dropped(&engine), 1, "past the grace the tombstone goes");
        assert_eq!(engine.get(b"k").unwrap(), None);
    }
}
