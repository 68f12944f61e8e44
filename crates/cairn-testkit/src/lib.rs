//! `cairn-testkit`: what the tests and benchmarks share. Today that is seeded randomness
//! ([`SplitMix64`]); the reference model, the fault-injecting file system and the crash harness
//! join it with the durability work.

pub mod rng;

pub use rng::SplitMix64;
