//! The real persisters: the Cairn engine directly (each batch one commit), and any
//! `KeyValueStore` (Cairn and SQLite here; Redis when a server is installed). Each keeps the
//! index entries in the store, so a cold repository answers every query from the store.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::sync::Arc;

use cairn_kv::Scope;
use cairn_memtable::{DbPersister, IndexValue, KvPersister, Persister, Repository};
use cairn_testkit::TempDir;
use common::{ids, item, test_options, Item};

fn exercise(persister: &Arc<dyn Persister>) {
    let repo: Repository<Item> =
        Repository::open(Arc::clone(persister), test_options()).expect("open");
    for id in 0..40 {
        repo.insert(item(
            id,
            &format!("e{id}"),
            u32::try_from(id % 3).expect("small"),
        ))
        .expect("insert");
    }
    repo.flush().expect("flush");
    for id in 0..10 {
        repo.delete(&id).expect("delete");
    }
    repo.update(&20, |old| Item {
        email: "moved".into(),
        team: 9,
        ..old.clone()
    })
    .expect("update");
    repo.close().expect("close");

    let cold: Repository<Item> =
        Repository::open(Arc::clone(persister), test_options()).expect("open cold");
    assert_eq!(cold.get(&5).expect("get"), None);
    assert_eq!(cold.get(&25).expect("get").map(|r| r.id), Some(25));
    assert_eq!(
        ids(&cold.by_index("email", "moved").expect("unique")),
        vec![20]
    );
    assert!(cold.by_index("email", "e20").expect("unique").is_empty());
    assert_eq!(
        ids(&cold.by_index("team", 9_u32).expect("non-unique")),
        vec![20]
    );
    let team_one: Vec<u64> = (10..40).filter(|id| id % 3 == 1 && *id != 20).collect();
    assert_eq!(
        ids(&cold.by_index("team", 1_u32).expect("non-unique")),
        team_one
    );
    let scores = cold
        .range_by_index(
            "score",
            IndexValue::from(-30_i64)..IndexValue::from(-25_i64),
        )
        .expect("range");
    assert_eq!(ids(&scores), vec![20, 21, 22, 23, 24]);
    assert_eq!(
        ids(&cold.prefix_by_index("name", b"n3").expect("prefix")),
        vec![30, 31, 32, 33, 34, 35, 36, 37, 38, 39]
    );
    assert_eq!(cold.scan(None, 1_000).expect("scan").len(), 30);
    assert_eq!(ids(&cold.scan(Some(&37), 10).expect("scan")), vec![38, 39]);
    assert!(matches!(
        cold.insert(item(99, "e30", 0)),
        Err(cairn_memtable::Error::UniqueViolation { .. })
    ));
    cold.close().expect("close");
}

#[test]
fn db_persister_serves_a_cold_start() {
    let persister: Arc<dyn Persister> =
        Arc::new(DbPersister::new(cairn::Db::in_memory(), b"users/".to_vec()));
    exercise(&persister);
}

#[test]
fn db_persister_on_disk_in_strict_mode() {
    let dir = TempDir::new("memtable-db");
    let options = cairn::Options::new(dir.path()).durability(cairn::Durability::Strict);
    {
        let db = cairn::Db::open(options.clone()).expect("open the database");
        let persister: Arc<dyn Persister> = Arc::new(DbPersister::new(db.clone(), Vec::new()));
        exercise(&persister);
        db.close().expect("close the database");
    }
    let db = cairn::Db::open(options).expect("reopen the database");
    let persister: Arc<dyn Persister> = Arc::new(DbPersister::new(db, Vec::new()));
    let repo: Repository<Item> = Repository::open(persister, test_options()).expect("open");
    assert_eq!(repo.scan(None, 1_000).expect("scan").len(), 30);
}

#[test]
fn kv_persister_over_cairn() {
    let store = Arc::new(cairn_kv::CairnStore::in_memory());
    let scope = Scope::new("acme", "users").expect("scope");
    let persister: Arc<dyn Persister> =
        Arc::new(KvPersister::new(store, scope).expect("persister"));
    exercise(&persister);
}

#[test]
fn kv_persister_over_sqlite() {
    let dir = TempDir::new("memtable-sqlite");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let store = runtime
        .block_on(cairn_kv::SqliteStore::open(
            Some(dir.path().join("kv.sqlite3")),
            cairn_kv::SqliteSynchronous::Full,
        ))
        .expect("open sqlite");
    let store = Arc::new(store);
    let scope = Scope::new("acme", "users").expect("scope");
    let persister: Arc<dyn Persister> =
        Arc::new(KvPersister::new(store, scope).expect("persister"));
    exercise(&persister);
}

#[test]
fn kv_persister_works_from_inside_a_tokio_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = Arc::new(cairn_kv::CairnStore::in_memory());
        let scope = Scope::new("acme", "async").expect("scope");
        let persister: Arc<dyn Persister> =
            Arc::new(KvPersister::new(store, scope).expect("persister"));
        exercise(&persister);
    });
}
