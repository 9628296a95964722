//! The log of directory changes no directory fsync has made durable.
//!
//! Namespace changes (create, mkdir, symlink, link, unlink, rmdir, rename)
//! are applied to the backing directory at once, so lookups, readdir and
//! the kernel all see one real tree, and each is recorded here. A power
//! loss undoes, newest first, every change not yet durable. An unlinked
//! or overwritten entry is not deleted but moved to a trash directory
//! hidden in the backing root, so that undoing the removal can put the
//! very same inode back; once the removal is durable its trash entry is
//! deleted for good.
//!
//! A change is durable once the directory that holds its result is
//! fsynced after it: the directory it created in or removed from, and for
//! a rename the destination directory (a rename is one change, made
//! durable as a whole; fsyncing only its source directory does not make
//! it durable here, although on ext4 it often would be).
//!
//! This was chosen over keeping changes virtual until `fsyncdir` because
//! everything else (lookups, readdir, open, the kernel's own caches) then
//! works on a real directory tree with no merge logic; the price is that
//! a loss must undo, and undoing in tangled cross-directory histories (a
//! durable change on top of one that is undone) is best effort: an undo
//! whose entry is no longer where it was left is skipped and counted.

use std::ffi::OsString;

/// One namespace change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetaOp {
    /// Inode `ino` was created as `name` in directory `dir_ino` (file,
    /// directory, symlink, hard link).
    Created {
        /// The directory it was created in.
        dir_ino: u64,
        /// Its name there.
        name: OsString,
        /// The inode created (or linked).
        ino: u64,
    },
    /// Inode `ino`, `name` in `dir_ino`, was removed: it now waits in the
    /// trash as `trash_name`.
    Removed {
        /// The directory it was removed from.
        dir_ino: u64,
        /// Its name there.
        name: OsString,
        /// The inode removed.
        ino: u64,
        /// Its name in the trash directory.
        trash_name: OsString,
    },
    /// Inode `ino` was renamed from `from_name` in `from_dir_ino` to
    /// `to_name` in `to_dir_ino`, displacing the inode there, if any, into
    /// the trash.
    Renamed {
        /// The source directory.
        from_dir_ino: u64,
        /// The source name.
        from_name: OsString,
        /// The destination directory.
        to_dir_ino: u64,
        /// The destination name.
        to_name: OsString,
        /// The inode renamed.
        ino: u64,
        /// The inode the rename replaced and its name in the trash.
        displaced: Option<(u64, OsString)>,
    },
}

impl MetaOp {
    /// The directory whose fsync makes this change durable.
    pub(crate) fn durable_with(&self) -> u64 {
        match self {
            MetaOp::Created { dir_ino, .. } | MetaOp::Removed { dir_ino, .. } => *dir_ino,
            MetaOp::Renamed { to_dir_ino, .. } => *to_dir_ino,
        }
    }

    /// The trash entry this change left, which is deleted once it is durable.
    fn trash_name(&self) -> Option<&OsString> {
        match self {
            MetaOp::Removed { trash_name, .. } => Some(trash_name),
            MetaOp::Renamed { displaced: Some((_, trash_name)), .. } => Some(trash_name),
            _ => None,
        }
    }
}

/// The namespace changes not yet durable, oldest first.
#[derive(Debug, Default)]
pub(crate) struct UndoLog {
    /// Changes awaiting an fsync of their directory.
    pending: Vec<MetaOp>,
}

impl UndoLog {
    /// Records a change just applied to the backing directory.
    pub(crate) fn record(&mut self, op: MetaOp) {
        self.pending.push(op);
    }

    /// How many changes are not durable.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Directory `dir_ino` was fsynced: its changes become durable. Returns
    /// the trash names they left, now to be deleted.
    pub(crate) fn fsyncdir(&mut self, dir_ino: u64) -> Vec<OsString> {
        let mut trash = Vec::new();
        self.pending.retain(|op| {
            if op.durable_with() != dir_ino {
                return true;
            }
            trash.extend(op.trash_name().cloned());
            false
        });
        trash
    }

    /// Takes every change not durable, newest first: the order to undo them.
    pub(crate) fn take_for_undo(&mut self) -> Vec<MetaOp> {
        let mut ops = std::mem::take(&mut self.pending);
        ops.reverse();
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(dir_ino: u64, name: &str, ino: u64) -> MetaOp {
        MetaOp::Created { dir_ino, name: name.into(), ino }
    }

    #[test]
    fn fsyncdir_makes_only_its_directory_durable() {
        let mut log = UndoLog::default();
        log.record(created(1, "a", 10));
        log.record(created(20, "b", 11));
        log.record(MetaOp::Removed { dir_ino: 1, name: "c".into(), ino: 12, trash_name: "t0".into() });
        assert_eq!(log.fsyncdir(1), vec![OsString::from("t0")]);
        assert_eq!(log.take_for_undo(), vec![created(20, "b", 11)]);
    }

    #[test]
    fn a_rename_is_durable_with_its_destination() {
        let mut log = UndoLog::default();
        let rename = MetaOp::Renamed {
            from_dir_ino: 1,
            from_name: "tmp".into(),
            to_dir_ino: 2,
            to_name: "final".into(),
            ino: 10,
            displaced: Some((11, "t1".into())),
        };
        log.record(rename.clone());
        assert!(log.fsyncdir(1).is_empty());
        assert_eq!(log.pending_len(), 1);
        assert_eq!(log.fsyncdir(2), vec![OsString::from("t1")]);
        assert_eq!(log.pending_len(), 0);
    }
}
