//! Inode numbers and where each inode lives in the backing directory.
//!
//! The FUSE inode number of an entry is its backing inode number, so two
//! hard links are one inode here as on disk and held writes are per inode.
//! FUSE wants the root to be inode 1: the backing root's number and 1 swap
//! places ([`Nodes::fuse_ino`]), which is its own inverse.
//!
//! Each known inode remembers its parent and its name, not a path: a rename
//! of a directory changes one record, and the path of everything under it
//! follows ([`Nodes::path`] walks up to the root). An unlinked inode moves
//! under the trash directory (see `undo.rs`) and keeps a record there, so an
//! open file that was unlinked can still be synced and read. Records are
//! never forgotten while mounted: a test filesystem sees few inodes, and the
//! kernel may name any inode it looked up before.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The FUSE root inode number.
pub(crate) const ROOT_INO: u64 = 1;

/// Where one inode lives: its directory and its name there.
#[derive(Debug, Clone)]
struct Node {
    /// The FUSE inode number of the directory holding it.
    parent_ino: u64,
    /// Its name in that directory.
    name: OsString,
}

/// The known inodes of a mount.
#[derive(Debug)]
pub(crate) struct Nodes {
    /// The backing directory (the FUSE root).
    backing_root: PathBuf,
    /// The backing inode number of the backing root.
    root_backing_ino: u64,
    /// Parent and name of each known inode but the root, by FUSE number.
    by_ino: HashMap<u64, Node>,
}

impl Nodes {
    /// The table of a mount over `backing_root`, whose backing inode
    /// number is `root_backing_ino`.
    pub(crate) fn new(backing_root: PathBuf, root_backing_ino: u64) -> Self {
        Nodes { backing_root, root_backing_ino, by_ino: HashMap::new() }
    }

    /// The FUSE inode number of backing inode `backing_ino` (and back: the
    /// mapping swaps the root's number with 1, so it is its own inverse).
    pub(crate) fn fuse_ino(&self, backing_ino: u64) -> u64 {
        if backing_ino == self.root_backing_ino {
            ROOT_INO
        } else if backing_ino == ROOT_INO {
            self.root_backing_ino
        } else {
            backing_ino
        }
    }

    /// Records that `ino` is `name` in directory `parent_ino`.
    pub(crate) fn record(&mut self, ino: u64, parent_ino: u64, name: &OsStr) {
        assert_ne!(ino, ROOT_INO, "the root has no parent");
        self.by_ino.insert(ino, Node { parent_ino, name: name.to_owned() });
    }

    /// Forgets `ino` (its entry was removed for good).
    pub(crate) fn forget(&mut self, ino: u64) {
        self.by_ino.remove(&ino);
    }

    /// The backing path of `ino`, if it is known.
    pub(crate) fn path(&self, ino: u64) -> Option<PathBuf> {
        let mut names = Vec::new();
        let mut at = ino;
        while at != ROOT_INO {
            let node = self.by_ino.get(&at)?;
            names.push(node.name.as_os_str());
            at = node.parent_ino;
            // A cycle would mean a corrupt table; a path is never this deep.
            assert!(names.len() < 4096, "inode table has a cycle at {ino}");
        }
        let mut path = self.backing_root.clone();
        path.extend(names.iter().rev());
        Some(path)
    }

    /// The backing path of `name` in directory `parent_ino`.
    pub(crate) fn child_path(&self, parent_ino: u64, name: &OsStr) -> Option<PathBuf> {
        self.path(parent_ino).map(|p| p.join(name))
    }

    /// The path of `ino` relative to the backing root, for reports.
    pub(crate) fn display_path(&self, ino: u64) -> String {
        match self.path(ino) {
            Some(p) => p.strip_prefix(&self.backing_root).unwrap_or(Path::new("?")).display().to_string(),
            None => format!("<inode {ino}>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_a_renamed_directory() {
        let mut nodes = Nodes::new(PathBuf::from("/b"), 500);
        nodes.record(10, ROOT_INO, OsStr::new("d"));
        nodes.record(11, 10, OsStr::new("f"));
        assert_eq!(nodes.path(11).unwrap(), PathBuf::from("/b/d/f"));
        nodes.record(10, ROOT_INO, OsStr::new("e"));
        assert_eq!(nodes.path(11).unwrap(), PathBuf::from("/b/e/f"));
        assert_eq!(nodes.display_path(11), "e/f");
    }

    #[test]
    fn the_root_swaps_with_one() {
        let nodes = Nodes::new(PathBuf::from("/b"), 500);
        assert_eq!(nodes.fuse_ino(500), 1);
        assert_eq!(nodes.fuse_ino(1), 500);
        assert_eq!(nodes.fuse_ino(7), 7);
    }
}
