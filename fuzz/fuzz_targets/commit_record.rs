//! Fuzzes the commit record body decoder, `cairn::fuzzing::decode_commit_count`.
//!
//! Properties, beyond "never panics": the counting decoder and the tools' decoder
//! (`decode_commit_body`) agree; every key is 1..=65,536 bytes; a count is never more than
//! the body can hold (6 bytes per mutation at least); and the layout has one encoding, so a
//! decoded body re-encodes, by the documented layout, to exactly its bytes. The check is
//! copied in `crates/cairn/tests/fuzz_corpus.rs`, which replays the corpus as an ordinary test.
#![no_main]

#[path = "../../crates/cairn/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

use fuzz_checks::{check_commit_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    check_commit_record(body);
});
