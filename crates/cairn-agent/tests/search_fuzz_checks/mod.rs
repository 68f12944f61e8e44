//! The property check of the `agent_search` fuzz target, in one place: the corpus replay
//! (`tests/search_fuzz_corpus.rs`) and `fuzz/fuzz_targets/agent_search.rs` both include this
//! file, so the fuzzer and the replay check exactly the same properties.
//!
//! One input goes through every decoder of the search index's stored bytes: the document
//! record, the posting value, the counter value, the posting block and the posting key
//! suffix. Each must return
//! `Ok` or a typed error, never panic, and whatever decodes must re-encode to exactly the
//! input (the encodings are canonical) and obey the documented invariants.

#![allow(dead_code)]

use cairn_agent::search::format::{
    decode_block, decode_counter, decode_posting, decode_record, encode_block, encode_counter,
    encode_posting, encode_record, split_suffix, Posting, BLOCK_POSTINGS_MAX, COUNTER_BYTES,
    POSTING_BYTES,
};
use cairn_agent::search::limits::{
    DOC_ID_BYTES_MAX, RUN_ID_BYTES_MAX, TAGS_PER_DOC_MAX, TERM_BYTES_MAX, TEXT_BYTES_MAX,
};

/// What decoded from one input: one flag per decoder.
#[allow(
    clippy::struct_excessive_bools,
    reason = "one independent flag per decoder"
)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub record: bool,
    pub posting: bool,
    pub counter: bool,
    pub block: bool,
    pub suffix: bool,
}

/// Runs `bytes` through every decoder and asserts the properties.
pub fn check_search_bytes(bytes: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    if let Ok(record) = decode_record(bytes) {
        decoded.record = true;
        assert_eq!(
            encode_record(&record),
            bytes,
            "a record re-encodes to its bytes"
        );
        assert!(!record.run.is_empty() && record.run.len() <= RUN_ID_BYTES_MAX);
        assert!(record.tags.len() <= TAGS_PER_DOC_MAX);
        assert!(record.tags.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(record.terms.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert!(record
            .terms
            .iter()
            .all(|(term, tf)| { !term.is_empty() && term.len() <= TERM_BYTES_MAX && *tf > 0 }));
        let total: u64 = record.terms.iter().map(|(_, tf)| u64::from(*tf)).sum();
        assert_eq!(total, u64::from(record.doc_len));
        assert!(record.text.len() <= TEXT_BYTES_MAX);
    }
    if let Ok(posting) = decode_posting(bytes) {
        decoded.posting = true;
        assert_eq!(bytes.len(), POSTING_BYTES);
        assert_eq!(
            encode_posting(&posting),
            bytes,
            "a posting re-encodes to its bytes"
        );
        assert!(posting.term_frequency >= 1 && posting.term_frequency <= posting.doc_len);
    }
    if let Ok(counter) = decode_counter(bytes) {
        decoded.counter = true;
        assert_eq!(bytes.len(), COUNTER_BYTES);
        assert_eq!(
            encode_counter(&counter),
            bytes,
            "a counter re-encodes to its bytes"
        );
        assert!(counter.documents > 0);
    }
    let mut entries: Vec<(&[u8], Posting)> = Vec::new();
    if let Ok(count) = decode_block(bytes, |suffix, posting| entries.push((suffix, posting))) {
        decoded.block = true;
        assert!((1..=BLOCK_POSTINGS_MAX).contains(&count) && count == entries.len());
        assert!(entries.windows(2).all(|pair| pair[0].0 < pair[1].0));
        let encoded = encode_block(entries.iter().map(|(suffix, posting)| (*suffix, posting)));
        assert_eq!(encoded, bytes, "a block re-encodes to its bytes");
    }
    if let Ok((run, doc_id)) = split_suffix(bytes) {
        decoded.suffix = true;
        assert!(!run.is_empty() && run.len() <= RUN_ID_BYTES_MAX);
        assert!(!doc_id.is_empty() && doc_id.len() <= DOC_ID_BYTES_MAX);
        let mut joined = vec![u8::try_from(run.len()).expect("checked above")];
        joined.extend_from_slice(run);
        joined.extend_from_slice(doc_id);
        assert_eq!(joined, bytes, "a suffix rejoins to its bytes");
    }
    decoded
}
