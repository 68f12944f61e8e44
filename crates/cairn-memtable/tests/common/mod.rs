//! The record type and helpers the integration tests share.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cairn_memtable::{
    Backpressure, IndexKind, IndexSpec, IndexValue, MemoryPersister, Options, Record, Repository,
};
use serde::{Deserialize, Serialize};

/// A record with one index of each kind: `email` unique (absent when empty), `team`
/// non-unique, `score` and `name` ordered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: u64,
    pub email: String,
    pub team: u32,
    pub score: i64,
    pub name: String,
}

pub const EMAIL: usize = 0;
pub const TEAM: usize = 1;
pub const SCORE: usize = 2;
pub const NAME: usize = 3;

impl Record for Item {
    type Key = u64;
    const INDEXES: &'static [IndexSpec] = &[
        IndexSpec::new("email", IndexKind::Unique),
        IndexSpec::new("team", IndexKind::NonUnique),
        IndexSpec::new("score", IndexKind::Ordered),
        IndexSpec::new("name", IndexKind::Ordered),
    ];

    fn key(&self) -> u64 {
        self.id
    }

    fn index_value(&self, index: usize) -> Option<IndexValue> {
        match index {
            EMAIL if !self.email.is_empty() => Some(IndexValue::from(&self.email)),
            TEAM => Some(IndexValue::from(self.team)),
            SCORE => Some(IndexValue::from(self.score)),
            NAME => Some(IndexValue::from(&self.name)),
            _ => None,
        }
    }
}

pub fn item(id: u64, email: &str, team: u32) -> Item {
    Item {
        id,
        email: email.to_owned(),
        team,
        score: i64::try_from(id).expect("small ids") - 50,
        name: format!("n{id}"),
    }
}

/// Options for tests: small layers, fast retries, no time rotation.
pub fn test_options() -> Options {
    Options {
        rotate_bytes: 1 << 20,
        rotate_after: None,
        immutable_max: 4,
        backpressure: Backpressure::Block(Duration::from_secs(5)),
        retry_initial: Duration::from_millis(1),
        retry_max: Duration::from_millis(10),
        drain_timeout: Duration::from_secs(10),
        cache_entries: 1_000,
        wal: None,
    }
}

pub fn open(store: &Arc<MemoryPersister>, options: Options) -> Repository<Item> {
    Repository::open(Arc::clone(store) as _, options).expect("open the repository")
}

pub fn ids(records: &[Arc<Item>]) -> Vec<u64> {
    records.iter().map(|record| record.id).collect()
}

// ----- the documented store-key layout, rebuilt independently -----------------------------

fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
}

fn prefix(tag: u8, name: &str) -> Vec<u8> {
    let mut key = vec![tag];
    escape(name.as_bytes(), &mut key);
    key.extend_from_slice(&[0, 1]);
    key
}

/// Every index-entry key the store must hold for `records`, and nothing else.
pub fn expected_index_keys(records: &BTreeMap<u64, Item>) -> BTreeSet<Vec<u8>> {
    let mut keys = BTreeSet::new();
    for record in records.values() {
        let pk = record.id.to_be_bytes();
        for (position, spec) in Item::INDEXES.iter().enumerate() {
            let Some(value) = record.index_value(position) else {
                continue;
            };
            let key = if spec.kind == IndexKind::Unique {
                let mut key = prefix(b'u', spec.name);
                escape(value.as_bytes(), &mut key);
                key
            } else {
                let mut key = prefix(b'n', spec.name);
                escape(value.as_bytes(), &mut key);
                key.extend_from_slice(&[0, 1]);
                key.extend_from_slice(&pk);
                key
            };
            keys.insert(key);
        }
    }
    keys
}

/// Splits a persister's contents into decoded records and index-entry keys.
pub fn split_store(
    contents: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> (BTreeMap<u64, Item>, BTreeSet<Vec<u8>>) {
    let mut records = BTreeMap::new();
    let mut entries = BTreeSet::new();
    for (key, value) in contents {
        if key.first() == Some(&b'r') {
            let id = u64::from_be_bytes(key[1..].try_into().expect("an 8-byte key"));
            let (&version, body) = value.split_first().expect("a version byte");
            assert_eq!(version, Item::SCHEMA_VERSION);
            let record: Item = postcard_decode(body);
            assert_eq!(record.id, id);
            records.insert(id, record);
        } else {
            entries.insert(key.clone());
        }
    }
    (records, entries)
}

fn postcard_decode(body: &[u8]) -> Item {
    // The crate's own decoding is private; the format is version byte + postcard, and the
    // repository reading a cold store checks the same bytes end to end.
    postcard::from_bytes(body).expect("a postcard record")
}

/// Asserts the store's index entries are exactly those `records` need, naming the stale and
/// missing ones (few) rather than printing both sets.
pub fn assert_index_entries(
    entries: &BTreeSet<Vec<u8>>,
    records: &BTreeMap<u64, Item>,
    context: &str,
) {
    let expected = expected_index_keys(records);
    let stale: Vec<String> = entries
        .difference(&expected)
        .take(5)
        .map(|key| String::from_utf8_lossy(key).into_owned())
        .collect();
    let missing: Vec<String> = expected
        .difference(entries)
        .take(5)
        .map(|key| String::from_utf8_lossy(key).into_owned())
        .collect();
    assert!(
        stale.is_empty() && missing.is_empty(),
        "{context}: stale index entries {stale:?}, missing {missing:?} (first five of each)"
    );
}
