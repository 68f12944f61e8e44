//! Every bound the search index enforces, in one place, units last.
//!
//! Input above a limit is refused with a typed [`SearchError`](super::SearchError) that names
//! it, before anything is written to the caller's transaction. The one exception is a term
//! longer than [`TERM_BYTES_MAX`]: it is cut at a character boundary, the same way at index
//! and at query time, so it still matches itself.

/// Largest caller-given key prefix of an index, in bytes.
pub const PREFIX_BYTES_MAX: usize = 256;

/// Largest doc id, in bytes (ids are 1 to this many bytes).
pub const DOC_ID_BYTES_MAX: usize = 512;

/// Largest run id, in bytes (ids are 1 to this many bytes; it is stored with a one-byte
/// length).
pub const RUN_ID_BYTES_MAX: usize = 128;

/// Largest text of one document, in bytes of UTF-8 (64 KiB).
pub const TEXT_BYTES_MAX: usize = 64 * 1024;

/// Most tags on one document.
pub const TAGS_PER_DOC_MAX: usize = 16;

/// Largest tag, in bytes (tags are 1 to this many bytes).
pub const TAG_BYTES_MAX: usize = 64;

/// Longest term, in bytes: longer tokens are cut at a character boundary at or below it.
pub const TERM_BYTES_MAX: usize = 64;

/// Largest query text, in bytes.
pub const QUERY_TEXT_BYTES_MAX: usize = 4 * 1024;

/// Most distinct terms in one query.
pub const QUERY_TERMS_MAX: usize = 16;

/// Most tags one query may require.
pub const QUERY_TAGS_MAX: usize = 8;

/// Most hits one query may ask for.
pub const TOP_K_MAX: usize = 1_000;

/// Default cap on the postings one query reads (its own terms' and required tags' lists,
/// summed). A query's working memory is proportional to what it reads, so this bounds it.
pub const POSTINGS_READ_DEFAULT: usize = 1_000_000;

/// Largest cap a query may set on the postings it reads.
pub const POSTINGS_READ_MAX: usize = 16_000_000;

/// Counter shards: a document's counts live in the shard its doc id hashes to, so two
/// concurrent writes of different documents collide on a counter with probability
/// 1 / `COUNTER_SHARDS`. A search sums at most this many keys per scope.
pub const COUNTER_SHARDS: u8 = 64;

/// Longest snippet, in bytes of text (plus an ellipsis at each cut end).
pub const SNIPPET_BYTES_MAX: usize = 200;

/// How much text a snippet shows before its first match, in bytes (at most).
pub const SNIPPET_LEAD_BYTES: usize = 60;

// Lengths stored in one byte fit it.
const _: () = assert!(RUN_ID_BYTES_MAX <= u8::MAX as usize);
const _: () = assert!(TAG_BYTES_MAX <= u8::MAX as usize);
const _: () = assert!(TERM_BYTES_MAX <= u8::MAX as usize);
const _: () = assert!(TAGS_PER_DOC_MAX <= u8::MAX as usize);
// Counts and lengths stored in four bytes fit them.
const _: () = assert!(TEXT_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(POSTINGS_READ_DEFAULT <= POSTINGS_READ_MAX);
const _: () = assert!(SNIPPET_LEAD_BYTES < SNIPPET_BYTES_MAX);
const _: () = assert!(COUNTER_SHARDS > 0);
