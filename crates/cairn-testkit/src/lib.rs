//! `cairn-testkit`: what the tests and benchmarks share.
//!
//! - [`SplitMix64`]: seeded randomness, so a printed seed reproduces a run exactly.
//! - [`FaultFs`]: an in-memory implementation of the log's file-I/O trait that models what
//!   survives a power cut (unsynced writes lost, kept or torn; unsynced renames lost) and
//!   fails any call on demand (`EIO`, `ENOSPC`, a freeze at a chosen I/O point).
//! - [`ChildRun`]: a kill -9 harness that runs a child process, collects its progress lines
//!   and kills it with `SIGKILL` at a chosen moment.
//! - [`TempDir`]: a unique scratch path removed on drop.
//! - [`redis_server`]: a `redis-server` or a 3-node Redis Cluster on free loopback ports,
//!   killed with the test process however it ends.
//! - [`RespClient`]: a raw RESP client that reads replies byte-exact, to compare servers.
//!
//! The crate depends on `cairn-log` only (for the file-I/O trait), so any crate's tests can
//! use it without a dependency cycle.

pub mod crash;
pub mod fault_fs;
pub mod redis_server;
pub mod resp_client;
pub mod rng;
pub mod temp_dir;

pub use crash::{self_exe_child, ChildRun, KilledChild};
pub use fault_fs::{
    CrashMode, FaultError, FaultFs, FaultRule, Op, OpRecord, Persistence, UnsyncedDirOps,
    UnsyncedWrites,
};
pub use resp_client::{Frame, RespClient};
pub use rng::SplitMix64;
pub use temp_dir::TempDir;
