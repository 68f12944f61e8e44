//! `KvPersister` over a real Redis server (started by the test kit on a free loopback port;
//! `redis-server` must be installed). Needs the `redis` feature.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::sync::Arc;

use cairn_kv::Scope;
use cairn_memtable::{KvPersister, Persister, Repository};
use cairn_testkit::redis_server::RedisServer;
use common::{ids, item, test_options, Item};

#[test]
fn kv_persister_over_redis_serves_a_cold_start() {
    let server = RedisServer::shared().expect("a Redis server (is redis-server installed?)");
    let url = server.url();
    let scope = Scope::new("memtable", "redis").expect("scope");
    let persister: Arc<dyn Persister> = Arc::new(
        KvPersister::open(scope, || async move {
            cairn_kv::RedisStore::connect(&url).await
        })
        .expect("connect"),
    );
    let repo: Repository<Item> =
        Repository::open(Arc::clone(&persister), test_options()).expect("open");
    for id in 0..30 {
        repo.insert(item(
            id,
            &format!("e{id}"),
            u32::try_from(id % 2).expect("small"),
        ))
        .expect("insert");
    }
    repo.flush().expect("flush");
    repo.delete(&3).expect("delete");
    repo.update(&4, |old| Item {
        email: "moved".into(),
        ..old.clone()
    })
    .expect("update");
    repo.close().expect("close");
    let cold: Repository<Item> = Repository::open(persister, test_options()).expect("open");
    assert_eq!(cold.get(&3).expect("get"), None);
    assert_eq!(
        ids(&cold.by_index("email", "moved").expect("by_index")),
        vec![4]
    );
    assert!(cold.by_index("email", "e4").expect("by_index").is_empty());
    let odd: Vec<u64> = (0..30).filter(|id| id % 2 == 1 && *id != 3).collect();
    assert_eq!(ids(&cold.by_index("team", 1_u32).expect("by_index")), odd);
    assert_eq!(cold.scan(None, 100).expect("scan").len(), 29);
    cold.close().expect("close");
}
