//! Fuzzes the decoders of the agent search index's stored bytes (`cairn_agent::search::format`):
//! the document record, the posting and counter values, and the posting key suffix.
//!
//! Properties, beyond "never panics": whatever decodes re-encodes to exactly its bytes, and
//! obeys the documented invariants (ids within their limits, terms and tags strictly
//! ascending, the document length the sum of its term frequencies). The check lives in
//! `crates/cairn-agent/tests/search_fuzz_checks/mod.rs`, which the corpus replay test
//! includes too.
#![no_main]

#[path = "../../crates/cairn-agent/tests/search_fuzz_checks/mod.rs"]
mod search_fuzz_checks;

use libfuzzer_sys::fuzz_target;
use search_fuzz_checks::check_search_bytes;

fuzz_target!(|bytes: &[u8]| {
    check_search_bytes(bytes);
});
