//! `cairn-memtable`: a write-behind repository with typed values, secondary indexes, rotation
//! and background flush to a persister.
//!
//! Not built yet; this crate reserves its place in the layout.
