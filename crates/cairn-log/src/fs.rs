//! The file-I/O seam: every byte Cairn reads or writes goes through [`FileSystem`] and
//! [`FileHandle`].
//!
//! The trait is deliberately narrow (positional reads and writes, an optional read-only memory
//! map, `fdatasync`, length, rename, remove, directory listing and directory sync, and one
//! exclusive directory lock) so that a test double can model exactly what survives a crash:
//! the fault-injecting file system in `cairn-testkit` drops unsynced writes, tears the last
//! write, loses unsynced renames and fails any call (and maps nothing, so every read it serves
//! is a positional one). [`StdFileSystem`] is the production implementation on `std::fs`.
//!
//! Contract every implementation keeps:
//! - `write_all_at` data is durable only after `sync_data` on the same file returns `Ok`.
//! - A created, renamed or removed name is durable only after `sync_dir` on its directory.
//! - An error from `sync_data` means the state of unsynced data is unknown; callers must never
//!   retry the sync and then report success (the log poisons itself instead).

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// How [`FileSystem::open`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// An existing file, read only.
    Read,
    /// An existing file, read and write.
    ReadWrite,
    /// A new file, read and write; fails with `AlreadyExists` if the name is taken.
    CreateNew,
}

/// An open file: positional I/O only, so one handle can serve concurrent readers.
pub trait FileHandle: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every completed write (and the length) of this file durable: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
    /// Sets the file's length, truncating or extending with zeros.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// True when the file holds no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// A read-only memory map of the file as long as it is now, or `None` when this handle
    /// cannot be mapped (the default: test doubles serve every read through `read_at`).
    /// Callers read through a map only bytes that are final (see [`Mapping`]).
    fn map(&self) -> io::Result<Option<Mapping>> {
        Ok(None)
    }
}

/// A read-only memory map of a file.
///
/// Reading through a map is only sound while nobody truncates the file below the mapped
/// length or rewrites the bytes being read. Cairn maps log segments only, and keeps both:
/// a segment is truncated only by recovery, before any reader of its directory exists (the
/// directory lock keeps other processes out), and readers copy out only frames at or below
/// the durable LSN, whose bytes are never written again. Bytes past that point may be
/// changing under a reader; it only looks at them through the frame checks, and a frame that
/// fails them is read again through `read_at`.
#[derive(Debug)]
pub struct Mapping(memmap2::Mmap);

impl Mapping {
    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Held while a directory is locked; dropping it releases the lock.
pub trait DirLock: Send + Sync + Debug {}

/// A file system: the one seam between Cairn and the operating system.
pub trait FileSystem: Send + Sync + Debug {
    /// Creates `path` and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names (not paths) of the entries in directory `path`, in no particular order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Opens `path` in `mode`.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FileHandle>>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on directory `path` (through a lock file inside it). Fails with
    /// `io::ErrorKind::WouldBlock` when another holder has it.
    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>>;
    /// Removes the empty directory `path`; durable after `sync_dir` on its parent. The default
    /// fails with `io::ErrorKind::Unsupported`, for file systems that keep directories (the
    /// stream store then leaves an empty directory behind, which it ignores).
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("cannot remove directory {}", path.display()),
        ))
    }
}

/// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
pub fn read_exact_at(file: &dyn FileHandle, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("file ended at offset {offset}"),
                ))
            }
            Ok(read) => {
                // A handle that claims more bytes than asked for is broken; say so, don't panic.
                buf = std::mem::take(&mut buf).get_mut(read..).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("read_at returned {read} bytes, more than it was asked for"),
                    )
                })?;
                offset += read as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The production file system, on `std::fs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFileSystem;

#[derive(Debug)]
struct StdFile(File);

impl FileHandle for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    #[allow(
        unsafe_code,
        reason = "memory-mapped reads of log segments; see `Mapping`"
    )]
    fn map(&self) -> io::Result<Option<Mapping>> {
        if self.0.metadata()?.len() == 0 {
            return Ok(None);
        }
        // SAFETY: `Mapping`'s docs: mapped segments are never truncated while a reader holds
        // a map, and only bytes that are no longer written are read as frames.
        let map = unsafe { memmap2::Mmap::map(&self.0)? };
        Ok(Some(Mapping(map)))
    }
}

/// The lock file of a locked directory; the OS releases the lock when it is closed.
#[derive(Debug)]
struct StdDirLock {
    _file: File,
}

impl DirLock for StdDirLock {}

/// The name of the lock file `lock_dir` creates inside the directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

impl FileSystem for StdFileSystem {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FileHandle>> {
        let mut options = OpenOptions::new();
        match mode {
            OpenMode::Read => options.read(true),
            OpenMode::ReadWrite => options.read(true).write(true),
            OpenMode::CreateNew => options.read(true).write(true).create_new(true),
        };
        Ok(Box::new(StdFile(options.open(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path.join(LOCK_FILE_NAME))?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(StdDirLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another process", path.display()),
            )),
            Err(std::fs::TryLockError::Error(error)) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_a_directory_would_block_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("cairn-fs-lock-{}", std::process::id()));
        StdFileSystem.create_dir_all(&dir).expect("create dir");
        let first = StdFileSystem.lock_dir(&dir).expect("first lock");
        let second = StdFileSystem
            .lock_dir(&dir)
            .expect_err("second lock must fail");
        assert_eq!(second.kind(), io::ErrorKind::WouldBlock);
        drop(first);
        let third = StdFileSystem.lock_dir(&dir).expect("lock after release");
        drop(third);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn positional_io_round_trips_and_read_exact_reports_eof() {
        let dir = std::env::temp_dir().join(format!("cairn-fs-io-{}", std::process::id()));
        StdFileSystem.create_dir_all(&dir).expect("create dir");
        let path = dir.join("file");
        let _ = std::fs::remove_file(&path);
        let file = StdFileSystem
            .open(&path, OpenMode::CreateNew)
            .expect("create");
        file.write_all_at(b"hello", 3).expect("write");
        file.sync_data().expect("sync");
        assert_eq!(file.len().expect("len"), 8);
        let mut buf = [0_u8; 8];
        read_exact_at(file.as_ref(), &mut buf, 0).expect("read");
        assert_eq!(&buf, b"\0\0\0hello");
        let error = read_exact_at(file.as_ref(), &mut buf, 4).expect_err("past the end");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
