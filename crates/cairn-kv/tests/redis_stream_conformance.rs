//! Layer 5: the stream conformance suite against one Redis server.
//!
//! The server is started by the test kit on a free loopback port and shared by every case of
//! this binary (cases use their own scopes); it dies with the test process. `redis-server`
//! (7.0 or later) must be installed: `scripts/test.sh` installs it, and a missing binary
//! fails every case with the install command.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod stream_conformance;

use cairn_testkit::redis_server::RedisServer;

async fn make_store() -> cairn_kv::RedisStore {
    let server = RedisServer::shared().expect("a Redis server for the stream suite");
    cairn_kv::RedisStore::connect(&server.url())
        .await
        .expect("connect to the test server")
}

stream_conformance::stream_suite!(make_store);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_keys_never_collide() {
    stream_conformance::streams_and_keys_never_collide(std::sync::Arc::new(make_store().await))
        .await;
}
