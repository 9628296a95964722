//! SSTables: immutable files of sorted, compressed, checksummed blocks.
//!
//! ## Layout
//! ```text
//! | data block | data block | ... | bloom block | index block | footer |
//! data block  = | uncompressed_len u32 | compressed entries | crc32c u32 |   (crc over the bytes before it)
//! entry       = | key_len u32 | kind u8 | value_len u32 | key | value |        (kind 1 value, 2 tombstone: value = deleted_at_ms u64)
//! bloom block = | num_hashes u32 | seed u64 | words... u64 | crc32c u32 |
//! index block = ( | last_key_len u32 | last_key | offset u64 | len u32 | )* | crc32c u32 |
//! footer      = | magic u64 | version u32 | compression u8 | bloom_off u64 | bloom_len u32 |
//!               | index_off u64 | index_len u32 | entries u64 | crc32c u32 |  (FOOTER_BYTES)
//! ```
//! Blocks hold about [`BLOCK_TARGET_BYTES`] of entries before compression,
//! small enough that a point read decompresses little, large enough that
//! compression has something to work on. The compression codec (LZ4 or
//! zstd) is recorded in the footer, so an engine whose option changed
//! still reads its old tables.
//!
//! ## Why every block carries a checksum
//! A bit flipped on disk must surface as an error, never as a value: reads
//! verify the checksum of each block they touch before decompressing it,
//! and the footer, index and Bloom filter are verified when a table opens.
//! The decoders ([`decode_footer`], [`decode_block`], [`decode_index`]) are
//! pure functions over byte slices so that fuzz targets can drive them.
//!
//! ## Bloom filter
//! One per table (from the `fastbloom` crate, with a fixed seed so a table
//! written by one process is read the same by the next), sized by the
//! engine's `bloom_bits_per_key`. A point read consults it before touching
//! the index, so most tables that lack a key cost no I/O.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fastbloom::BloomFilter;

use super::cache::BlockCache;
use super::disk::{self, DiskBudget};
use super::memtable::Slot;
use super::{Compression, LsmError, MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// The magic number at the start of every footer.
pub const MAGIC: u64 = 0x4459_4e41_4d4f_5353; // "DYNAMOSS"
/// The SSTable format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the fixed-size footer.
pub const FOOTER_BYTES: usize = 8 + 4 + 1 + 8 + 4 + 8 + 4 + 8 + 4;
/// Uncompressed bytes at which a data block is closed.
pub const BLOCK_TARGET_BYTES: usize = 4096;
/// Largest uncompressed block a reader accepts (one maximal entry plus a
/// full block), so a corrupt length cannot make it allocate without bound.
pub const MAX_BLOCK_BYTES: usize = BLOCK_TARGET_BYTES + 9 + MAX_KEY_BYTES + MAX_VALUE_BYTES;
/// Fixed seed of every table's Bloom filter.
const BLOOM_SEED: u64 = 0x5eed_b100_f11e_7000;

const KIND_VALUE: u8 = 1;
const KIND_TOMBSTONE: u8 = 2;

/// A decoding failure: where in the decoded bytes and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// Offset within the decoded slice.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
    /// Set when the data is from a newer format version.
    pub newer_version: Option<u32>,
}

fn bad(offset: usize, reason: impl Into<String>) -> FormatError {
    FormatError { offset: offset as u64, reason: reason.into(), newer_version: None }
}

/// The decoded footer of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    /// Codec of the data blocks.
    pub compression: Compression,
    /// Where the Bloom block starts.
    pub bloom_offset: u64,
    /// Its length (checksum included).
    pub bloom_len: u32,
    /// Where the index block starts.
    pub index_offset: u64,
    /// Its length (checksum included).
    pub index_len: u32,
    /// Number of entries in the table.
    pub entries: u64,
}

/// One index entry: the block's last key and where the block is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockHandle {
    /// The largest key in the block.
    pub last_key: Vec<u8>,
    /// File offset of the block.
    pub offset: u64,
    /// Its length on disk (checksum included).
    pub len: u32,
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| bad(self.at, "truncated"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, FormatError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
    fn done(&self) -> bool {
        self.at == self.buf.len()
    }
}

/// Splits `raw` into its body and verifies the trailing CRC32C.
fn checked_body(raw: &[u8]) -> Result<&[u8], FormatError> {
    if raw.len() < 4 {
        return Err(bad(0, "shorter than its checksum"));
    }
    let (body, crc) = raw.split_at(raw.len() - 4);
    let mut b = [0u8; 4];
    b.copy_from_slice(crc);
    if crc32c::crc32c(body) != u32::from_le_bytes(b) {
        return Err(bad(body.len(), "checksum mismatch"));
    }
    Ok(body)
}

fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

/// Decodes and verifies a footer.
pub fn decode_footer(raw: &[u8]) -> Result<Footer, FormatError> {
    if raw.len() != FOOTER_BYTES {
        return Err(bad(0, format!("footer of {} bytes, expected {FOOTER_BYTES}", raw.len())));
    }
    let body = checked_body(raw)?;
    let mut r = Reader { buf: body, at: 0 };
    if r.u64()? != MAGIC {
        return Err(bad(0, "bad magic number: not an SSTable"));
    }
    let version = r.u32()?;
    if version > FORMAT_VERSION {
        let mut e = bad(8, format!("format version {version}, this build reads up to {FORMAT_VERSION}"));
        e.newer_version = Some(version);
        return Err(e);
    }
    let compression = Compression::from_tag(r.u8()?).ok_or_else(|| bad(12, "unknown compression"))?;
    Ok(Footer {
        compression,
        bloom_offset: r.u64()?,
        bloom_len: r.u32()?,
        index_offset: r.u64()?,
        index_len: r.u32()?,
        entries: r.u64()?,
    })
}

fn encode_footer(f: &Footer) -> Vec<u8> {
    let mut b = Vec::with_capacity(FOOTER_BYTES);
    b.extend_from_slice(&MAGIC.to_le_bytes());
    b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    b.push(f.compression.tag());
    b.extend_from_slice(&f.bloom_offset.to_le_bytes());
    b.extend_from_slice(&f.bloom_len.to_le_bytes());
    b.extend_from_slice(&f.index_offset.to_le_bytes());
    b.extend_from_slice(&f.index_len.to_le_bytes());
    b.extend_from_slice(&f.entries.to_le_bytes());
    let out = with_crc(b);
    debug_assert_eq!(out.len(), FOOTER_BYTES);
    out
}

/// Verifies a data block's checksum and decompresses it.
pub fn block_plain(raw: &[u8], compression: Compression) -> Result<Vec<u8>, FormatError> {
    let body = checked_body(raw)?;
    let mut r = Reader { buf: body, at: 0 };
    let len = r.u32()? as usize;
    if len > MAX_BLOCK_BYTES {
        return Err(bad(0, format!("block claims {len} uncompressed bytes")));
    }
    let plain = compression.decompress(&body[4..], len).map_err(|e| bad(4, e))?;
    if plain.len() != len {
        return Err(bad(0, "decompressed length differs from the header"));
    }
    Ok(plain)
}

/// Decodes and verifies a data block into its entries, in order.
pub fn decode_block(raw: &[u8], compression: Compression) -> Result<Vec<(Vec<u8>, Slot)>, FormatError> {
    decode_entries(&block_plain(raw, compression)?)
}

/// One entry read in place from a decompressed block.
struct RawEntry<'a> {
    /// The key bytes.
    key: &'a [u8],
    /// Value or tombstone.
    kind: u8,
    /// The value bytes (a tombstone's timestamp).
    value: &'a [u8],
}

fn next_raw<'a>(r: &mut Reader<'a>) -> Result<RawEntry<'a>, FormatError> {
    let at = r.at;
    let key_len = r.u32()? as usize;
    let kind = r.u8()?;
    let value_len = r.u32()? as usize;
    if key_len > MAX_KEY_BYTES || value_len > MAX_VALUE_BYTES {
        return Err(bad(at, "entry lengths out of range"));
    }
    Ok(RawEntry { key: r.take(key_len)?, kind, value: r.take(value_len)? })
}

fn slot_of(e: &RawEntry<'_>, at: usize) -> Result<Slot, FormatError> {
    match (e.kind, e.value.len()) {
        (KIND_VALUE, _) => Ok(Slot::Value(e.value.to_vec())),
        (KIND_TOMBSTONE, 8) => {
            let mut b = [0u8; 8];
            b.copy_from_slice(e.value);
            Ok(Slot::Tombstone { deleted_at_ms: u64::from_le_bytes(b) })
        }
        _ => Err(bad(at, "unknown entry kind")),
    }
}

/// Finds `key` in a decompressed block without decoding the other entries.
pub fn search_block(plain: &[u8], key: &[u8]) -> Result<Option<Slot>, FormatError> {
    let mut r = Reader { buf: plain, at: 0 };
    while !r.done() {
        let at = r.at;
        let e = next_raw(&mut r)?;
        match e.key.cmp(key) {
            std::cmp::Ordering::Less => continue,
            std::cmp::Ordering::Equal => return slot_of(&e, at).map(Some),
            std::cmp::Ordering::Greater => return Ok(None),
        }
    }
    Ok(None)
}

fn decode_entries(plain: &[u8]) -> Result<Vec<(Vec<u8>, Slot)>, FormatError> {
    let mut r = Reader { buf: plain, at: 0 };
    let mut out: Vec<(Vec<u8>, Slot)> = Vec::new();
    while !r.done() {
        let at = r.at;
        let e = next_raw(&mut r)?;
        if out.last().is_some_and(|(prev, _)| prev.as_slice() >= e.key) {
            return Err(bad(at, "keys out of order"));
        }
        out.push((e.key.to_vec(), slot_of(&e, at)?));
    }
    Ok(out)
}

/// Decodes and verifies an index block.
pub fn decode_index(raw: &[u8]) -> Result<Vec<BlockHandle>, FormatError> {
    let body = checked_body(raw)?;
    let mut r = Reader { buf: body, at: 0 };
    let mut out: Vec<BlockHandle> = Vec::new();
    while !r.done() {
        let key_len = r.u32()? as usize;
        if key_len > MAX_KEY_BYTES {
            return Err(bad(r.at, "index key too long"));
        }
        let last_key = r.take(key_len)?.to_vec();
        let h = BlockHandle { last_key, offset: r.u64()?, len: r.u32()? };
        if out.last().is_some_and(|p| p.last_key >= h.last_key) {
            return Err(bad(r.at, "index keys out of order"));
        }
        out.push(h);
    }
    Ok(out)
}

fn decode_bloom(raw: &[u8]) -> Result<BloomFilter, FormatError> {
    let body = checked_body(raw)?;
    let mut r = Reader { buf: body, at: 0 };
    let hashes = r.u32()?;
    let seed = r.u64()?;
    if body.len() < 12 || (body.len() - 12) % 8 != 0 || body.len() == 12 || hashes == 0 {
        return Err(bad(0, "malformed Bloom filter"));
    }
    let words: Vec<u64> = body[12..]
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect();
    Ok(BloomFilter::from_vec(words).seed(&u128::from(seed)).hashes(hashes))
}

fn encode_bloom(bloom: &BloomFilter) -> Vec<u8> {
    let mut b = Vec::with_capacity(12 + bloom.as_slice().len() * 8);
    b.extend_from_slice(&bloom.num_hashes().to_le_bytes());
    b.extend_from_slice(&BLOOM_SEED.to_le_bytes());
    for w in bloom.as_slice() {
        b.extend_from_slice(&w.to_le_bytes());
    }
    with_crc(b)
}

fn encode_entry(key: &[u8], slot: &Slot, out: &mut Vec<u8>) {
    let (kind, value): (u8, std::borrow::Cow<'_, [u8]>) = match slot {
        Slot::Value(v) => (KIND_VALUE, v.as_slice().into()),
        Slot::Tombstone { deleted_at_ms } => (KIND_TOMBSTONE, deleted_at_ms.to_le_bytes().to_vec().into()),
    };
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&value);
}

/// Writes a table from entries given in strictly increasing key order.
#[derive(Debug)]
pub struct TableBuilder {
    /// The file being written (a temporary name until `finish`).
    file: File,
    /// Its path.
    path: PathBuf,
    /// Codec of the data blocks.
    compression: Compression,
    /// Simulated disk capacity (tests).
    budget: Option<Arc<DiskBudget>>,
    /// Entries of the block being filled, uncompressed.
    block: Vec<u8>,
    /// The last key added, to enforce order and to index the block.
    last_key: Option<Vec<u8>>,
    /// Index of the blocks written so far.
    index: Vec<BlockHandle>,
    /// Hashes of every key, for the Bloom filter built at the end.
    key_hashes: Vec<u64>,
    /// Bytes written so far (the next block's offset).
    offset: u64,
    /// Entries added.
    entries: u64,
    /// Bloom filter bits per key.
    bloom_bits_per_key: u32,
}

impl TableBuilder {
    /// Starts a table at `path`.
    pub fn create(
        path: &Path,
        compression: Compression,
        bloom_bits_per_key: u32,
        budget: Option<Arc<DiskBudget>>,
    ) -> Result<Self, LsmError> {
        Ok(TableBuilder {
            file: disk::create(path)?,
            path: path.to_path_buf(),
            compression,
            budget,
            block: Vec::with_capacity(BLOCK_TARGET_BYTES * 2),
            last_key: None,
            index: Vec::new(),
            key_hashes: Vec::new(),
            offset: 0,
            entries: 0,
            bloom_bits_per_key: bloom_bits_per_key.max(1),
        })
    }

    /// Adds an entry; keys must come in strictly increasing order.
    pub fn add(&mut self, key: &[u8], slot: &Slot) -> Result<(), LsmError> {
        assert!(self.last_key.as_deref().is_none_or(|k| k < key), "SSTable keys must be strictly increasing");
        encode_entry(key, slot, &mut self.block);
        self.key_hashes.push(bloom_hash(key));
        self.last_key = Some(key.to_vec());
        self.entries += 1;
        if self.block.len() >= BLOCK_TARGET_BYTES {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.offset + self.block.len() as u64
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), LsmError> {
        disk::write_all(&self.file, bytes, self.budget.as_deref(), &self.path)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), LsmError> {
        let Some(last_key) = self.last_key.clone() else {
            return Ok(());
        };
        if self.block.is_empty() {
            return Ok(());
        }
        let mut body = (self.block.len() as u32).to_le_bytes().to_vec();
        let packed = self.compression.compress(&self.block).map_err(disk::io_err("compress a block of", &self.path))?;
        body.extend_from_slice(&packed);
        let raw = with_crc(body);
        let handle = BlockHandle { last_key, offset: self.offset, len: raw.len() as u32 };
        self.write(&raw)?;
        self.index.push(handle);
        self.block.clear();
        Ok(())
    }

    /// Writes the Bloom filter, index and footer and fsyncs the file.
    /// Returns the file's size.
    pub fn finish(mut self) -> Result<u64, LsmError> {
        self.flush_block()?;
        let bits = (self.key_hashes.len().max(1) * self.bloom_bits_per_key as usize).max(64);
        let mut bloom =
            BloomFilter::with_num_bits(bits).seed(&u128::from(BLOOM_SEED)).expected_items(self.key_hashes.len().max(1));
        for h in &self.key_hashes {
            bloom.insert_hash(*h);
        }
        let bloom_raw = encode_bloom(&bloom);
        let bloom_offset = self.offset;
        self.write(&bloom_raw)?;
        let index_raw = self.encode_index();
        let index_offset = self.offset;
        self.write(&index_raw)?;
        let footer = encode_footer(&Footer {
            compression: self.compression,
            bloom_offset,
            bloom_len: bloom_raw.len() as u32,
            index_offset,
            index_len: index_raw.len() as u32,
            entries: self.entries,
        });
        self.write(&footer)?;
        disk::sync_file(&self.file, &self.path)?;
        Ok(self.offset)
    }

    fn encode_index(&self) -> Vec<u8> {
        let mut b = Vec::new();
        for h in &self.index {
            b.extend_from_slice(&(h.last_key.len() as u32).to_le_bytes());
            b.extend_from_slice(&h.last_key);
            b.extend_from_slice(&h.offset.to_le_bytes());
            b.extend_from_slice(&h.len.to_le_bytes());
        }
        with_crc(b)
    }
}

/// The hash a key is entered into Bloom filters with (stable across runs).
fn bloom_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// An open, immutable table: index and Bloom filter in memory, data blocks
/// read (and verified) on demand.
#[derive(Debug)]
pub struct Table {
    /// The file, read with positional reads so readers share it.
    file: File,
    /// Its path, for errors.
    path: PathBuf,
    /// The decoded footer.
    footer: Footer,
    /// One handle per data block, in key order.
    index: Vec<BlockHandle>,
    /// The table's Bloom filter.
    bloom: BloomFilter,
    /// The file's size in bytes.
    size_bytes: u64,
    /// The engine's block cache, with this table's id as part of the key.
    cache: Option<(Arc<BlockCache>, u64)>,
}

/// What a point lookup in one table found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The Bloom filter ruled the key out.
    BloomNegative,
    /// The filter said maybe, but the table does not hold the key.
    FalsePositive,
    /// The table holds the key.
    Found(Slot),
}

impl Table {
    /// Opens and verifies the footer, index and Bloom filter of a table.
    pub fn open(path: &Path) -> Result<Table, LsmError> {
        let file = File::open(path).map_err(disk::io_err("open", path))?;
        let size_bytes = file.metadata().map_err(disk::io_err("stat", path))?.len();
        if size_bytes < FOOTER_BYTES as u64 {
            return Err(corrupt(path, 0, "SSTable footer", "file shorter than a footer"));
        }
        let footer_at = size_bytes - FOOTER_BYTES as u64;
        let raw = read_at(&file, path, footer_at, FOOTER_BYTES)?;
        let footer = decode_footer(&raw).map_err(|e| format_err(path, footer_at, "SSTable footer", e))?;
        let index_raw = read_region(&file, path, footer.index_offset, footer.index_len, footer_at)?;
        let index = decode_index(&index_raw).map_err(|e| format_err(path, footer.index_offset, "SSTable index", e))?;
        let bloom_raw = read_region(&file, path, footer.bloom_offset, footer.bloom_len, footer_at)?;
        let bloom =
            decode_bloom(&bloom_raw).map_err(|e| format_err(path, footer.bloom_offset, "SSTable Bloom filter", e))?;
        Ok(Table { file, path: path.to_path_buf(), footer, index, bloom, size_bytes, cache: None })
    }

    /// Opens a table whose blocks go through `cache` under `id`.
    pub fn open_cached(path: &Path, id: u64, cache: Arc<BlockCache>) -> Result<Table, LsmError> {
        let mut t = Table::open(path)?;
        t.cache = Some((cache, id));
        Ok(t)
    }

    /// Block `i`, decompressed and verified: from the cache when it is
    /// there, else from disk (then cached if `fill` is set).
    fn plain_block(&self, i: usize, fill: bool) -> Result<Arc<Vec<u8>>, LsmError> {
        if let Some((cache, id)) = &self.cache {
            if let Some(b) = cache.get(*id, i as u32) {
                return Ok(b);
            }
        }
        let h = &self.index[i];
        let raw = read_region(&self.file, &self.path, h.offset, h.len, self.footer.bloom_offset)?;
        let plain = block_plain(&raw, self.footer.compression)
            .map_err(|e| format_err(&self.path, h.offset, "SSTable block", e))?;
        let plain = Arc::new(plain);
        if let (Some((cache, id)), true) = (&self.cache, fill) {
            cache.insert(*id, i as u32, Arc::clone(&plain));
        }
        Ok(plain)
    }

    /// Looks `key` up: Bloom filter, then index, then one verified block.
    pub fn get(&self, key: &[u8]) -> Result<Lookup, LsmError> {
        if !self.bloom.contains_hash(bloom_hash(key)) {
            return Ok(Lookup::BloomNegative);
        }
        let i = self.index.partition_point(|h| h.last_key.as_slice() < key);
        if i == self.index.len() {
            return Ok(Lookup::FalsePositive);
        }
        let plain = self.plain_block(i, true)?;
        let found =
            search_block(&plain, key).map_err(|e| format_err(&self.path, self.index[i].offset, "SSTable block", e))?;
        Ok(found.map_or(Lookup::FalsePositive, Lookup::Found))
    }

    /// Reads, verifies and decodes data block `i`.
    pub fn read_block(&self, i: usize) -> Result<Vec<(Vec<u8>, Slot)>, LsmError> {
        self.read_block_filling(i, true)
    }

    fn read_block_filling(&self, i: usize, fill: bool) -> Result<Vec<(Vec<u8>, Slot)>, LsmError> {
        let plain = self.plain_block(i, fill)?;
        decode_entries(&plain).map_err(|e| format_err(&self.path, self.index[i].offset, "SSTable block", e))
    }

    /// Reads and verifies every data block (not cached): the open-time
    /// scrub that finds a corrupt block before any read could reach it.
    pub fn verify(&self) -> Result<(), LsmError> {
        for i in 0..self.block_count() {
            self.read_block_filling(i, false)?;
        }
        Ok(())
    }

    /// Index of the first block that may hold keys `>= from`.
    pub fn first_block_from(&self, from: &[u8]) -> usize {
        self.index.partition_point(|h| h.last_key.as_slice() < from)
    }

    /// Number of data blocks.
    pub fn block_count(&self) -> usize {
        self.index.len()
    }

    /// Number of entries (tombstones included).
    pub fn entries(&self) -> u64 {
        self.footer.entries
    }

    /// File size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_at(file: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>, LsmError> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset).map_err(disk::io_err("read", path))?;
    Ok(buf)
}

/// Reads `len` bytes at `offset`, which must end at or before `limit`.
fn read_region(file: &File, path: &Path, offset: u64, len: u32, limit: u64) -> Result<Vec<u8>, LsmError> {
    let end = offset.checked_add(u64::from(len));
    if end.is_none_or(|e| e > limit) {
        return Err(corrupt(path, offset, "SSTable region", "points outside the file"));
    }
    read_at(file, path, offset, len as usize)
}

fn corrupt(path: &Path, offset: u64, what: &'static str, reason: &str) -> LsmError {
    LsmError::Corrupt { what, path: path.to_path_buf(), offset, reason: reason.to_string() }
}

fn format_err(path: &Path, base: u64, what: &'static str, e: FormatError) -> LsmError {
    match e.newer_version {
        Some(found) => LsmError::NewerFormat { path: path.to_path_buf(), found, supported: FORMAT_VERSION },
        None => LsmError::Corrupt { what, path: path.to_path_buf(), offset: base + e.offset, reason: e.reason },
    }
}

/// An owning cursor over a table's entries with keys `>= from`.
#[derive(Debug)]
pub struct TableCursor {
    /// The table walked.
    table: Arc<Table>,
    /// The next block to load.
    next_block: usize,
    /// The loaded block, decompressed and verified; entries are decoded
    /// from it one at a time, so a short scan allocates only for the
    /// entries it actually returns.
    block: Option<Arc<Vec<u8>>>,
    /// Offset of the next entry in `block`.
    pos: usize,
    /// Offset in the file of the loaded block (for errors).
    block_offset: u64,
    /// Where the walk starts.
    from: Vec<u8>,
    /// Whether blocks read go into the block cache (not for compaction,
    /// which reads everything once and would evict the hot blocks).
    fill_cache: bool,
}

impl TableCursor {
    /// A cursor at the first key `>= from`.
    pub fn new(table: Arc<Table>, from: &[u8]) -> Self {
        let next_block = table.first_block_from(from);
        TableCursor { table, next_block, block: None, pos: 0, block_offset: 0, from: from.to_vec(), fill_cache: true }
    }

    /// A cursor over the whole table that leaves the block cache alone.
    pub fn uncached(table: Arc<Table>) -> Self {
        TableCursor { fill_cache: false, ..TableCursor::new(table, b"") }
    }

    /// The next entry `>= from`, loading blocks as needed.
    fn advance(&mut self) -> Result<Option<(Vec<u8>, Slot)>, LsmError> {
        loop {
            if let Some(block) = &self.block {
                if self.pos < block.len() {
                    let mut r = Reader { buf: block, at: self.pos };
                    let at = self.pos;
                    let e = next_raw(&mut r).and_then(|e| slot_of(&e, at).map(|s| (e.key, s)));
                    let (key, slot) =
                        e.map_err(|e| format_err(&self.table.path, self.block_offset, "SSTable block", e))?;
                    self.pos = r.at;
                    if key >= self.from.as_slice() {
                        return Ok(Some((key.to_vec(), slot)));
                    }
                    continue;
                }
            }
            if self.next_block >= self.table.block_count() {
                return Ok(None);
            }
            let i = self.next_block;
            self.block = Some(self.table.plain_block(i, self.fill_cache)?);
            self.block_offset = self.table.index[i].offset;
            self.pos = 0;
            self.next_block += 1;
        }
    }
}

impl Iterator for TableCursor {
    type Item = Result<(Vec<u8>, Slot), LsmError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.advance() {
            Ok(item) => item.map(Ok),
            Err(e) => {
                self.next_block = usize::MAX;
                self.block = None;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(dir: &Path, n: u32, compression: Compression) -> PathBuf {
        let path = dir.join("t.sst");
        let mut b = TableBuilder::create(&path, compression, 10, None).unwrap();
        for i in 0..n {
            let slot = if i % 7 == 0 {
                Slot::Tombstone { deleted_at_ms: u64::from(i) }
            } else {
                Slot::Value(vec![i as u8; 100])
            };
            b.add(format!("key{i:06}").as_bytes(), &slot).unwrap();
        }
        b.finish().unwrap();
        path
    }

    #[test]
    fn write_then_read_with_both_codecs() {
        for c in [Compression::Lz4, Compression::Zstd] {
            let dir = tempfile::tempdir().unwrap();
            let t = Arc::new(Table::open(&build(dir.path(), 1000, c)).unwrap());
            assert!(t.block_count() > 10);
            assert_eq!(t.get(b"key000001").unwrap(), Lookup::Found(Slot::Value(vec![1; 100])));
            assert!(matches!(t.get(b"key000007").unwrap(), Lookup::Found(Slot::Tombstone { .. })));
            assert_ne!(t.get(b"nope").unwrap(), Lookup::Found(Slot::Value(vec![])));
            let walked: Vec<_> = TableCursor::new(t, b"key000990").map(|r| r.unwrap().0).collect();
            assert_eq!(walked.len(), 10);
        }
    }

    #[test]
    fn every_byte_flip_in_a_block_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = build(dir.path(), 200, Compression::Lz4);
        let t = Table::open(&path).unwrap();
        let h = t.index[0].clone();
        let bytes = std::fs::read(&path).unwrap();
        let raw = &bytes[h.offset as usize..(h.offset + u64::from(h.len)) as usize];
        for i in 0..raw.len() {
            let mut bad = raw.to_vec();
            bad[i] ^= 0x10;
            assert!(decode_block(&bad, Compression::Lz4).is_err(), "flip at {i}");
        }
    }
}
