//! In-memory databases on a manual clock, and small helpers that turn reads and watch events
//! into plain values to compare: shared by the feature tests (`ttl`, `watch`, `version_growth`,
//! `clear_prefix`, `reads`). Maintenance never runs on its own here; a test calls it.

use std::sync::Arc;
use std::time::Duration;

use cairn::{Db, Key, ManualClock, Options, Value, Version, WatchEvent};

pub fn manual_db_with(options: Options) -> (Db, ManualClock) {
    let clock = ManualClock::new(1_000_000);
    let db = Db::open(
        options
            .clock(Arc::new(clock.clone()))
            .maintenance_interval(Duration::ZERO),
    )
    .expect("open an in-memory database");
    (db, clock)
}

pub fn manual_db() -> (Db, ManualClock) {
    manual_db_with(Options::in_memory())
}

pub fn bytes(value: Option<Value>) -> Option<Vec<u8>> {
    value.map(|value| value.to_vec())
}

/// Owned `(key, value)` pairs, in the order a scan returned them.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

pub fn pairs(scan: impl Iterator<Item = (Key, Value)>) -> Pairs {
    scan.map(|(key, value)| (key.to_vec(), value.to_vec()))
        .collect()
}

pub fn put_event(key: &str, value: &str, version: Version) -> WatchEvent {
    WatchEvent::Put {
        key: Key::from(key),
        value: Value::from(value),
        version,
    }
}

pub fn delete_event(key: &str, version: Version) -> WatchEvent {
    WatchEvent::Delete {
        key: Key::from(key),
        version,
    }
}

pub fn drain(watcher: &cairn::Watcher) -> Vec<WatchEvent> {
    std::iter::from_fn(|| watcher.try_recv()).collect()
}
