//! The conformance suites (key-value and streams) through the Redis backend against `cairn
//! serve`: a `redis://` URL that points at a Cairn server works as one that points at Redis.
//! The backend writes through Lua scripts (`EVALSHA`), watches through `SUBSCRIBE`, lists
//! through `SCAN`, and keeps streams with `XADD`, `XREADGROUP`, `XPENDING`, `XAUTOCLAIM` and
//! `XINFO`, so this runs the server's scripting, pub/sub, key and stream commands end to end.
//!
//! One in-memory server is started on a free loopback port for the whole binary (cases use
//! their own scopes); it stops with the test process.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod conformance;
mod stream_conformance;

use std::net::SocketAddr;
use std::sync::OnceLock;

use cairn_server::{Config, RunningServer};

/// The server's address, started on first use.
fn server() -> SocketAddr {
    static SERVER: OnceLock<RunningServer> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            // Started off the test's runtime: the server runs a runtime of its own.
            std::thread::spawn(|| {
                RunningServer::start(Config {
                    bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                    ..Config::new()
                })
            })
            .join()
            .expect("the starting thread ends")
            .expect("cairn serve starts")
        })
        .addr()
}

async fn make_store() -> cairn_kv::RedisStore {
    cairn_kv::RedisStore::connect(&format!("redis://{}", server()))
        .await
        .expect("connect to cairn serve")
}

conformance::suite!(make_store);

/// The stream suite's cases, each on a fresh store over the same server.
mod streams {
    use super::{make_store, stream_conformance};

    stream_conformance::stream_suite!(make_store);
}
