//! Layer 5: the stream conformance suite against a Redis Cluster of three masters.
//!
//! A scope's streams share its hash slot, so each case runs on whichever master owns its
//! scope; across the cases, all three masters serve, and blocking reads find their master
//! themselves. The cluster is started by the test kit on free loopback ports, shared by every
//! case of this binary, and dies with the test process. `redis-server` (7.0 or later) and
//! `redis-cli` must be installed (`scripts/test.sh` does it).

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod stream_conformance;

use cairn_testkit::redis_server::RedisCluster;

async fn make_store() -> cairn_kv::RedisStore {
    let cluster = RedisCluster::shared().expect("a Redis Cluster for the stream suite");
    cairn_kv::RedisStore::connect_cluster(&cluster.urls())
        .await
        .expect("connect to the test cluster")
}

stream_conformance::stream_suite!(make_store);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_keys_never_collide() {
    stream_conformance::streams_and_keys_never_collide(std::sync::Arc::new(make_store().await))
        .await;
}

/// Blocking reads go on connections of their own, which must find the master of the
/// stream's slot themselves: check that they do for streams on every master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reads_reach_every_master() {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::time::Duration;

    use cairn_kv::backends::redis::redis;
    use cairn_kv::stream::{NewMessage, StreamStore};
    use cairn_kv::Scope;

    let cluster = RedisCluster::shared().expect("a Redis Cluster");
    let store = Arc::new(make_store().await);
    let mut raw = redis::Client::open(cluster.urls()[0].as_str())
        .expect("a valid URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a raw connection");
    // (first slot, last slot, port) of every master.
    let ranges: Vec<(u16, u16, u16)> = {
        let slots: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut raw)
            .await
            .expect("CLUSTER SLOTS");
        slots
            .into_iter()
            .map(|range| {
                // [first slot, last slot, [master ip, master port, ...], replicas...]
                let range: Vec<redis::Value> =
                    redis::from_redis_value(range).expect("a slot range");
                let master: Vec<redis::Value> =
                    redis::from_redis_value(range[2].clone()).expect("a master");
                let number = |value: &redis::Value| -> u16 {
                    redis::from_redis_value(value.clone()).expect("a number")
                };
                (number(&range[0]), number(&range[1]), number(&master[1]))
            })
            .collect()
    };
    let mut masters_seen = BTreeSet::new();
    for attempt in 0..200 {
        if masters_seen.len() == ranges.len() {
            break;
        }
        let scope = Scope::new(&format!("masters-{}-{attempt}", std::process::id()), "n")
            .expect("a valid scope");
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(scope.key_prefix())
            .query_async(&mut raw)
            .await
            .expect("CLUSTER KEYSLOT");
        let port = ranges
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|(_, _, port)| *port)
            .expect("every slot is served");
        if !masters_seen.insert(port) {
            continue;
        }
        let writer = {
            let store = Arc::clone(&store);
            let scope = scope.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                store
                    .append(&scope, "s", &NewMessage::value("woken"))
                    .await
                    .expect("append")
            })
        };
        let read = store
            .read_blocking(&scope, "s", 0, 10, Duration::from_secs(30))
            .await
            .expect("read_blocking");
        assert_eq!(writer.await.expect("the writer"), 0);
        assert_eq!(read.len(), 1, "the master on port {port}");
        assert!(store
            .create_group(&scope, "s", "g", 1)
            .await
            .expect("create_group"));
        let empty = store
            .read_group(&scope, "s", "g", "c", 10, Duration::from_millis(50))
            .await
            .expect("read_group");
        assert!(empty.is_empty(), "the master on port {port}");
    }
    assert_eq!(masters_seen.len(), ranges.len());
}
