//! The property checks of the fuzz targets, in one place: `crates/cairn/tests/fuzz_corpus.rs`
//! replays the corpora through them as ordinary tests, and each `fuzz/fuzz_targets/*.rs`
//! includes this same file (`#[path]`), since the fuzz crate is its own workspace and cannot
//! import a test. Each check decodes untrusted bytes, asserts what must hold, and returns
//! whether the input decoded; each `reseal_*` recomputes the input's checksums so the fuzzer
//! also reaches the checks behind the CRC.

#![allow(dead_code)]

use cairn::fuzzing::{
    decode_commit_body, decode_commit_count, decode_snapshot_bytes, DecodedWrite, SnapshotError,
};
use cairn_log::frame::{decode_frame, encode_frame, Decoded};
use cairn_log::segment::SegmentHeader;

/// A small payload limit, so short inputs reach the "length above the limit" check too.
pub const SMALL_PAYLOAD_BYTES_MAX: usize = 1024;

/// Decodes `bytes` as a frame and asserts the properties; returns whether a frame decoded.
pub fn check_wal_frame(bytes: &[u8]) -> bool {
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
pub fn reseal_wal_frame(bytes: &[u8]) -> Vec<u8> {
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

/// Decodes `bytes` as a snapshot and asserts the properties; returns whether it decoded.
pub fn check_snapshot(bytes: &[u8]) -> bool {
    let (mut visited, mut version_max) = (0_u64, 0_u64);
    let mut previous_key: Option<Vec<u8>> = None;
    let result = decode_snapshot_bytes(bytes, &mut |entry| {
        assert!(
            (1..=65_536).contains(&entry.key.len()),
            "key of {} bytes",
            entry.key.len()
        );
        assert!(
            previous_key.as_deref() < Some(entry.key),
            "keys out of order"
        );
        previous_key = Some(entry.key.to_vec());
        (visited, version_max) = (visited + 1, version_max.max(entry.version));
        Ok(())
    });
    match result {
        Ok(header) => {
            assert_eq!(
                visited, header.entry_count,
                "visited entries differ from the header"
            );
            assert!(
                version_max <= header.snapshot_version,
                "entry newer than the snapshot"
            );
            true
        }
        Err(SnapshotError::Corrupted { offset, .. }) => {
            assert!(offset <= bytes.len() as u64, "offset {offset} past the end");
            false
        }
        Err(other) => panic!("bytes in memory can only be Corrupted, got {other}"),
    }
}

/// `bytes` with the header checksum, each block checksum the bytes can hold (up to the
/// header's block count) and the footer checksum chaining them recomputed.
pub fn reseal_snapshot(bytes: &[u8]) -> Vec<u8> {
    let mut resealed = bytes.to_vec();
    let read_u32 = |bytes: &[u8], at: usize| -> Option<usize> {
        let field = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(field)).ok()
    };
    if resealed.len() < 112 {
        return resealed;
    }
    let header_crc = crc32c::crc32c(&resealed[..76]);
    resealed[76..80].copy_from_slice(&header_crc.to_le_bytes());
    let block_count = resealed
        .get(40..48)
        .and_then(|field| field.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    let footer_offset = resealed.len() - 32;
    let (mut offset, mut chain) = (80_usize, 0_u32);
    for _ in 0..block_count {
        let Some(block_bytes) = read_u32(&resealed, offset) else {
            break;
        };
        let crc_offset = offset.saturating_add(8).saturating_add(block_bytes);
        if crc_offset.saturating_add(4) > footer_offset {
            break;
        }
        let block_crc = crc32c::crc32c(&resealed[offset..crc_offset]);
        resealed[crc_offset..crc_offset + 4].copy_from_slice(&block_crc.to_le_bytes());
        chain = crc32c::crc32c_append(chain, &block_crc.to_le_bytes());
        offset = crc_offset + 4;
    }
    let footer_crc = crc32c::crc32c_append(chain, &resealed[footer_offset..footer_offset + 24]);
    resealed[footer_offset + 24..footer_offset + 28].copy_from_slice(&footer_crc.to_le_bytes());
    resealed
}

/// Decodes `body` as a commit record and asserts the properties; returns whether it decoded.
pub fn check_commit_record(body: &[u8]) -> bool {
    match (decode_commit_count(body), decode_commit_body(body)) {
        (Ok(count), Ok(writes)) => {
            assert_eq!(
                count,
                writes.len(),
                "the two decoders disagree on the count"
            );
            assert!(
                count * 6 <= body.len(),
                "{count} mutations in {} bytes",
                body.len()
            );
            assert!(writes
                .iter()
                .all(|(key, _)| (1..=65_536).contains(&key.len())));
            assert_eq!(encode_commit_body(&writes), body, "re-encoding differs");
            true
        }
        (Err(counted), Err(decoded)) => {
            assert_eq!(counted, decoded, "the two decoders give different reasons");
            false
        }
        (counted, decoded) => panic!("decoders disagree: {counted:?} vs {}", decoded.is_ok()),
    }
}

/// The documented body layout: count, then per write kind, key, and for a put deadline and
/// value, all little-endian with u32 lengths.
pub fn encode_commit_body(writes: &[DecodedWrite]) -> Vec<u8> {
    let length = |bytes: &[u8]| {
        u32::try_from(bytes.len())
            .expect("decoded from a u32")
            .to_le_bytes()
    };
    let count = u32::try_from(writes.len()).expect("decoded from a u32");
    let mut body = count.to_le_bytes().to_vec();
    for (key, put) in writes {
        body.push(if put.is_some() { 1 } else { 2 });
        body.extend_from_slice(&length(key));
        body.extend_from_slice(key);
        if let Some((value, deadline_millis)) = put {
            body.extend_from_slice(&deadline_millis.to_le_bytes());
            body.extend_from_slice(&length(value));
            body.extend_from_slice(value);
        }
    }
    body
}

/// Decodes `bytes` as a segment header and asserts the properties; returns whether it decoded.
pub fn check_segment_header(bytes: &[u8]) -> bool {
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

/// `bytes` with the header checksum (bytes 60..64, over 0..60) recomputed.
pub fn reseal_segment_header(bytes: &[u8]) -> Vec<u8> {
    let mut resealed = bytes.to_vec();
    if resealed.len() >= 64 {
        let crc = crc32c::crc32c(&resealed[..60]);
        resealed[60..64].copy_from_slice(&crc.to_le_bytes());
    }
    resealed
}
