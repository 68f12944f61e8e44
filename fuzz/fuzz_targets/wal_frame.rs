//! Fuzzes the WAL frame decoder, `cairn_log::frame::decode_frame`.
//!
//! Properties, beyond "never panics": a decoded frame re-encodes to exactly the bytes it was
//! decoded from; every strict prefix of it is `Incomplete`; a lower payload limit never turns
//! it into a different frame; `Incomplete` only when the buffer is shorter than the header
//! claims. Each input is checked as given and once more with its checksum recomputed, so the
//! fuzzer reaches the checks behind the CRC too. The check is copied in
//! `crates/cairn/tests/fuzz_corpus.rs`, which replays the corpus as an ordinary test.
#![no_main]

use cairn_log::frame::{decode_frame, encode_frame, Decoded};
use libfuzzer_sys::fuzz_target;

/// A small payload limit, so short inputs reach the "length above the limit" check too.
const SMALL_PAYLOAD_BYTES_MAX: usize = 1024;

fuzz_target!(|bytes: &[u8]| {
    check_wal_frame(bytes);
    check_wal_frame(&reseal_wal_frame(bytes));
});

/// Decodes `bytes` as a frame and asserts the properties; returns whether a frame decoded.
fn check_wal_frame(bytes: &[u8]) -> bool {
    // `usize::MAX`: no limit beyond the codec's own.
    let decoded = decode_frame(bytes, usize::MAX);
    let small = decode_frame(bytes, SMALL_PAYLOAD_BYTES_MAX);
    if matches!(small, Decoded::Frame { .. }) {
        assert_eq!(small, decoded, "a lower limit changed the frame");
    }
    let claimed_bytes = bytes
        .get(..4)
        .and_then(|len| len.try_into().ok())
        .map(|len| u64::from(u32::from_le_bytes(len)) + 10);
    match decoded {
        Decoded::Frame { frame, frame_bytes } => {
            let mut encoded = Vec::new();
            encode_frame(
                &mut encoded,
                frame.record_type,
                frame.lsn,
                frame.version,
                frame.body,
            );
            assert_eq!(
                bytes.get(..frame_bytes),
                Some(&encoded[..]),
                "re-encoding differs"
            );
            let prefix = bytes.get(..frame_bytes - 1).unwrap_or_default();
            assert_eq!(decode_frame(prefix, usize::MAX), Decoded::Incomplete);
            true
        }
        Decoded::Incomplete => {
            let claimed_bytes = claimed_bytes.unwrap_or(u64::MAX);
            assert!(
                (bytes.len() as u64) < claimed_bytes,
                "Incomplete, yet long enough"
            );
            false
        }
        Decoded::Invalid { reason } => {
            assert!(!reason.is_empty(), "an invalid frame names its reason");
            false
        }
    }
}

/// `bytes` with the CRC of the frame its header describes recomputed, when the buffer holds it.
fn reseal_wal_frame(bytes: &[u8]) -> Vec<u8> {
    let mut resealed = bytes.to_vec();
    let len = bytes
        .get(..4)
        .and_then(|len| len.try_into().ok())
        .map(u32::from_le_bytes);
    let crc_offset = len.and_then(|len| usize::try_from(len).ok()?.checked_add(6));
    if let Some(crc_offset) = crc_offset.filter(|&offset| offset + 4 <= bytes.len()) {
        let crc = crc32c::crc32c(&resealed[..crc_offset]);
        resealed[crc_offset..crc_offset + 4].copy_from_slice(&crc.to_le_bytes());
    }
    resealed
}
