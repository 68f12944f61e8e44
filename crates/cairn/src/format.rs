//! Reading Cairn's files, for tools such as `cairn inspect` and `cairn dump`: the snapshot
//! decoder, the commit record decoder, the identity file and the file names. The layouts
//! themselves are documented in `docs/design.md` (section 9) and are not API: they change
//! with the format versions, and everything here checks the version it reads. The WAL's
//! segments and frames are read with `cairn_log::reader`; `cairn::verify` checks a whole
//! directory with recovery's own rules.
//!
//! Every reader here verifies before it trusts: checksums, lengths against the bytes left and
//! against the limits, before any allocation; no file content makes them panic.

use std::path::Path;

pub use crate::durable::identity::IDENTITY_FILE_NAME;
pub use crate::durable::record::{decode_commit_body, DecodedWrite, RECORD_TYPE_COMMIT};
pub use crate::durable::snapshot_file::{
    read_header, read_snapshot, SnapshotEntry, SnapshotError, SnapshotHeader,
    SNAPSHOT_DEADLINE_NONE, SNAPSHOT_FORMAT_VERSION,
};
pub use crate::durable::{parse_snapshot_file_name, snapshot_file_name};
pub use cairn_log::DatabaseId;

use crate::error::{Error, Result};

/// The database id in the identity file of `dir`: `Ok(None)` when the directory has no
/// identity file, `Error::Corrupted` when it is damaged, `Error::Io` when it cannot be read.
pub fn read_identity(dir: impl AsRef<Path>) -> Result<Option<DatabaseId>> {
    let dir = dir.as_ref();
    let fs = cairn_log::StdFileSystem;
    let names = cairn_log::FileSystem::list_dir(&fs, dir)
        .map_err(|error| Error::io("list data directory", dir, error))?;
    crate::durable::identity::read_identity(&fs, dir, &names)
}
