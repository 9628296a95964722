//! Fuzzes the SSTable decoders (data block with both codecs, index,
//! footer): arbitrary bytes must decode or fail cleanly, never panic or
//! allocate without bound, and decoded block keys must be strictly
//! increasing.
//!
//! Random bytes almost never pass the CRCs, so each input is also given a
//! valid trailing checksum to drive the decompressors and parsers behind
//! it.
#![no_main]

use dynamo_node::storage::lsm::sstable::{
    decode_block, decode_footer, decode_index, search_block, FOOTER_BYTES,
};
use dynamo_node::storage::lsm::Compression;
use libfuzzer_sys::fuzz_target;

fn with_crc(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    v
}

fn check(bytes: &[u8]) {
    for codec in [Compression::Lz4, Compression::Zstd] {
        if let Ok(entries) = decode_block(bytes, codec) {
            assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }
    let _ = decode_index(bytes);
    if bytes.len() >= FOOTER_BYTES {
        let _ = decode_footer(&bytes[bytes.len() - FOOTER_BYTES..]);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&with_crc(data));
    let key = data.get(..8).unwrap_or(data);
    let _ = search_block(data, key);
});
