//! A lazy filesystem: FUSE over a backing directory that holds unsynced
//! writes in memory and drops them on command, so that a real process (a
//! store node) can suffer a power loss without a machine losing power.
//!
//! `dynamo-lazyfs --backing DIR --mount DIR --control SOCKET` shows DIR's
//! tree at the mount. The backing directory is the disk: after a
//! `lose-unsynced` on the control socket ([`control`]) it holds exactly
//! what a disk would keep, and the mount shows it.
//!
//! # The durability rules modelled
//!
//! Data (`held.rs`, `state.rs`):
//! - A write is held in memory, per inode, until the file is synced; reads
//!   see it (backing bytes merged with held writes). Truncations are held
//!   the same way. Closing a file does not sync it.
//! - `fsync` and `fdatasync` write the file's held data through to the
//!   backing file and fsync it: from then on a loss keeps it. (Both also
//!   persist the inode's size; neither persists its directory entry.)
//! - Past the cap on held bytes (`--cap-bytes`, over all files), the
//!   writing file is written back and fsynced, counted as a forced sync:
//!   a kernel short of memory writes back too, and written-back data is on
//!   the disk.
//! - A loss drops every held write. In torn mode (`--torn --seed S`) it
//!   keeps, per file, a seeded prefix of its held writes in write order,
//!   cut at a byte (`loss.rs`): same seed and history, same prefix.
//!
//! Namespace (`undo.rs`, `namespace.rs`), the rules an application may
//! rely on with ext4 (which often persists more, through its journal):
//! - A created entry (file, directory, symlink, hard link) is durable once
//!   its parent directory is fsynced after the create. A file's own fsync
//!   makes its data and inode durable, not its name: a file created and
//!   fsynced, whose directory never is, is gone after a loss.
//! - An unlink or rmdir is durable once the parent directory is fsynced;
//!   before, a loss brings the entry back with the content it had on disk.
//! - A rename is one change, durable once its destination directory is
//!   fsynced; before, a loss puts the entry back at its old name and
//!   restores what it replaced. Write-tmp, fsync-tmp, rename, fsync-dir
//!   is therefore durable, as it should be.
//! - A directory whose creation is undone takes its contents with it,
//!   even entries made durable by fsyncing it: they were in a directory
//!   no disk has.
//! - Attribute changes (mode, owner, times) take effect at once and are
//!   kept by a loss: they are not modelled as volatile.
//!
//! Changes are applied to the backing tree at once and undone by a loss
//! (an undo log whose entries each wait for one directory's fsync; removed
//! entries wait in a trash directory hidden in the backing root), rather
//! than kept virtual until `fsyncdir`: the kernel and every lookup then
//! work on one real tree. A removed file that is still open stays
//! writable and syncable, as on a disk. The kernel caches nothing (zero
//! TTLs, direct I/O), so what the mount shows after a loss is what the
//! backing directory holds.
//!
//! # What it does not model
//!
//! - Reordering: data is kept as a prefix in write order, never a later
//!   write without an earlier one, and a file's data and its name are
//!   independent (no ext4 `data=ordered` coupling, no journal commit that
//!   persists unrelated changes).
//! - Attribute changes and extended attributes (xattrs are not supported).
//! - Shared writable `mmap` of files on the mount (direct I/O forbids it).
//! - A crash of this process is not an exact loss: held data is gone as
//!   in one, but the namespace changes not yet durable stay in the backing
//!   tree, undone by nobody. A `SIGKILL` also leaves a stale mount, which
//!   `--unmount-stale PATH` clears.

pub mod control;
mod error;
mod fs;
mod held;
mod loss;
pub mod mount;
mod namespace;
mod nodes;
pub mod report;
mod state;
mod undo;

pub use control::Client;
pub use error::LazyError;
pub use fs::LazyFs;
pub use mount::{is_mounted, mount, unmount_stale, Mounted};
pub use report::{FileLoss, FileStats, LossReport, Stats};
pub use state::{Config, State};
