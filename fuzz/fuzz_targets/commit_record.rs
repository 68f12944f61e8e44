//! Fuzzes the commit record body decoder, `cairn::durable::record::fuzz_decode_commit`.
//!
//! Properties, beyond "never panics": the counting decoder and the tools' decoder
//! (`decode_commit_body`) agree; every key is 1..=65,536 bytes; a count is never more than
//! the body can hold (6 bytes per mutation at least); and the layout has one encoding, so a
//! decoded body re-encodes, by the documented layout, to exactly its bytes. The check is
//! copied in `crates/cairn/tests/fuzz_corpus.rs`, which replays the corpus as an ordinary test.
#![no_main]

use cairn::durable::record::{decode_commit_body, fuzz_decode_commit, DecodedWrite};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    check_commit_record(body);
});

/// Decodes `body` as a commit record and asserts the properties; returns whether it decoded.
fn check_commit_record(body: &[u8]) -> bool {
    match (fuzz_decode_commit(body), decode_commit_body(body)) {
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
fn encode_commit_body(writes: &[DecodedWrite]) -> Vec<u8> {
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
