//! `cairn-kv`: the async `KeyValueStore` trait and its backends (Cairn, `SQLite`, Redis), with
//! one conformance suite for all of them.
//!
//! Not built yet; this crate reserves its place in the layout.
