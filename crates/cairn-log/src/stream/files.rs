//! The store's small files and directories: the identity file, each stream's metadata file,
//! and the crash-safe creation and removal of stream directories.
//!
//! Guarantees: a metadata or identity file is replaced atomically (temp file, `fdatasync`,
//! rename, directory sync), so after a crash it holds either the old or the new contents; a
//! small file is refused as `Corrupted` when it is longer than its format allows, before its
//! bytes are read; a stream is deleted by first renaming its metadata file to a doomed name
//! (and syncing the directory), so a crash during the removal of its segments leaves a
//! directory that the next open recognises as deleted and finishes removing.

use std::io;
use std::path::{Path, PathBuf};

use crate::format::to_usize;
use crate::fs::{read_exact_at, FileSystem, OpenMode};

use super::error::StreamError;

/// The store identity file in the store directory.
pub const IDENTITY_FILE: &str = "STREAMS";
/// The metadata file in a stream directory.
pub const META_FILE: &str = "STREAM";
/// The consumer groups file in a stream directory (each group's committed offset).
pub const GROUPS_FILE: &str = "GROUPS";
/// The metadata file of a stream being deleted.
pub const DOOMED_META_FILE: &str = "STREAM.deleted";
/// Suffix of a file being written before its rename into place.
pub const TEMP_SUFFIX: &str = ".tmp";
/// Digits of a stream directory's name (its zero-padded numeric id).
pub const STREAM_DIR_DIGITS: usize = 20;

/// The directory name of stream `id`.
pub fn stream_dir_name(id: u64) -> String {
    format!("{id:020}")
}

/// The stream id a directory name carries, if it is exactly 20 digits.
pub fn parse_stream_dir_name(name: &str) -> Option<u64> {
    if name.len() != STREAM_DIR_DIGITS || !name.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// Reads the whole file at `path`, refusing one longer than `max_bytes` before reading it.
pub fn read_small_file(
    fs: &dyn FileSystem,
    path: &Path,
    max_bytes: usize,
) -> Result<Vec<u8>, StreamError> {
    let file = fs
        .open(path, OpenMode::Read)
        .map_err(|error| StreamError::io("open", path, error))?;
    let len = file
        .len()
        .map_err(|error| StreamError::io("read length of", path, error))?;
    if len > crate::format::to_u64(max_bytes) {
        return Err(StreamError::corrupted(
            path,
            0,
            format!("file is {len} bytes, more than the {max_bytes} its format allows"),
        ));
    }
    let mut bytes = vec![0; to_usize(len)];
    read_exact_at(file.as_ref(), &mut bytes, 0)
        .map_err(|error| StreamError::io("read", path, error))?;
    Ok(bytes)
}

/// Removes `path`, treating "already gone" as done.
pub fn remove_if_present(fs: &dyn FileSystem, path: &Path) -> Result<(), StreamError> {
    match fs.remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(StreamError::io("remove", path, error)),
    }
}

/// Replaces `dir/name` with `bytes` atomically: temp file, write, `fdatasync`, rename,
/// directory sync.
pub fn write_atomically(
    fs: &dyn FileSystem,
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<(), StreamError> {
    let path = dir.join(name);
    let temp = dir.join(format!("{name}{TEMP_SUFFIX}"));
    remove_if_present(fs, &temp)?;
    {
        let file = fs
            .open(&temp, OpenMode::CreateNew)
            .map_err(|error| StreamError::io("create", &temp, error))?;
        file.write_all_at(bytes, 0)
            .map_err(|error| StreamError::io("write", &temp, error))?;
        file.sync_data()
            .map_err(|error| StreamError::io("sync", &temp, error))?;
    }
    fs.rename(&temp, &path)
        .map_err(|error| StreamError::io("rename into place", &path, error))?;
    sync_dir(fs, dir)
}

/// Syncs a directory's entries.
pub fn sync_dir(fs: &dyn FileSystem, dir: &Path) -> Result<(), StreamError> {
    fs.sync_dir(dir)
        .map_err(|error| StreamError::io("sync directory", dir, error))
}

/// Marks the stream in `dir` deleted, durably: renames its metadata file to the doomed name
/// and syncs the directory. After this returns, no open brings the stream back.
pub fn doom_stream_dir(fs: &dyn FileSystem, dir: &Path) -> Result<(), StreamError> {
    let from = dir.join(META_FILE);
    let to = dir.join(DOOMED_META_FILE);
    fs.rename(&from, &to)
        .map_err(|error| StreamError::io("rename to the doomed name", &from, error))?;
    sync_dir(fs, dir)
}

/// Removes every file of a doomed (or never completed) stream directory, the doomed
/// metadata file last, then the directory itself where the file system can, and syncs the
/// parent. A crash anywhere in here leaves a directory the next open removes again.
pub fn remove_stream_dir(fs: &dyn FileSystem, root: &Path, dir: &Path) -> Result<(), StreamError> {
    let names = fs
        .list_dir(dir)
        .map_err(|error| StreamError::io("list stream directory", dir, error))?;
    let mut doomed: Option<PathBuf> = None;
    for name in names {
        let path = dir.join(&name);
        if name == DOOMED_META_FILE {
            doomed = Some(path);
            continue;
        }
        remove_if_present(fs, &path)?;
    }
    if let Some(path) = doomed {
        sync_dir(fs, dir)?;
        remove_if_present(fs, &path)?;
    }
    sync_dir(fs, dir)?;
    match fs.remove_dir(dir) {
        Ok(()) => sync_dir(fs, root),
        // The file system keeps empty directories (or has one gone already): an empty stream
        // directory without metadata is ignored at open.
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::Unsupported | io::ErrorKind::NotFound
            ) =>
        {
            Ok(())
        }
        Err(error) => Err(StreamError::io("remove stream directory", dir, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_directory_names_are_twenty_digits() {
        assert_eq!(stream_dir_name(7), "00000000000000000007");
        assert_eq!(parse_stream_dir_name("00000000000000000007"), Some(7));
        assert_eq!(
            parse_stream_dir_name(&stream_dir_name(u64::MAX)),
            Some(u64::MAX)
        );
        for bad in [
            "7",
            "0000000000000000000x",
            "+0000000000000000007",
            "99999999999999999999",
            "STREAMS",
        ] {
            assert_eq!(parse_stream_dir_name(bad), None, "{bad}");
        }
    }
}
