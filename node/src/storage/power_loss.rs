//! A storage engine for the simulator whose unsynced writes die in a power
//! loss.
//!
//! Why: `kill -9` of a real node never loses the OS page cache, so on a real
//! cluster a node run with `--fsync never` loses nothing when the kill
//! nemesis strikes, and an fsync bug is invisible. A simulated host can do
//! better: it keeps this engine across a simulated crash and calls
//! [`PowerLoss::crash`], which drops every write the engine had not synced,
//! exactly what a machine losing power would lose.
//!
//! The model is a commit log over two ordered maps: `live` (what readers
//! see: every applied write, like the memtable plus page cache) and
//! `durable` (what survives a crash). Every write gets the next log sequence
//! number (LSN) and joins the `dirty` queue; a sync moves a prefix of that
//! queue into `durable`, so what survives a crash is always the state after
//! some prefix of the writes (as with the LSM engine's commit log). When a
//! sync happens follows the node's `--fsync` policy ([`FsyncPolicy`]), the
//! way the LSM engine honours it:
//! - `always`: the write is synced before `put` returns;
//! - `batch`: group commit. `put_deferred` returns a [`Durability`] to await
//!   and schedules one sync after the batch delay (`LsmOptions::batch_delay`)
//!   for every write that arrives meanwhile; the node acknowledges only once
//!   it is durable;
//! - `never`: acknowledged at once, durable only when the simulated kernel
//!   writes it back: a flusher wakes every [`WRITEBACK_WAKE_MS`] and syncs
//!   the writes older than [`DIRTY_EXPIRE_MS`] (Linux's
//!   `dirty_writeback_centisecs` and `dirty_expire_centisecs` defaults), or
//!   the oldest ones beyond [`MAX_DIRTY_WRITES`] (Linux's dirty ratio), or on
//!   a clean stop ([`PowerLoss::sync`]). A crash thus loses up to ~35 s of
//!   acknowledged writes.
//!
//! Simulation rules: no OS threads, no blocking, no real clock. Timers are
//! `tokio::time` only, so a paused clock (turmoil's) drives them: the group
//! commit and the flusher are tokio tasks, spawned on the runtime of the
//! write that needs them (the simulated host's), and they die with it. A
//! task is respawned by the next write that finds none alive. Without a
//! runtime, a write that would wait for a group commit syncs inline. Maps
//! are `BTreeMap`s: no hash order is observable, so runs replay by seed.
//!
//! How a host uses it:
//! 1. At first boot, `let disk = PowerLoss::new(&config.lsm)` (it reads the
//!    `fsync` policy and batch delay from the node's own LSM options), and
//!    pass `disk.storage()` as `Environment.storage`.
//! 2. Keep `disk` for the host's whole life, across kills.
//! 3. On a power loss (the kill nemesis), call `disk.crash()` *after*
//!    stopping the host's runtime: the unsynced writes are gone, and every
//!    write still waiting for its group commit fails with "the storage engine
//!    closed". A process kill that keeps the page cache is simply not
//!    calling `crash()`.
//! 4. On restart, pass `disk.storage()` again: the node finds the durable
//!    state. On a clean stop, call `disk.sync()` first.
//!
//! `crash()` is atomic with respect to concurrent writes: all state is under
//! one lock, so a write is either wholly before the crash (and lost unless
//! synced) or wholly after it (in the new life of the disk).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::lsm::{FsyncPolicy, LsmOptions};
use super::{Durability, DurableMark, Entry, Storage, StorageError};

/// How often the simulated kernel's flusher wakes under `never` (Linux's
/// `dirty_writeback_centisecs` default, 5 s).
pub const WRITEBACK_WAKE_MS: u64 = 5_000;

/// How old an unsynced write must be before the flusher writes it back
/// (Linux's `dirty_expire_centisecs` default, 30 s).
pub const DIRTY_EXPIRE_MS: u64 = 30_000;

/// Unsynced writes kept at most; beyond it the oldest are written back at
/// once (the kernel's dirty ratio), so memory stays bounded.
pub const MAX_DIRTY_WRITES: usize = 100_000;

/// When the simulated kernel writes unsynced data back under `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writeback {
    /// Period of the flusher.
    pub wake_ms: u64,
    /// Age at which an unsynced write is written back.
    pub expire_ms: u64,
}

impl Default for Writeback {
    fn default() -> Self {
        Writeback { wake_ms: WRITEBACK_WAKE_MS, expire_ms: DIRTY_EXPIRE_MS }
    }
}

/// How a [`PowerLoss`] disk syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerLossOptions {
    /// The node's `--fsync` policy.
    pub fsync: FsyncPolicy,
    /// Under `batch`, how long a group commit waits for company.
    pub batch_delay: Duration,
    /// Under `never`, the simulated kernel writeback; `None`: only
    /// [`PowerLoss::sync`] makes writes durable.
    pub writeback: Option<Writeback>,
    /// Unsynced writes kept before the oldest are written back.
    pub max_dirty_writes: usize,
}

impl PowerLossOptions {
    /// The policy and batch delay of the node's LSM options, default
    /// writeback.
    pub fn from_lsm(lsm: &LsmOptions) -> Self {
        PowerLossOptions {
            fsync: lsm.fsync,
            batch_delay: lsm.batch_delay,
            writeback: Some(Writeback::default()),
            max_dirty_writes: MAX_DIRTY_WRITES,
        }
    }
}

/// What a crash destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashReport {
    /// Unsynced writes (puts and deletes) that were dropped.
    pub lost_writes: u64,
    /// Keys stored after the crash.
    pub keys_left: u64,
}

/// The host's handle on one simulated disk: hands out the engine, crashes
/// it, syncs it on a clean stop. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PowerLoss {
    /// The engine, shared with the node that uses it.
    engine: Arc<PowerLossStorage>,
}

impl PowerLoss {
    /// An empty disk honouring the node's LSM fsync policy and batch delay.
    pub fn new(lsm: &LsmOptions) -> Self {
        PowerLoss::with_options(PowerLossOptions::from_lsm(lsm))
    }

    /// An empty disk with explicit options.
    pub fn with_options(opts: PowerLossOptions) -> Self {
        assert!(opts.max_dirty_writes >= 1, "a dirty limit of 0 would sync every write");
        if let Some(w) = opts.writeback {
            assert!(w.wake_ms >= 1, "a writeback period of 0 ms would spin");
        }
        let state = State {
            live: BTreeMap::new(),
            durable: BTreeMap::new(),
            dirty: VecDeque::new(),
            last_lsn: 0,
            mark: watch::Sender::new(DurableMark::default()),
            epoch: 0,
            group_commit: Weak::new(),
            flusher: Weak::new(),
            counters: Counters::default(),
        };
        let shared = Arc::new(Shared { opts, state: Mutex::new(state) });
        PowerLoss { engine: Arc::new(PowerLossStorage { shared }) }
    }

    /// The engine, for `Environment.storage`.
    pub fn storage(&self) -> Arc<dyn Storage> {
        Arc::clone(&self.engine) as Arc<dyn Storage>
    }

    /// Power loss: drops every unsynced write, atomically. Writes waiting for
    /// a group commit fail; timers of the old life stop.
    pub fn crash(&self) -> Result<CrashReport, StorageError> {
        let mut st = self.engine.shared.lock()?;
        let lost_writes = st.dirty.len() as u64;
        st.dirty.clear();
        st.live = st.durable.clone();
        st.epoch += 1;
        // Dropping the old sender fails every waiter of the old life: its
        // write will never be durable, even once later LSNs are.
        let durable_lsn = st.mark.borrow().durable_lsn;
        st.mark = watch::Sender::new(DurableMark { durable_lsn, failed: None });
        st.group_commit = Weak::new();
        st.flusher = Weak::new();
        st.counters.crashes += 1;
        st.counters.lost_writes += lost_writes;
        Ok(CrashReport { lost_writes, keys_left: st.live.len() as u64 })
    }

    /// Makes every write so far durable (a clean stop, or `sync(2)`).
    pub fn sync(&self) -> Result<(), StorageError> {
        let mut st = self.engine.shared.lock()?;
        let last = st.last_lsn;
        st.sync_through(last);
        Ok(())
    }

    /// Writes applied but not yet durable.
    pub fn unsynced_writes(&self) -> Result<u64, StorageError> {
        Ok(self.engine.shared.lock()?.dirty.len() as u64)
    }
}

/// The [`Storage`] of a [`PowerLoss`] disk.
#[derive(Debug)]
pub struct PowerLossStorage {
    /// State shared with the disk's timer tasks (which hold it weakly).
    shared: Arc<Shared>,
}

/// Options and state behind one lock.
#[derive(Debug)]
struct Shared {
    /// How the disk syncs.
    opts: PowerLossOptions,
    /// Everything that changes; one lock so a crash is atomic.
    state: Mutex<State>,
}

/// The disk's contents and sync progress.
#[derive(Debug)]
struct State {
    /// What readers see: every applied write.
    live: BTreeMap<Vec<u8>, Vec<u8>>,
    /// What survives a crash: the writes up to the durable LSN.
    durable: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Applied but unsynced writes, in LSN order.
    dirty: VecDeque<DirtyWrite>,
    /// The LSN of the latest write (LSNs are never reused, even across
    /// crashes, so an old waiter cannot mistake a new write's sync for its
    /// own).
    last_lsn: u64,
    /// Durability progress for `Durability::After` waiters of this life.
    mark: watch::Sender<DurableMark>,
    /// Crashes so far: timer tasks of an earlier life stop when it changes.
    epoch: u64,
    /// Alive while a group-commit task is scheduled.
    group_commit: Weak<()>,
    /// Alive while a flusher task runs.
    flusher: Weak<()>,
    /// For `stats()`.
    counters: Counters,
}

/// One unsynced write.
#[derive(Debug)]
struct DirtyWrite {
    /// Its log sequence number.
    lsn: u64,
    /// When it was applied (simulated time), for writeback expiry.
    applied_at: Instant,
    /// The key.
    key: Vec<u8>,
    /// The value, or `None` for a delete.
    value: Option<Vec<u8>>,
}

/// Engine counters reported by `Admin.Status`.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    /// Syncs that made at least one write durable.
    syncs: u64,
    /// Writes made durable by the simulated kernel (writeback, dirty limit).
    written_back: u64,
    /// Crashes.
    crashes: u64,
    /// Writes lost in crashes.
    lost_writes: u64,
}

impl Shared {
    fn lock(&self) -> Result<MutexGuard<'_, State>, StorageError> {
        self.state.lock().map_err(|_| StorageError::Poisoned)
    }
}

impl State {
    /// Applies a write (readable at once) and queues it for syncing;
    /// returns its LSN.
    fn apply(&mut self, key: &[u8], value: Option<Vec<u8>>, max_dirty: usize) -> u64 {
        self.last_lsn += 1;
        match &value {
            Some(v) => self.live.insert(key.to_vec(), v.clone()),
            None => self.live.remove(key),
        };
        let write = DirtyWrite { lsn: self.last_lsn, applied_at: Instant::now(), key: key.to_vec(), value };
        self.dirty.push_back(write);
        if self.dirty.len() > max_dirty {
            let oldest_kept = self.dirty[self.dirty.len() - max_dirty].lsn;
            self.counters.written_back += self.sync_through(oldest_kept - 1);
        }
        self.last_lsn
    }

    /// Makes every write up to `lsn` durable; returns how many it synced.
    fn sync_through(&mut self, lsn: u64) -> u64 {
        let mut synced = 0;
        while self.dirty.front().is_some_and(|w| w.lsn <= lsn) {
            let w = self.dirty.pop_front().expect("front exists");
            match w.value {
                Some(v) => self.durable.insert(w.key, v),
                None => self.durable.remove(&w.key),
            };
            synced += 1;
        }
        if synced > 0 {
            self.counters.syncs += 1;
            let durable_lsn = self.dirty.front().map_or(self.last_lsn, |w| w.lsn - 1);
            self.mark.send_modify(|m| m.durable_lsn = durable_lsn);
        }
        debug_assert!(self.dirty.is_empty() || self.dirty.front().unwrap().lsn > lsn);
        synced
    }

    /// Everything up to here is durable already.
    fn durable_lsn(&self) -> u64 {
        self.mark.borrow().durable_lsn
    }
}

impl PowerLossStorage {
    /// Applies a write and returns when it is (or will be) durable. A
    /// caller that may not await (`deferred` false: the synchronous `put`
    /// and `delete`) gets its group commit inline instead, a group of one,
    /// under the same lock (so a crash cannot fall between write and sync).
    fn write(&self, key: &[u8], value: Option<Vec<u8>>, deferred: bool) -> Result<Durability, StorageError> {
        let opts = self.shared.opts;
        let mut st = self.shared.lock()?;
        let lsn = st.apply(key, value, opts.max_dirty_writes);
        match opts.fsync {
            FsyncPolicy::Batch if deferred => Ok(self.await_group_commit(&mut st, lsn)),
            FsyncPolicy::Always | FsyncPolicy::Batch => {
                st.sync_through(lsn);
                Ok(Durability::Now)
            }
            FsyncPolicy::Never => {
                self.ensure_flusher(&mut st);
                Ok(Durability::Now)
            }
        }
    }

    /// Under `batch`: the durability of `lsn`, with a group commit scheduled
    /// for it (or done inline when there is no runtime to schedule on).
    fn await_group_commit(&self, st: &mut State, lsn: u64) -> Durability {
        if st.durable_lsn() >= lsn {
            return Durability::Now;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            st.sync_through(lsn);
            return Durability::Now;
        };
        let mark = st.mark.subscribe();
        if st.group_commit.upgrade().is_none() {
            let alive = Arc::new(());
            st.group_commit = Arc::downgrade(&alive);
            let task = group_commit(Arc::downgrade(&self.shared), st.epoch, alive);
            runtime.spawn(task);
        }
        Durability::After { lsn, mark }
    }

    /// Under `never`: starts the simulated kernel's flusher if none runs.
    fn ensure_flusher(&self, st: &mut State) {
        let Some(writeback) = self.shared.opts.writeback else { return };
        if st.flusher.upgrade().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let alive = Arc::new(());
        st.flusher = Arc::downgrade(&alive);
        runtime.spawn(flusher(Arc::downgrade(&self.shared), st.epoch, writeback, alive));
    }
}

/// One group commit: waits the batch delay, then syncs everything applied.
async fn group_commit(shared: Weak<Shared>, epoch: u64, alive: Arc<()>) {
    let delay = match shared.upgrade() {
        Some(s) => s.opts.batch_delay,
        None => return,
    };
    tokio::time::sleep(delay).await;
    let Some(shared) = shared.upgrade() else { return };
    let Ok(mut st) = shared.lock() else { return };
    if st.epoch != epoch {
        return;
    }
    // Unschedule before syncing (under the lock): a write arriving after
    // this sync schedules the next group commit.
    st.group_commit = Weak::new();
    drop(alive);
    let last = st.last_lsn;
    st.sync_through(last);
}

/// The simulated kernel flusher: every `wake_ms`, syncs the writes older
/// than `expire_ms`, until the disk is dropped or crashes.
async fn flusher(shared: Weak<Shared>, epoch: u64, writeback: Writeback, _alive: Arc<()>) {
    let period = Duration::from_millis(writeback.wake_ms);
    let expire = Duration::from_millis(writeback.expire_ms);
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else { return };
        let Ok(mut st) = shared.lock() else { return };
        if st.epoch != epoch {
            return;
        }
        let now = Instant::now();
        let expired = st.dirty.iter().take_while(|w| w.applied_at + expire <= now).last().map(|w| w.lsn);
        if let Some(lsn) = expired {
            st.counters.written_back += st.sync_through(lsn);
        }
    }
}

impl Storage for PowerLossStorage {
    fn name(&self) -> &'static str {
        "power_loss"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.shared.lock()?.live.get(key).cloned())
    }

    fn put(&self, key: &[u8], value: Vec<u8>) -> Result<(), StorageError> {
        self.write(key, Some(value), false).map(|_| ())
    }

    fn put_deferred(&self, key: &[u8], value: Vec<u8>) -> Result<Durability, StorageError> {
        self.write(key, Some(value), true)
    }

    fn sync_barrier(&self) -> Result<Durability, StorageError> {
        if self.shared.opts.fsync != FsyncPolicy::Batch {
            return Ok(Durability::Now);
        }
        let mut st = self.shared.lock()?;
        let lsn = st.last_lsn;
        Ok(self.await_group_commit(&mut st, lsn))
    }

    fn delete(&self, key: &[u8]) -> Result<(), StorageError> {
        self.write(key, None, false).map(|_| ())
    }

    fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StorageError> {
        let st = self.shared.lock()?;
        Ok(st.live.range(from.to_vec()..).take(limit).map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn len(&self) -> Result<u64, StorageError> {
        Ok(self.shared.lock()?.live.len() as u64)
    }

    fn stats(&self) -> Vec<(String, u64)> {
        let Ok(st) = self.shared.lock() else { return Vec::new() };
        let c = st.counters;
        vec![
            ("power_loss_unsynced_writes".to_string(), st.dirty.len() as u64),
            ("power_loss_syncs".to_string(), c.syncs),
            ("power_loss_written_back".to_string(), c.written_back),
            ("power_loss_crashes".to_string(), c.crashes),
            ("power_loss_lost_writes".to_string(), c.lost_writes),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk with `fsync` and the default batch delay and writeback.
    fn disk(fsync: FsyncPolicy) -> PowerLoss {
        PowerLoss::new(&LsmOptions { fsync, ..LsmOptions::default() })
    }

    /// Writes `n` keys the way the node acknowledges a store: applied, then
    /// its durability awaited. Returns the keys whose ack succeeded.
    async fn acked_writes(store: &dyn Storage, n: u32) -> Vec<Vec<u8>> {
        let mut acked = Vec::new();
        for i in 0..n {
            let key = format!("k{i:04}").into_bytes();
            let durability = store.put_deferred(&key, i.to_le_bytes().to_vec()).unwrap();
            durability.wait().await.expect("acknowledged");
            acked.push(key);
        }
        acked
    }

    fn missing(store: &dyn Storage, keys: &[Vec<u8>]) -> usize {
        keys.iter().filter(|k| store.get(k).unwrap().is_none()).count()
    }

    #[tokio::test(start_paused = true)]
    async fn never_loses_acknowledged_writes_in_a_crash() {
        let disk = disk(FsyncPolicy::Never);
        let store = disk.storage();
        let acked = acked_writes(&*store, 100).await;
        assert_eq!(missing(&*store, &acked), 0, "readable before the crash");
        let report = disk.crash().unwrap();
        assert_eq!(report, CrashReport { lost_writes: 100, keys_left: 0 });
        assert_eq!(missing(&*store, &acked), 100, "every acked write was unsynced");
        assert!(store.stats().contains(&("power_loss_lost_writes".to_string(), 100)));
    }

    #[tokio::test(start_paused = true)]
    async fn never_keeps_what_the_kernel_wrote_back() {
        let disk = disk(FsyncPolicy::Never);
        let store = disk.storage();
        let old = acked_writes(&*store, 10).await;
        tokio::time::sleep(Duration::from_millis(DIRTY_EXPIRE_MS + WRITEBACK_WAKE_MS)).await;
        store.put(b"young", b"1".to_vec()).unwrap();
        tokio::time::sleep(Duration::from_millis(DIRTY_EXPIRE_MS - 1)).await;
        assert_eq!(disk.crash().unwrap().lost_writes, 1, "only the write younger than the expiry");
        assert_eq!(missing(&*store, &old), 0);
        assert_eq!(store.get(b"young").unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_stop_syncs_and_the_flusher_restarts_after_a_crash() {
        let disk = disk(FsyncPolicy::Never);
        let store = disk.storage();
        store.put(b"a", b"1".to_vec()).unwrap();
        disk.sync().unwrap();
        disk.crash().unwrap();
        assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
        store.put(b"b", b"2".to_vec()).unwrap();
        tokio::time::sleep(Duration::from_millis(DIRTY_EXPIRE_MS + WRITEBACK_WAKE_MS)).await;
        assert_eq!(disk.crash().unwrap().lost_writes, 0, "a new flusher wrote b back");
        assert_eq!(store.get(b"b").unwrap(), Some(b"2".to_vec()));
    }

    #[tokio::test(start_paused = true)]
    async fn always_loses_nothing() {
        let disk = disk(FsyncPolicy::Always);
        let store = disk.storage();
        let acked = acked_writes(&*store, 100).await;
        store.delete(&acked[0]).unwrap();
        assert_eq!(disk.crash().unwrap(), CrashReport { lost_writes: 0, keys_left: 99 });
        assert_eq!(missing(&*store, &acked[1..]), 0);
        assert_eq!(store.get(&acked[0]).unwrap(), None, "the delete was durable too");
    }

    #[tokio::test(start_paused = true)]
    async fn batch_keeps_every_acknowledged_write_of_concurrent_writers() {
        let disk = disk(FsyncPolicy::Batch);
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut writers = Vec::new();
        for w in 0..8u32 {
            let (store, acked) = (disk.storage(), Arc::clone(&acked));
            writers.push(tokio::spawn(async move {
                let mut failed = 0u64;
                for i in 0..1_000u32 {
                    let key = format!("w{w}-{i:04}").into_bytes();
                    let durability = store.put_deferred(&key, i.to_le_bytes().to_vec()).unwrap();
                    match durability.wait().await {
                        Ok(()) => acked.lock().unwrap().push(key),
                        Err(_) => failed += 1,
                    }
                    tokio::time::sleep(Duration::from_micros(50 + u64::from(w) * 7)).await;
                }
                failed
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Crash at the first moment a group commit is pending.
        while disk.unsynced_writes().unwrap() == 0 {
            tokio::time::sleep(Duration::from_micros(13)).await;
        }
        let report = disk.crash().unwrap();
        let acked_at_crash = acked.lock().unwrap().len();
        let mut failed = 0u64;
        for writer in writers {
            failed += writer.await.unwrap();
        }
        let store = disk.storage();
        let acked = acked.lock().unwrap();
        assert!(acked_at_crash > 0 && acked.len() > acked_at_crash, "crashed mid-stream");
        assert_eq!(missing(&*store, &acked), 0, "an acknowledged write was lost");
        assert_eq!(failed, report.lost_writes, "each lost write failed its waiter");
        assert!(failed > 0, "the crash fell inside a group commit window");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_of_a_lost_write_fails_even_after_later_syncs() {
        let disk = disk(FsyncPolicy::Batch);
        let store = disk.storage();
        let lost = store.put_deferred(b"lost", b"1".to_vec()).unwrap();
        disk.crash().unwrap();
        store.put_deferred(b"kept", b"2".to_vec()).unwrap().wait().await.unwrap();
        let err = lost.wait().await.unwrap_err().to_string();
        assert!(err.contains("closed"), "{err}");
        assert_eq!(store.get(b"lost").unwrap(), None);
        store.sync_barrier().unwrap().wait().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_barrier_waits_for_earlier_deferred_writes() {
        let disk = disk(FsyncPolicy::Batch);
        let store = disk.storage();
        let _unawaited = store.put_deferred(b"a", b"1".to_vec()).unwrap();
        store.sync_barrier().unwrap().wait().await.unwrap();
        assert_eq!(disk.unsynced_writes().unwrap(), 0);
        assert_eq!(disk.crash().unwrap().keys_left, 1);
    }

    #[test]
    fn the_dirty_limit_writes_the_oldest_back() {
        let disk = PowerLoss::with_options(PowerLossOptions {
            fsync: FsyncPolicy::Never,
            batch_delay: Duration::ZERO,
            writeback: None,
            max_dirty_writes: 3,
        });
        let store = disk.storage();
        for k in [b"a", b"b", b"c", b"d", b"e"] {
            store.put(k, k.to_vec()).unwrap();
        }
        assert_eq!(disk.unsynced_writes().unwrap(), 3);
        assert_eq!(disk.crash().unwrap(), CrashReport { lost_writes: 3, keys_left: 2 });
        assert_eq!(store.scan(b"", 10).unwrap(), vec![(b"a".to_vec(), b"a".to_vec()), (b"b".to_vec(), b"b".to_vec())]);
    }

    #[test]
    fn without_a_runtime_a_batch_write_syncs_inline() {
        let disk = disk(FsyncPolicy::Batch);
        let durability = disk.storage().put_deferred(b"a", b"1".to_vec()).unwrap();
        assert!(matches!(durability, Durability::Now));
        assert_eq!(disk.crash().unwrap().keys_left, 1);
    }

    mod model {
        //! Crash consistency against a model: whatever the policy, what
        //! survives a crash is the state after some prefix of the writes,
        //! and that prefix holds every write the policy promised durable.

        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Put(u8, u8),
            Delete(u8),
            Advance(u64),
            Sync,
            Crash,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (0..5u8, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
                1 => (0..5u8).prop_map(Op::Delete),
                2 => (0..40_000u64).prop_map(Op::Advance),
                1 => Just(Op::Sync),
                2 => Just(Op::Crash),
            ]
        }

        fn policy() -> impl Strategy<Value = FsyncPolicy> {
            prop_oneof![Just(FsyncPolicy::Always), Just(FsyncPolicy::Batch), Just(FsyncPolicy::Never)]
        }

        /// The writes since the last crash, over the state it left.
        #[derive(Default)]
        struct Model {
            base: BTreeMap<Vec<u8>, Vec<u8>>,
            log: Vec<(Vec<u8>, Option<Vec<u8>>, Instant)>,
            /// Writes at the log's start the policy promised durable.
            promised: usize,
        }

        impl Model {
            fn replay(&self, k: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
                let mut state = self.base.clone();
                for (key, value, _) in &self.log[..k] {
                    match value {
                        Some(v) => state.insert(key.clone(), v.clone()),
                        None => state.remove(key),
                    };
                }
                state
            }

            /// Under `never`: the writes the flusher must have written back
            /// before `now` (older than expiry plus one flusher period; a
            /// tick at `now` itself may run after the crash).
            fn written_back_by(&self, now: Instant) -> usize {
                let w = Writeback::default();
                let due = Duration::from_millis(w.expire_ms + w.wake_ms);
                self.log.iter().take_while(|(_, _, at)| *at + due < now).count()
            }
        }

        async fn run(fsync: FsyncPolicy, ops: Vec<Op>) -> Result<(), TestCaseError> {
            let disk = disk(fsync);
            let store = disk.storage();
            let mut model = Model::default();
            for op in ops {
                match op {
                    Op::Put(_, _) | Op::Delete(_) => {
                        let (key, value) = match op {
                            Op::Put(k, v) => (vec![k], Some(vec![v])),
                            Op::Delete(k) => (vec![k], None),
                            _ => unreachable!(),
                        };
                        match &value {
                            Some(v) => store.put_deferred(&key, v.clone()).unwrap().wait().await.unwrap(),
                            None => store.delete(&key).unwrap(),
                        }
                        model.log.push((key, value, Instant::now()));
                        if fsync != FsyncPolicy::Never {
                            model.promised = model.log.len();
                        }
                    }
                    Op::Advance(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                    Op::Sync => {
                        disk.sync().unwrap();
                        model.promised = model.log.len();
                    }
                    Op::Crash => {
                        let floor = model.promised.max(model.written_back_by(Instant::now()));
                        disk.crash().unwrap();
                        let after: BTreeMap<_, _> = store.scan(b"", usize::MAX).unwrap().into_iter().collect();
                        let prefix = (floor..=model.log.len()).find(|&k| model.replay(k) == after);
                        prop_assert!(
                            prefix.is_some(),
                            "{fsync:?}: the state after the crash is no prefix of at least {floor} of the {} writes",
                            model.log.len()
                        );
                        model = Model { base: after, ..Model::default() };
                    }
                }
                let live: BTreeMap<_, _> = store.scan(b"", usize::MAX).unwrap().into_iter().collect();
                prop_assert_eq!(live, model.replay(model.log.len()), "reads see every applied write");
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            #[test]
            fn a_crash_keeps_a_prefix_holding_every_promised_write(fsync in policy(), ops in proptest::collection::vec(op(), 1..60)) {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
                runtime.block_on(run(fsync, ops))?;
            }
        }
    }
}
