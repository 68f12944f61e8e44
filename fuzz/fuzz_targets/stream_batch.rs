//! Fuzzes the stream batch decoder, `cairn_log::stream::decode_batch` (the body of every
//! stream frame).
//!
//! Properties, beyond "never panics" and "allocates only in proportion to its input": the
//! borrowed decoder (`decode_batch_refs`, which the owned one is built on) accepts exactly
//! what the owned one does and reads the same messages; a decoded batch re-encodes to
//! exactly the bytes it was decoded from, and strict prefixes of it are refused. The check is shared with `crates/cairn-log/tests/stream_fuzz_corpus.rs`
//! (which replays the corpus as an ordinary test) through
//! `crates/cairn-log/tests/stream_fuzz_check/mod.rs`.
#![no_main]

#[path = "../../crates/cairn-log/tests/stream_fuzz_check/mod.rs"]
mod stream_fuzz_check;

use libfuzzer_sys::fuzz_target;
use stream_fuzz_check::check_stream_batch;

fuzz_target!(|bytes: &[u8]| {
    check_stream_batch(bytes);
});
