//! A power loss: everything not synced is dropped, what is synced stays.
//!
//! Data first: each file's held writes are dropped, or in torn mode a
//! prefix of them (in write order, cut at a byte) is written to the backing
//! file and fsynced, as if the disk had taken that much before the power
//! went. The prefix length is drawn from a ChaCha RNG seeded by the mount's
//! seed, the loss's index and the file's path, and files are visited in
//! path order, so the same seed and the same history keep the same bytes.
//!
//! Then the namespace: every change not made durable by a directory fsync
//! is undone, newest first (see `undo.rs`), and the trash is emptied: the
//! removals left in it are the durable ones.

use std::ffi::OsString;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::namespace::remove_entry;
use crate::report::{FileLoss, LossReport};
use crate::state::{FsResult, State};
use crate::undo::MetaOp;

impl State {
    /// Drops everything not synced; returns what was dropped and kept.
    pub fn lose_unsynced(&mut self) -> LossReport {
        let loss_index = self.losses;
        self.losses += 1;
        let files = self.lose_data(loss_index);
        let (mut meta_undone, mut meta_skipped) = (0, 0);
        for op in self.undo.take_for_undo() {
            match self.undo_one(&op) {
                Ok(true) => meta_undone += 1,
                Ok(false) => meta_skipped += 1,
                Err(errno) => {
                    tracing::warn!(?op, ?errno, "undo failed");
                    meta_skipped += 1;
                }
            }
        }
        self.empty_trash();
        LossReport {
            torn: self.config.torn_seed.is_some(),
            loss_index,
            dropped_bytes: files.iter().map(|f| f.dropped_bytes).sum(),
            kept_bytes: files.iter().map(|f| f.kept_bytes).sum(),
            files,
            meta_undone,
            meta_skipped,
        }
    }

    /// Drops (or, torn, keeps a prefix of) every file's held writes.
    fn lose_data(&mut self, loss_index: u64) -> Vec<FileLoss> {
        let mut holding: Vec<(String, u64)> = self
            .files
            .iter()
            .filter(|(_, f)| !f.held.is_empty())
            .map(|(ino, _)| (self.nodes.display_path(*ino), *ino))
            .collect();
        holding.sort();
        let mut report = Vec::with_capacity(holding.len());
        for (path, ino) in holding {
            let file = self.files.get_mut(&ino).expect("listed above");
            let held_bytes = file.held.held_bytes();
            let keep = match self.config.torn_seed {
                Some(seed) => torn_keep_bytes(seed, loss_index, &path, held_bytes),
                None => 0,
            };
            let kept_bytes = match write_prefix(file, keep) {
                Ok(kept) => kept,
                Err(e) => {
                    tracing::warn!(%path, error = %e, "torn prefix not written; all dropped");
                    0
                }
            };
            let size = file.handle.metadata().map(|m| m.len()).unwrap_or(0);
            file.held.clear(size);
            let dropped_bytes = held_bytes - kept_bytes;
            file.dropped_bytes += dropped_bytes;
            self.held_bytes -= held_bytes;
            self.dropped_bytes += dropped_bytes;
            report.push(FileLoss { path, held_bytes, kept_bytes, dropped_bytes });
        }
        assert_eq!(self.held_bytes, 0, "a loss leaves nothing held");
        report
    }

    /// Undoes one namespace change; `Ok(false)` when its entry is no longer
    /// where the change left it (a later durable change moved it).
    fn undo_one(&mut self, op: &MetaOp) -> FsResult<bool> {
        match op {
            MetaOp::Created { dir_ino, name, ino } => {
                let Some(path) = self.nodes.child_path(*dir_ino, name) else {
                    return Ok(false);
                };
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    return Ok(false);
                };
                if self.nodes.fuse_ino(std::os::unix::fs::MetadataExt::ino(&meta)) != *ino {
                    return Ok(false);
                }
                remove_entry(&path, meta.is_dir())?;
                if std::os::unix::fs::MetadataExt::nlink(&meta) <= 1 || meta.is_dir() {
                    self.drop_file(*ino);
                    self.nodes.forget(*ino);
                }
                Ok(true)
            }
            MetaOp::Removed { dir_ino, name, ino, trash_name } => {
                Ok(self.restore_from_trash(trash_name, (*dir_ino, name), *ino)?)
            }
            MetaOp::Renamed { from_dir_ino, from_name, to_dir_ino, to_name, ino, displaced } => {
                let (Some(at), Some(back)) =
                    (self.nodes.child_path(*to_dir_ino, to_name), self.nodes.child_path(*from_dir_ino, from_name))
                else {
                    return Ok(false);
                };
                let at_ino = std::fs::symlink_metadata(&at)
                    .map(|m| self.nodes.fuse_ino(std::os::unix::fs::MetadataExt::ino(&m)));
                if at_ino.ok() != Some(*ino) || back.symlink_metadata().is_ok() {
                    return Ok(false);
                }
                std::fs::rename(&at, &back)?;
                self.nodes.record(*ino, *from_dir_ino, from_name);
                if let Some((displaced_ino, trash_name)) = displaced {
                    self.restore_from_trash(trash_name, (*to_dir_ino, to_name), *displaced_ino)?;
                }
                Ok(true)
            }
        }
    }

    /// Puts trash entry `trash_name` (inode `ino`) back as `name` in `dir_ino`.
    fn restore_from_trash(
        &mut self,
        trash_name: &OsString,
        (dir_ino, name): (u64, &OsString),
        ino: u64,
    ) -> FsResult<bool> {
        let from = self.trash_dir.join(trash_name);
        let Some(to) = self.nodes.child_path(dir_ino, name) else {
            return Ok(false);
        };
        if from.symlink_metadata().is_err() || to.symlink_metadata().is_ok() {
            return Ok(false);
        }
        std::fs::rename(&from, &to)?;
        self.nodes.record(ino, dir_ino, name);
        Ok(true)
    }

    /// Deletes every trash entry: after the undo, all are durable removals.
    fn empty_trash(&mut self) {
        let names: Vec<OsString> = match std::fs::read_dir(&self.trash_dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.file_name())).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "trash not readable");
                return;
            }
        };
        for name in names {
            if let Err(errno) = self.delete_from_trash(&name) {
                tracing::warn!(?name, ?errno, "trash entry not deleted");
            }
        }
    }
}

/// Writes the first `keep_bytes` of `file`'s held writes through and
/// fsyncs; returns the bytes written.
fn write_prefix(file: &mut crate::state::FileState, keep_bytes: u64) -> std::io::Result<u64> {
    if keep_bytes == 0 {
        return Ok(0);
    }
    let kept = file.held.write_through(&file.handle, keep_bytes)?;
    file.handle.sync_all()?;
    Ok(kept)
}

/// How many of `held_bytes` a torn loss keeps for the file at `path`:
/// uniform in `0..=held_bytes`, fixed by the seed, the loss and the path.
pub(crate) fn torn_keep_bytes(seed: u64, loss_index: u64, path: &str, held_bytes: u64) -> u64 {
    let mixed = seed ^ fnv1a(path.as_bytes()) ^ loss_index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rng = ChaCha8Rng::seed_from_u64(mixed);
    rng.random_range(0..=held_bytes)
}

/// FNV-1a of `bytes`: a stable hash (std's is seeded per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_choice_is_fixed_by_seed_and_bounded() {
        for held in [0, 1, 10, 1 << 20] {
            let a = torn_keep_bytes(7, 0, "wal/0001.log", held);
            assert_eq!(a, torn_keep_bytes(7, 0, "wal/0001.log", held));
            assert!(a <= held);
        }
        let picks: Vec<u64> = (0..8).map(|s| torn_keep_bytes(s, 0, "f", 1 << 30)).collect();
        assert!(picks.windows(2).any(|w| w[0] != w[1]), "seeds choose differently");
    }
}
