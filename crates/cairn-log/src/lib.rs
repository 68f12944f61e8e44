//! `cairn-log`: the segmented append-only log (frame codec, preallocated segments, group
//! commit, tail recovery, and the narrow file-I/O trait every file access goes through).
//!
//! Not built yet: the engine currently runs `Durability::InMemory` only. The planned format and
//! recovery contract are in `docs/design.md`.
