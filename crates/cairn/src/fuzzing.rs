//! Entry points for the fuzz targets (`fuzz/`) and the corpus replay test: the decoders of
//! untrusted bytes as they run inside the engine, and the snapshot writer that builds inputs.
//! Only with the `fuzzing` cargo feature; not for applications.

pub use crate::durable::record::{decode_commit_body, DecodedWrite};
pub use crate::durable::snapshot_file::{
    decode_snapshot_bytes, SnapshotEntry, SnapshotError, SnapshotHeader, SnapshotWriter,
    SNAPSHOT_DEADLINE_NONE,
};

/// Decodes a commit record body with the engine's own decoder: `Ok` with the mutation count,
/// or the error text.
pub fn decode_commit_count(body: &[u8]) -> Result<usize, String> {
    crate::durable::record::decode_commit(body).map(|mutations| mutations.len())
}
