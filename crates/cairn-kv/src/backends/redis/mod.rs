//! `RedisStore`: the traits on one Redis server or a Redis Cluster (Redis 6.0 or later for
//! `SET ... KEEPTTL`, 7.0 or later for streams; tested on 7.0).
//!
//! **Keys.** A key is stored as `scope.stored_key(key)`: the scope's `{tenant:namespace}`
//! prefix, then the caller's bytes. The braces are a Redis Cluster hash tag, so every key of
//! one scope hashes to one slot and lives on one master. That is what makes the atomic
//! operations possible in a Cluster: a script may only touch keys of one slot, and every
//! `multi_put`, `cas` or `clear_prefix` stays inside one scope. The price is that one scope
//! never spreads over several masters; a deployment spreads load with many scopes.
//!
//! **Writes** are Lua scripts (see `scripts`), run with `EVALSHA`: each does the write and
//! `PUBLISH`es its change event in one atomic step. `put` clears the TTL (`SET`),
//! `put_with_ttl` is `SET ... PX`, `increment` keeps it (`INCRBY`), `cas` writes like `put`.
//! `refresh_ttl` is `PEXPIRE` and `get_ttl` is `PTTL` (-2: absent, -1: persistent); neither
//! is an event. Reads are plain commands: `GET`, `EXISTS`, `MGET`.
//!
//! **Lists.** `list` and `count_prefix` walk a `SCAN` cursor to the end (`MATCH` on the
//! stored prefix with its glob characters escaped, each key then checked byte for byte), on
//! the master that owns the scope's slot, and sort the keys in byte order. `SCAN` returns
//! every key present for the whole walk; keys written or deleted meanwhile may or may not
//! appear. Its cost grows with the whole keyspace of that node, not with the scope: Redis
//! keeps no order over string keys. `clear_prefix` is atomic: one script scans, refuses
//! (deleting nothing) when more than [`CLEAR_PREFIX_KEYS_MAX`] keys match, then deletes
//! them and publishes one `Delete` each. While it runs, that node serves nobody else: it
//! scans the node's whole keyspace, then deletes. Measured on Redis 7.0 (2 vCPUs), with a
//! million keys in the scope: refusing one more than the limit took 2.4 s, clearing a
//! million took 4.0 s. Past Redis's `busy-reply-threshold` (5 s by default) other clients
//! get `BUSY` replies, which this store reports as `Unavailable`.
//!
//! **Watch** (see `events`): Redis keyspace notifications were the other candidate. They
//! are off by default (turning them on is a server setting, and every node's), carry no
//! value (a watcher would `GET` it afterwards, racing later writes), and report commands
//! rather than changes. Publishing from the write scripts gives each watcher the value, in
//! commit order, with one channel per scope. Classic `PUBLISH` reaches every node of a
//! Cluster, so a watcher subscribes on one node. The limits: only writes made through a
//! `RedisStore` are seen (a raw `SET` from another client is not), and expiry is not an
//! event, as with the other backends. In a Cluster every write's event also crosses the
//! cluster bus to every node, watched or not; sharded pub/sub (`SPUBLISH`) would keep it in
//! the slot's shard but would tie each watcher to the slot's current master.
//!
//! **Streams** (see `streams`): the `StreamStore` trait on Redis Streams, one Redis stream
//! per Cairn stream, in the scope's slot.
//!
//! **Connections** (see `connection`): one multiplexed connection per store for commands,
//! plus one pub/sub connection per watcher, plus one connection per blocking stream read
//! while it waits (see `blocking`). Clones of a `RedisStore` share all of it.
//!
//! **Errors.** Input is checked first, with the same checks as every backend. A server out
//! of reach is `Unavailable`; any other server error is `Backend`.
//!
//! The raw client is re-exported as [`redis`] for benchmarks that compare the
//! store with redis-rs used directly.

mod blocking;
mod connection;
mod events;
mod scripts;
mod streams;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use redis;

pub use self::blocking::BLOCKING_IDLE_PER_NODE;
pub use self::connection::{CLUSTER_RETRIES, CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
pub use self::events::RESUBSCRIBE_ATTEMPTS;
pub use self::scripts::EVENT_BATCH_BYTES;

use self::blocking::BlockingConnections;
use self::connection::{redis_error, Connection, BACKEND};
use self::events::SubscribeNodes;
use self::scripts::{LuaScript, NOT_AN_INTEGER_CODE, OVERFLOW_CODE, SCRIPTS, TOO_MANY_KEYS_CODE};
use crate::error::{KeyText, KvError, KvResult};
use crate::limits::CLEAR_PREFIX_KEYS_MAX;
use crate::scope::Scope;
use crate::store::{
    check_cas, check_entry, check_key, check_list_page, check_multi_len, check_prefix, ttl_millis,
    KeyValueStore, KvTtl, Page, StoreStats,
};
use crate::watch::{KvWatcher, WatchTarget};

/// Keys one `SCAN` call is asked to look at (its `COUNT` hint).
pub const SCAN_PAGE_KEYS: usize = 1_000;

/// The `KeyValueStore` and `StreamStore` traits on Redis: one server or a Cluster. Cheap to
/// clone; clones share connections.
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

struct Shared {
    connection: Connection,
    /// Connections for blocking stream reads, apart from `connection`.
    blocking: BlockingConnections,
    /// Where watchers subscribe.
    subscribe_nodes: SubscribeNodes,
    /// The database number.
    db: i64,
    /// What each event channel's name starts with (it names the database).
    channel_prefix: Box<[u8]>,
    /// What the store was given, for `Debug`.
    nodes: Vec<String>,
    /// Watchers alive now, for `stats`.
    live_watchers: Arc<AtomicUsize>,
    /// Never sent on; dropped with the store, which tells every watcher the store is gone.
    alive: tokio::sync::watch::Sender<()>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RedisStore")
            .field("cluster", &self.shared.connection.is_cluster())
            .field("nodes", &self.shared.nodes)
            .field("db", &self.shared.db)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to one server at `url` (`redis://host:port[/db]`) and loads the scripts.
    pub async fn connect(url: &str) -> KvResult<RedisStore> {
        let client = redis::Client::open(url).map_err(|error| KvError::InvalidUrl {
            url: url.to_owned(),
            reason: error.to_string(),
        })?;
        let db = client.get_connection_info().redis_settings().db();
        let connection = Connection::single(client.clone())
            .await
            .map_err(redis_error)?;
        RedisStore::start(connection, vec![client], db, vec![url.to_owned()]).await
    }

    /// Connects to a Redis Cluster through any of its nodes (`redis://host:port` each) and
    /// loads the scripts on every node.
    pub async fn connect_cluster(nodes: &[String]) -> KvResult<RedisStore> {
        let invalid = |reason: String| KvError::InvalidUrl {
            url: nodes.join(","),
            reason,
        };
        if nodes.is_empty() {
            return Err(invalid("no cluster nodes given".to_owned()));
        }
        let clients = nodes
            .iter()
            .map(|node| redis::Client::open(node.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| invalid(error.to_string()))?;
        let connection = Connection::cluster(nodes).await.map_err(|error| {
            if error.kind() == redis::ErrorKind::InvalidClientConfig {
                invalid(error.to_string())
            } else {
                redis_error(error)
            }
        })?;
        RedisStore::start(connection, clients, 0, nodes.to_vec()).await
    }

    async fn start(
        connection: Connection,
        clients: Vec<redis::Client>,
        db: i64,
        nodes: Vec<String>,
    ) -> KvResult<RedisStore> {
        let blocking = BlockingConnections::new(&clients, connection.is_cluster());
        let store = RedisStore {
            shared: Arc::new(Shared {
                connection,
                blocking,
                subscribe_nodes: SubscribeNodes(clients.into()),
                db,
                channel_prefix: events::channel_prefix(db),
                nodes,
                live_watchers: Arc::new(AtomicUsize::new(0)),
                alive: tokio::sync::watch::Sender::new(()),
            }),
        };
        // Loaded now so that the first writes need no extra round trip.
        for script in SCRIPTS.all() {
            store
                .shared
                .connection
                .query::<redis::Value>(&script.load())
                .await
                .map_err(redis_error)?;
        }
        Ok(store)
    }

    /// True when the store talks to a Cluster.
    pub fn is_cluster(&self) -> bool {
        self.shared.connection.is_cluster()
    }

    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> KvResult<T> {
        self.shared
            .connection
            .query(command)
            .await
            .map_err(redis_error)
    }

    /// Runs a script; when the server lost its script cache, loads it and runs it again.
    async fn run_script<T: redis::FromRedisValue>(
        &self,
        script: &LuaScript,
        command: &redis::Cmd,
    ) -> redis::RedisResult<T> {
        let connection = &self.shared.connection;
        match connection.query(command).await {
            Err(error)
                if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                connection.query::<redis::Value>(&script.load()).await?;
                connection.query(command).await
            }
            other => other,
        }
    }

    fn channel(&self, scope: &Scope) -> Vec<u8> {
        events::channel(&self.shared.channel_prefix, scope)
    }

    /// Every live stored key under `stored_prefix` in `scope`, without the scope, sorted.
    async fn scan_prefix(&self, scope: &Scope, prefix: &[u8]) -> KvResult<Vec<Vec<u8>>> {
        let stored_prefix = scope.stored_key(prefix);
        let pattern = scan_pattern(&stored_prefix);
        let scope_bytes = scope.key_prefix().len();
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let mut command = redis::cmd("SCAN");
            command
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_PAGE_KEYS);
            let (next, page): (u64, Vec<Vec<u8>>) = self
                .shared
                .connection
                .query_slot_owner(command, scope.key_prefix())
                .await
                .map_err(redis_error)?;
            keys.extend(
                page.into_iter()
                    .filter(|key| key.starts_with(&stored_prefix))
                    .map(|mut key| {
                        key.drain(..scope_bytes);
                        key
                    }),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // SCAN may return a key more than once.
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    async fn subscribe(&self, target: WatchTarget, scope: &Scope) -> KvResult<KvWatcher> {
        let watch = events::watch(
            &self.shared.subscribe_nodes,
            self.channel(scope),
            target,
            self.shared.alive.subscribe(),
            &self.shared.live_watchers,
        )
        .await?;
        Ok(KvWatcher::new(watch))
    }

    async fn set(
        &self,
        scope: &Scope,
        key: &[u8],
        value: &[u8],
        ttl_millis: Option<u64>,
    ) -> KvResult<()> {
        let script = &SCRIPTS.put;
        let mut command = script.evalsha(1);
        command
            .arg(scope.stored_key(key))
            .arg(value)
            .arg(self.channel(scope));
        match ttl_millis {
            Some(millis) => command.arg(millis),
            None => command.arg(""),
        };
        self.run_script::<redis::Value>(script, &command)
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}

impl RedisStore {
    /// `clear_prefix` with the limit as a parameter, so a test can reach it.
    async fn clear_prefix_at_most(
        &self,
        scope: &Scope,
        prefix: &[u8],
        keys_max: usize,
    ) -> KvResult<u64> {
        let stored_prefix = scope.stored_key(prefix);
        let script = &SCRIPTS.clear_prefix;
        let mut command = script.evalsha(1);
        command
            .arg(&stored_prefix)
            .arg(scan_pattern(&stored_prefix))
            .arg(keys_max)
            .arg(self.channel(scope))
            .arg(SCAN_PAGE_KEYS);
        match self.run_script::<u64>(script, &command).await {
            Ok(deleted) => Ok(deleted),
            Err(error) if error.code() == Some(TOO_MANY_KEYS_CODE) => {
                Err(KvError::InvalidArgument(format!(
                    "clear_prefix would delete more than {keys_max} keys at once; nothing was \
                     deleted"
                )))
            }
            Err(error) => Err(redis_error(error)),
        }
    }
}

/// A `SCAN MATCH` pattern for keys starting with `prefix`: the glob characters `*?[]\`
/// escaped with `\`, then `*`.
fn scan_pattern(prefix: &[u8]) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(prefix.len() + prefix.len() / 4 + 1);
    for &byte in prefix {
        if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(byte);
    }
    pattern.push(b'*');
    pattern
}

impl KeyValueStore for RedisStore {
    async fn get(&self, scope: &Scope, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        check_key(key)?;
        self.query(redis::cmd("GET").arg(scope.stored_key(key)))
            .await
    }

    async fn put(&self, scope: &Scope, key: &[u8], value: &[u8]) -> KvResult<()> {
        check_entry(key, value)?;
        self.set(scope, key, value, None).await
    }

    async fn delete(&self, scope: &Scope, key: &[u8]) -> KvResult<bool> {
        check_key(key)?;
        let script = &SCRIPTS.delete;
        let mut command = script.evalsha(1);
        command.arg(scope.stored_key(key)).arg(self.channel(scope));
        let deleted: i64 = self
            .run_script(script, &command)
            .await
            .map_err(redis_error)?;
        Ok(deleted == 1)
    }

    async fn exists(&self, scope: &Scope, key: &[u8]) -> KvResult<bool> {
        check_key(key)?;
        let found: i64 = self
            .query(redis::cmd("EXISTS").arg(scope.stored_key(key)))
            .await?;
        Ok(found == 1)
    }

    async fn list(&self, scope: &Scope, prefix: &[u8]) -> KvResult<Vec<Vec<u8>>> {
        check_prefix(prefix)?;
        self.scan_prefix(scope, prefix).await
    }

    /// Redis keeps no key order: each page runs a whole `SCAN` of the prefix, sorts it and
    /// returns the keys after the cursor, so a page costs as much as `list` of the prefix
    /// (memory included) and paging through n keys costs O(n²/limit). It bounds what one
    /// reply carries, not the server's work.
    async fn list_page(
        &self,
        scope: &Scope,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> KvResult<Page> {
        check_list_page(prefix, start_after, limit)?;
        let keys = self.scan_prefix(scope, prefix).await?;
        let first = start_after.map_or(0, |after| {
            keys.partition_point(|key| key.as_slice() <= after)
        });
        let page = keys
            .into_iter()
            .skip(first)
            .take(limit.saturating_add(1))
            .collect();
        Ok(Page::from_sorted(page, limit))
    }

    async fn multi_get(&self, scope: &Scope, keys: &[&[u8]]) -> KvResult<Vec<Option<Vec<u8>>>> {
        check_multi_len(keys.len())?;
        for key in keys {
            check_key(key)?;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut command = redis::cmd("MGET");
        for key in keys {
            command.arg(scope.stored_key(key));
        }
        self.query(&command).await
    }

    async fn multi_put(&self, scope: &Scope, entries: &[(&[u8], &[u8])]) -> KvResult<()> {
        check_multi_len(entries.len())?;
        for (key, value) in entries {
            check_entry(key, value)?;
        }
        if entries.is_empty() {
            return Ok(());
        }
        let script = &SCRIPTS.multi_put;
        let mut command = script.evalsha(entries.len());
        for (key, _) in entries {
            command.arg(scope.stored_key(key));
        }
        for (_, value) in entries {
            command.arg(*value);
        }
        command.arg(self.channel(scope));
        self.run_script::<redis::Value>(script, &command)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn put_with_ttl(
        &self,
        scope: &Scope,
        key: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> KvResult<()> {
        check_entry(key, value)?;
        let millis = ttl_millis(ttl)?;
        self.set(scope, key, value, Some(millis)).await
    }

    async fn refresh_ttl(&self, scope: &Scope, key: &[u8], ttl: Duration) -> KvResult<bool> {
        check_key(key)?;
        let millis = ttl_millis(ttl)?;
        let refreshed: i64 = self
            .query(redis::cmd("PEXPIRE").arg(scope.stored_key(key)).arg(millis))
            .await?;
        Ok(refreshed == 1)
    }

    async fn get_ttl(&self, scope: &Scope, key: &[u8]) -> KvResult<KvTtl> {
        check_key(key)?;
        let millis: i64 = self
            .query(redis::cmd("PTTL").arg(scope.stored_key(key)))
            .await?;
        Ok(match millis {
            -1 => KvTtl::Persistent,
            // -2 is Redis's "absent"; 0 left means it is expiring now.
            ..=0 => KvTtl::Absent,
            left => KvTtl::Expires(Duration::from_millis(left.unsigned_abs())),
        })
    }

    async fn cas(
        &self,
        scope: &Scope,
        key: &[u8],
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> KvResult<bool> {
        check_cas(key, expected, new)?;
        let script = &SCRIPTS.cas;
        let mut command = script.evalsha(1);
        command
            .arg(scope.stored_key(key))
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default())
            .arg(new)
            .arg(self.channel(scope));
        let swapped: i64 = self
            .run_script(script, &command)
            .await
            .map_err(redis_error)?;
        Ok(swapped == 1)
    }

    async fn increment(&self, scope: &Scope, key: &[u8], delta: i64) -> KvResult<i64> {
        check_key(key)?;
        let script = &SCRIPTS.increment;
        let mut command = script.evalsha(1);
        command
            .arg(scope.stored_key(key))
            .arg(delta)
            .arg(self.channel(scope));
        let value: Vec<u8> = match self.run_script(script, &command).await {
            Ok(value) => value,
            Err(error) if error.code() == Some(NOT_AN_INTEGER_CODE) => {
                return Err(KvError::NotAnInteger {
                    key: KeyText::new(key),
                })
            }
            Err(error) if error.code() == Some(OVERFLOW_CODE) => {
                return Err(KvError::Overflow {
                    key: KeyText::new(key),
                    delta: i128::from(delta),
                })
            }
            Err(error) => return Err(redis_error(error)),
        };
        std::str::from_utf8(&value)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| {
                KvError::backend(
                    BACKEND,
                    format!(
                        "INCRBY left {} at key {}, not a decimal i64",
                        KeyText::new(&value),
                        KeyText::new(key)
                    ),
                )
            })
    }

    async fn watch(&self, scope: &Scope, key: &[u8]) -> KvResult<KvWatcher> {
        check_key(key)?;
        self.subscribe(WatchTarget::key(scope, key), scope).await
    }

    async fn watch_prefix(&self, scope: &Scope, prefix: &[u8]) -> KvResult<KvWatcher> {
        check_prefix(prefix)?;
        self.subscribe(WatchTarget::prefix(scope, prefix), scope)
            .await
    }

    async fn clear_prefix(&self, scope: &Scope, prefix: &[u8]) -> KvResult<u64> {
        check_prefix(prefix)?;
        self.clear_prefix_at_most(scope, prefix, CLEAR_PREFIX_KEYS_MAX)
            .await
    }

    async fn count_prefix(&self, scope: &Scope, prefix: &[u8]) -> KvResult<u64> {
        check_prefix(prefix)?;
        Ok(self.scan_prefix(scope, prefix).await?.len() as u64)
    }

    async fn stats(&self) -> KvResult<StoreStats> {
        // In a Cluster, DBSIZE goes to every master and the replies are summed.
        let keys: u64 = self.query(&redis::cmd("DBSIZE")).await?;
        let masters = match &self.shared.connection {
            Connection::Single(_) => 1,
            Connection::Cluster(_) => {
                let info: String = self.query(redis::cmd("CLUSTER").arg("INFO")).await?;
                info.lines()
                    .find_map(|line| line.trim().strip_prefix("cluster_size:"))
                    .and_then(|size| size.parse().ok())
                    .unwrap_or(0)
            }
        };
        Ok(StoreStats {
            backend: BACKEND,
            keys,
            details: vec![
                ("masters".to_owned(), masters),
                (
                    "watchers".to_owned(),
                    self.shared.live_watchers.load(Ordering::Relaxed) as u64,
                ),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_testkit::redis_server::RedisServer;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clear_prefix_over_its_limit_deletes_nothing() -> KvResult<()> {
        let server = RedisServer::shared().map_err(|error| KvError::backend(BACKEND, error))?;
        let store = RedisStore::connect(&server.url()).await?;
        let scope = Scope::new(&format!("unit-{}", std::process::id()), "clear-limit")?;
        let mut watcher = store.watch_prefix(&scope, b"").await?;
        store
            .multi_put(
                &scope,
                &[(b"a1", b"1"), (b"a2", b"2"), (b"a3", b"3"), (b"b", b"4")],
            )
            .await?;
        let refused = store.clear_prefix_at_most(&scope, b"a", 2).await;
        assert!(
            matches!(refused, Err(KvError::InvalidArgument(_))),
            "{refused:?}"
        );
        assert_eq!(store.count_prefix(&scope, b"").await?, 4);
        assert_eq!(store.clear_prefix_at_most(&scope, b"a", 3).await?, 3);
        assert_eq!(store.list(&scope, b"").await?, vec![b"b".to_vec()]);
        // Four puts, then three deletes: nothing from the refused call.
        let mut kinds = Vec::new();
        for _ in 0..7 {
            let event = tokio::time::timeout(Duration::from_secs(10), watcher.recv())
                .await
                .map_err(|elapsed| KvError::backend(BACKEND, elapsed))?;
            kinds.push(match event {
                Some(crate::watch::KvEvent::Put { .. }) => 'P',
                Some(crate::watch::KvEvent::Delete { .. }) => 'D',
                other => panic!("unexpected {other:?}"),
            });
        }
        assert_eq!(kinds, ['P', 'P', 'P', 'P', 'D', 'D', 'D']);
        Ok(())
    }

    #[test]
    fn scan_patterns_escape_every_glob_character() {
        assert_eq!(scan_pattern(b"{t:n}a"), b"{t:n}a*".to_vec());
        assert_eq!(scan_pattern(b"*?[]\\x"), b"\\*\\?\\[\\]\\\\x*".to_vec());
        assert_eq!(scan_pattern(b""), b"*".to_vec());
        assert_eq!(scan_pattern(b"^-!\xff"), b"^-!\xff*".to_vec());
    }
}
