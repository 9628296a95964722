//! The manifest: which SSTables are live, in which order, and which WAL
//! segments are still needed.
//!
//! A flush adds a table and retires WAL segments; a compaction replaces a
//! run of tables with their merge. Either must take effect entirely or not
//! at all, or a crash could lose data (a retired segment whose table is not
//! listed) or resurrect it (a merged-away table still listed beside its
//! merge, shadowing newer deletes). So the live set is one small file,
//! replaced atomically: write `MANIFEST.tmp`, fsync it, rename it over
//! `MANIFEST`, fsync the directory. Tables not listed are leftovers of an
//! interrupted flush or compaction and are deleted when the engine opens.
//!
//! ## Format
//! ```text
//! | magic u64 | version u32 | body_len u32 | body | crc32c(everything before) u32 |
//! body = | next_file_id u64 | log_floor u64 | table_count u32 | (id u64, tier u32)* |
//! ```
//! Tables are listed newest first; `tier` is the size tier used by
//! compaction. `log_floor` is the oldest WAL segment that recovery must
//! replay.

use std::path::Path;

use super::disk::{self, DiskBudget};
use super::LsmError;

/// The manifest's file name.
pub const MANIFEST_NAME: &str = "MANIFEST";
const TMP_NAME: &str = "MANIFEST.tmp";
const MAGIC: u64 = 0x4459_4e41_4d4f_4d46; // "DYNAMOMF"
/// The manifest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// More tables than this in a manifest means it is corrupt.
const MAX_TABLES: usize = 100_000;

/// One live table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableEntry {
    /// The table's file id (`<id>.sst`).
    pub id: u64,
    /// Its size tier (0 = fresh from a flush).
    pub tier: u32,
}

/// The durable state of the engine's file set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The next unused file id (tables and WAL segments share the counter
    /// space of neither: this is for tables only).
    pub next_file_id: u64,
    /// The oldest WAL segment recovery must replay.
    pub log_floor: u64,
    /// Live tables, newest first.
    pub tables: Vec<TableEntry>,
}

impl Manifest {
    /// Serializes the manifest.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(20 + self.tables.len() * 12);
        body.extend_from_slice(&self.next_file_id.to_le_bytes());
        body.extend_from_slice(&self.log_floor.to_le_bytes());
        body.extend_from_slice(&(self.tables.len() as u32).to_le_bytes());
        for t in &self.tables {
            body.extend_from_slice(&t.id.to_le_bytes());
            body.extend_from_slice(&t.tier.to_le_bytes());
        }
        let mut out = Vec::with_capacity(body.len() + 20);
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses a manifest, verifying magic, version and checksum.
    pub fn decode(raw: &[u8], path: &Path) -> Result<Manifest, LsmError> {
        let corrupt = |offset: usize, reason: &str| LsmError::Corrupt {
            what: "manifest",
            path: path.to_path_buf(),
            offset: offset as u64,
            reason: reason.to_string(),
        };
        if raw.len() < 20 || le_u64(&raw[0..8]) != MAGIC {
            return Err(corrupt(0, "not a manifest (bad magic or too short)"));
        }
        let body_len = le_u32(&raw[12..16]) as usize;
        if raw.len() != 16 + body_len + 4 {
            return Err(corrupt(12, "length does not match the file"));
        }
        let crc_at = 16 + body_len;
        if crc32c::crc32c(&raw[..crc_at]) != le_u32(&raw[crc_at..]) {
            return Err(corrupt(crc_at, "checksum mismatch"));
        }
        let version = le_u32(&raw[8..12]);
        if version > FORMAT_VERSION {
            return Err(LsmError::NewerFormat { path: path.to_path_buf(), found: version, supported: FORMAT_VERSION });
        }
        decode_body(&raw[16..crc_at]).ok_or_else(|| corrupt(16, "malformed body"))
    }

    /// Reads the manifest of `dir`, or `None` for a fresh directory.
    pub fn load(dir: &Path) -> Result<Option<Manifest>, LsmError> {
        let path = dir.join(MANIFEST_NAME);
        match std::fs::read(&path) {
            Ok(raw) => Manifest::decode(&raw, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(disk::io_err("read", &path)(e)),
        }
    }

    /// Replaces the manifest of `dir` atomically and durably.
    pub fn store(&self, dir: &Path, budget: Option<&DiskBudget>) -> Result<(), LsmError> {
        let tmp = dir.join(TMP_NAME);
        let dst = dir.join(MANIFEST_NAME);
        let f = disk::create(&tmp)?;
        disk::write_all(&f, &self.encode(), budget, &tmp)?;
        disk::sync_file(&f, &tmp)?;
        drop(f);
        std::fs::rename(&tmp, &dst).map_err(disk::io_err("rename manifest to", &dst))?;
        disk::sync_dir(dir)
    }
}

fn decode_body(b: &[u8]) -> Option<Manifest> {
    if b.len() < 20 {
        return None;
    }
    let count = le_u32(&b[16..20]) as usize;
    if count > MAX_TABLES || b.len() != 20 + count * 12 {
        return None;
    }
    let tables =
        b[20..].chunks_exact(12).map(|c| TableEntry { id: le_u64(&c[0..8]), tier: le_u32(&c[8..12]) }).collect();
    Some(Manifest { next_file_id: le_u64(&b[0..8]), log_floor: le_u64(&b[8..16]), tables })
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_detects_flips_and_newer_versions() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest {
            next_file_id: 9,
            log_floor: 4,
            tables: vec![TableEntry { id: 8, tier: 0 }, TableEntry { id: 3, tier: 1 }],
        };
        m.store(dir.path(), None).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(m.clone()));
        let raw = m.encode();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            assert!(Manifest::decode(&bad, Path::new("M")).is_err(), "flip at {i}");
        }
        let mut newer = raw.clone();
        newer[8..12].copy_from_slice(&2u32.to_le_bytes());
        let crc_at = newer.len() - 4;
        let crc = crc32c::crc32c(&newer[..crc_at]);
        newer[crc_at..].copy_from_slice(&crc.to_le_bytes());
        let err = Manifest::decode(&newer, Path::new("M")).unwrap_err();
        assert!(matches!(err, LsmError::NewerFormat { found: 2, .. }), "{err}");
    }
}
