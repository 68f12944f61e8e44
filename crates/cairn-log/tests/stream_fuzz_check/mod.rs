//! The property check of the `stream_batch` fuzz target, shared with the corpus replay test
//! (`tests/stream_fuzz_corpus.rs`) so the fuzzer and the replay check exactly the same thing.

use cairn_log::stream::{decode_batch, decode_batch_refs, encode_batch, MessageRef};

/// Decodes `bytes` as a stream batch body and checks what must hold either way: the decoder
/// does not panic; the borrowed decoder (`decode_batch_refs`) accepts exactly what the owned
/// one does and reads the same messages, whole or in part; a decoded batch re-encodes to
/// exactly `bytes`, and every strict prefix of it is refused (a batch is never mistaken for a
/// shorter one). Returns whether it decoded.
pub fn check_stream_batch(bytes: &[u8]) -> bool {
    // The borrowed decoder agrees with the owned one, on the whole batch and on a part.
    let mut refs = Vec::new();
    let borrowed = decode_batch_refs(bytes, 0..usize::MAX, &mut refs);
    let Ok(batch) = decode_batch(bytes) else {
        assert!(
            borrowed.is_err(),
            "the borrowed decoder accepted a refused batch"
        );
        assert!(
            refs.is_empty(),
            "a refused batch left borrowed messages behind"
        );
        return false;
    };
    assert_eq!(
        borrowed,
        Ok((batch.timestamp_ms, batch.messages.len())),
        "the borrowed decoder reads another header"
    );
    let owned: Vec<_> = refs.iter().map(MessageRef::to_message).collect();
    assert_eq!(
        owned, batch.messages,
        "the borrowed decoder reads other messages"
    );
    for (message, reference) in batch.messages.iter().zip(&refs) {
        assert_eq!(message.payload_bytes(), reference.payload_bytes());
        assert_eq!(message.headers.len(), reference.headers.len());
    }
    let middle = batch.messages.len() / 2;
    let mut part = Vec::new();
    let counted = decode_batch_refs(bytes, middle..middle + 1, &mut part);
    assert_eq!(counted, Ok((batch.timestamp_ms, batch.messages.len())));
    assert_eq!(part.len(), 1, "one wanted message, one borrowed");
    assert_eq!(part.first(), refs.get(middle));
    let mut again = Vec::new();
    encode_batch(&mut again, batch.timestamp_ms, &batch.messages);
    assert_eq!(again, bytes, "a decoded batch must re-encode to its bytes");
    assert!(!batch.messages.is_empty());
    for len in [0, bytes.len() / 2, bytes.len().saturating_sub(1)] {
        if let Some(prefix) = bytes.get(..len) {
            assert!(
                decode_batch(prefix).is_err(),
                "strict prefix of {len} bytes decoded"
            );
        }
    }
    true
}
