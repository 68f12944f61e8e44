//! Redis as a peer: redis-rs's blocking client, a connection per session. Every key carries the
//! peer's own namespace, so peers sharing a server never share keys; the peer deletes its keys
//! when dropped. A batch is one `MULTI`/`EXEC` pipeline, a TTL put `PSETEX`, a CAS and a
//! transaction Lua scripts (atomic in Redis). Redis keeps no key order, so it runs no scans.

use super::{read_key_found, touched, Engine, Feature, Label, Mode, Peer, Session};
use crate::workloads::{Result, WorkloadError};
use cairn_kv::backends::redis::redis::{self, Commands};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Keys one `SCAN` (or `UNLINK`) takes while the peer deletes its keys.
const CLEANUP_PAGE_KEYS: usize = 1_000;
const CAS_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end";

const TRANSACTION_SCRIPT: &str = "local found = redis.call('GET', KEYS[1]) \
     if not found then return 0 end \
     for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[1]) end \
     return 1";

/// A namespace on a Redis server.
pub struct RedisPeer {
    client: redis::Client,
    namespace: String,
}

impl RedisPeer {
    /// Connects to `url`, checks that the server answers `PING`, and claims a fresh namespace.
    pub fn open(url: &str) -> Result<Self> {
        static PEERS_OPENED: AtomicU64 = AtomicU64::new(0);
        let client = redis::Client::open(url)?;
        let mut probe = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        redis::cmd("PING").query::<String>(&mut probe)?;
        let opened = PEERS_OPENED.fetch_add(1, Ordering::Relaxed);
        let namespace = format!("cairn-bench:{}:{opened}:", std::process::id());
        Ok(RedisPeer { client, namespace })
    }

    fn connect(&self) -> Result<redis::Connection> {
        Ok(self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?)
    }

    fn delete_keys(&self) -> Result<()> {
        let mut connection = self.connect()?;
        let options = redis::ScanOptions::default().with_pattern(format!("{}*", self.namespace));
        let keys = connection.scan_options(options.with_count(CLEANUP_PAGE_KEYS))?;
        let keys: Vec<Vec<u8>> = keys.collect::<redis::RedisResult<_>>()?;
        for page in keys.chunks(CLEANUP_PAGE_KEYS) {
            redis::cmd("UNLINK").arg(page).exec(&mut connection)?;
        }
        Ok(())
    }
}

impl Drop for RedisPeer {
    fn drop(&mut self) {
        // Best effort: leftover keys are namespaced and harm nothing.
        let _ = self.delete_keys();
    }
}

impl Peer for RedisPeer {
    fn label(&self) -> Label {
        Label::new(Engine::Redis, Mode::Buffered)
    }

    fn session(&self) -> Result<Box<dyn Session>> {
        Ok(Box::new(RedisSession {
            connection: self.connect()?,
            namespace: self.namespace.clone().into_bytes(),
            key: Vec::new(),
            cas: redis::Script::new(CAS_SCRIPT),
            transaction: redis::Script::new(TRANSACTION_SCRIPT),
        }))
    }

    fn supports(&self, feature: Feature) -> bool {
        feature != Feature::OrderedScan
    }

    fn disk_bytes(&self) -> Option<u64> {
        None
    }

    fn server_memory_bytes(&self) -> Result<Option<u64>> {
        let mut connection = self.connect()?;
        let info: redis::InfoDict = redis::cmd("INFO").arg("memory").query(&mut connection)?;
        let used = info.get("used_memory").map(Some);
        used.ok_or_else(|| WorkloadError::unexpected("redis", "INFO has no used_memory"))
    }
}

struct RedisSession {
    connection: redis::Connection,
    namespace: Vec<u8>,
    /// The last key built, reused so a call allocates nothing for it.
    key: Vec<u8>,
    cas: redis::Script,
    transaction: redis::Script,
}

impl RedisSession {
    fn stored_key(&mut self, key: &[u8]) -> &[u8] {
        self.key.clear();
        self.key.extend_from_slice(&self.namespace);
        self.key.extend_from_slice(key);
        &self.key
    }

    /// `key` in the namespace, in a buffer of its own (for commands taking several keys).
    fn stored(&self, key: &[u8]) -> Vec<u8> {
        [&self.namespace[..], key].concat()
    }

    fn run<T: redis::FromRedisValue>(&mut self, command: &redis::Cmd) -> Result<T> {
        Ok(command.query(&mut self.connection)?)
    }
}

impl Session for RedisSession {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        let command = redis::Cmd::get(self.stored_key(key));
        Ok(self
            .run::<Option<Vec<u8>>>(&command)?
            .as_deref()
            .map(touched))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let command = redis::Cmd::set(self.stored_key(key), value);
        self.run(&command)
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let command = redis::Cmd::del(self.stored_key(key));
        Ok(self.run::<i64>(&command)? > 0)
    }

    fn put_batch(&mut self, entries: &[(&[u8], &[u8])]) -> Result<()> {
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        for (key, value) in entries {
            pipeline.set(self.stored(key), *value).ignore();
        }
        Ok(pipeline.exec(&mut self.connection)?)
    }

    fn compare_and_swap(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<bool> {
        let mut invocation = self.cas.key(self.stored(key));
        invocation.arg(expected).arg(new);
        Ok(invocation.invoke::<i64>(&mut self.connection)? == 1)
    }

    fn transaction(&mut self, read_key: &[u8], write_keys: &[&[u8]], value: &[u8]) -> Result<()> {
        let mut invocation = self.transaction.key(self.stored(read_key));
        for key in write_keys {
            invocation.key(self.stored(key));
        }
        let found: i64 = invocation.arg(value).invoke(&mut self.connection)?;
        read_key_found(found == 1)
    }

    fn put_with_ttl(&mut self, key: &[u8], value: &[u8], ttl: Duration) -> Result<()> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let command = redis::Cmd::pset_ex(self.stored_key(key), value, millis);
        self.run(&command)
    }
}
