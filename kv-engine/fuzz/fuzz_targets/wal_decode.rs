//! Random bytes through the WAL decoder: never a panic, never an
//! allocation sized by the input (the decoder only borrows from it).
//!
//! ```text
//! cargo fuzz run wal_decode -- -max_total_time=60
//! ```
#![no_main]

use std::path::Path;

use kv_engine::wal::format::{parse, segment_header};
use kv_engine::wal::reader::replay;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The bytes as a whole segment, newest or not...
    for last in [true, false] {
        let mut changes = 0usize;
        let _ = replay(Path::new("wal-1.log"), 1, data, last, |group| {
            changes += group.len()
        });
    }
    // ...as the frames of a segment with a valid header...
    let mut segment = segment_header(1).to_vec();
    segment.extend_from_slice(data);
    let mut changes = 0usize;
    if let Ok(r) = replay(Path::new("wal-1.log"), 1, &segment, true, |group| {
        changes += group.len()
    }) {
        assert!(r.valid_len as usize <= segment.len());
    }
    // ...and as a single frame.
    let _ = parse(data);
});
