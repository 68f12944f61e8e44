//! Bad input is refused with the exact typed error, and a refused call writes nothing.
//!
//! Each test feeds the engine one kind of bad input (an empty or oversized key, an oversized
//! value, a zero TTL, a reversed range, an increment that cannot be done, a batch with one bad
//! entry, a call on a closed database, an out-of-range option) and checks three things: the
//! error variant and its fields, that its message names the limit, and that the database's
//! version, commit count and contents are exactly what they were before the call.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::time::Duration;

use cairn::{Db, Error, Expected, Isolation, ManualClock, Options, Stats, Version, WriteBatch};

/// The largest key the engine accepts, in bytes.
const KEY_MAX: usize = 65_536;

fn small_value_db() -> Db {
    Db::open(
        Options::in_memory()
            .max_value_bytes(1024)
            .maintenance_interval(Duration::ZERO),
    )
    .expect("open an in-memory database")
}

/// What a refused call must leave exactly as it was.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    version: Version,
    commits: u64,
    keys_indexed: usize,
    versions_retained: u64,
    contents: Vec<(Vec<u8>, Vec<u8>)>,
}

fn fingerprint(db: &Db) -> Fingerprint {
    let stats: Stats = db.stats();
    Fingerprint {
        version: db.version(),
        commits: stats.commits,
        keys_indexed: stats.keys_indexed,
        versions_retained: stats.versions_retained,
        // Through a snapshot: it also reads a closed database, whose contents must not change.
        contents: db
            .snapshot()
            .scan_prefix(b"")
            .map(|(key, value)| (key.to_vec(), value.to_vec()))
            .collect(),
    }
}

/// A database holding a couple of keys, so "nothing written" is checked against a real state.
fn seeded(db: &Db) {
    db.put("a", "1").expect("seed put");
    db.put("n", "41").expect("seed put");
}

#[track_caller]
fn assert_key_empty<T: std::fmt::Debug>(result: cairn::Result<T>) {
    match result {
        Err(Error::KeyEmpty) => {}
        other => panic!("expected Error::KeyEmpty, got {other:?}"),
    }
}

#[track_caller]
fn assert_key_too_large<T: std::fmt::Debug>(result: cairn::Result<T>, len: usize) {
    match result {
        Err(error @ Error::KeyTooLarge { .. }) => {
            let Error::KeyTooLarge { len: found, max } = &error else {
                unreachable!("matched above")
            };
            assert_eq!((*found, *max), (len, KEY_MAX));
            let message = error.to_string();
            assert!(
                message.contains("65536") && message.contains(&len.to_string()),
                "message should name the length and the limit: {message}"
            );
        }
        other => panic!("expected Error::KeyTooLarge, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid_argument<T: std::fmt::Debug>(result: cairn::Result<T>, needle: &str) {
    match result {
        Err(Error::InvalidArgument(message)) => assert!(
            message.contains(needle),
            "InvalidArgument message {message:?} should mention {needle:?}"
        ),
        other => panic!("expected Error::InvalidArgument, got {other:?}"),
    }
}

#[track_caller]
fn assert_closed<T: std::fmt::Debug>(result: cairn::Result<T>) {
    match result {
        Err(Error::Closed) => {}
        other => panic!("expected Error::Closed, got {other:?}"),
    }
}

#[test]
fn empty_key_is_refused_by_every_call() {
    let db = small_value_db();
    seeded(&db);
    let before = fingerprint(&db);

    assert_key_empty(db.put(b"", "v"));
    assert_key_empty(db.put_with_ttl(b"", "v", Duration::from_secs(1)));
    assert_key_empty(db.get(b""));
    assert_key_empty(db.get_versioned(b""));
    assert_key_empty(db.exists(b""));
    assert_key_empty(db.delete(b""));
    assert_key_empty(db.multi_get(&[b"a".as_slice(), b"".as_slice()]));
    assert_key_empty(db.compare_and_swap(b"", Expected::Absent, Some(b"v")));
    assert_key_empty(db.increment(b"", 1));
    assert_key_empty(db.ttl(b""));
    assert_key_empty(db.expire(b"", Duration::from_secs(1)));
    assert_key_empty(db.persist(b""));
    let mut batch = WriteBatch::new();
    batch.delete(b"");
    assert_key_empty(db.write(&batch));

    let mut tx = db.begin();
    assert_key_empty(tx.put(b"", "v"));
    assert_key_empty(tx.put_with_ttl(b"", "v", Duration::from_secs(1)));
    assert_key_empty(tx.delete(b""));
    assert_key_empty(tx.get(b""));
    assert_key_empty(tx.exists(b""));
    // The refused writes were not buffered: the transaction has nothing to commit.
    assert_eq!(tx.commit().expect("empty commit"), before.version);

    let message = Error::KeyEmpty.to_string();
    assert!(message.contains("65536"), "{message}");
    assert_eq!(fingerprint(&db), before);
}

#[test]
fn key_one_byte_over_the_limit_is_refused_naming_the_limit() {
    let db = small_value_db();
    seeded(&db);
    let before = fingerprint(&db);
    let key = vec![b'k'; KEY_MAX + 1];

    assert_key_too_large(db.put(&key, "v"), KEY_MAX + 1);
    assert_key_too_large(
        db.put_with_ttl(&key, "v", Duration::from_secs(1)),
        KEY_MAX + 1,
    );
    assert_key_too_large(db.get(&key), KEY_MAX + 1);
    assert_key_too_large(db.exists(&key), KEY_MAX + 1);
    assert_key_too_large(db.delete(&key), KEY_MAX + 1);
    assert_key_too_large(
        db.compare_and_swap(&key, Expected::Absent, Some(b"v")),
        KEY_MAX + 1,
    );
    assert_key_too_large(db.increment(&key, 1), KEY_MAX + 1);
    assert_key_too_large(db.multi_get(&[key.as_slice()]), KEY_MAX + 1);
    let mut batch = WriteBatch::new();
    batch.put("fine", "v").put(&key, "v");
    assert_key_too_large(db.write(&batch), KEY_MAX + 1);
    let mut tx = db.begin();
    assert_key_too_large(tx.put(&key, "v"), KEY_MAX + 1);
    drop(tx);

    // Far over the limit: the error message is cut, not a 1 MiB log line.
    let huge = vec![b'h'; 1 << 20];
    let Err(error) = db.put(&huge, "v") else {
        panic!("a 1 MiB key must be refused")
    };
    assert!(error.to_string().len() < 200, "message too long: {error}");
    assert_eq!(fingerprint(&db), before);
}

#[test]
fn key_of_exactly_the_limit_is_accepted() {
    let db = small_value_db();
    let key = vec![0xab; KEY_MAX];
    let version = db.put(&key, "edge").expect("a 65,536-byte key is accepted");
    assert_eq!(version, Version::new(1));
    assert_eq!(db.get(&key).expect("get").as_deref(), Some(&b"edge"[..]));
    assert!(db.exists(&key).expect("exists"));
    assert_eq!(
        db.scan_prefix(&key[..10])
            .expect("scan of an open database")
            .count(),
        1
    );
    // An error about a maximal key names it, cut short so that the message stays small.
    match db.increment(&key, 0) {
        Err(error @ Error::NotAnInteger { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("\\xab\\xab") && message.len() < 400,
                "{message}"
            );
        }
        other => panic!("expected NotAnInteger, got {other:?}"),
    }
    assert!(db.delete(&key).expect("delete"));
    assert_eq!(db.get(&key).expect("get"), None);
    // One byte keys are the smallest accepted.
    db.put([0u8], "zero").expect("a one-byte key is accepted");
    assert_eq!(db.get([0u8]).expect("get").as_deref(), Some(&b"zero"[..]));
}

#[test]
fn value_over_max_value_bytes_is_refused_and_nothing_is_written() {
    let db = small_value_db();
    seeded(&db);
    let before = fingerprint(&db);
    let big = vec![b'v'; 1025];

    let check = |result: cairn::Result<_>| match result {
        Err(
            error @ Error::ValueTooLarge {
                len: 1025,
                max: 1024,
            },
        ) => {
            let message = error.to_string();
            assert!(
                message.contains("1024") && message.contains("1025"),
                "{message}"
            );
        }
        other => panic!("expected ValueTooLarge {{ len: 1025, max: 1024 }}, got {other:?}"),
    };
    check(db.put("a", &big).map(|_| ()));
    check(db.put("new", &big).map(|_| ()));
    check(
        db.put_with_ttl("a", &big, Duration::from_secs(1))
            .map(|_| ()),
    );
    check(
        db.compare_and_swap("a", Expected::Value(b"1"), Some(&big))
            .map(|_| ()),
    );
    let mut batch = WriteBatch::new();
    batch.put("b", "fine").put("c", &big).delete("a");
    check(db.write(&batch).map(|_| ()));
    let mut tx = db.begin();
    check(tx.put("a", &big));
    check(tx.put_with_ttl("a", &big, Duration::from_secs(1)));
    assert_eq!(tx.get("a").expect("tx get").as_deref(), Some(&b"1"[..]));
    drop(tx);
    assert_eq!(fingerprint(&db), before);

    // Exactly the limit is fine.
    db.put("a", vec![b'v'; 1024])
        .expect("a value of exactly the limit");
    assert_eq!(
        db.get("a").expect("get").map(|value| value.len()),
        Some(1024)
    );
}

#[test]
fn increment_overflow_is_refused_and_leaves_the_value() {
    let db = small_value_db();
    db.put("max", i64::MAX.to_string()).expect("put");
    db.put("min", i64::MIN.to_string()).expect("put");
    let before = fingerprint(&db);

    match db.increment("max", 1) {
        Err(Error::Overflow { key, delta: 1 }) => assert_eq!(key.to_string(), "\"max\""),
        other => panic!("expected Overflow, got {other:?}"),
    }
    match db.increment("min", -1) {
        Err(Error::Overflow { delta: -1, .. }) => {}
        other => panic!("expected Overflow, got {other:?}"),
    }
    match db.increment("min", i64::MIN) {
        Err(Error::Overflow { delta, .. }) => assert_eq!(delta, i64::MIN),
        other => panic!("expected Overflow, got {other:?}"),
    }
    assert_eq!(fingerprint(&db), before);
    assert_eq!(
        db.get("max").expect("get").as_deref(),
        Some(i64::MAX.to_string().as_bytes())
    );
    // The boundary itself is reachable.
    assert_eq!(db.increment("max", 0).expect("no-op increment"), i64::MAX);
    assert_eq!(db.increment("max", -1).expect("decrement"), i64::MAX - 1);
    assert_eq!(db.increment("max", 1).expect("back to max"), i64::MAX);
}

#[test]
fn increment_of_a_non_integer_is_refused_and_leaves_the_value() {
    let db = small_value_db();
    let bad: [&[u8]; 7] = [
        b"abc",
        b"1.5",
        b"",
        b" 1",
        b"1 ",
        b"9223372036854775808",
        &[0xff, 0x31],
    ];
    for (index, value) in bad.iter().enumerate() {
        db.put(format!("bad{index}"), value).expect("put");
    }
    let before = fingerprint(&db);
    for (index, value) in bad.iter().enumerate() {
        let key = format!("bad{index}");
        match db.increment(&key, 1) {
            Err(Error::NotAnInteger { key: shown }) => {
                assert_eq!(shown, cairn::KeyDisplay::new(key.as_bytes()));
            }
            other => panic!("value {value:?}: expected NotAnInteger, got {other:?}"),
        }
    }
    assert_eq!(fingerprint(&db), before);
}

#[test]
fn reversed_range_is_an_invalid_argument() {
    let db = small_value_db();
    seeded(&db);
    let before = fingerprint(&db);
    assert_invalid_argument(db.range(b"b".as_slice()..b"a".as_slice()), "after its end");
    assert_invalid_argument(db.range(b"b".as_slice()..=b"a".as_slice()), "after its end");
    let snapshot = db.snapshot();
    assert_invalid_argument(snapshot.range(b"z".as_slice()..b"a".as_slice()), "range");
    drop(snapshot);
    let mut tx = db.begin_with(Isolation::Serializable);
    assert_invalid_argument(
        tx.range(b"z".as_slice()..b"a".as_slice()).map(|_| ()),
        "range",
    );
    drop(tx);
    // An empty but well-ordered range is not an error.
    assert_eq!(
        db.range(b"a".as_slice()..b"a".as_slice())
            .expect("empty range")
            .count(),
        0
    );
    assert_eq!(fingerprint(&db), before);
}

#[test]
fn zero_or_overflowing_ttl_is_an_invalid_argument() {
    let clock = ManualClock::new(1_000);
    let db = Db::open(
        Options::in_memory()
            .clock(std::sync::Arc::new(clock))
            .maintenance_interval(Duration::ZERO),
    )
    .expect("open");
    seeded(&db);
    let before = fingerprint(&db);

    assert_invalid_argument(db.put_with_ttl("a", "v", Duration::ZERO), "ttl is zero");
    assert_invalid_argument(db.put_with_ttl("new", "v", Duration::ZERO), "ttl is zero");
    assert_invalid_argument(db.expire("a", Duration::ZERO), "ttl is zero");
    assert_invalid_argument(db.put_with_ttl("a", "v", Duration::MAX), "overflows");
    let mut batch = WriteBatch::new();
    batch.put("b", "v").put_with_ttl("c", "v", Duration::ZERO);
    assert_invalid_argument(db.write(&batch), "ttl is zero");
    let mut tx = db.begin();
    assert_invalid_argument(tx.put_with_ttl("a", "v", Duration::ZERO), "ttl is zero");
    assert_eq!(tx.get("a").expect("tx get").as_deref(), Some(&b"1"[..]));
    drop(tx);
    assert_eq!(fingerprint(&db), before);
    assert_eq!(db.ttl("a").expect("ttl"), cairn::Ttl::Persistent);
}

#[test]
fn batch_with_one_bad_entry_writes_nothing() {
    let db = small_value_db();
    seeded(&db);
    let before = fingerprint(&db);
    let mut batch = WriteBatch::new();
    for index in 0..10 {
        batch.put(format!("good{index}"), "v");
    }
    batch.delete("a");
    batch.put(b"", "bad");
    assert_key_empty(db.write(&batch));

    let mut batch = WriteBatch::new();
    batch
        .delete("a")
        .put("good", "v")
        .put(vec![b'k'; KEY_MAX + 1], "v");
    assert_key_too_large(db.write(&batch), KEY_MAX + 1);

    assert_eq!(fingerprint(&db), before);
    assert_eq!(db.get("good0").expect("get"), None);
    assert_eq!(db.get("a").expect("get").as_deref(), Some(&b"1"[..]));
}

#[test]
fn operations_after_close_are_refused() {
    let db = small_value_db();
    seeded(&db);
    let other_handle = db.clone();
    let mut open_tx = db.begin();
    open_tx.put("from-tx", "v").expect("buffer a put");
    db.close().expect("close");
    let after_close = fingerprint(&other_handle);

    for handle in [&db, &other_handle] {
        assert_closed(handle.put("a", "2"));
        assert_closed(handle.put_with_ttl("a", "2", Duration::from_secs(1)));
        assert_closed(handle.delete("a"));
        assert_closed(handle.compare_and_swap("a", Expected::Value(b"1"), Some(b"2")));
        assert_closed(handle.increment("n", 1));
        assert_closed(handle.expire("a", Duration::from_secs(1)));
        assert_closed(handle.persist("a"));
        assert_closed(handle.clear_prefix("a"));
        let mut batch = WriteBatch::new();
        batch.put("b", "v");
        assert_closed(handle.write(&batch));
        assert_closed(handle.sync());
        assert_closed(handle.get("a"));
        assert_closed(handle.get_versioned("a"));
        assert_closed(handle.exists("a"));
        assert_closed(handle.multi_get(&["a", "n"]));
        assert_closed(handle.ttl("a"));
        assert_closed(handle.range(b"a".as_slice()..));
        assert_closed(handle.scan_prefix("a"));
        assert_closed(handle.count_prefix("a"));
        let mut tx = handle.begin();
        tx.put("c", "v").expect("buffering is not a commit");
        assert_closed(tx.commit());
        assert_closed(handle.transaction(|tx| tx.put("d", "v")));
    }
    assert_closed(open_tx.commit());
    // Closing twice is harmless.
    db.close().expect("second close");
    assert_eq!(fingerprint(&other_handle), after_close);
    assert_eq!(
        after_close.commits, 2,
        "only the two seeding commits happened"
    );
}

#[test]
fn options_out_of_range_are_refused() {
    assert_invalid_argument(
        Db::open(Options::in_memory().max_value_bytes(0)),
        "max_value_bytes is 0",
    );
    assert_invalid_argument(
        Db::open(Options::in_memory().max_value_bytes((1 << 30) + 1)),
        "max_value_bytes",
    );
    assert_invalid_argument(
        Db::open(Options::in_memory().watch_queue_events(0)),
        "watch_queue_events is 0",
    );
    assert_invalid_argument(
        Db::open(Options::in_memory().watch_queue_events((1 << 20) + 1)),
        "watch_queue_events",
    );
    // A directory with InMemory durability is a contradiction, refused before any file is made.
    let dir = std::env::temp_dir().join(format!("cairn-bad-input-{}", std::process::id()));
    assert_invalid_argument(
        Db::open(Options::new(&dir).durability(cairn::Durability::InMemory)),
        "InMemory keeps no files",
    );
    assert!(!dir.exists(), "a refused open created its directory");
    // The bounds themselves are accepted.
    Db::open(
        Options::in_memory()
            .max_value_bytes(1)
            .watch_queue_events(1),
    )
    .expect("smallest settings are valid");
    Db::open(
        Options::in_memory()
            .max_value_bytes(1 << 30)
            .watch_queue_events(1 << 20),
    )
    .expect("largest settings are valid");
}
