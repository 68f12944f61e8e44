//! # cairn-bench
//!
//! Cairn's benchmark workloads, each defined once and run by two drivers: the criterion
//! benches in `benches/engine.rs` (statistics, regression tracking) and the `cairn bench`
//! command (latency percentiles and throughputs checked against the targets of
//! `DESIGN.md` section 5). Both call the same setup and the same operation, so a figure from
//! one can be checked with the other.
//!
//! - [`keys`]: fixed-width keys, values, and the deterministic generator that picks keys.
//! - [`workloads`]: the workloads, grouped as the criterion groups are (single-key
//!   operations, bulk, concurrent, scans, transactions, CAS, snapshots, version growth).
//! - [`peers`]: Cairn and its peers (redb, fjall, SQLite, Redis) behind one small interface,
//!   so a workload runs unchanged against each of them.
//! - [`side_by_side`]: the workloads run against Cairn and every peer: fills, point reads,
//!   scans, durable commits and batches, group commit, mixed 80/20, TTL puts, CAS,
//!   transactions, and the memory tier.
//! - [`sizes`]: value lengths and fixture sizes, shared by both drivers.
//! - [`measure`]: the drivers that time a workload into a duration, a latency histogram or
//!   a throughput.

pub mod keys;
pub mod measure;
pub mod peers;
pub mod side_by_side;
pub mod sizes;
pub mod workloads;

pub use measure::{Budget, Latency, Plan, Throughput};
pub use workloads::{Fixture, ParallelWorkload, Workload, WorkloadError};
