//! Fuzzes the SSTable decoders (data block with both codecs, index, footer):
//! arbitrary bytes must decode or fail cleanly, never panic or allocate
//! without bound, and decoded block keys must be strictly increasing.
#![no_main]

use dynamo_node::storage::lsm::sstable::{decode_block, decode_footer, decode_index, FOOTER_BYTES};
use dynamo_node::storage::lsm::Compression;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for codec in [Compression::Lz4, Compression::Zstd] {
        if let Ok(entries) = decode_block(data, codec) {
            assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }
    let _ = decode_index(data);
    if data.len() >= FOOTER_BYTES {
        let _ = decode_footer(&data[..FOOTER_BYTES]);
    }
});
