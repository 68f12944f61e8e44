//! The data directory's identity file, `IDENTITY`: the random id of the database, created
//! once with the directory, before any other data file. Every WAL segment header and every
//! snapshot header repeats it, and open refuses a file that names another database
//! (`Error::ForeignFile`), so a file copied in from another database is never replayed or
//! loaded.
//!
//! Layout (40 bytes, little-endian):
//!
//! ```text
//!  0  magic b"CAIRNDID"      8 bytes
//!  8  format_version u32     = 1
//! 12  reserved u32           = 0
//! 16  database_id            16 bytes, never all zeros
//! 32  crc32c u32             over bytes 0..32
//! 36  reserved u32           = 0
//! ```
//!
//! Created the crash-safe way (`IDENTITY.tmp`, `fdatasync`, rename, directory sync), so the
//! file is either absent or complete. A directory that holds WAL segments or snapshots but no
//! identity file (one written before identities existed, or whose file was deleted) is
//! refused as `Corrupted`: guessing its identity would defeat the check.

use std::path::Path;

use cairn_log::fs::{read_exact_at, FileSystem, OpenMode};
use cairn_log::segment::parse_segment_file_name;
use cairn_log::DatabaseId;

use crate::durable::parse_snapshot_file_name;
use crate::error::{Error, Result};

/// The identity file's name.
pub const IDENTITY_FILE_NAME: &str = "IDENTITY";

/// Size of the identity file, in bytes.
pub const IDENTITY_FILE_BYTES: usize = 40;

/// The identity file format this build writes and reads.
const IDENTITY_FORMAT_VERSION: u32 = 1;

const IDENTITY_MAGIC: [u8; 8] = *b"CAIRNDID";
const ID_OFFSET: usize = 16;
const CRC_OFFSET: usize = 32;

/// The identity file's bytes for `id`.
fn encode(id: DatabaseId) -> [u8; IDENTITY_FILE_BYTES] {
    let mut bytes = [0_u8; IDENTITY_FILE_BYTES];
    bytes[..8].copy_from_slice(&IDENTITY_MAGIC);
    bytes[8..12].copy_from_slice(&IDENTITY_FORMAT_VERSION.to_le_bytes());
    bytes[ID_OFFSET..CRC_OFFSET].copy_from_slice(&id.to_bytes());
    let crc = crc32c::crc32c(&bytes[..CRC_OFFSET]);
    bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// Decodes an identity file; the error is the byte offset and what is wrong there.
pub fn decode_identity(bytes: &[u8]) -> std::result::Result<DatabaseId, (u64, String)> {
    if bytes.len() != IDENTITY_FILE_BYTES {
        return Err((
            0,
            format!(
                "the identity file is {} bytes, not {IDENTITY_FILE_BYTES}",
                bytes.len()
            ),
        ));
    }
    let field = |at: usize| -> u32 {
        bytes
            .get(at..at + 4)
            .and_then(|field| field.try_into().ok())
            .map_or(u32::MAX, u32::from_le_bytes)
    };
    if bytes.get(..8) != Some(&IDENTITY_MAGIC[..]) {
        return Err((0, "bad identity file magic".to_owned()));
    }
    let computed = crc32c::crc32c(bytes.get(..CRC_OFFSET).unwrap_or_default());
    if field(CRC_OFFSET) != computed {
        return Err((
            CRC_OFFSET as u64,
            "identity file checksum mismatch".to_owned(),
        ));
    }
    if field(8) != IDENTITY_FORMAT_VERSION {
        return Err((
            8,
            format!(
                "unsupported identity file format version {} (this build reads {IDENTITY_FORMAT_VERSION})",
                field(8)
            ),
        ));
    }
    if field(12) != 0 || field(CRC_OFFSET + 4) != 0 {
        return Err((12, "reserved identity file fields are not zero".to_owned()));
    }
    let id: [u8; 16] = bytes
        .get(ID_OFFSET..CRC_OFFSET)
        .and_then(|id| id.try_into().ok())
        .ok_or_else(|| (ID_OFFSET as u64, "identity file too short".to_owned()))?;
    let id = DatabaseId::from_bytes(id);
    if id == DatabaseId::UNSET {
        return Err((ID_OFFSET as u64, "the database id is all zeros".to_owned()));
    }
    Ok(id)
}

/// Reads the identity file of `dir`, whose listing is `names`; `Ok(None)` when there is none.
pub fn read_identity(
    fs: &dyn FileSystem,
    dir: &Path,
    names: &[String],
) -> Result<Option<DatabaseId>> {
    if !names.iter().any(|name| name == IDENTITY_FILE_NAME) {
        return Ok(None);
    }
    let path = dir.join(IDENTITY_FILE_NAME);
    let file = fs
        .open(&path, OpenMode::Read)
        .map_err(|error| Error::io("open identity file", &path, error))?;
    let length = file
        .len()
        .map_err(|error| Error::io("read identity file length", &path, error))?;
    let mut bytes =
        vec![0_u8; usize::try_from(length.min(IDENTITY_FILE_BYTES as u64 + 1)).unwrap_or(0)];
    read_exact_at(file.as_ref(), &mut bytes, 0)
        .map_err(|error| Error::io("read identity file", &path, error))?;
    decode_identity(&bytes)
        .map(Some)
        .map_err(|(offset, reason)| Error::Corrupted {
            file: path,
            offset,
            reason,
        })
}

/// True when `name` is a WAL segment or a snapshot: a file only a database with an identity
/// can have written.
fn is_data_file(name: &str) -> bool {
    parse_segment_file_name(name).is_some() || parse_snapshot_file_name(name).is_some()
}

/// The identity of the database in `dir` (listed as `names`): read from its identity file,
/// or, for a directory without data files, newly generated and installed.
pub(crate) fn load_or_create(
    fs: &dyn FileSystem,
    dir: &Path,
    names: &[String],
) -> Result<DatabaseId> {
    if let Some(id) = read_identity(fs, dir, names)? {
        return Ok(id);
    }
    let path = dir.join(IDENTITY_FILE_NAME);
    if let Some(data_file) = names.iter().find(|name| is_data_file(name)) {
        return Err(Error::Corrupted {
            file: path,
            offset: 0,
            reason: format!(
                "the directory holds data files ({data_file}, ...) but no identity file: it was \
                 written by an older format, or the file was deleted"
            ),
        });
    }
    let id = DatabaseId::generate();
    let temp = dir.join(format!("{IDENTITY_FILE_NAME}.tmp"));
    match fs.remove_file(&temp) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(Error::io("remove identity temp file", &temp, error)),
    }
    {
        let file = fs
            .open(&temp, OpenMode::CreateNew)
            .map_err(|error| Error::io("create identity file", &temp, error))?;
        file.write_all_at(&encode(id), 0)
            .map_err(|error| Error::io("write identity file", &temp, error))?;
        file.sync_data()
            .map_err(|error| Error::io("sync identity file", &temp, error))?;
    }
    fs.rename(&temp, &path)
        .map_err(|error| Error::io("rename identity file into place", &path, error))?;
    fs.sync_dir(dir)
        .map_err(|error| Error::io("sync directory", dir, error))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_pinned_and_round_trips() {
        let id = DatabaseId::from_bytes(*b"0123456789abcdef");
        let bytes = encode(id);
        let mut expected = b"CAIRNDID".to_vec();
        expected.extend_from_slice(&1_u32.to_le_bytes());
        expected.extend_from_slice(&0_u32.to_le_bytes());
        expected.extend_from_slice(b"0123456789abcdef");
        let crc = crc32c::crc32c(&expected);
        expected.extend_from_slice(&crc.to_le_bytes());
        expected.extend_from_slice(&0_u32.to_le_bytes());
        assert_eq!(bytes.to_vec(), expected);
        assert_eq!(decode_identity(&bytes), Ok(id));
    }

    #[test]
    fn every_bit_flip_and_every_length_change_is_refused() {
        let bytes = encode(DatabaseId::generate());
        for bit in 0..IDENTITY_FILE_BYTES * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_identity(&flipped).is_err(), "bit {bit}");
        }
        for length in 0..IDENTITY_FILE_BYTES {
            assert!(decode_identity(&bytes[..length]).is_err(), "{length} bytes");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(decode_identity(&longer).is_err());
    }
}
