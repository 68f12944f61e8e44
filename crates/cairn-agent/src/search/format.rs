//! The search index's key layout and value encodings, byte by byte. Public so that tools and
//! the fuzz target can decode what the index stores; the layout is documented in
//! `docs/agent-search.md` and pinned by the tests below.
//!
//! Every key starts with the index's caller-given prefix `P`. All integers are little-endian.
//!
//! ```text
//! P 'p' term_len:u8 term  run_len:u8 run  doc_id   -> posting (17 bytes): the fresh tier
//! P 'b' term_len:u8 term  first suffix             -> block of postings: the compacted tier
//! P 't' tag_len:u8  tag   run_len:u8 run  doc_id   -> tag posting (empty value)
//! P 'd' doc_id                                     -> document record
//! P 'n' shard:u8                                   -> counter: documents and tokens, all runs
//! P 'r' run_len:u8 run shard:u8                    -> counter: documents and tokens of one run
//!
//! posting  = tf:u32 doc_len:u32 timestamp_ms:u64 primitive:u8
//! counter  = documents:u64 tokens:u64
//! block    = count:u16 (suffix_len:u16 suffix posting)*  1..=BLOCK_POSTINGS_MAX postings,
//!            suffixes strictly ascending, the key's suffix the first one's
//! record   = format:u8(=1) primitive:u8 timestamp_ms:u64
//!            run_len:u8 run
//!            tag_count:u8 (tag_len:u8 tag)*            tags strictly ascending, UTF-8
//!            doc_len:u32                               tokens, = the sum of the tfs
//!            term_count:u32 (term_len:u8 term tf:u32)* terms strictly ascending, UTF-8, tf >= 1
//!            text_len:u32 text                         UTF-8
//! ```
//!
//! A posting list (one term's postings, or one tag's) is the key range `P 'p' term_len term`:
//! its suffix `run_len run doc_id` orders every list the same way, so lists merge by suffix,
//! and a run's part of a list is the sub-range `P 'p' term_len term run_len run`. A term's
//! list is the union of its fresh postings (one key each, written by `index`) and its blocks
//! (written by `compact`, which moves fresh postings into blocks of up to
//! `BLOCK_POSTINGS_MAX`); a suffix is in exactly one of the two.
//!
//! The decoders take any bytes and return a typed [`DecodeError`] on anything that is not a
//! canonical encoding: lengths are checked against what is left before anything is
//! allocated, orders and limits are enforced, and nothing may trail the last field. So a
//! decoded value re-encodes to exactly its bytes (the fuzz target checks it).

use super::doc::Primitive;
use super::limits::{
    DOC_ID_BYTES_MAX, RUN_ID_BYTES_MAX, TAGS_PER_DOC_MAX, TAG_BYTES_MAX, TERM_BYTES_MAX,
    TEXT_BYTES_MAX,
};

/// Key space of term postings.
pub const SPACE_POSTING: u8 = b'p';
/// Key space of posting blocks.
pub const SPACE_BLOCK: u8 = b'b';
/// Key space of tag postings.
pub const SPACE_TAG: u8 = b't';
/// Key space of document records.
pub const SPACE_DOC: u8 = b'd';
/// Key space of the all-runs counters.
pub const SPACE_COUNTER: u8 = b'n';
/// Key space of the per-run counters.
pub const SPACE_RUN_COUNTER: u8 = b'r';

/// Bytes of an encoded posting.
pub const POSTING_BYTES: usize = 17;
/// Bytes of an encoded counter.
pub const COUNTER_BYTES: usize = 16;
/// Most postings in one block.
pub const BLOCK_POSTINGS_MAX: usize = 128;
/// The document record's format byte.
pub const RECORD_FORMAT: u8 = 1;

/// Why bytes did not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("truncated: {field} needs {needed} bytes, {left} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        left: usize,
    },
    /// A fixed-size value had the wrong length.
    #[error("{what} is {len} bytes, expected {expected}")]
    Length {
        /// Which value.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The only length allowed.
        expected: usize,
    },
    /// Bytes followed the last field.
    #[error("{0} bytes after the last field")]
    Trailing(usize),
    /// An unknown record format.
    #[error("unknown record format {0}")]
    Format(u8),
    /// An unknown primitive byte.
    #[error("unknown primitive {0}")]
    Primitive(u8),
    /// A field that must be UTF-8 is not.
    #[error("{0} is not UTF-8")]
    Utf8(&'static str),
    /// A field broke a limit, an order or an invariant.
    #[error("{0}")]
    Invalid(&'static str),
}

/// One document's entry in one term's posting list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posting {
    /// How often the term occurs in the document (at least 1).
    pub term_frequency: u32,
    /// The document's length in tokens.
    pub doc_len: u32,
    /// The document's timestamp, in ms.
    pub timestamp_ms: u64,
    /// The document's primitive.
    pub primitive: Primitive,
}

/// A scope's counts: documents and their tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Documents.
    pub documents: u64,
    /// Tokens over all of them.
    pub tokens: u64,
}

/// A document as the index stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its primitive.
    pub primitive: Primitive,
    /// Its timestamp, in ms.
    pub timestamp_ms: u64,
    /// Its run's id.
    pub run: Vec<u8>,
    /// Its distinct tags, ascending.
    pub tags: Vec<String>,
    /// Its length in tokens.
    pub doc_len: u32,
    /// Its distinct terms with their frequencies, ascending.
    pub terms: Vec<(String, u32)>,
    /// Its text.
    pub text: String,
}

// ----- keys ------------------------------------------------------------------------------------

fn key(prefix: &[u8], space: u8, extra: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 1 + extra);
    key.extend_from_slice(prefix);
    key.push(space);
    key
}

/// Appends `len:u8 bytes`. Callers have checked `bytes` against a limit below 256.
fn push_short(key: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(u8::try_from(bytes.len()).is_ok());
    key.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    key.extend_from_slice(bytes);
}

/// `P 'p' term_len term`: the key prefix of `term`'s posting list.
pub fn posting_list_key(prefix: &[u8], term: &str) -> Vec<u8> {
    let mut key = key(prefix, SPACE_POSTING, 1 + term.len());
    push_short(&mut key, term.as_bytes());
    key
}

/// `P 't' tag_len tag`: the key prefix of `tag`'s posting list.
pub fn tag_list_key(prefix: &[u8], tag: &str) -> Vec<u8> {
    let mut key = key(prefix, SPACE_TAG, 1 + tag.len());
    push_short(&mut key, tag.as_bytes());
    key
}

/// `P 'b' term_len term`: the key prefix of `term`'s blocks.
pub fn block_list_key(prefix: &[u8], term: &str) -> Vec<u8> {
    let mut key = key(prefix, SPACE_BLOCK, 1 + term.len());
    push_short(&mut key, term.as_bytes());
    key
}

/// Appends a posting suffix, `run_len run doc_id`, to a list key.
pub fn push_suffix(list_key: &mut Vec<u8>, run: &[u8], doc_id: &[u8]) {
    push_short(list_key, run);
    list_key.extend_from_slice(doc_id);
}

/// Appends `run_len run`, the suffix prefix that narrows a list to one run.
pub fn push_run(list_key: &mut Vec<u8>, run: &[u8]) {
    push_short(list_key, run);
}

/// Splits a posting suffix `run_len run doc_id` into the run and the doc id.
pub fn split_suffix(suffix: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let mut reader = Reader::new(suffix);
    let run = reader.short("run id")?;
    let doc_id = reader.rest();
    if run.is_empty() || run.len() > RUN_ID_BYTES_MAX {
        return Err(DecodeError::Invalid("run id length out of range"));
    }
    if doc_id.is_empty() || doc_id.len() > DOC_ID_BYTES_MAX {
        return Err(DecodeError::Invalid("doc id length out of range"));
    }
    Ok((run, doc_id))
}

/// `P 'd' doc_id`.
pub fn record_key(prefix: &[u8], doc_id: &[u8]) -> Vec<u8> {
    let mut key = key(prefix, SPACE_DOC, doc_id.len());
    key.extend_from_slice(doc_id);
    key
}

/// `P 'n'`: the prefix of the all-runs counters.
pub fn counters_key(prefix: &[u8]) -> Vec<u8> {
    key(prefix, SPACE_COUNTER, 1)
}

/// `P 'r' run_len run`: the prefix of one run's counters.
pub fn run_counters_key(prefix: &[u8], run: &[u8]) -> Vec<u8> {
    let mut key = key(prefix, SPACE_RUN_COUNTER, 2 + run.len());
    push_short(&mut key, run);
    key
}

/// The counter shard of `doc_id`: CRC-32C of the id (stable across releases and platforms),
/// modulo [`super::limits::COUNTER_SHARDS`].
pub fn shard_of(doc_id: &[u8]) -> u8 {
    let shards = u32::from(super::limits::COUNTER_SHARDS);
    u8::try_from(crc32c::crc32c(doc_id) % shards).unwrap_or(0)
}

// ----- values ----------------------------------------------------------------------------------

/// Encodes a posting.
pub fn encode_posting(posting: &Posting) -> [u8; POSTING_BYTES] {
    let mut bytes = [0; POSTING_BYTES];
    let parts = posting
        .term_frequency
        .to_le_bytes()
        .into_iter()
        .chain(posting.doc_len.to_le_bytes())
        .chain(posting.timestamp_ms.to_le_bytes())
        .chain([posting.primitive.to_byte()]);
    for (slot, byte) in bytes.iter_mut().zip(parts) {
        *slot = byte;
    }
    bytes
}

/// Decodes a posting.
pub fn decode_posting(bytes: &[u8]) -> Result<Posting, DecodeError> {
    if bytes.len() != POSTING_BYTES {
        return Err(DecodeError::Length {
            what: "posting",
            len: bytes.len(),
            expected: POSTING_BYTES,
        });
    }
    let mut reader = Reader::new(bytes);
    let term_frequency = reader.u32("term frequency")?;
    let doc_len = reader.u32("document length")?;
    let timestamp_ms = reader.u64("timestamp")?;
    let primitive = reader.primitive()?;
    if term_frequency == 0 || term_frequency > doc_len {
        return Err(DecodeError::Invalid(
            "term frequency is 0 or above the document length",
        ));
    }
    Ok(Posting {
        term_frequency,
        doc_len,
        timestamp_ms,
        primitive,
    })
}

/// Encodes a block of `(suffix, posting)` entries. The caller passes 1 to
/// `BLOCK_POSTINGS_MAX` valid suffixes, strictly ascending.
pub fn encode_block<'a>(
    entries: impl ExactSizeIterator<Item = (&'a [u8], &'a Posting)>,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(2 + entries.len() * 40);
    let count = u16::try_from(entries.len()).unwrap_or(u16::MAX);
    bytes.extend_from_slice(&count.to_le_bytes());
    for (suffix, posting) in entries {
        let len = u16::try_from(suffix.len()).unwrap_or(u16::MAX);
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(suffix);
        bytes.extend_from_slice(&encode_posting(posting));
    }
    bytes
}

/// Decodes a block, calling `visit` with each `(suffix, posting)` in order; stops at the first
/// error (entries already visited stay visited: callers discard the whole block on error).
pub fn decode_block<'bytes>(
    bytes: &'bytes [u8],
    mut visit: impl FnMut(&'bytes [u8], Posting),
) -> Result<usize, DecodeError> {
    let mut reader = Reader::new(bytes);
    let count = usize::from(u16::from_le_bytes(reader.array("block count")?));
    if count == 0 || count > BLOCK_POSTINGS_MAX {
        return Err(DecodeError::Invalid("block count out of range"));
    }
    let mut previous: Option<&[u8]> = None;
    for _ in 0..count {
        let len = usize::from(u16::from_le_bytes(reader.array("suffix length")?));
        let suffix = reader.take(len, "suffix")?;
        split_suffix(suffix)?;
        if previous.is_some_and(|previous| previous >= suffix) {
            return Err(DecodeError::Invalid(
                "block suffixes not strictly ascending",
            ));
        }
        previous = Some(suffix);
        let posting = decode_posting(reader.take(POSTING_BYTES, "posting")?)?;
        visit(suffix, posting);
    }
    if reader.left() > 0 {
        return Err(DecodeError::Trailing(reader.left()));
    }
    Ok(count)
}

/// Encodes a counter.
pub fn encode_counter(counter: &Counter) -> [u8; COUNTER_BYTES] {
    let mut bytes = [0; COUNTER_BYTES];
    let parts = counter
        .documents
        .to_le_bytes()
        .into_iter()
        .chain(counter.tokens.to_le_bytes());
    for (slot, byte) in bytes.iter_mut().zip(parts) {
        *slot = byte;
    }
    bytes
}

/// Decodes a counter.
pub fn decode_counter(bytes: &[u8]) -> Result<Counter, DecodeError> {
    if bytes.len() != COUNTER_BYTES {
        return Err(DecodeError::Length {
            what: "counter",
            len: bytes.len(),
            expected: COUNTER_BYTES,
        });
    }
    let mut reader = Reader::new(bytes);
    let documents = reader.u64("documents")?;
    let tokens = reader.u64("tokens")?;
    if documents == 0 {
        // A counter that reaches zero is deleted, never stored.
        return Err(DecodeError::Invalid("counter of zero documents"));
    }
    Ok(Counter { documents, tokens })
}

/// Encodes a record. The caller passes a record that obeys the decoder's rules (the indexer
/// builds it from a validated `Doc`); the encoding is then canonical.
pub fn encode_record(record: &Record) -> Vec<u8> {
    let terms_bytes: usize = record.terms.iter().map(|(term, _)| 5 + term.len()).sum();
    let tags_bytes: usize = record.tags.iter().map(|tag| 1 + tag.len()).sum();
    let mut bytes =
        Vec::with_capacity(24 + record.run.len() + tags_bytes + terms_bytes + record.text.len());
    bytes.push(RECORD_FORMAT);
    bytes.push(record.primitive.to_byte());
    bytes.extend_from_slice(&record.timestamp_ms.to_le_bytes());
    push_short(&mut bytes, &record.run);
    bytes.push(u8::try_from(record.tags.len()).unwrap_or(u8::MAX));
    for tag in &record.tags {
        push_short(&mut bytes, tag.as_bytes());
    }
    bytes.extend_from_slice(&record.doc_len.to_le_bytes());
    let term_count = u32::try_from(record.terms.len()).unwrap_or(u32::MAX);
    bytes.extend_from_slice(&term_count.to_le_bytes());
    for (term, frequency) in &record.terms {
        push_short(&mut bytes, term.as_bytes());
        bytes.extend_from_slice(&frequency.to_le_bytes());
    }
    let text_len = u32::try_from(record.text.len()).unwrap_or(u32::MAX);
    bytes.extend_from_slice(&text_len.to_le_bytes());
    bytes.extend_from_slice(record.text.as_bytes());
    bytes
}

/// The fields of a record, borrowed from its bytes: its primitive, timestamp, run, length
/// in tokens and text. Its tags and terms go to `on_tag` and `on_term` as they are read.
/// Every check of [`decode_record`] is made here, whatever the callbacks keep.
struct Parts<'a> {
    primitive: Primitive,
    timestamp_ms: u64,
    run: &'a [u8],
    doc_len: u32,
    text: &'a str,
}

fn decode_parts<'a>(
    bytes: &'a [u8],
    mut on_tag: impl FnMut(&'a str),
    mut on_term: impl FnMut(&'a str, u32),
) -> Result<Parts<'a>, DecodeError> {
    let mut reader = Reader::new(bytes);
    let format = reader.u8("format")?;
    if format != RECORD_FORMAT {
        return Err(DecodeError::Format(format));
    }
    let primitive = reader.primitive()?;
    let timestamp_ms = reader.u64("timestamp")?;
    let run = reader.short("run id")?;
    if run.is_empty() || run.len() > RUN_ID_BYTES_MAX {
        return Err(DecodeError::Invalid("run id length out of range"));
    }
    let tag_count = usize::from(reader.u8("tag count")?);
    if tag_count > TAGS_PER_DOC_MAX {
        return Err(DecodeError::Invalid("more tags than TAGS_PER_DOC_MAX"));
    }
    let mut last_tag: Option<&str> = None;
    for _ in 0..tag_count {
        let tag = reader.short_text("tag")?;
        if tag.is_empty() || tag.len() > TAG_BYTES_MAX {
            return Err(DecodeError::Invalid("tag length out of range"));
        }
        if last_tag.is_some_and(|last| last >= tag) {
            return Err(DecodeError::Invalid("tags not strictly ascending"));
        }
        last_tag = Some(tag);
        on_tag(tag);
    }
    let doc_len = reader.u32("document length")?;
    let term_count = usize::try_from(reader.u32("term count")?).unwrap_or(usize::MAX);
    // Each term takes at least 6 bytes (length, one byte, frequency): refuse a count the
    // input cannot hold before allocating for it.
    if term_count > reader.left() / 6 {
        return Err(DecodeError::Truncated {
            field: "terms",
            needed: term_count.saturating_mul(6),
            left: reader.left(),
        });
    }
    let mut last_term: Option<&str> = None;
    let mut total: u64 = 0;
    for _ in 0..term_count {
        let term = reader.short_text("term")?;
        if term.is_empty() || term.len() > TERM_BYTES_MAX {
            return Err(DecodeError::Invalid("term length out of range"));
        }
        if last_term.is_some_and(|last| last >= term) {
            return Err(DecodeError::Invalid("terms not strictly ascending"));
        }
        last_term = Some(term);
        let frequency = reader.u32("term frequency")?;
        if frequency == 0 {
            return Err(DecodeError::Invalid("term frequency is 0"));
        }
        total += u64::from(frequency);
        on_term(term, frequency);
    }
    if total != u64::from(doc_len) {
        return Err(DecodeError::Invalid(
            "document length is not the sum of its term frequencies",
        ));
    }
    let text_len = usize::try_from(reader.u32("text length")?).unwrap_or(usize::MAX);
    if text_len > TEXT_BYTES_MAX {
        return Err(DecodeError::Invalid("text longer than TEXT_BYTES_MAX"));
    }
    let text = reader.take(text_len, "text")?;
    let text = std::str::from_utf8(text).map_err(|_| DecodeError::Utf8("text"))?;
    if reader.left() > 0 {
        return Err(DecodeError::Trailing(reader.left()));
    }
    Ok(Parts {
        primitive,
        timestamp_ms,
        run,
        doc_len,
        text,
    })
}

/// Decodes a record.
pub fn decode_record(bytes: &[u8]) -> Result<Record, DecodeError> {
    let (mut tags, mut terms) = (Vec::new(), Vec::new());
    let parts = decode_parts(
        bytes,
        |tag| tags.push(tag.to_owned()),
        |term, frequency| terms.push((term.to_owned(), frequency)),
    )?;
    Ok(Record {
        primitive: parts.primitive,
        timestamp_ms: parts.timestamp_ms,
        run: parts.run.to_vec(),
        tags,
        doc_len: parts.doc_len,
        terms,
        text: parts.text.to_owned(),
    })
}

/// The text of a record, borrowed from its bytes, after every check of [`decode_record`]
/// (a search's snippet needs nothing else, and copying the terms was a fifth of a search).
pub fn decode_record_text(bytes: &[u8]) -> Result<&str, DecodeError> {
    decode_parts(bytes, |_| {}, |_, _| {}).map(|parts| parts.text)
}

/// A cursor over bytes whose every read is checked.
struct Reader<'bytes> {
    bytes: &'bytes [u8],
}

impl<'bytes> Reader<'bytes> {
    fn new(bytes: &'bytes [u8]) -> Self {
        Reader { bytes }
    }

    fn left(&self) -> usize {
        self.bytes.len()
    }

    fn rest(self) -> &'bytes [u8] {
        self.bytes
    }

    fn take(&mut self, needed: usize, field: &'static str) -> Result<&'bytes [u8], DecodeError> {
        let left = self.bytes.len();
        if needed > left {
            return Err(DecodeError::Truncated {
                field,
                needed,
                left,
            });
        }
        let (taken, rest) = self.bytes.split_at(needed);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let taken = self.take(N, field)?;
        let mut array = [0; N];
        array.copy_from_slice(taken);
        Ok(array)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn primitive(&mut self) -> Result<Primitive, DecodeError> {
        let byte = self.u8("primitive")?;
        Primitive::from_byte(byte).ok_or(DecodeError::Primitive(byte))
    }

    /// `len:u8 bytes`.
    fn short(&mut self, field: &'static str) -> Result<&'bytes [u8], DecodeError> {
        let len = usize::from(self.u8(field)?);
        self.take(len, field)
    }

    fn short_text(&mut self, field: &'static str) -> Result<&'bytes str, DecodeError> {
        std::str::from_utf8(self.short(field)?).map_err(|_| DecodeError::Utf8(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            primitive: Primitive::Trace,
            timestamp_ms: 0x0102_0304_0506_0708,
            run: b"run-1".to_vec(),
            tags: vec!["a".into(), "b".into()],
            doc_len: 3,
            terms: vec![("hello".into(), 2), ("world".into(), 1)],
            text: "hello hello world".into(),
        }
    }

    #[test]
    fn record_layout_is_pinned() {
        let bytes = encode_record(&record());
        let mut expected = vec![1, 2, 8, 7, 6, 5, 4, 3, 2, 1, 5];
        expected.extend_from_slice(b"run-1");
        expected.extend_from_slice(&[2, 1, b'a', 1, b'b', 3, 0, 0, 0, 2, 0, 0, 0, 5]);
        expected.extend_from_slice(b"hello");
        expected.extend_from_slice(&[2, 0, 0, 0, 5]);
        expected.extend_from_slice(b"world");
        expected.extend_from_slice(&[1, 0, 0, 0, 17, 0, 0, 0]);
        expected.extend_from_slice(b"hello hello world");
        assert_eq!(bytes, expected);
        assert_eq!(decode_record(&bytes), Ok(record()));
    }

    #[test]
    fn posting_and_counter_layouts_are_pinned() {
        let posting = Posting {
            term_frequency: 2,
            doc_len: 9,
            timestamp_ms: 0x0102,
            primitive: Primitive::Json,
        };
        let bytes = encode_posting(&posting);
        assert_eq!(bytes, [2, 0, 0, 0, 9, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 4]);
        assert_eq!(decode_posting(&bytes), Ok(posting));
        let counter = Counter {
            documents: 3,
            tokens: 0x0100,
        };
        let bytes = encode_counter(&counter);
        assert_eq!(bytes, [3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode_counter(&bytes), Ok(counter));
    }

    #[test]
    fn keys_are_pinned() {
        assert_eq!(posting_list_key(b"ix/", "ab"), b"ix/p\x02ab");
        let mut key = posting_list_key(b"ix/", "ab");
        push_suffix(&mut key, b"r1", b"d9");
        assert_eq!(key, b"ix/p\x02ab\x02r1d9");
        assert_eq!(split_suffix(b"\x02r1d9"), Ok((&b"r1"[..], &b"d9"[..])));
        assert_eq!(tag_list_key(b"ix/", "t"), b"ix/t\x01t");
        assert_eq!(record_key(b"ix/", b"d9"), b"ix/dd9");
        assert_eq!(counters_key(b"ix/"), b"ix/n");
        assert_eq!(run_counters_key(b"ix/", b"r1"), b"ix/r\x02r1");
        // CRC-32C("d9") mod 64: pinned, since a changed shard function would strand counts.
        assert_eq!(
            shard_of(b"d9"),
            u8::try_from(crc32c::crc32c(b"d9") % 64).expect("fits")
        );
        assert_eq!(
            shard_of(b"123456789"),
            u8::try_from(0xE306_9283_u32 % 64).expect("fits")
        );
    }

    #[test]
    fn block_layout_is_pinned() {
        let posting = Posting {
            term_frequency: 1,
            doc_len: 1,
            timestamp_ms: 0,
            primitive: Primitive::Event,
        };
        let entries = [(&b"\x01rA"[..], &posting), (&b"\x01rB"[..], &posting)];
        let bytes = encode_block(entries.into_iter());
        let mut expected = vec![2, 0, 3, 0, 1, b'r', b'A'];
        expected.extend_from_slice(&encode_posting(&posting));
        expected.extend_from_slice(&[3, 0, 1, b'r', b'B']);
        expected.extend_from_slice(&encode_posting(&posting));
        assert_eq!(bytes, expected);
        let mut seen = Vec::new();
        assert_eq!(
            decode_block(&bytes, |suffix, _| seen.push(suffix.to_vec())),
            Ok(2)
        );
        assert_eq!(seen, [b"\x01rA".to_vec(), b"\x01rB".to_vec()]);
        let unordered = encode_block([entries[1], entries[0]].into_iter());
        assert!(decode_block(&unordered, |_, _| {}).is_err());
        for cut in 0..bytes.len() {
            assert!(decode_block(&bytes[..cut], |_, _| {}).is_err());
        }
    }

    #[test]
    fn every_prefix_of_a_record_is_refused() {
        let bytes = encode_record(&record());
        for cut in 0..bytes.len() {
            assert!(decode_record(&bytes[..cut]).is_err(), "prefix {cut}");
            assert!(
                decode_record_text(&bytes[..cut]).is_err(),
                "text of prefix {cut}"
            );
        }
        assert_eq!(decode_record_text(&bytes), Ok(record().text.as_str()));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_record(&longer), Err(DecodeError::Trailing(1)));
        assert_eq!(decode_record_text(&longer), Err(DecodeError::Trailing(1)));
    }

    #[test]
    fn non_canonical_records_are_refused() {
        let mut unsorted = record();
        unsorted.terms.swap(0, 1);
        assert!(decode_record(&encode_record(&unsorted)).is_err());
        let mut wrong_len = record();
        wrong_len.doc_len = 4;
        assert!(decode_record(&encode_record(&wrong_len)).is_err());
        let mut duplicate_tags = record();
        duplicate_tags.tags = vec!["a".into(), "a".into()];
        assert!(decode_record(&encode_record(&duplicate_tags)).is_err());
        // The text alone is refused for the same reasons: it shares every check.
        for refused in [&unsorted, &wrong_len, &duplicate_tags] {
            assert!(decode_record_text(&encode_record(refused)).is_err());
        }
        let mut huge_count = encode_record(&record());
        // The term count field sits after format, primitive, timestamp, run, tags, doc_len.
        let at = 1 + 1 + 8 + 6 + 5 + 4;
        huge_count[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_record(&huge_count),
            Err(DecodeError::Truncated { field: "terms", .. })
        ));
    }
}
