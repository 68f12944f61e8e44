//! Every bound `cairn-agent` enforces. Input over a bound is refused with
//! [`Error::TooLarge`](crate::Error::TooLarge) (or `InvalidInput` for empty names) before
//! anything is written.

/// Longest run name, cell name, document name or span name, in bytes.
pub const NAME_BYTES_MAX: usize = 1024;
/// Longest event type, in bytes.
pub const EVENT_TYPE_BYTES_MAX: usize = 256;
/// Longest tag, in bytes.
pub const TAG_BYTES_MAX: usize = 256;
/// Most tags on one run or span.
pub const TAGS_MAX: usize = 64;
/// Largest run metadata, as JSON text.
pub const METADATA_BYTES_MAX: usize = 64 * 1024;
/// Largest event payload or span content, as JSON text.
pub const PAYLOAD_BYTES_MAX: usize = 1024 * 1024;
/// Longest KV key.
pub const KV_KEY_BYTES_MAX: usize = 1024;
/// Largest KV or state cell value.
pub const VALUE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest JSON document, as JSON text.
pub const DOC_BYTES_MAX: usize = 1024 * 1024;
/// Deepest JSON document nesting (arrays and objects).
pub const DOC_DEPTH_MAX: usize = 64;
/// Longest JSON Pointer, in bytes.
pub const DOC_PATH_BYTES_MAX: usize = 1024;
/// Attempts of one write when the engine reports conflicts with writers outside this handle.
pub const WRITE_ATTEMPTS_MAX: u32 = 8;
