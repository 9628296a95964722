//! Directory operations: lookups, listings, and the changes the undo log
//! records (create, mkdir, symlink, link, unlink, rmdir, rename) and makes
//! durable (fsyncdir).
//!
//! Every change is applied to the backing tree at once and recorded in
//! [`crate::undo::UndoLog`]; a removal moves the entry into the trash
//! directory instead of deleting it, so that a loss can put it back.
//! Attribute changes (mode, owner, times) are applied at once and are not
//! modelled as volatile: a power loss keeps them.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Permissions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use fuser::{Errno, FileAttr, FileType, RenameFlags, TimeOrNow};

use crate::held::HeldFile;
use crate::nodes::ROOT_INO;
use crate::state::{FileState, FsResult, State, TRASH_NAME};
use crate::undo::MetaOp;

/// One entry of a directory listing: inode, kind and name.
pub(crate) type DirEntry = (u64, FileType, OsString);

impl State {
    /// Whether `name` in `parent_ino` is the hidden trash directory.
    fn is_trash(parent_ino: u64, name: &OsStr) -> bool {
        parent_ino == ROOT_INO && name == TRASH_NAME
    }

    /// Looks `name` up in `parent_ino` and records where it lives.
    pub(crate) fn lookup(&mut self, parent_ino: u64, name: &OsStr) -> FsResult<FileAttr> {
        if Self::is_trash(parent_ino, name) {
            return Err(Errno::ENOENT);
        }
        let path = self.nodes.child_path(parent_ino, name).ok_or(Errno::ENOENT)?;
        let meta = std::fs::symlink_metadata(path)?;
        let ino = self.nodes.fuse_ino(meta.ino());
        self.nodes.record(ino, parent_ino, name);
        Ok(self.attr_of(&meta))
    }

    /// The entries of directory `ino`, `.` and `..` first, trash hidden.
    pub(crate) fn list(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        let path = self.path(ino)?;
        let mut entries =
            vec![(ino, FileType::Directory, OsString::from(".")), (ino, FileType::Directory, OsString::from(".."))];
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let name = entry.file_name();
            if Self::is_trash(ino, &name) {
                continue;
            }
            let kind = FileType::from_std(entry.file_type()?).unwrap_or(FileType::RegularFile);
            let child = self.nodes.fuse_ino(std::os::unix::fs::DirEntryExt::ino(&entry));
            entries.push((child, kind, name));
        }
        Ok(entries)
    }

    /// Records a new entry `name` in `parent_ino` and answers its attributes.
    fn created(&mut self, parent_ino: u64, name: &OsStr, path: &Path) -> FsResult<FileAttr> {
        let meta = std::fs::symlink_metadata(path)?;
        let ino = self.nodes.fuse_ino(meta.ino());
        self.nodes.record(ino, parent_ino, name);
        self.undo.record(MetaOp::Created { dir_ino: parent_ino, name: name.to_owned(), ino });
        Ok(self.attr_of(&meta))
    }

    /// The backing path for a new entry `name` in `parent_ino`.
    fn new_child_path(&self, parent_ino: u64, name: &OsStr) -> FsResult<std::path::PathBuf> {
        if Self::is_trash(parent_ino, name) {
            return Err(Errno::EEXIST);
        }
        self.nodes.child_path(parent_ino, name).ok_or(Errno::ENOENT)
    }

    /// Creates regular file `name` in `parent_ino` with `mode`, open.
    pub(crate) fn create_file(&mut self, parent_ino: u64, name: &OsStr, mode: u32) -> FsResult<FileAttr> {
        let path = self.new_child_path(parent_ino, name)?;
        let handle = File::options().read(true).write(true).create_new(true).mode(mode & 0o7777).open(&path)?;
        handle.set_permissions(Permissions::from_mode(mode & 0o7777))?;
        let attr = self.created(parent_ino, name, &path)?;
        let state = FileState { handle, held: HeldFile::new(0), synced_bytes: 0, dropped_bytes: 0, forced_syncs: 0 };
        self.drop_file(attr.ino.0);
        self.files.insert(attr.ino.0, state);
        Ok(attr)
    }

    /// Creates directory `name` in `parent_ino` with `mode`.
    pub(crate) fn mkdir(&mut self, parent_ino: u64, name: &OsStr, mode: u32) -> FsResult<FileAttr> {
        let path = self.new_child_path(parent_ino, name)?;
        std::fs::create_dir(&path)?;
        std::fs::set_permissions(&path, Permissions::from_mode(mode & 0o7777))?;
        self.created(parent_ino, name, &path)
    }

    /// Creates symlink `name` in `parent_ino` pointing at `target`.
    pub(crate) fn symlink(&mut self, parent_ino: u64, name: &OsStr, target: &Path) -> FsResult<FileAttr> {
        let path = self.new_child_path(parent_ino, name)?;
        std::os::unix::fs::symlink(target, &path)?;
        self.created(parent_ino, name, &path)
    }

    /// Links inode `ino` as `name` in `parent_ino`.
    pub(crate) fn link(&mut self, ino: u64, parent_ino: u64, name: &OsStr) -> FsResult<FileAttr> {
        let from = self.path(ino)?;
        let path = self.new_child_path(parent_ino, name)?;
        std::fs::hard_link(from, &path)?;
        self.created(parent_ino, name, &path)
    }

    /// A fresh name in the trash directory.
    fn trash_name(&mut self) -> OsString {
        self.trash_count += 1;
        OsString::from(format!("{}", self.trash_count))
    }

    /// Moves the entry at `path` (inode `ino`) into the trash; returns its name there.
    fn move_to_trash(&mut self, path: &Path, ino: u64) -> FsResult<OsString> {
        let trash_name = self.trash_name();
        std::fs::rename(path, self.trash_dir.join(&trash_name))?;
        self.nodes.record(ino, self.trash_ino, &trash_name);
        Ok(trash_name)
    }

    /// Removes `name` from `parent_ino` (`rmdir` for a directory, else `unlink`).
    pub(crate) fn remove(&mut self, parent_ino: u64, name: &OsStr, rmdir: bool) -> FsResult<()> {
        if Self::is_trash(parent_ino, name) {
            return Err(Errno::ENOENT);
        }
        let path = self.nodes.child_path(parent_ino, name).ok_or(Errno::ENOENT)?;
        let meta = std::fs::symlink_metadata(&path)?;
        match (rmdir, meta.is_dir()) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            (true, true) if std::fs::read_dir(&path)?.next().is_some() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let ino = self.nodes.fuse_ino(meta.ino());
        let trash_name = self.move_to_trash(&path, ino)?;
        self.undo.record(MetaOp::Removed { dir_ino: parent_ino, name: name.to_owned(), ino, trash_name });
        Ok(())
    }

    /// Renames `name` in `parent_ino` to `new_name` in `new_parent_ino`.
    pub(crate) fn rename(
        &mut self,
        (parent_ino, name): (u64, &OsStr),
        (new_parent_ino, new_name): (u64, &OsStr),
        flags: RenameFlags,
    ) -> FsResult<()> {
        if flags.contains(RenameFlags::RENAME_EXCHANGE) || flags.contains(RenameFlags::RENAME_WHITEOUT) {
            return Err(Errno::EINVAL);
        }
        if Self::is_trash(parent_ino, name) || Self::is_trash(new_parent_ino, new_name) {
            return Err(Errno::EPERM);
        }
        let from = self.nodes.child_path(parent_ino, name).ok_or(Errno::ENOENT)?;
        let to = self.nodes.child_path(new_parent_ino, new_name).ok_or(Errno::ENOENT)?;
        let from_meta = std::fs::symlink_metadata(&from)?;
        let ino = self.nodes.fuse_ino(from_meta.ino());
        let displaced = match std::fs::symlink_metadata(&to) {
            Ok(to_meta) => {
                if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                    return Err(Errno::EEXIST);
                }
                let to_ino = self.nodes.fuse_ino(to_meta.ino());
                if to_ino == ino {
                    return Ok(());
                }
                check_replace(&from_meta, &to_meta, &to)?;
                Some((to_ino, self.move_to_trash(&to, to_ino)?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = std::fs::rename(&from, &to) {
            if let Some((to_ino, trash_name)) = &displaced {
                std::fs::rename(self.trash_dir.join(trash_name), &to)?;
                self.nodes.record(*to_ino, new_parent_ino, new_name);
            }
            return Err(e.into());
        }
        self.nodes.record(ino, new_parent_ino, new_name);
        self.undo.record(MetaOp::Renamed {
            from_dir_ino: parent_ino,
            from_name: name.to_owned(),
            to_dir_ino: new_parent_ino,
            to_name: new_name.to_owned(),
            ino,
            displaced,
        });
        Ok(())
    }

    /// Directory `ino` is fsynced: the backing directory is, and the
    /// changes it holds become durable (their trash entries are deleted).
    pub(crate) fn fsyncdir(&mut self, ino: u64) -> FsResult<()> {
        File::open(self.path(ino)?)?.sync_all()?;
        for trash_name in self.undo.fsyncdir(ino) {
            self.delete_from_trash(&trash_name)?;
        }
        Ok(())
    }

    /// Deletes a trash entry for good, with what the mount held of it.
    pub(crate) fn delete_from_trash(&mut self, trash_name: &OsStr) -> FsResult<()> {
        let path = self.trash_dir.join(trash_name);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let ino = self.nodes.fuse_ino(meta.ino());
        remove_entry(&path, meta.is_dir())?;
        if meta.nlink() <= 1 || meta.is_dir() {
            self.drop_file(ino);
            self.nodes.forget(ino);
        }
        Ok(())
    }

    /// Forgets the open state of `ino` (its inode is gone for good); what it
    /// held counts as dropped.
    pub(crate) fn drop_file(&mut self, ino: u64) {
        if let Some(file) = self.files.remove(&ino) {
            let held = file.held.held_bytes();
            self.held_bytes -= held;
            self.dropped_bytes += held;
        }
    }

    /// Sets the permission bits of `ino`.
    pub(crate) fn chmod(&mut self, ino: u64, mode: u32) -> FsResult<()> {
        std::fs::set_permissions(self.path(ino)?, Permissions::from_mode(mode & 0o7777))?;
        Ok(())
    }

    /// Sets the owner of `ino`.
    pub(crate) fn chown(&mut self, ino: u64, uid: Option<u32>, gid: Option<u32>) -> FsResult<()> {
        std::os::unix::fs::lchown(self.path(ino)?, uid, gid)?;
        Ok(())
    }

    /// Sets the access and modification times of `ino` (not of a symlink).
    pub(crate) fn set_times(&mut self, ino: u64, atime: Option<TimeOrNow>, mtime: Option<TimeOrNow>) -> FsResult<()> {
        let path = self.path(ino)?;
        if std::fs::symlink_metadata(&path)?.is_symlink() {
            return Ok(());
        }
        let now = std::time::SystemTime::now();
        let pick = |t: TimeOrNow| match t {
            TimeOrNow::SpecificTime(t) => t,
            TimeOrNow::Now => now,
        };
        let mut times = std::fs::FileTimes::new();
        if let Some(t) = atime {
            times = times.set_accessed(pick(t));
        }
        if let Some(t) = mtime {
            times = times.set_modified(pick(t));
        }
        File::open(path)?.set_times(times)?;
        Ok(())
    }
}

/// Whether an entry like `from` may replace `to` (`rename(2)`'s rules).
fn check_replace(from: &std::fs::Metadata, to: &std::fs::Metadata, to_path: &Path) -> FsResult<()> {
    match (from.is_dir(), to.is_dir()) {
        (true, false) => Err(Errno::ENOTDIR),
        (false, true) => Err(Errno::EISDIR),
        (true, true) if std::fs::read_dir(to_path)?.next().is_some() => Err(Errno::ENOTEMPTY),
        _ => Ok(()),
    }
}

/// Removes a backing entry for good (a directory with its contents).
pub(crate) fn remove_entry(path: &Path, is_dir: bool) -> std::io::Result<()> {
    if is_dir {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}
