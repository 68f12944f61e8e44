//! Fuzzes the WAL segment header decoder, `cairn_log::segment::SegmentHeader::decode`.
//!
//! Properties, beyond "never panics": a header that decodes re-encodes to exactly its first
//! 64 bytes, and its first LSN and size are in range; a refusal names its reason. Each input is
//! checked as given and once more with its checksum recomputed, so the fuzzer reaches the
//! field checks behind the CRC. The check is copied in `crates/cairn/tests/fuzz_corpus.rs`,
//! which replays the corpus as an ordinary test.
#![no_main]

#[path = "../../crates/cairn/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

use fuzz_checks::{check_segment_header, reseal_segment_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    check_segment_header(bytes);
    check_segment_header(&reseal_segment_header(bytes));
});
