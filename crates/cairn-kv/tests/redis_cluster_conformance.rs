//! Layer 5: the conformance suite against a Redis Cluster of three masters.
//!
//! Every scope's keys share one hash slot, so each case runs on whichever master owns its
//! scope; across the cases, all three masters serve. The cluster is started by the test kit
//! on free loopback ports, shared by every case of this binary, and dies with the test
//! process. `redis-server` and `redis-cli` must be installed (`scripts/test.sh` does it).

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod conformance;

use cairn_testkit::redis_server::RedisCluster;

async fn make_store() -> cairn_kv::RedisStore {
    let cluster = RedisCluster::shared().expect("a Redis Cluster for the conformance suite");
    cairn_kv::RedisStore::connect_cluster(&cluster.urls())
        .await
        .expect("connect to the test cluster")
}

conformance::suite!(make_store);
