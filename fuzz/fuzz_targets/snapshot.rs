//! Fuzzes the snapshot file decoder, `cairn::fuzzing::decode_snapshot_bytes`.
//!
//! Properties, beyond "never panics": a snapshot that decodes visited exactly the header's
//! `entry_count` entries, in strictly ascending key order, each with a key of 1..=65,536
//! bytes and a version at most the snapshot's; visited keys ascend even when a later block
//! fails; a failure is `Corrupted` at an offset inside the input. Each input is checked as
//! given and once more with its header, block and footer checksums recomputed, so the fuzzer
//! reaches the structural checks behind them. The checks are shared with
//! `crates/cairn/tests/fuzz_corpus.rs` (which replays the corpus as an ordinary test) through
//! `crates/cairn/tests/fuzz_checks/mod.rs`.
#![no_main]

#[path = "../../crates/cairn/tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

use fuzz_checks::{check_snapshot, reseal_snapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    check_snapshot(bytes);
    check_snapshot(&reseal_snapshot(bytes));
});
