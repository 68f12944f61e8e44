//! Bounded resources and closed handles: every read set has a limit with a typed error naming
//! it, and a closed database refuses scans the way it refuses every other read.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::time::Duration;

use cairn::{limits, Db, Error, Isolation, Options};

fn db() -> Db {
    Db::open(Options::in_memory().maintenance_interval(Duration::ZERO)).expect("open")
}

#[test]
fn a_closed_database_refuses_scans() {
    let db = db();
    db.put("k1", "v").expect("put");
    let open_scan = db.scan_prefix("k").expect("scan before close");
    db.close().expect("close");
    assert!(matches!(db.scan_prefix("k"), Err(Error::Closed)));
    assert!(matches!(db.range("a".."z"), Err(Error::Closed)));
    assert!(matches!(db.count_prefix("k"), Err(Error::Closed)));
    // A scan begun before the close keeps its read version.
    assert_eq!(open_scan.count(), 1);
}

#[test]
fn a_serializable_read_set_is_bounded() {
    let db = db();
    db.put("k", "v").expect("put");
    let mut tx = db.begin_with(Isolation::Serializable);
    for _ in 0..limits::TRANSACTION_READ_KEYS_MAX {
        tx.get("k").expect("read within the limit");
    }
    let refused = tx.get("k");
    assert!(
        matches!(
            refused,
            Err(Error::LimitExceeded {
                limit: "TRANSACTION_READ_KEYS_MAX",
                ..
            })
        ),
        "{refused:?}"
    );
    // Snapshot isolation keeps no read set, so it has no such limit.
    let mut tx = db.begin();
    for _ in 0..=limits::TRANSACTION_READ_RANGES_MAX {
        assert_eq!(tx.scan_prefix("k").count(), 1);
    }
}

#[test]
fn a_serializable_range_set_is_bounded() {
    let db = db();
    db.put("k", "v").expect("put");
    let mut tx = db.begin_with(Isolation::Serializable);
    for _ in 0..limits::TRANSACTION_READ_RANGES_MAX {
        assert_eq!(tx.range("a".."z").expect("within the limit").count(), 1);
    }
    let refused = tx.range("a".."z").map(Iterator::count);
    assert!(
        matches!(
            refused,
            Err(Error::LimitExceeded {
                limit: "TRANSACTION_READ_RANGES_MAX",
                ..
            })
        ),
        "{refused:?}"
    );
    // `scan_prefix` cannot fail, so a transaction that scanned past the limit and wrote
    // refuses to commit instead.
    assert_eq!(tx.scan_prefix("k").count(), 1);
    tx.put("out", "x").expect("buffer");
    let refused = tx.commit();
    assert!(
        matches!(
            refused,
            Err(Error::LimitExceeded {
                limit: "TRANSACTION_READ_RANGES_MAX",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(db.get("out").expect("get"), None);
}
