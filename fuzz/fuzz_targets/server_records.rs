//! Fuzzes the decoders of the records the RESP server keeps in the engine
//! (`cairn_server::keyspace`): metadata records, collection and stream headers, element keys,
//! stream entries, consumer groups and pending entries.
//!
//! Properties, beyond "never panics": whatever a decoder accepts encodes back to the same
//! bytes. The check is shared with `crates/cairn-server/tests/records_fuzz.rs` through
//! `crates/cairn-server/tests/records_fuzz_check/mod.rs`.
#![no_main]

#[path = "../../crates/cairn-server/tests/records_fuzz_check/mod.rs"]
mod records_fuzz_check;

use libfuzzer_sys::fuzz_target;
use records_fuzz_check::check_records;

fuzz_target!(|bytes: &[u8]| {
    check_records(bytes);
});
