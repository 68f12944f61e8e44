//! Fuzzes the RESP server's request parser, `cairn_server::resp::parse::RequestParser`
//! (every byte a client sends).
//!
//! Properties, beyond "never panics" and "allocates only in proportion to its input": the
//! same requests and outcome whether the input arrives whole or split, and every parsed
//! request re-encodes to one that parses back the same. The check is shared with
//! `crates/cairn-server/tests/resp_fuzz.rs` through
//! `crates/cairn-server/tests/resp_fuzz_check/mod.rs`.
#![no_main]

#[path = "../../crates/cairn-server/tests/resp_fuzz_check/mod.rs"]
mod resp_fuzz_check;

use libfuzzer_sys::fuzz_target;
use resp_fuzz_check::check_requests;

fuzz_target!(|bytes: &[u8]| {
    check_requests(bytes);
});
