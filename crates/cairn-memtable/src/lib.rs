//! `cairn-memtable`: a write-behind repository. Typed records with a primary key and secondary
//! indexes (unique, non-unique, ordered) live in memory — one active memtable and a bounded
//! queue of immutable ones — and a background flusher writes them to a persistent store
//! through a [`Persister`]: any `cairn_kv::KeyValueStore` ([`KvPersister`]), the Cairn engine
//! directly ([`DbPersister`]), or a test double ([`MemoryPersister`], [`NoopPersister`]).
//!
//! ```
//! use std::sync::Arc;
//! use cairn_memtable::{IndexKind, IndexSpec, IndexValue, MemoryPersister, Options, Record, Repository};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct User { id: u64, email: String, team: u32 }
//!
//! impl Record for User {
//!     type Key = u64;
//!     const INDEXES: &'static [IndexSpec] = &[
//!         IndexSpec::new("email", IndexKind::Unique),
//!         IndexSpec::new("team", IndexKind::NonUnique),
//!     ];
//!     fn key(&self) -> u64 { self.id }
//!     fn index_value(&self, index: usize) -> Option<IndexValue> {
//!         match index {
//!             0 => Some(IndexValue::from(&self.email)),
//!             1 => Some(IndexValue::from(self.team)),
//!             _ => None,
//!         }
//!     }
//! }
//!
//! # fn main() -> cairn_memtable::Result<()> {
//! let store = Arc::new(MemoryPersister::new());
//! let users = Repository::<User>::open(store.clone(), Options::default())?;
//! users.insert(User { id: 1, email: "ada@example.com".into(), team: 7 })?;
//! users.insert(User { id: 2, email: "grace@example.com".into(), team: 7 })?;
//! assert_eq!(users.by_index("team", 7_u32)?.len(), 2);
//! assert!(users.insert(User { id: 3, email: "ada@example.com".into(), team: 1 }).is_err());
//! users.close()?; // everything is in the store now
//! let cold = Repository::<User>::open(store, Options::default())?;
//! assert_eq!(cold.by_index("email", "grace@example.com")?.len(), 1);
//! # Ok(()) }
//! ```
//!
//! Module map: `record` (the [`Record`] trait and encodings), `keys` (the store-key layout),
//! `memtable` (one layer), `repo` (the [`Repository`], its read/write paths and flusher),
//! `options`, `persist` (the [`Persister`] trait and persisters), `error`. The design, the
//! formats and the guarantees are in `docs/memtable.md`.

mod error;
mod key_set;
mod keys;
mod memtable;
mod options;
pub mod persist;
mod record;
mod repo;

pub use error::{BoxError, Error, Result};
pub use options::{Backpressure, Options, WalOptions, WalSync, IMMUTABLE_MAX_LIMIT};
pub use persist::db::DbPersister;
pub use persist::kv::KvPersister;
pub use persist::{Batch, InjectedFailure, MemoryPersister, NoopPersister, Persister};
pub use record::{IndexKind, IndexSpec, IndexValue, IndexValues, PrimaryKey, Record};
pub use repo::{Health, LayerStats, Repository, Stats};
