//! The property check of the `stream_batch` fuzz target, shared with the corpus replay test
//! (`tests/stream_fuzz_corpus.rs`) so the fuzzer and the replay check exactly the same thing.

use cairn_log::stream::{decode_batch, encode_batch};

/// Decodes `bytes` as a stream batch body and checks what must hold either way: the decoder
/// does not panic; a decoded batch re-encodes to exactly `bytes`, and every strict prefix of
/// it is refused (a batch is never mistaken for a shorter one). Returns whether it decoded.
pub fn check_stream_batch(bytes: &[u8]) -> bool {
    let Ok(batch) = decode_batch(bytes) else {
        return false;
    };
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
