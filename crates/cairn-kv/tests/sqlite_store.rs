//! Layer 1 (focused): what the conformance suite cannot see of the `SQLite` backend — the
//! purge really deletes expired rows, a file keeps its data across a reopen, the pragmas are
//! applied, prefix ranges stay exact around `0xFF` bytes, `clear_prefix` refuses too many
//! keys, a foreign file is left alone, and a closed store says so.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![cfg(feature = "sqlite")]

use std::time::{Duration, Instant};

use cairn_kv::backends::sqlite::{rusqlite, SqliteOptions, PURGE_BATCH_ROWS};
use cairn_kv::limits::CLEAR_PREFIX_KEYS_MAX;
use cairn_kv::{KeyValueStore, KvError, KvResult, KvTtl, Scope, SqliteStore, SqliteSynchronous};
use cairn_testkit::TempDir;

fn detail(stats: &cairn_kv::StoreStats, name: &str) -> u64 {
    stats
        .details
        .iter()
        .find(|(detail, _)| detail == name)
        .map_or_else(|| panic!("no {name:?} in {stats:?}"), |(_, value)| *value)
}

fn temp_file(dir: &TempDir) -> std::path::PathBuf {
    dir.path().join("nested").join("kv.db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_deletes_expired_rows_in_batches() -> KvResult<()> {
    // A purge interval far longer than the test, so only the explicit call purges.
    let store = SqliteStore::open_with(
        SqliteOptions::in_memory().purge_interval(Duration::from_secs(3_600)),
    )
    .await?;
    let scope = Scope::new("purge", "batches")?;
    let expiring = PURGE_BATCH_ROWS * 2 + 500;
    for index in 0..expiring {
        let key = format!("short:{index:05}");
        store
            .put_with_ttl(&scope, key.as_bytes(), b"v", Duration::from_millis(1))
            .await?;
    }
    store
        .put_with_ttl(&scope, b"long", b"v", Duration::from_secs(3_600))
        .await?;
    store.put(&scope, b"forever", b"v").await?;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let before = store.stats().await?;
    assert_eq!(
        before.keys,
        expiring as u64 + 2,
        "expired rows are still stored"
    );
    assert_eq!(store.count_prefix(&scope, b"").await?, 2, "but invisible");

    assert_eq!(store.purge_expired().await?, expiring as u64);
    let after = store.stats().await?;
    assert_eq!(after.keys, 2);
    assert_eq!(detail(&after, "purged_rows"), expiring as u64);
    assert_eq!(
        store.list(&scope, b"").await?,
        vec![b"forever".to_vec(), b"long".to_vec()]
    );
    assert_eq!(store.purge_expired().await?, 0, "nothing left to purge");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_purge_runs_on_its_own() -> KvResult<()> {
    let dir = TempDir::new("kv-sqlite-purge");
    let options = SqliteOptions::file(temp_file(&dir)).purge_interval(Duration::from_millis(20));
    let store = SqliteStore::open_with(options).await?;
    let scope = Scope::new("purge", "background")?;
    for index in 0..50 {
        store
            .put_with_ttl(
                &scope,
                format!("k{index}").as_bytes(),
                b"v",
                Duration::from_millis(1),
            )
            .await?;
    }
    store.put(&scope, b"stays", b"v").await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = store.stats().await?;
        if stats.keys == 1 {
            assert!(detail(&stats, "purged_rows") >= 50, "{stats:?}");
            assert!(detail(&stats, "purge_rounds") >= 1, "{stats:?}");
            assert_eq!(detail(&stats, "purge_failed_rounds"), 0, "{stats:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the purge never ran: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.get(&scope, b"stays").await?, Some(b"v".to_vec()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_store_keeps_its_data_across_reopen() -> KvResult<()> {
    let dir = TempDir::new("kv-sqlite-reopen");
    let path = temp_file(&dir);
    let scope = Scope::new("reopen", "data")?;
    {
        let store = SqliteStore::open(Some(path.clone()), SqliteSynchronous::Normal).await?;
        store.put(&scope, b"plain", b"1").await?;
        store
            .put_with_ttl(&scope, b"ttl", b"2", Duration::from_secs(3_600))
            .await?;
        store
            .multi_put(&scope, &[(b"m1", b"3"), (b"m2", b"4")])
            .await?;
        assert_eq!(store.increment(&scope, b"n", 41).await?, 41);
        store.close().await?;
        store.close().await?;
    }
    {
        // Dropped without `close`: the data is committed all the same.
        let store = SqliteStore::open(Some(path.clone()), SqliteSynchronous::Full).await?;
        assert_eq!(store.get(&scope, b"plain").await?, Some(b"1".to_vec()));
        assert_eq!(store.increment(&scope, b"n", 1).await?, 42);
    }
    let store = SqliteStore::open(Some(path.clone()), SqliteSynchronous::Normal).await?;
    assert_eq!(store.path(), Some(path.as_path()));
    assert_eq!(
        store.list(&scope, b"").await?,
        vec![
            b"m1".to_vec(),
            b"m2".to_vec(),
            b"n".to_vec(),
            b"plain".to_vec(),
            b"ttl".to_vec()
        ]
    );
    assert_eq!(store.get(&scope, b"n").await?, Some(b"42".to_vec()));
    assert!(matches!(
        store.get_ttl(&scope, b"ttl").await?,
        KvTtl::Expires(left) if left > Duration::from_secs(3_500)
    ));
    assert_eq!(store.get_ttl(&scope, b"plain").await?, KvTtl::Persistent);
    Ok(())
}

async fn pragma<T>(store: &SqliteStore, name: &'static str) -> KvResult<T>
where
    T: rusqlite::types::FromSql + Send + 'static,
{
    store
        .with_connection(move |connection| {
            connection.pragma_query_value(None, name, |row| row.get(0))
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pragmas_are_applied() -> KvResult<()> {
    let dir = TempDir::new("kv-sqlite-pragmas");
    for (synchronous, level) in [
        (SqliteSynchronous::Full, 2_i64),
        (SqliteSynchronous::Normal, 1),
    ] {
        let store = SqliteStore::open(Some(temp_file(&dir)), synchronous).await?;
        assert_eq!(store.synchronous(), synchronous);
        assert_eq!(
            pragma::<i64>(&store, "synchronous").await?,
            level,
            "{synchronous:?}"
        );
        assert_eq!(pragma::<String>(&store, "journal_mode").await?, "wal");
        assert!(pragma::<i64>(&store, "busy_timeout").await? > 0);
        store.close().await?;
    }
    let memory = SqliteStore::open(None, SqliteSynchronous::Full).await?;
    assert_eq!(pragma::<i64>(&memory, "synchronous").await?, 2);
    assert_eq!(memory.path(), None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_ranges_are_exact_around_ff_bytes() -> KvResult<()> {
    let dir = TempDir::new("kv-sqlite-ff");
    let store = SqliteStore::open(Some(temp_file(&dir)), SqliteSynchronous::Normal).await?;
    let scope = Scope::new("ff", "bounds")?;
    let neighbour = Scope::new("ff", "bounds2")?;
    let keys: [&[u8]; 9] = [
        b"\xff",
        b"\xff\xff",
        b"\xff\x00",
        b"\xff\xff\xff\x01",
        b"a\xff",
        b"a\xff\xff",
        b"b",
        b"\xfe\xff",
        b"\x00",
    ];
    for key in keys {
        store.put(&scope, key, b"v").await?;
        store.put(&neighbour, key, b"v").await?;
    }
    let expect = |prefix: &[u8]| -> Vec<Vec<u8>> {
        let mut matching: Vec<Vec<u8>> = keys
            .iter()
            .filter(|key| key.starts_with(prefix))
            .map(|key| key.to_vec())
            .collect();
        matching.sort();
        matching
    };
    for prefix in [
        &b""[..],
        b"\xff",
        b"\xff\xff",
        b"\xff\xff\xff",
        b"\xfe",
        b"a\xff",
        b"a",
        b"\x00",
        b"\xff\x00",
    ] {
        assert_eq!(
            store.list(&scope, prefix).await?,
            expect(prefix),
            "prefix {prefix:?}"
        );
        assert_eq!(
            store.count_prefix(&scope, prefix).await?,
            expect(prefix).len() as u64,
            "prefix {prefix:?}"
        );
    }
    assert_eq!(store.clear_prefix(&scope, b"\xff").await?, 4);
    assert_eq!(
        store.list(&scope, b"").await?,
        vec![
            b"\x00".to_vec(),
            b"a\xff".to_vec(),
            b"a\xff\xff".to_vec(),
            b"b".to_vec(),
            b"\xfe\xff".to_vec()
        ]
    );
    assert_eq!(
        store.list(&neighbour, b"").await?.len(),
        keys.len(),
        "the neighbour is intact"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_prefix_refuses_too_many_keys_and_deletes_nothing() -> KvResult<()> {
    let store = SqliteStore::in_memory().await?;
    let scope = Scope::new("clear", "limit")?;
    // One key over the limit, inserted by SQLite itself: a million calls would be slow.
    let prefix = scope.stored_key(b"k");
    let rows = CLEAR_PREFIX_KEYS_MAX + 1;
    let inserted = store
        .with_connection(move |connection| {
            connection.execute(
                "WITH RECURSIVE counter(n) AS \
                 (SELECT 1 UNION ALL SELECT n + 1 FROM counter WHERE n < ?2) \
                 INSERT INTO kv (key, value) \
                 SELECT CAST(CAST(?1 AS TEXT) || printf('%08d', n) AS BLOB), X'' FROM counter",
                rusqlite::params![prefix, i64::try_from(rows).unwrap_or(i64::MAX)],
            )
        })
        .await?;
    assert_eq!(inserted, rows);
    assert_eq!(store.count_prefix(&scope, b"k").await?, rows as u64);
    assert!(matches!(
        store.clear_prefix(&scope, b"k").await,
        Err(KvError::InvalidArgument(_))
    ));
    assert_eq!(
        store.count_prefix(&scope, b"k").await?,
        rows as u64,
        "nothing deleted"
    );
    assert!(store.delete(&scope, b"k00000001").await?);
    assert_eq!(
        store.clear_prefix(&scope, b"k").await?,
        CLEAR_PREFIX_KEYS_MAX as u64
    );
    assert_eq!(store.count_prefix(&scope, b"").await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_another_program_is_refused() -> KvResult<()> {
    let dir = TempDir::new("kv-sqlite-foreign");
    let path = temp_file(&dir);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the dir");
    {
        let foreign = rusqlite::Connection::open(&path).expect("open");
        foreign
            .execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
            .expect("a foreign table");
    }
    let refused = SqliteStore::open(Some(path.clone()), SqliteSynchronous::Normal).await;
    assert!(
        matches!(refused, Err(KvError::Backend { .. })),
        "{refused:?}"
    );
    let tables: i64 = rusqlite::Connection::open(&path)
        .and_then(|connection| {
            connection.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        })
        .expect("read the schema");
    assert_eq!(tables, 1, "the foreign file was altered");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_refuses_calls() -> KvResult<()> {
    let store = SqliteStore::in_memory().await?;
    let scope = Scope::new("closed", "store")?;
    store.put(&scope, b"k", b"v").await?;
    store.close().await?;
    assert!(matches!(
        store.get(&scope, b"k").await,
        Err(KvError::Closed)
    ));
    assert!(matches!(
        store.put(&scope, b"k", b"v").await,
        Err(KvError::Closed)
    ));
    assert!(matches!(store.stats().await, Err(KvError::Closed)));
    assert!(matches!(store.purge_expired().await, Err(KvError::Closed)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_share_data_but_not_watch_events() -> KvResult<()> {
    let dir = TempDir::new("kv-sqlite-shared-file");
    let path = temp_file(&dir);
    let first = SqliteStore::open(Some(path.clone()), SqliteSynchronous::Normal).await?;
    let second = SqliteStore::open(Some(path), SqliteSynchronous::Normal).await?;
    let scope = Scope::new("shared", "file")?;
    let mut watcher = second.watch_prefix(&scope, b"").await?;
    first.put(&scope, b"k", b"from first").await?;
    assert_eq!(
        second.get(&scope, b"k").await?,
        Some(b"from first".to_vec())
    );
    assert_eq!(second.increment(&scope, b"n", 2).await?, 2);
    assert_eq!(first.increment(&scope, b"n", 3).await?, 5);
    // Only the second store's own write reaches its watcher (see the module docs).
    let event = tokio::time::timeout(Duration::from_secs(5), watcher.recv()).await;
    assert!(
        matches!(event, Ok(Some(cairn_kv::KvEvent::Put { ref key, .. })) if key == b"n"),
        "{event:?}"
    );
    let quiet = tokio::time::timeout(Duration::from_millis(200), watcher.recv()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    Ok(())
}

#[tokio::test]
async fn a_current_thread_runtime_works_through_the_blocking_pool() -> KvResult<()> {
    let dir = TempDir::new("kv-sqlite-current-thread");
    let store = SqliteStore::open(Some(temp_file(&dir)), SqliteSynchronous::Normal).await?;
    let scope = Scope::new("current", "thread")?;
    store.put(&scope, b"k", b"v").await?;
    assert_eq!(store.get(&scope, b"k").await?, Some(b"v".to_vec()));
    assert!(store.cas(&scope, b"k", Some(b"v"), b"w").await?);
    assert_eq!(store.list(&scope, b"").await?, vec![b"k".to_vec()]);
    Ok(())
}
