//! Fuzzes the snapshot file decoder, `cairn::durable::snapshot_file::decode_snapshot_bytes`.
//!
//! Properties, beyond "never panics": a snapshot that decodes visited exactly the header's
//! `entry_count` entries, in strictly ascending key order, each with a key of 1..=65,536
//! bytes and a version at most the snapshot's; visited keys ascend even when a later block
//! fails; a failure is `Corrupted` at an offset inside the input. Each input is checked as
//! given and once more with its header, block and footer checksums recomputed, so the fuzzer
//! reaches the structural checks behind them. The check is copied in
//! `crates/cairn/tests/fuzz_corpus.rs`, which replays the corpus as an ordinary test.
#![no_main]

use cairn::durable::snapshot_file::{decode_snapshot_bytes, SnapshotError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    check_snapshot(bytes);
    check_snapshot(&reseal_snapshot(bytes));
});

/// Decodes `bytes` as a snapshot and asserts the properties; returns whether it decoded.
fn check_snapshot(bytes: &[u8]) -> bool {
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
fn reseal_snapshot(bytes: &[u8]) -> Vec<u8> {
    let mut resealed = bytes.to_vec();
    let read_u32 = |bytes: &[u8], at: usize| -> Option<usize> {
        let field = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(field)).ok()
    };
    if resealed.len() < 96 {
        return resealed;
    }
    let header_crc = crc32c::crc32c(&resealed[..60]);
    resealed[60..64].copy_from_slice(&header_crc.to_le_bytes());
    let block_count = resealed
        .get(40..48)
        .and_then(|field| field.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    let footer_offset = resealed.len() - 32;
    let (mut offset, mut chain) = (64_usize, 0_u32);
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
