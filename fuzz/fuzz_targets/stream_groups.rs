//! Fuzzes the decoder of a stream's `GROUPS` file, `cairn_log::stream::GroupsFile::decode`
//! (every group's committed offset, read at open).
//!
//! Properties, beyond "never panics" and "allocates only in proportion to its input": a
//! decoded file re-encodes to exactly the bytes it was decoded from, and strict prefixes of
//! it are refused. The check is shared with
//! `crates/cairn-log/tests/stream_groups_fuzz_corpus.rs` (which replays the corpus as an
//! ordinary test) through `crates/cairn-log/tests/stream_groups_fuzz_check/mod.rs`.
#![no_main]

#[path = "../../crates/cairn-log/tests/stream_groups_fuzz_check/mod.rs"]
mod stream_groups_fuzz_check;

use libfuzzer_sys::fuzz_target;
use stream_groups_fuzz_check::check_stream_groups;

fuzz_target!(|bytes: &[u8]| {
    check_stream_groups(bytes);
});
