//! Fuzzes the WAL record decoder: arbitrary bytes must decode to a record
//! or an error, never panic, and a decoded record must re-encode to the
//! exact bytes it was read from (so nothing unchecked was accepted).
#![no_main]

use dynamo_node::storage::lsm::wal::{decode_record, encode_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((op, used)) = decode_record(data) {
        assert!(used <= data.len());
        let mut again = Vec::new();
        encode_record(&op, &mut again);
        assert_eq!(
            &again[..],
            &data[..used],
            "decoded record does not re-encode to its bytes"
        );
    }
});
