//! Fuzzes the WAL frame decoder, `cairn_log::frame::decode_frame`.
//!
//! Properties, beyond "never panics": a decoded frame re-encodes to exactly the bytes it was
//! decoded from; every strict prefix of it is `Incomplete`; a lower payload limit never turns
//! it into a different frame; `Incomplete` only when the buffer is shorter than the header
//! claims. Each input is checked as given and once more with its checksum recomputed, so the
//! fuzzer reaches the checks behind the CRC too. The checks are shared with
//! `crates/cairn/tests/fuzz_corpus.rs` (which replays the corpus as an ordinary test) through
//! `crates/cairn/tests/fuzz_checks/mod.rs`.
#![no_main]

#[path = "../../crates/cairn/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

use fuzz_checks::{check_wal_frame, reseal_wal_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    check_wal_frame(bytes);
    check_wal_frame(&reseal_wal_frame(bytes));
});
