//! Layer 5: the conformance suite against the Cairn engine, in each durability mode.
//!
//! `InMemory` runs with no files; `Buffered` and `Strict` each open a fresh directory per
//! case, and in `Strict` every write waits for its fdatasync. The suite is the same.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod conformance;

use cairn_testkit::TempDir;

async fn open_durable(durability: cairn::Durability) -> (cairn_kv::CairnStore, TempDir) {
    let dir = TempDir::new("kv-conformance");
    let options = cairn::Options::new(dir.path()).durability(durability);
    let store = cairn_kv::CairnStore::open(options)
        .await
        .expect("open a durable store");
    (store, dir)
}

mod in_memory {
    use super::conformance;

    async fn make_store() -> cairn_kv::CairnStore {
        cairn_kv::CairnStore::in_memory()
    }

    conformance::suite!(make_store);
}

mod buffered {
    use super::conformance;

    async fn make_store() -> (cairn_kv::CairnStore, cairn_testkit::TempDir) {
        super::open_durable(cairn::Durability::buffered()).await
    }

    conformance::suite!(guarded make_store);
}

mod strict {
    use super::conformance;

    async fn make_store() -> (cairn_kv::CairnStore, cairn_testkit::TempDir) {
        super::open_durable(cairn::Durability::Strict).await
    }

    conformance::suite!(guarded make_store);
}
