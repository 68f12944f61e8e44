//! # cairn-bench
//!
//! Cairn's benchmark workloads, each defined once, in one registry that two drivers iterate:
//! the criterion bench `benches/registry.rs` (statistics, regression tracking) and the
//! `cairn bench` command (latency percentiles and throughputs checked against targets). Both
//! build the same workload and time the same operation, so a figure from one can be checked
//! with the other.
//!
//! - [`registry`]: every workload with its name, sizes, target and goal; what runs it.
//! - [`peers`]: the stores measured, behind one interface: Cairn in each durability mode,
//!   redb, fjall, SQLite, Redis, and each `KeyValueStore` backend through the trait.
//! - [`side_by_side`]: the workloads every store runs (reads, writes, scans, group commit,
//!   mixed load, TTL, CAS, transactions, memory).
//! - [`workloads`]: the engine-only workloads (durability floor, recovery, version growth,
//!   snapshots, conflicts) and the `Workload` traits.
//! - [`measure`]: the drivers that time a workload into a latency histogram or a throughput.
//! - [`report`] and [`targets`]: the rows a run produces and the bounds they are checked
//!   against, with where each bound comes from.
//! - [`keys`] and [`sizes`]: keys, values and fixture sizes shared by every driver.

pub mod keys;
pub mod measure;
pub mod peers;
pub mod registry;
pub mod report;
pub mod side_by_side;
pub mod sizes;
pub mod targets;
pub mod workloads;

pub use measure::{Budget, Latency, Plan, Throughput};
pub use workloads::{Fixture, ParallelWorkload, Workload, WorkloadError};
