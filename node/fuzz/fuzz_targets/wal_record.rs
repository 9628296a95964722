//! Fuzzes the WAL record decoder: arbitrary bytes must decode to a record
//! or an error, never panic, and a decoded record must re-encode to the
//! exact bytes it was read from (so nothing unchecked was accepted).
//!
//! Random bytes almost never pass the CRCs, so each input is also wrapped
//! in a valid header (length and checksums computed) to drive the payload
//! parser behind them.
#![no_main]

use dynamo_node::storage::lsm::wal::{decode_record, encode_record};
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    if let Ok((op, used)) = decode_record(bytes) {
        assert!(used <= bytes.len());
        let mut again = Vec::new();
        encode_record(&op, &mut again);
        assert_eq!(
            &again[..],
            &bytes[..used],
            "decoded record does not re-encode to its bytes"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let len = (data.len() as u32).to_le_bytes();
    let mut framed = Vec::with_capacity(12 + data.len());
    framed.extend_from_slice(&len);
    framed.extend_from_slice(&crc32c::crc32c(&len).to_le_bytes());
    framed.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    framed.extend_from_slice(data);
    check(&framed);
});
