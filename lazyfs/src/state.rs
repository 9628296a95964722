//! The state of a mount: inodes, held writes, the undo log and counters,
//! behind one lock.
//!
//! One `Mutex<State>` serves the FUSE threads and the control socket. A
//! single lock is the simple honest choice for a test filesystem: a loss
//! must see a quiet filesystem (no write half held, half applied), and the
//! throughput a Jepsen-style test needs is far below what one lock allows.
//!
//! This file holds the data side: open backing files, reads that merge,
//! writes that are held, syncs that write through, and the cap on held
//! bytes. Namespace changes are in `namespace.rs`, the loss in `loss.rs`.
//!
//! The cap ([`Config::cap_bytes`]): when a write takes the bytes held over
//! all files past it, the writing file's held data is written back to its
//! backing file and fsynced, as a kernel under memory pressure writes back
//! dirty pages. Such a write-back is counted as a forced sync
//! ([`crate::Stats::forced_syncs`]) and its data survives a loss: pages a
//! kernel wrote back are on the disk. So past the cap the filesystem is
//! *less* lazy than asked, never unbounded and never silently so.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileType, INodeNo};

use crate::error::LazyError;
use crate::held::HeldFile;
use crate::nodes::{Nodes, ROOT_INO};
use crate::report::{FileStats, Stats};
use crate::undo::UndoLog;

/// The name of the trash directory in the backing root, hidden from the mount.
pub(crate) const TRASH_NAME: &str = ".lazyfs-trash";

/// A filesystem operation's result: an errno for the kernel on failure.
pub(crate) type FsResult<T> = Result<T, Errno>;

/// How a mount behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory whose contents the mount shows (what the disk keeps).
    pub backing: PathBuf,
    /// The most unsynced bytes held over all files before a write forces
    /// its file to be written back and synced.
    pub cap_bytes: u64,
    /// With `Some(seed)`, a loss keeps a seeded prefix of each file's
    /// unsynced writes (torn writes); with `None` it drops them all.
    pub torn_seed: Option<u64>,
}

/// One regular file that was opened or written: its backing file and what
/// it holds.
#[derive(Debug)]
pub(crate) struct FileState {
    /// The backing file, open for reading and (when allowed) writing.
    pub(crate) handle: File,
    /// The writes since its last sync.
    pub(crate) held: HeldFile,
    /// Bytes written through to the backing file by syncs.
    pub(crate) synced_bytes: u64,
    /// Bytes dropped by losses.
    pub(crate) dropped_bytes: u64,
    /// Syncs forced by the cap.
    pub(crate) forced_syncs: u64,
}

/// Everything a mount knows.
#[derive(Debug)]
pub struct State {
    /// How the mount behaves.
    pub(crate) config: Config,
    /// Known inodes and where they live.
    pub(crate) nodes: Nodes,
    /// Regular files opened or written, by FUSE inode number.
    pub(crate) files: HashMap<u64, FileState>,
    /// Namespace changes not yet durable.
    pub(crate) undo: UndoLog,
    /// The trash directory (removed entries waiting to be durable).
    pub(crate) trash_dir: PathBuf,
    /// The FUSE inode number of the trash directory.
    pub(crate) trash_ino: u64,
    /// Names given to trash entries so far.
    pub(crate) trash_count: u64,
    /// Unsynced bytes held over all files (the sum of their held bytes).
    pub(crate) held_bytes: u64,
    /// Bytes written through by syncs, over all files.
    pub(crate) synced_bytes: u64,
    /// Bytes dropped by losses, over all files.
    pub(crate) dropped_bytes: u64,
    /// Syncs forced by the cap, over all files.
    pub(crate) forced_syncs: u64,
    /// Losses so far.
    pub(crate) losses: u64,
}

impl State {
    /// The state of a fresh mount over `config.backing`. A trash directory
    /// left by an earlier mount is emptied: its removals were never undone,
    /// so they count as durable.
    pub fn new(config: Config) -> Result<State, LazyError> {
        let backing = config.backing.canonicalize().map_err(|e| LazyError::Backing(config.backing.clone(), e))?;
        let root_meta = std::fs::metadata(&backing).map_err(|e| LazyError::Backing(backing.clone(), e))?;
        if !root_meta.is_dir() {
            return Err(LazyError::NotADirectory(backing));
        }
        let trash_dir = backing.join(TRASH_NAME);
        if trash_dir.exists() {
            std::fs::remove_dir_all(&trash_dir).map_err(|e| LazyError::Backing(trash_dir.clone(), e))?;
        }
        std::fs::create_dir(&trash_dir).map_err(|e| LazyError::Backing(trash_dir.clone(), e))?;
        let mut nodes = Nodes::new(backing.clone(), root_meta.ino());
        let trash_meta = std::fs::metadata(&trash_dir).map_err(|e| LazyError::Backing(trash_dir.clone(), e))?;
        let trash_ino = nodes.fuse_ino(trash_meta.ino());
        nodes.record(trash_ino, ROOT_INO, TRASH_NAME.as_ref());
        Ok(State {
            config: Config { backing, ..config },
            nodes,
            files: HashMap::new(),
            undo: UndoLog::default(),
            trash_dir,
            trash_ino,
            trash_count: 0,
            held_bytes: 0,
            synced_bytes: 0,
            dropped_bytes: 0,
            forced_syncs: 0,
            losses: 0,
        })
    }

    /// The backing path of `ino`.
    pub(crate) fn path(&self, ino: u64) -> FsResult<PathBuf> {
        self.nodes.path(ino).ok_or(Errno::ENOENT)
    }

    /// The attributes of `ino`, with the size its held writes give it.
    pub(crate) fn attr(&self, ino: u64) -> FsResult<FileAttr> {
        let meta = std::fs::symlink_metadata(self.path(ino)?)?;
        Ok(self.attr_of(&meta))
    }

    /// The attributes the kernel sees for a backing entry.
    pub(crate) fn attr_of(&self, meta: &Metadata) -> FileAttr {
        let ino = self.nodes.fuse_ino(meta.ino());
        let size = match self.files.get(&ino) {
            Some(f) => f.held.size_bytes(),
            None => meta.size(),
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512).max(meta.blocks()),
            atime: meta.accessed().unwrap_or(UNIX_EPOCH),
            mtime: meta.modified().unwrap_or(UNIX_EPOCH),
            ctime: epoch_plus(meta.ctime(), meta.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile),
            perm: (meta.mode() & 0o7777) as u16,
            nlink: meta.nlink() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: meta.rdev() as u32,
            blksize: meta.blksize() as u32,
            flags: 0,
        }
    }

    /// The open state of regular file `ino`, opening its backing file on
    /// first use.
    pub(crate) fn file(&mut self, ino: u64) -> FsResult<&mut FileState> {
        if !self.files.contains_key(&ino) {
            let path = self.path(ino)?;
            let handle = match File::options().read(true).write(true).open(&path) {
                Ok(f) => f,
                Err(_) => File::open(&path)?,
            };
            let meta = handle.metadata()?;
            if !meta.is_file() {
                return Err(Errno::EISDIR);
            }
            let state = FileState {
                handle,
                held: HeldFile::new(meta.len()),
                synced_bytes: 0,
                dropped_bytes: 0,
                forced_syncs: 0,
            };
            self.files.insert(ino, state);
        }
        Ok(self.files.get_mut(&ino).expect("inserted above"))
    }

    /// Reads up to `len` bytes of `ino` at `offset_bytes`, held writes included.
    pub(crate) fn read(&mut self, ino: u64, offset_bytes: u64, len: usize) -> FsResult<Vec<u8>> {
        let file = self.file(ino)?;
        Ok(file.held.read(&file.handle, offset_bytes, len)?)
    }

    /// Holds a write to `ino`; past the cap, writes the file back and syncs it.
    pub(crate) fn write(&mut self, ino: u64, offset_bytes: u64, data: &[u8]) -> FsResult<()> {
        self.file(ino)?.held.write(offset_bytes, data);
        self.held_bytes += data.len() as u64;
        if self.held_bytes > self.config.cap_bytes {
            self.sync_file(ino, true)?;
        }
        Ok(())
    }

    /// Holds a change of `ino`'s size.
    pub(crate) fn truncate(&mut self, ino: u64, size_bytes: u64) -> FsResult<()> {
        self.file(ino)?.held.truncate(size_bytes);
        Ok(())
    }

    /// Writes everything `ino` holds through to its backing file and
    /// fsyncs it (`fsync(2)`, or a write-back `forced` by the cap).
    pub(crate) fn sync_file(&mut self, ino: u64, forced: bool) -> FsResult<()> {
        let Some(file) = self.files.get_mut(&ino) else {
            // Nothing held: the sync still reaches the disk.
            File::open(self.path(ino)?)?.sync_all()?;
            return Ok(());
        };
        let held = file.held.held_bytes();
        let applied = file.held.write_through(&file.handle, u64::MAX)?;
        assert_eq!(applied, held, "a full write-through applies every held byte");
        file.handle.sync_all()?;
        let size = file.handle.metadata()?.len();
        if size != file.held.size_bytes() {
            tracing::warn!(ino, size, expected = file.held.size_bytes(), "backing file changed behind the mount");
        }
        file.held.clear(size);
        file.synced_bytes += held;
        file.forced_syncs += u64::from(forced);
        self.held_bytes -= held;
        self.synced_bytes += held;
        self.forced_syncs += u64::from(forced);
        Ok(())
    }

    /// The counters, per file and in total.
    pub fn stats(&self) -> Stats {
        let mut files: Vec<FileStats> = self
            .files
            .iter()
            .map(|(ino, f)| FileStats {
                path: self.nodes.display_path(*ino),
                held_bytes: f.held.held_bytes(),
                synced_bytes: f.synced_bytes,
                dropped_bytes: f.dropped_bytes,
                forced_syncs: f.forced_syncs,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let held: u64 = files.iter().map(|f| f.held_bytes).sum();
        assert_eq!(held, self.held_bytes, "total held bytes is the sum over files");
        Stats {
            held_bytes: self.held_bytes,
            synced_bytes: self.synced_bytes,
            dropped_bytes: self.dropped_bytes,
            forced_syncs: self.forced_syncs,
            cap_bytes: self.config.cap_bytes,
            losses: self.losses,
            meta_pending: self.undo.pending_len() as u64,
            files,
        }
    }
}

/// `UNIX_EPOCH` plus a (seconds, nanoseconds) pair from `stat`.
fn epoch_plus(secs: i64, nanos: i64) -> SystemTime {
    let since = Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32);
    UNIX_EPOCH + since
}
