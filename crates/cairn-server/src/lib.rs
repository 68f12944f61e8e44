//! `cairn-server`: a RESP server, so Redis clients and tools work against a Cairn database
//! (`cairn serve`).
//!
//! The layers, each a module:
//! - [`resp`]: the protocol. Requests are parsed with Redis's limits and error texts; replies
//!   are encoded in RESP2 or RESP3.
//! - [`keyspace`]: how Redis keys, types and expiry map onto Cairn's ordered keyspace.
//! - `commands`: the command table and each command's semantics, following Redis 7.0.
//! - `state`: what connections share: per-key write locks that make each command atomic, the
//!   `strict` durability gate, the client registry, `SCAN` cursors.
//! - `session`: one connection's read, run, wait-until-durable, write loop.
//! - `reclaim`: deletes the elements of collections that were deleted, overwritten or
//!   expired, in the background.
//! - `pubsub`: channels, patterns and each subscriber's bounded outbox.
//! - `notify`: keyspace notifications (`notify-keyspace-events`), published through
//!   `pubsub`.
//! - `server`: the listener, connection limits and graceful shutdown.
//! - `metrics`: the Prometheus text endpoint, behind a flag.
//!
//! What it guarantees: a reply to a write is sent only once the write is as durable as the
//! mode promises (`strict`: fdatasync'ed; `buffered`: in the WAL buffer; `memory`: applied),
//! and under `strict` no reply shows a write that is not yet durable. Each command is atomic.
//! No input ends the server: a malformed request closes its own connection.
//!
//! What it does not have yet: `XINFO STREAM FULL`, the `expired` keyspace event, and some
//! commands of the types it has (`SORT`, `SWAPDB`, `DUMP`, ...):
//! their commands get Redis's unknown-command error.

pub mod keyspace;
pub mod resp;

mod commands;
mod glob;
mod metrics;
mod notify;
mod pubsub;
mod reclaim;
mod server;
mod session;
mod state;

pub use server::{run, RunningServer, SHUTDOWN_WAIT};
pub use session::OUTPUT_FLUSH_BYTES;
pub use state::{Config, Mode};

/// The Redis version the server reports in `INFO` and `HELLO`.
pub const REDIS_VERSION: &str = commands::REDIS_VERSION;

/// Most picks that may repeat one `SRANDMEMBER`, `HRANDFIELD` or `ZRANDMEMBER` returns.
pub const RANDOM_PICKS_MAX: u64 = commands::RANDOM_PICKS_MAX;
