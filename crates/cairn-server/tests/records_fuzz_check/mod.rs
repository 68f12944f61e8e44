//! The property of the keyspace record fuzz target (`fuzz/fuzz_targets/server_records.rs`),
//! shared with the gate's replay (`tests/records_fuzz.rs`): every decoder of a record the RESP
//! server keeps in the engine (a key's metadata record, a collection's and a stream's header,
//! an element key, a stream entry's fields, a group's record, a pending entry's record, a
//! consumer's record, a list chunk) takes
//! any bytes without panicking, and whatever one accepts encodes back to the same bytes, so a
//! record never changes meaning through a read and a write.

use cairn_server::keyspace::{
    decode, decode_consumer, decode_pending, decode_stream_fields, encode, encode_consumer,
    encode_group, encode_pending, encode_stream_fields, group_last_id, split_element_key,
    Collection, ListChunk, StreamHeader, StreamId,
};

/// Checks every decoder on `bytes`.
pub fn check_records(bytes: &[u8]) {
    if let Some(entry) = decode(bytes) {
        assert_eq!(
            encode(entry.kind, entry.deadline, entry.payload),
            bytes,
            "a metadata record re-encodes as it was"
        );
    }
    if let Some(header) = Collection::decode(bytes) {
        assert_eq!(header.encode().as_slice(), bytes);
        assert!(header.head <= header.tail);
    }
    if let Some(header) = StreamHeader::decode(bytes) {
        assert_eq!(header.encode().as_slice(), bytes);
    }
    if let Some((key, _, rest)) = split_element_key(bytes) {
        assert!(key.len() + rest.len() + 14 <= bytes.len());
    }
    if let Some(id) = StreamId::from_key_bytes(bytes) {
        assert_eq!(id.to_key_bytes().as_slice(), bytes);
    }
    if let Some(fields) = decode_stream_fields(bytes) {
        assert_eq!(fields.len() % 2, 0);
        assert_eq!(encode_stream_fields(&fields), bytes);
    }
    if let Some(last) = group_last_id(bytes) {
        assert_eq!(encode_group(last).as_slice(), bytes);
    }
    if let Some((delivered, deliveries, consumer)) = decode_pending(bytes) {
        assert_eq!(encode_pending(delivered, deliveries, consumer), bytes);
    }
    if let Some(seen) = decode_consumer(bytes) {
        assert_eq!(encode_consumer(seen).as_slice(), bytes);
    }
    if let Some(chunk) = ListChunk::decode(bytes) {
        check_chunk(&chunk, bytes);
    }
}

/// A decoded list chunk: it re-encodes as it was, holds as many elements as it says, and its
/// pops take its ends.
fn check_chunk(chunk: &ListChunk, bytes: &[u8]) {
    assert_eq!(chunk.as_bytes(), bytes);
    let elements = chunk.elements();
    assert!(!elements.is_empty());
    assert_eq!(u32::try_from(elements.len()).ok(), Some(chunk.count()));
    let rebuilt = ListChunk::of(elements.iter().copied());
    assert_eq!(rebuilt.as_ref().map(ListChunk::as_bytes), Some(bytes));
    let mut popped = chunk.clone();
    assert_eq!(popped.pop_front().as_deref(), elements.first().copied());
    if let Some(last) = elements.get(1..).and_then(<[&[u8]]>::last) {
        assert_eq!(popped.pop_back().as_deref(), Some(*last));
    }
    assert_eq!(
        usize::try_from(popped.count()).ok(),
        Some(elements.len().saturating_sub(2))
    );
}
