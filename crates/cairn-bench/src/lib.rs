//! Cairn's benchmark workloads, each defined once in one [`registry`] that two drivers
//! iterate: the criterion bench `benches/registry.rs` and the `cairn bench` command. Both build
//! the same workload and time the same operation, so a figure from one can be checked with the
//! other. [`peers`] are the stores measured, [`side_by_side`] the workloads every store runs,
//! [`workloads`] the engine-only ones, [`measure`] the drivers, [`report`] and [`targets`] the
//! rows and their bounds.

pub mod keys;
pub mod measure;
pub mod peers;
pub mod registry;
pub mod report;
pub mod side_by_side;
pub mod sizes;
pub mod targets;
pub mod workloads;
