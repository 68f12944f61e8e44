//! Layer 1 for the Redis backend: what the conformance suite cannot see from the trait.
//! Hash slots of a scope, `SCAN` walks longer than one page, a server that goes away and
//! comes back, watchers that fall behind or outlive their store, the integers `increment`
//! reads, a lost script cache, and opening by URL.
//!
//! Servers come from the test kit (free loopback ports, killed with the test process);
//! `redis-server` must be installed (`scripts/test.sh` installs it).

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::time::{Duration, Instant};

use cairn_kv::backends::redis::redis;
use cairn_kv::limits::WATCH_QUEUE_EVENTS;
use cairn_kv::{KeyValueStore, KvError, KvEvent, KvTtl, KvWatcher, RedisStore, Scope};
use cairn_testkit::redis_server::{RedisCluster, RedisServer};

/// How long a test waits for something it expects.
const PATIENCE: Duration = Duration::from_secs(10);

fn scope(name: &str) -> Scope {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tenant = format!(
        "f{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Scope::new(&tenant, name).expect("a valid scope")
}

async fn single_store() -> RedisStore {
    let server = RedisServer::shared().expect("a Redis server for the tests");
    RedisStore::connect(&server.url()).await.expect("connect")
}

async fn cluster_store() -> RedisStore {
    let cluster = RedisCluster::shared().expect("a Redis Cluster for the tests");
    RedisStore::connect_cluster(&cluster.urls())
        .await
        .expect("connect to the cluster")
}

async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("a valid URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a raw connection")
}

async fn next_event(watcher: &mut KvWatcher) -> Option<KvEvent> {
    tokio::time::timeout(PATIENCE, watcher.recv())
        .await
        .expect("an event within the wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_one_scope_share_one_slot() {
    let cluster = RedisCluster::shared().expect("a Redis Cluster for the tests");
    let mut raw = raw_connection(&cluster.urls()[0]).await;
    let scope = scope("slots");
    let mut slots = Vec::new();
    for key in [
        &b"a"[..],
        b"{other}",
        b"}",
        b"\xff\x00",
        b"a longer key with spaces",
    ] {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(scope.stored_key(key))
            .query_async(&mut raw)
            .await
            .expect("CLUSTER KEYSLOT");
        slots.push(slot);
    }
    slots.dedup();
    assert_eq!(slots.len(), 1, "one scope's keys span slots {slots:?}");

    // Many scopes spread over the masters, so the hash tag does not pin everything to one.
    let mut owners = std::collections::BTreeSet::new();
    for index in 0..64 {
        let other = Scope::new("tenant", &format!("namespace-{index}")).expect("scope");
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(other.stored_key(b"k"))
            .query_async(&mut raw)
            .await
            .expect("CLUSTER KEYSLOT");
        owners.insert(slot * 3 / 16_384);
    }
    assert!(
        owners.len() > 1,
        "64 scopes all hashed into one third of the slots"
    );
}

async fn scan_walks_every_page(store: RedisStore) {
    const KEYS: usize = 2_500;
    let scope = scope("scan-pages");
    let names: Vec<Vec<u8>> = (0..KEYS)
        .rev()
        .map(|index| format!("k{index:05}").into_bytes())
        .collect();
    for chunk in names.chunks(500) {
        let entries: Vec<(&[u8], &[u8])> = chunk
            .iter()
            .map(|name| (name.as_slice(), &b"v"[..]))
            .collect();
        store.multi_put(&scope, &entries).await.expect("multi_put");
    }
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(store.list(&scope, b"").await.expect("list"), expected);
    assert_eq!(store.list(&scope, b"k").await.expect("list k"), expected);
    assert_eq!(
        store.count_prefix(&scope, b"k01").await.expect("count"),
        1_000
    );
    assert_eq!(
        store.clear_prefix(&scope, b"k").await.expect("clear"),
        KEYS as u64
    );
    assert_eq!(store.count_prefix(&scope, b"").await.expect("count"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_walks_every_page_on_one_server() {
    scan_walks_every_page(single_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_walks_every_page_in_a_cluster() {
    scan_walks_every_page(cluster_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_unavailable_and_a_restart_is_picked_up() {
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let refused = RedisStore::connect(&format!("redis://127.0.0.1:{port}")).await;
    assert!(
        matches!(
            &refused,
            Err(KvError::Unavailable {
                backend: "redis",
                ..
            })
        ),
        "{refused:?}"
    );
    let refused = RedisStore::connect_cluster(&[format!("redis://127.0.0.1:{port}")]).await;
    assert!(
        matches!(&refused, Err(KvError::Unavailable { .. })),
        "{refused:?}"
    );

    let server = RedisServer::start().expect("a private server");
    let port = server.port();
    let store = RedisStore::connect(&server.url()).await.expect("connect");
    let scope = scope("restart");
    store.put(&scope, b"k", b"v").await.expect("put");
    let mut watcher = store.watch(&scope, b"k").await.expect("watch");
    drop(server);

    let error = store
        .get(&scope, b"k")
        .await
        .expect_err("the server is gone");
    assert!(error.is_retryable(), "{error:?}");
    let error = store.put(&scope, b"k", b"w").await.expect_err("still gone");
    assert!(matches!(error, KvError::Unavailable { .. }), "{error:?}");

    let _server = RedisServer::start_on_port(port).expect("the server again, same port");
    // The store reconnects on the call after the one that found the connection broken.
    let deadline = Instant::now() + PATIENCE;
    loop {
        match store.get(&scope, b"k").await {
            // Persistence is off: the restarted server is empty.
            Ok(value) => {
                assert_eq!(value, None);
                break;
            }
            Err(error) => {
                assert!(error.is_retryable(), "{error:?}");
                assert!(Instant::now() < deadline, "the store never reconnected");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // The scripts are loaded again on demand (NOSCRIPT), and the watcher resubscribed:
    // it reports the gap, then sees new writes.
    assert_eq!(next_event(&mut watcher).await, Some(KvEvent::Lagged(1)));
    let deadline = Instant::now() + PATIENCE;
    let mut attempt = 0_u32;
    loop {
        attempt += 1;
        let value = format!("after-{attempt}").into_bytes();
        store
            .put(&scope, b"k", &value)
            .await
            .expect("put after restart");
        if let Ok(event) = tokio::time::timeout(Duration::from_millis(200), watcher.recv()).await {
            assert_eq!(
                event,
                Some(KvEvent::Put {
                    key: b"k".to_vec(),
                    value
                })
            );
            break;
        }
        assert!(Instant::now() < deadline, "the watcher never resubscribed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_ends_when_its_store_is_gone() {
    let store = single_store().await;
    let scope = scope("store-gone");
    let mut watcher = store.watch_prefix(&scope, b"").await.expect("watch");
    store.put(&scope, b"k", b"v").await.expect("put");
    let clone = store.clone();
    drop(store);
    assert_eq!(
        next_event(&mut watcher).await,
        Some(KvEvent::Put {
            key: b"k".to_vec(),
            value: b"v".to_vec()
        }),
        "a live clone keeps the watcher going"
    );
    drop(clone);
    assert_eq!(next_event(&mut watcher).await, None);
}

async fn a_slow_watcher_is_told_it_lagged(store: RedisStore) {
    // Three queues' worth, so the queue overflows even if the test drains it a little late.
    let total = WATCH_QUEUE_EVENTS * 3;
    let scope = scope("lag");
    let mut watcher = store.watch_prefix(&scope, b"").await.expect("watch");
    let names: Vec<Vec<u8>> = (0..total)
        .map(|index| format!("k{index}").into_bytes())
        .collect();
    for chunk in names.chunks(1_000) {
        let entries: Vec<(&[u8], &[u8])> = chunk
            .iter()
            .map(|name| (name.as_slice(), &b"v"[..]))
            .collect();
        store.multi_put(&scope, &entries).await.expect("multi_put");
    }
    // The events are published before each write returns; give the forwarding task a moment
    // to move them into the queue before draining starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut seen, mut lost) = (0_u64, 0_u64);
    let deadline = Instant::now() + PATIENCE;
    while seen + lost < total as u64 {
        assert!(
            Instant::now() < deadline,
            "{seen} seen and {lost} lost of {total}"
        );
        let event = tokio::time::timeout(Duration::from_secs(2), watcher.recv())
            .await
            .unwrap_or_else(|_| panic!("{seen} seen and {lost} lost of {total}, then silence"));
        match event {
            Some(KvEvent::Lagged(count)) => lost += count,
            Some(_) => seen += 1,
            None => panic!("the watcher closed"),
        }
    }
    assert_eq!(seen + lost, total as u64);
    assert!(
        lost > 0,
        "a queue of {WATCH_QUEUE_EVENTS} held {total} events"
    );
    assert!(seen >= WATCH_QUEUE_EVENTS as u64 - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_is_told_it_lagged_on_one_server() {
    a_slow_watcher_is_told_it_lagged(single_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_is_told_it_lagged_in_a_cluster() {
    a_slow_watcher_is_told_it_lagged(cluster_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increment_reads_every_decimal_i64_and_keeps_the_ttl() {
    let store = single_store().await;
    let scope = scope("increment-forms");
    for (stored, delta, expected) in [
        (&b"+7"[..], 1, 8),
        (b"007", 1, 8),
        (b"-0", 1, 1),
        (b"+0", -1, -1),
        (b"-0009", 10, 1),
        (b"000", 0, 0),
    ] {
        store
            .put_with_ttl(&scope, b"n", stored, Duration::from_secs(3_600))
            .await
            .expect("put");
        assert_eq!(
            store
                .increment(&scope, b"n", delta)
                .await
                .expect("increment"),
            expected,
            "{stored:?}"
        );
        assert!(matches!(
            store.get_ttl(&scope, b"n").await.expect("ttl"),
            KvTtl::Expires(_)
        ));
    }
    for refused in [
        &b" 7"[..],
        b"7 ",
        b"+",
        b"-",
        b"0x10",
        b"1e3",
        b"+-1",
        b"00000000000000000000001",
    ] {
        store
            .put_with_ttl(&scope, b"n", refused, Duration::from_secs(3_600))
            .await
            .expect("put");
        let result = store.increment(&scope, b"n", 1).await;
        // Rust's i64 parser is the reference: what it refuses is not an integer.
        let parsed = std::str::from_utf8(refused)
            .ok()
            .and_then(|text| text.parse::<i64>().ok());
        if let Some(number) = parsed {
            assert_eq!(result.expect("a decimal i64"), number + 1);
        } else {
            assert!(
                matches!(result, Err(KvError::NotAnInteger { .. })),
                "{refused:?}"
            );
            assert_eq!(
                store.get(&scope, b"n").await.expect("get"),
                Some(refused.to_vec())
            );
        }
    }
    store
        .put_with_ttl(
            &scope,
            b"n",
            b"+9223372036854775807",
            Duration::from_secs(3_600),
        )
        .await
        .expect("put");
    assert!(matches!(
        store.increment(&scope, b"n", 1).await,
        Err(KvError::Overflow { .. })
    ));
    assert_eq!(
        store.get(&scope, b"n").await.expect("get"),
        Some(b"+9223372036854775807".to_vec()),
        "a refused increment rewrote the value"
    );
    assert!(matches!(
        store.get_ttl(&scope, b"n").await.expect("ttl"),
        KvTtl::Expires(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_script_cache_is_reloaded() {
    let server = RedisServer::start().expect("a private server");
    let store = RedisStore::connect(&server.url()).await.expect("connect");
    let scope = scope("script-flush");
    let mut raw = raw_connection(&server.url()).await;
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .expect("SCRIPT FLUSH");
    store
        .put(&scope, b"k", b"v")
        .await
        .expect("put after a flush");
    assert_eq!(
        store.get(&scope, b"k").await.expect("get"),
        Some(b"v".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stay_within_their_database() {
    let server = RedisServer::shared().expect("a Redis server for the tests");
    let first = RedisStore::connect(&format!("{}/1", server.url()))
        .await
        .expect("db 1");
    let second = RedisStore::connect(&format!("{}/2", server.url()))
        .await
        .expect("db 2");
    let scope = scope("databases");
    let mut watcher = first.watch(&scope, b"k").await.expect("watch");
    second.put(&scope, b"k", b"db 2").await.expect("put db 2");
    first.put(&scope, b"k", b"db 1").await.expect("put db 1");
    assert_eq!(
        next_event(&mut watcher).await,
        Some(KvEvent::Put {
            key: b"k".to_vec(),
            value: b"db 1".to_vec()
        })
    );
    assert_eq!(
        second.get(&scope, b"k").await.expect("get"),
        Some(b"db 2".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_open_redis_stores_and_stats_describe_them() {
    let server = RedisServer::shared().expect("a Redis server for the tests");
    let cluster = RedisCluster::shared().expect("a Redis Cluster for the tests");
    for (url, masters) in [(server.url(), 1), (cluster.cluster_url(), 3)] {
        let store = cairn_kv::open(&url).await.expect("open by URL");
        let scope = scope("by-url");
        store.put(&scope, b"k", b"v").await.expect("put");
        assert_eq!(
            store.get(&scope, b"k").await.expect("get"),
            Some(b"v".to_vec())
        );
        let _watcher = store.watch(&scope, b"k").await.expect("watch");
        let stats = store.stats().await.expect("stats");
        assert_eq!(stats.backend, "redis");
        assert!(stats.keys >= 1);
        assert!(
            stats.details.contains(&("masters".to_owned(), masters)),
            "{stats:?}"
        );
        assert!(
            stats.details.contains(&("watchers".to_owned(), 1)),
            "{stats:?}"
        );
    }
}
