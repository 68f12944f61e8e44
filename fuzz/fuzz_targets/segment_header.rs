//! Fuzzes the WAL segment header decoder, `cairn_log::segment::SegmentHeader::decode`.
//!
//! Properties, beyond "never panics": a header that decodes re-encodes to exactly its first
//! 48 bytes, and its first LSN and size are in range; a refusal names its reason. Each input is
//! checked as given and once more with its checksum recomputed, so the fuzzer reaches the
//! field checks behind the CRC. The check is copied in `crates/cairn/tests/fuzz_corpus.rs`,
//! which replays the corpus as an ordinary test.
#![no_main]

use cairn_log::segment::SegmentHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    check_segment_header(bytes);
    check_segment_header(&reseal_segment_header(bytes));
});

/// Decodes `bytes` as a segment header and asserts the properties; returns whether it decoded.
fn check_segment_header(bytes: &[u8]) -> bool {
    match SegmentHeader::decode(bytes) {
        Ok(header) => {
            let encoded = header.encode();
            assert_eq!(
                bytes.get(..encoded.len()),
                Some(&encoded[..]),
                "re-encoding differs"
            );
            assert!(header.first_lsn >= 1, "LSNs start at 1");
            assert!(
                header.segment_bytes >= encoded.len() as u64,
                "segment below its header"
            );
            true
        }
        Err(reason) => {
            assert!(!reason.is_empty(), "a refused header names its reason");
            false
        }
    }
}

/// `bytes` with the header checksum (bytes 44..48, over 0..44) recomputed.
fn reseal_segment_header(bytes: &[u8]) -> Vec<u8> {
    let mut resealed = bytes.to_vec();
    if resealed.len() >= 48 {
        let crc = crc32c::crc32c(&resealed[..44]);
        resealed[44..48].copy_from_slice(&crc.to_le_bytes());
    }
    resealed
}
