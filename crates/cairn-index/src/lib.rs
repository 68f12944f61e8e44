//! Cairn's ordered in-memory index: a copy-on-write B+tree for one writer and lock-free
//! readers ([`Tree`]), and beside it a hash table for point reads ([`Index`]).
//!
//! It replaced the engine's two indexes (a hash map for point reads and a skip list for
//! scans, each key with its own slot). Keys live inline in
//! leaves of up to 64 keys, each with its 8-byte head and one pointer to its value, so a key
//! costs its bytes plus about 24 bytes of leaf, instead of several allocations.
//! `examples/lab.rs` measures it beside the engine's current structure at one million keys;
//! docs/design.md (section 14) holds the figures and the decisions.
//!
//! Guarantees:
//! - Readers never block and never see a freed node or value (epoch-based reclamation; the
//!   safety argument is in the `tree` and `points` module documentation).
//! - A reader sees every change published before it started, and possibly later ones; it may
//!   be reading a node or table the writer has since replaced.
//! - Exactly one [`Writer`] exists per tree, so writes never race each other.

mod index;
mod keys;
mod model;
#[expect(
    unsafe_code,
    reason = "lock-free reads of a hash table of borrowed pointers; the safety argument is in \
              the module's documentation"
)]
mod points;
#[expect(
    unsafe_code,
    reason = "the CPU's prefetch instruction, a hint that never faults whatever the address"
)]
mod prefetch;
#[expect(
    unsafe_code,
    reason = "lock-free reads of copy-on-write nodes with epoch-deferred freeing; the safety \
              argument is in the module's documentation"
)]
mod tree;

pub use index::{Index, Keyed};
pub use prefetch::prefetch;
pub use tree::{
    Found, LeafHint, NotSorted, Range, Shape, Tree, Writer, INNER_MAX_CHILDREN, LEAF_MAX_BYTES,
    LEAF_MAX_ENTRIES,
};
