//! `cairn-testkit`: the reference model, the fault-injecting file system, the crash harness and
//! seeded randomness shared by the tests.
//!
//! Not built yet; this crate reserves its place in the layout.
