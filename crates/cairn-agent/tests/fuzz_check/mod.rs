//! The property check of the `agent_records` fuzz target, shared with the corpus replay test
//! (`tests/fuzz_corpus.rs`) so the fuzzer and the replay check exactly the same thing.

use cairn_agent::fuzzing::decode_any;

/// Decodes `bytes` as each stored record of `cairn-agent` (event envelope, history step, span,
/// history base) and checks what must hold: no decoder panics; a decoded record re-encodes to
/// exactly `bytes` (a base, whose maps are canonical, round-trips); every strict prefix of a
/// decoded input is refused by every decoder. Returns how many decoders accepted it.
pub fn check_agent_records(bytes: &[u8]) -> usize {
    let decoded = decode_any(bytes).unwrap_or_else(|e| panic!("property broken: {e}"));
    if decoded > 0 {
        for len in [0, bytes.len() / 2, bytes.len().saturating_sub(1)] {
            if let Some(prefix) = bytes.get(..len) {
                assert_eq!(
                    decode_any(prefix).unwrap_or_else(|e| panic!("property broken: {e}")),
                    0,
                    "strict prefix of {len} bytes decoded"
                );
            }
        }
    }
    decoded
}
