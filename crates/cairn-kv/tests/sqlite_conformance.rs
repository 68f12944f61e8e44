//! Layer 5: the conformance suite against `SQLite`, in memory and in a file.
//!
//! The in-memory store is one private connection; the file store opens a fresh database in
//! its own temp dir per case, in WAL mode with a writer and read-only reader connections, so
//! the cases that read while another task writes also cross connections. The suite is the
//! same for both.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![cfg(feature = "sqlite")]

mod conformance;

mod in_memory {
    use super::conformance;

    async fn make_store() -> cairn_kv::SqliteStore {
        cairn_kv::SqliteStore::in_memory()
            .await
            .expect("open an in-memory store")
    }

    conformance::suite!(make_store);
}

mod file {
    use super::conformance;
    use cairn_kv::{SqliteStore, SqliteSynchronous};
    use cairn_testkit::TempDir;

    async fn make_store() -> (SqliteStore, TempDir) {
        let dir = TempDir::new("kv-sqlite-conformance");
        let store = SqliteStore::open(Some(dir.path().join("kv.db")), SqliteSynchronous::Normal)
            .await
            .expect("open a file store");
        (store, dir)
    }

    conformance::suite!(guarded make_store);
}
