//! The property check of the `stream_groups` fuzz target, shared with the corpus replay test
//! (`tests/stream_groups_fuzz_corpus.rs`) so the fuzzer and the replay check the same thing.

use cairn_log::stream::GroupsFile;

/// Decodes `bytes` as a stream's `GROUPS` file and checks what must hold either way: the
/// decoder does not panic; a decoded file re-encodes to exactly `bytes`, and every strict
/// prefix of it is refused. Returns whether it decoded.
pub fn check_stream_groups(bytes: &[u8]) -> bool {
    let Ok(file) = GroupsFile::decode(bytes) else {
        return false;
    };
    assert_eq!(
        file.encode(),
        bytes,
        "a decoded groups file must re-encode to its bytes"
    );
    for len in [0, bytes.len() / 2, bytes.len().saturating_sub(1)] {
        if let Some(prefix) = bytes.get(..len) {
            assert!(
                GroupsFile::decode(prefix).is_err(),
                "strict prefix of {len} bytes decoded"
            );
        }
    }
    true
}
