//! The backends, each behind its own cargo feature so a build compiles only what it uses.

#[cfg(feature = "cairn")]
pub mod cairn;
#[cfg(feature = "cairn")]
pub mod cairn_streams;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;
