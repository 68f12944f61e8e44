//! The Redis serialization protocol: requests in ([`parse`]), replies out ([`reply`]).
//!
//! Our own codec, not a RESP crate: the server needs a parser that checks every declared
//! length against limits that depend on whether the client has authenticated, resumes a
//! request across reads without re-parsing it, and hands out arguments as slices of the input
//! buffer; and a reply side that is one enum with RESP2 fallbacks. A general RESP crate parses
//! every frame type (nested arrays, maps) that a request never holds. The parser is fuzzed
//! (`fuzz/fuzz_targets/resp_request.rs`).

pub mod parse;
pub mod reply;

pub use parse::{Limits, ProtocolError, RequestParser};
pub use reply::{BulkArray, Protocol, Reply, OK};
