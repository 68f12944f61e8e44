//! Fuzzes the stored-record decoders of `cairn-agent` (event envelope, history step, span,
//! history base) through `cairn_agent::fuzzing::decode_any`.
//!
//! Properties, beyond "never panics" and "allocates only in proportion to its input": a
//! decoded record re-encodes to exactly its bytes (a base round-trips), and strict prefixes of
//! a decoded input are refused. The check is shared with
//! `crates/cairn-agent/tests/fuzz_corpus.rs` (which replays the corpus as an ordinary test)
//! through `crates/cairn-agent/tests/fuzz_check/mod.rs`.
#![no_main]

#[path = "../../crates/cairn-agent/tests/fuzz_check/mod.rs"]
mod fuzz_check;

use fuzz_check::check_agent_records;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    check_agent_records(bytes);
});
