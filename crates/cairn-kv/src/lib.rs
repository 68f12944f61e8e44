//! `cairn-kv`: one async [`KeyValueStore`] trait in front of three backends — Cairn's own
//! engine, `SQLite`, and Redis (one server or a Cluster) — and one conformance suite that
//! every backend passes unchanged.
//!
//! ```
//! use cairn_kv::{KeyValueStore, Scope};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cairn_kv::KvResult<()> {
//! let store = cairn_kv::open("cairn:memory").await?;
//! let scope = Scope::new("acme", "sessions")?;
//! store.put(&scope, b"user:1", b"ada").await?;
//! assert_eq!(store.get(&scope, b"user:1").await?, Some(b"ada".to_vec()));
//! assert!(store.cas(&scope, b"user:1", Some(b"ada"), b"grace").await?);
//! assert_eq!(store.list(&scope, b"user:").await?, vec![b"user:1".to_vec()]);
//! # Ok(()) }
//! ```
//!
//! Module map: `store` is the trait and the input checks every backend runs first; `scope`
//! is the tenant/namespace encoding that keeps scopes apart; `watch` is the event type and
//! the in-process fan-out; `url` parses store URLs; `any` dispatches to whichever backend a
//! URL names; `backends` holds one module per backend. Features: `cairn` (default), `sqlite`,
//! `redis`.

mod any;
pub mod backends;
mod error;
pub mod limits;
mod scope;
mod store;
pub mod stream;
mod url;
mod watch;

pub use any::{open, AnyStore};
#[cfg(feature = "cairn")]
pub use backends::cairn::CairnStore;
#[cfg(feature = "cairn")]
pub use backends::cairn_streams::CairnStreams;
#[cfg(feature = "redis")]
pub use backends::redis::RedisStore;
#[cfg(feature = "sqlite")]
pub use backends::sqlite::{SqliteOptions, SqliteStore};
pub use error::{BoxError, KeyText, KvError, KvResult};
pub use scope::Scope;
pub use store::{
    check_cas, check_entry, check_key, check_list_page, check_multi_len, check_prefix, check_value,
    ttl_millis, KeyValueStore, KvTtl, Page, StoreStats,
};
pub use url::{CairnDurability, SqliteSynchronous, StoreUrl};
pub use watch::{EventSource, KvEvent, KvWatcher, RecvFuture};

/// The README's examples, compiled and run as doc tests so that they cannot drift from the
/// code. They live here, not in `cairn`, because this crate sees both the engine and the
/// trait (and, as a dev-dependency, `cairn-agent`).
#[doc = include_str!("../../../README.md")]
#[cfg(all(doctest, feature = "cairn"))]
pub struct ReadmeDoctests;
