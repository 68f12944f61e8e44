//! Layer 5: the stream conformance suite against `CairnStreams`, Cairn's own durable streams,
//! in both sync modes: each case on a fresh store in a temp directory that lives until the
//! case ends.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod stream_conformance;

use cairn_kv::backends::cairn_streams::SyncPolicy;
use cairn_kv::CairnStreams;

async fn open(sync: SyncPolicy) -> (CairnStreams, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = CairnStreams::open(dir.path().join("streams"), sync)
        .await
        .expect("open the stream store");
    (store, dir)
}

mod strict {
    use super::{open, stream_conformance, CairnStreams, SyncPolicy};

    async fn make_store() -> (CairnStreams, tempfile::TempDir) {
        open(SyncPolicy::Strict).await
    }

    stream_conformance::stream_suite!(guarded make_store);
}

mod buffered {
    use super::{open, stream_conformance, CairnStreams, SyncPolicy};

    async fn make_store() -> (CairnStreams, tempfile::TempDir) {
        open(SyncPolicy::buffered()).await
    }

    stream_conformance::stream_suite!(guarded make_store);
}
