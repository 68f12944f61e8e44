//! Cairn's benchmark workloads, each defined once in one [`registry`] that both the criterion
//! bench `benches/registry.rs` and the `cairn bench` command iterate, so a figure from one can
//! be checked with the other.

pub mod keys;
pub mod late;
pub mod measure;
pub mod peers;
pub mod registry;
pub mod report;
pub mod side_by_side;
pub mod sizes;
pub mod targets;
pub mod workloads;
