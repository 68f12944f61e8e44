//! The classic isolation anomalies, one test each, under both isolation levels.
//!
//! | anomaly              | `Snapshot` | `Serializable` |
//! |----------------------|------------|----------------|
//! | dirty read           | forbidden  | forbidden      |
//! | non-repeatable read  | forbidden  | forbidden      |
//! | lost update          | forbidden  | forbidden      |
//! | write skew           | allowed    | forbidden      |
//! | phantom              | allowed    | forbidden      |
//!
//! "Forbidden" at commit means `Error::Conflict` naming the key, with nothing written;
//! "allowed" means both transactions commit and the anomaly is visible in the final state.
//! Each test also checks the converse where it matters (a non-conflicting commit is not
//! refused), so an engine that refused everything would fail too.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use cairn::{Db, Error, Isolation, KeyDisplay, Transaction, Value};

const LEVELS: [Isolation; 2] = [Isolation::Snapshot, Isolation::Serializable];

fn text(value: Option<Value>) -> Option<String> {
    value.map(|value| String::from_utf8(value.to_vec()).expect("utf8 value"))
}

fn read(tx: &mut Transaction, key: &str) -> Option<String> {
    text(tx.get(key).expect("transaction read"))
}

fn number(tx: &mut Transaction, key: &str) -> i64 {
    read(tx, key)
        .expect("key present")
        .parse()
        .expect("decimal value")
}

#[track_caller]
fn assert_conflict_on(result: cairn::Result<cairn::Version>, key: &str) {
    match result {
        Err(Error::Conflict { key: found }) => assert_eq!(found, KeyDisplay::new(key.as_bytes())),
        other => panic!("expected Error::Conflict on {key:?}, got {other:?}"),
    }
}

fn get(db: &Db, key: &str) -> Option<String> {
    text(db.get(key).expect("db read"))
}

#[test]
fn dirty_read_is_forbidden_at_both_levels() {
    for writer_level in LEVELS {
        for reader_level in LEVELS {
            let db = Db::in_memory();
            db.put("balance", "100").expect("put");
            db.put("doomed", "here").expect("put");

            let mut writer = db.begin_with(writer_level);
            writer.put("balance", "0").expect("put");
            writer.put("fresh", "new").expect("put");
            writer.delete("doomed").expect("delete");
            // The writer reads its own writes...
            assert_eq!(read(&mut writer, "balance").as_deref(), Some("0"));
            assert_eq!(read(&mut writer, "doomed"), None);

            // ...and nobody else does, through any kind of read.
            let mut reader = db.begin_with(reader_level);
            assert_eq!(read(&mut reader, "balance").as_deref(), Some("100"));
            assert_eq!(read(&mut reader, "fresh"), None);
            assert_eq!(read(&mut reader, "doomed").as_deref(), Some("here"));
            assert_eq!(reader.scan_prefix("").count(), 2);
            assert_eq!(get(&db, "balance").as_deref(), Some("100"));
            assert!(!db.exists("fresh").expect("exists"));
            assert_eq!(db.count_prefix("").expect("count"), 2);
            let snapshot = db.snapshot();
            assert_eq!(text(snapshot.get("balance")).as_deref(), Some("100"));

            // A rolled-back transaction's writes are never seen at all.
            let version = db.version();
            writer.rollback();
            assert_eq!(db.version(), version);
            assert_eq!(get(&db, "balance").as_deref(), Some("100"));
            assert_eq!(get(&db, "doomed").as_deref(), Some("here"));
            assert_eq!(get(&db, "fresh"), None);

            // A committed one is seen by new readers only, never by ones begun earlier.
            let mut writer = db.begin_with(writer_level);
            writer.put("balance", "50").expect("put");
            writer.commit().expect("commit");
            assert_eq!(get(&db, "balance").as_deref(), Some("50"));
            assert_eq!(read(&mut reader, "balance").as_deref(), Some("100"));
            assert_eq!(text(snapshot.get("balance")).as_deref(), Some("100"));
        }
    }
}

#[test]
fn non_repeatable_read_is_forbidden_at_both_levels() {
    for level in LEVELS {
        let db = Db::in_memory();
        db.put("item:1", "apple").expect("put");
        db.put("item:2", "pear").expect("put");

        let mut tx = db.begin_with(level);
        assert_eq!(read(&mut tx, "item:1").as_deref(), Some("apple"));
        let first_scan: Vec<_> = tx.scan_prefix("item:").collect();

        // Another transaction changes and deletes what `tx` read, and commits.
        db.transaction_with(level, |other| {
            other.put("item:1", "banana")?;
            other.delete("item:2")
        })
        .expect("other commit");
        assert_eq!(get(&db, "item:1").as_deref(), Some("banana"));

        // `tx` keeps reading what it read before, by key and by scan.
        assert_eq!(read(&mut tx, "item:1").as_deref(), Some("apple"));
        assert_eq!(read(&mut tx, "item:2").as_deref(), Some("pear"));
        let second_scan: Vec<_> = tx.scan_prefix("item:").collect();
        assert_eq!(first_scan, second_scan, "{level:?}");

        // Whether `tx` may commit a write based on those reads is what sets the levels apart.
        tx.put("log", "saw apple").expect("put");
        let outcome = tx.commit();
        if level == Isolation::Snapshot {
            outcome.expect("snapshot isolation only checks the write set");
            assert_eq!(get(&db, "log").as_deref(), Some("saw apple"));
        } else {
            assert_conflict_on(outcome, "item:1");
            assert_eq!(get(&db, "log"), None, "a refused commit writes nothing");
        }

        // A read-only transaction always commits: it changed nothing.
        let mut reader = db.begin_with(level);
        assert_eq!(read(&mut reader, "item:1").as_deref(), Some("banana"));
        db.put("item:1", "cherry").expect("put");
        assert_eq!(read(&mut reader, "item:1").as_deref(), Some("banana"));
        reader.commit().expect("read-only commit");
    }
}

#[test]
fn lost_update_is_forbidden_at_both_levels() {
    for level in LEVELS {
        let db = Db::in_memory();
        db.put("counter", "0").expect("put");
        db.put("unrelated", "0").expect("put");

        let mut first = db.begin_with(level);
        let mut second = db.begin_with(level);
        let seen_first = number(&mut first, "counter");
        let seen_second = number(&mut second, "counter");
        first
            .put("counter", (seen_first + 1).to_string())
            .expect("put");
        second
            .put("counter", (seen_second + 1).to_string())
            .expect("put");
        second
            .put("other", "written with the lost update")
            .expect("put");

        first.commit().expect("first committer wins");
        assert_conflict_on(second.commit(), "counter");
        assert_eq!(get(&db, "counter").as_deref(), Some("1"));
        assert_eq!(get(&db, "other"), None, "the refused commit wrote nothing");

        // A blind write (no read) conflicts too: first committer wins on the write set.
        let mut blind = db.begin_with(level);
        blind.put("counter", "100").expect("put");
        db.put("counter", "2").expect("put");
        assert_conflict_on(blind.commit(), "counter");
        assert_eq!(get(&db, "counter").as_deref(), Some("2"));

        // A concurrent commit to a different key is no conflict.
        let mut disjoint = db.begin_with(level);
        disjoint.put("counter", "3").expect("put");
        db.put("unrelated", "1").expect("put");
        disjoint.commit().expect("no overlap, no conflict");
        assert_eq!(get(&db, "counter").as_deref(), Some("3"));

        // With the retry helper, both increments land.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let db = db.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        // `transaction_with` retries a bounded number of times; under heavy
                        // contention it may give up with `Conflict`, which is then retried here.
                        loop {
                            match db.transaction_with(level, |tx| {
                                let current = number(tx, "counter");
                                tx.put("counter", (current + 1).to_string())
                            }) {
                                Ok(()) => break,
                                Err(Error::Conflict { .. }) => {}
                                Err(other) => panic!("increment failed: {other}"),
                            }
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("increment thread");
        }
        assert_eq!(get(&db, "counter").as_deref(), Some("203"), "{level:?}");
    }
}

/// Two doctors on call; each goes off call only if the other is still on.
fn write_skew(
    level: Isolation,
) -> (
    Db,
    cairn::Result<cairn::Version>,
    cairn::Result<cairn::Version>,
) {
    let db = Db::in_memory();
    db.put("oncall:alice", "yes").expect("put");
    db.put("oncall:bob", "yes").expect("put");

    let mut alice = db.begin_with(level);
    let mut bob = db.begin_with(level);
    for tx in [&mut alice, &mut bob] {
        let on_call = ["oncall:alice", "oncall:bob"]
            .iter()
            .filter(|key| read(tx, key).as_deref() == Some("yes"))
            .count();
        assert_eq!(on_call, 2, "both start on call");
    }
    alice.put("oncall:alice", "no").expect("put");
    bob.put("oncall:bob", "no").expect("put");
    let first = alice.commit();
    let second = bob.commit();
    (db, first, second)
}

#[test]
fn write_skew_is_allowed_by_snapshot_and_forbidden_by_serializable() {
    let (db, alice, bob) = write_skew(Isolation::Snapshot);
    alice.expect("alice commits");
    bob.expect("bob commits: their write sets do not overlap");
    assert_eq!(get(&db, "oncall:alice").as_deref(), Some("no"));
    assert_eq!(
        get(&db, "oncall:bob").as_deref(),
        Some("no"),
        "nobody on call: write skew"
    );

    let (db, alice, bob) = write_skew(Isolation::Serializable);
    alice.expect("alice commits first");
    assert_conflict_on(bob, "oncall:alice");
    assert_eq!(get(&db, "oncall:alice").as_deref(), Some("no"));
    assert_eq!(
        get(&db, "oncall:bob").as_deref(),
        Some("yes"),
        "bob is still on call"
    );
}

#[test]
fn serializable_conflicts_only_on_what_was_read() {
    // Reading a key that nobody changes, and writing another, never conflicts.
    let db = Db::in_memory();
    db.put("a", "1").expect("put");
    db.put("b", "1").expect("put");
    let mut tx = db.begin_with(Isolation::Serializable);
    assert_eq!(read(&mut tx, "a").as_deref(), Some("1"));
    db.put("b", "2").expect("a key tx never read");
    db.put("c", "2").expect("a key tx never read");
    tx.put("d", "x").expect("put");
    tx.commit().expect("no read or write of tx changed");
    // Reading an absent key that someone then creates does conflict.
    let mut tx = db.begin_with(Isolation::Serializable);
    assert_eq!(read(&mut tx, "e"), None);
    db.put("e", "created").expect("put");
    tx.put("d", "y").expect("put");
    assert_conflict_on(tx.commit(), "e");
    assert_eq!(get(&db, "d").as_deref(), Some("x"));
}

/// `tx` counts the keys under `item:`, a concurrent commit changes that set, and `tx` writes
/// the count it saw. Returns the database and `tx`'s commit outcome.
fn phantom(
    level: Isolation,
    concurrent: impl FnOnce(&Db),
    scan: impl FnOnce(&mut Transaction) -> usize,
) -> (Db, cairn::Result<cairn::Version>) {
    let db = Db::in_memory();
    db.put("item:1", "a").expect("put");
    db.put("item:3", "c").expect("put");
    db.put("other", "o").expect("put");
    let mut tx = db.begin_with(level);
    let counted = scan(&mut tx);
    assert_eq!(counted, 2);
    concurrent(&db);
    // The phantom is not visible to `tx` itself: its scans are repeatable.
    assert_eq!(tx.scan_prefix("item:").count(), 2);
    tx.put("summary", counted.to_string()).expect("put");
    let outcome = tx.commit();
    (db, outcome)
}

#[test]
fn phantom_is_allowed_by_snapshot_and_forbidden_by_serializable() {
    let insert = |db: &Db| {
        db.put("item:2", "b")
            .expect("insert into the scanned range");
    };
    let delete = |db: &Db| {
        db.delete("item:3").expect("delete from the scanned range");
    };
    let by_prefix = |tx: &mut Transaction| tx.scan_prefix("item:").count();
    let by_range = |tx: &mut Transaction| {
        tx.range(b"item:".as_slice()..b"item;".as_slice())
            .expect("range")
            .count()
    };

    let (db, outcome) = phantom(Isolation::Snapshot, insert, by_prefix);
    outcome.expect("snapshot isolation allows the phantom");
    assert_eq!(get(&db, "summary").as_deref(), Some("2"));
    assert_eq!(
        db.count_prefix("item:").expect("count"),
        3,
        "the summary is stale"
    );

    let (db, outcome) = phantom(Isolation::Serializable, insert, by_prefix);
    assert_conflict_on(outcome, "item:2");
    assert_eq!(get(&db, "summary"), None);

    let (db, outcome) = phantom(Isolation::Serializable, insert, by_range);
    assert_conflict_on(outcome, "item:2");
    assert_eq!(get(&db, "summary"), None);

    let (_, outcome) = phantom(Isolation::Snapshot, delete, by_range);
    outcome.expect("snapshot isolation allows the phantom delete");
    let (db, outcome) = phantom(Isolation::Serializable, delete, by_prefix);
    assert_conflict_on(outcome, "item:3");
    assert_eq!(get(&db, "summary"), None);

    // A commit outside every scanned range is no phantom, at either level.
    for level in LEVELS {
        let outside = |db: &Db| {
            db.put("item", "no colon: not under item:").expect("put");
            db.put("itemz", "after the range").expect("put");
            db.put("other", "changed").expect("put");
        };
        let (db, outcome) = phantom(level, outside, by_prefix);
        outcome.expect("nothing changed inside the scanned range");
        assert_eq!(get(&db, "summary").as_deref(), Some("2"));
        let (_, outcome) = phantom(level, outside, by_range);
        outcome.expect("nothing changed inside the scanned range");
    }
}

#[test]
fn own_writes_are_merged_into_transaction_scans() {
    for level in LEVELS {
        let db = Db::in_memory();
        for key in ["s:1", "s:2", "s:3"] {
            db.put(key, "base").expect("put");
        }
        let mut tx = db.begin_with(level);
        tx.put("s:0", "mine").expect("put");
        tx.put("s:2", "mine").expect("put");
        tx.delete("s:3").expect("delete");
        tx.put("s:4", "mine").expect("put");
        tx.put("t:0", "outside").expect("put");
        let seen: Vec<(String, String)> = tx
            .scan_prefix("s:")
            .map(|(key, value)| {
                (
                    String::from_utf8(key.to_vec()).expect("utf8"),
                    String::from_utf8(value.to_vec()).expect("utf8"),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = [
            ("s:0", "mine"),
            ("s:1", "base"),
            ("s:2", "mine"),
            ("s:4", "mine"),
        ]
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
        assert_eq!(seen, expected, "{level:?}");
        assert_eq!(
            db.count_prefix("s:").expect("count"),
            3,
            "still uncommitted"
        );
        tx.commit().expect("commit");
        assert_eq!(db.count_prefix("s:").expect("count"), 4);
        assert_eq!(get(&db, "s:3"), None);
    }
}
