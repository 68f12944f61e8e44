//! `AnyStore`: one type for whichever backend a URL names, chosen at run time.
//!
//! Each variant exists only when its backend's cargo feature is on. Calls dispatch with a
//! `match`, no boxing, so going through `AnyStore` costs a branch.

use std::time::Duration;

use crate::error::{KvError, KvResult};
use crate::scope::Scope;
use crate::store::{KeyValueStore, KvTtl, Page, StoreStats};
use crate::url::StoreUrl;
use crate::watch::KvWatcher;

/// A store of any backend compiled into this build.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// Cairn's own engine.
    #[cfg(feature = "cairn")]
    Cairn(crate::backends::cairn::CairnStore),
    /// `SQLite`.
    #[cfg(feature = "sqlite")]
    Sqlite(crate::backends::sqlite::SqliteStore),
    /// Redis: one server or a Cluster.
    #[cfg(feature = "redis")]
    Redis(crate::backends::redis::RedisStore),
}

/// Opens the store `url` names (`cairn:memory`, `cairn:///path?durability=strict`,
/// `sqlite:///path`, `redis://host:port`, `redis+cluster://host:port,host:port`; see
/// [`StoreUrl::parse`]).
pub async fn open(url: &str) -> KvResult<AnyStore> {
    AnyStore::open(&StoreUrl::parse(url)?).await
}

impl AnyStore {
    /// Builds the store `url` describes; `Unsupported` when this build lacks its feature.
    pub async fn open(url: &StoreUrl) -> KvResult<AnyStore> {
        match url {
            #[cfg(feature = "cairn")]
            StoreUrl::Cairn { path, durability } => {
                use crate::backends::cairn::CairnStore;
                use crate::url::CairnDurability;
                let store = match (path, durability) {
                    (Some(path), CairnDurability::Strict) => {
                        let options =
                            cairn::Options::new(path).durability(cairn::Durability::Strict);
                        CairnStore::open(options).await?
                    }
                    (Some(path), CairnDurability::Buffered) => {
                        let options =
                            cairn::Options::new(path).durability(cairn::Durability::buffered());
                        CairnStore::open(options).await?
                    }
                    _ => CairnStore::in_memory(),
                };
                Ok(AnyStore::Cairn(store))
            }
            #[cfg(feature = "sqlite")]
            StoreUrl::Sqlite { path, synchronous } => Ok(AnyStore::Sqlite(
                crate::backends::sqlite::SqliteStore::open(path.clone(), *synchronous).await?,
            )),
            #[cfg(feature = "redis")]
            StoreUrl::Redis { url } => Ok(AnyStore::Redis(
                crate::backends::redis::RedisStore::connect(url).await?,
            )),
            #[cfg(feature = "redis")]
            StoreUrl::RedisCluster { nodes } => Ok(AnyStore::Redis(
                crate::backends::redis::RedisStore::connect_cluster(nodes).await?,
            )),
            #[allow(unreachable_patterns)]
            other => Err(KvError::Unsupported(format!(
                "this build has no backend for {other:?}; enable the cairn-kv feature `{}`",
                feature_for(other)
            ))),
        }
    }
}

#[allow(dead_code)]
fn feature_for(url: &StoreUrl) -> &'static str {
    match url {
        StoreUrl::Cairn { .. } => "cairn",
        StoreUrl::Sqlite { .. } => "sqlite",
        StoreUrl::Redis { .. } | StoreUrl::RedisCluster { .. } => "redis",
    }
}

/// Runs `$call` on whichever store `$self` holds.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            #[cfg(feature = "cairn")]
            AnyStore::Cairn($store) => $call,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($store) => $call,
            #[cfg(feature = "redis")]
            AnyStore::Redis($store) => $call,
        }
    };
}

impl KeyValueStore for AnyStore {
    async fn get(&self, scope: &Scope, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        dispatch!(self, store => store.get(scope, key).await)
    }

    async fn put(&self, scope: &Scope, key: &[u8], value: &[u8]) -> KvResult<()> {
        dispatch!(self, store => store.put(scope, key, value).await)
    }

    async fn delete(&self, scope: &Scope, key: &[u8]) -> KvResult<bool> {
        dispatch!(self, store => store.delete(scope, key).await)
    }

    async fn exists(&self, scope: &Scope, key: &[u8]) -> KvResult<bool> {
        dispatch!(self, store => store.exists(scope, key).await)
    }

    async fn list(&self, scope: &Scope, prefix: &[u8]) -> KvResult<Vec<Vec<u8>>> {
        dispatch!(self, store => store.list(scope, prefix).await)
    }

    async fn list_page(
        &self,
        scope: &Scope,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> KvResult<Page> {
        dispatch!(self, store => store.list_page(scope, prefix, start_after, limit).await)
    }

    async fn multi_get(&self, scope: &Scope, keys: &[&[u8]]) -> KvResult<Vec<Option<Vec<u8>>>> {
        dispatch!(self, store => store.multi_get(scope, keys).await)
    }

    async fn multi_put(&self, scope: &Scope, entries: &[(&[u8], &[u8])]) -> KvResult<()> {
        dispatch!(self, store => store.multi_put(scope, entries).await)
    }

    async fn put_with_ttl(
        &self,
        scope: &Scope,
        key: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> KvResult<()> {
        dispatch!(self, store => store.put_with_ttl(scope, key, value, ttl).await)
    }

    async fn refresh_ttl(&self, scope: &Scope, key: &[u8], ttl: Duration) -> KvResult<bool> {
        dispatch!(self, store => store.refresh_ttl(scope, key, ttl).await)
    }

    async fn get_ttl(&self, scope: &Scope, key: &[u8]) -> KvResult<KvTtl> {
        dispatch!(self, store => store.get_ttl(scope, key).await)
    }

    async fn cas(
        &self,
        scope: &Scope,
        key: &[u8],
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> KvResult<bool> {
        dispatch!(self, store => store.cas(scope, key, expected, new).await)
    }

    async fn increment(&self, scope: &Scope, key: &[u8], delta: i64) -> KvResult<i64> {
        dispatch!(self, store => store.increment(scope, key, delta).await)
    }

    async fn watch(&self, scope: &Scope, key: &[u8]) -> KvResult<KvWatcher> {
        dispatch!(self, store => store.watch(scope, key).await)
    }

    async fn watch_prefix(&self, scope: &Scope, prefix: &[u8]) -> KvResult<KvWatcher> {
        dispatch!(self, store => store.watch_prefix(scope, prefix).await)
    }

    async fn clear_prefix(&self, scope: &Scope, prefix: &[u8]) -> KvResult<u64> {
        dispatch!(self, store => store.clear_prefix(scope, prefix).await)
    }

    async fn count_prefix(&self, scope: &Scope, prefix: &[u8]) -> KvResult<u64> {
        dispatch!(self, store => store.count_prefix(scope, prefix).await)
    }

    async fn stats(&self) -> KvResult<StoreStats> {
        dispatch!(self, store => store.stats().await)
    }
}
