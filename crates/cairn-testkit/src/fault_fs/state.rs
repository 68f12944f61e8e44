//! The in-memory tree behind one lock: directories (name to inode), inodes (file contents) and
//! the fault bookkeeping, with one method per file-system call. Paths are plain keys (`.`
//! dropped, `..` unresolved); every method either succeeds in full or changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};

use cairn_log::fs::OpenMode;

use super::crash::{apply_write, Directory, Inode, InodeId, PendingChange};
use super::rules::{ActiveRule, FaultError, OpRecord, EFBIG_RAW};
#[cfg(doc)]
use super::FaultFs;
use super::FILE_BYTES_MAX;

/// Everything behind the one lock of a [`FaultFs`].
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) directories: BTreeMap<PathBuf, Directory>,
    pub(super) inodes: HashMap<InodeId, Inode>,
    pub(super) next_inode: InodeId,
    /// Numbers writes over all files, to find the most recent one.
    pub(super) next_write_sequence: u64,
    pub(super) rules: Vec<ActiveRule>,
    pub(super) space_limit_bytes: Option<u64>,
    /// Every call fails once `mutation_count` reaches this.
    pub(super) freeze_at_mutation_count: Option<u64>,
    pub(super) mutation_count: u64,
    pub(super) op_log: Vec<OpRecord>,
    pub(super) locked_directories: BTreeSet<PathBuf>,
}

/// Drops `.` components so that `a/./b` and `a/b` name the same file.
pub(super) fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|component| !matches!(component, Component::CurDir))
        .collect()
}

/// Splits a file path into its (normalized) directory and name.
pub(super) fn split_file_path(path: &Path) -> io::Result<(PathBuf, String)> {
    let path = normalize(path);
    let name = path
        .file_name()
        .and_then(OsStr::to_str)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} does not name a file", path.display()),
            )
        })?
        .to_owned();
    let parent = path.parent().unwrap_or(Path::new("")).to_path_buf();
    Ok((parent, name))
}

pub(super) fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} does not exist", path.display()),
    )
}

pub(super) fn file_too_large(path: &Path) -> io::Error {
    io::Error::new(
        io::Error::from_raw_os_error(EFBIG_RAW).kind(),
        format!(
            "{} would exceed the model's limit of {FILE_BYTES_MAX} bytes",
            path.display()
        ),
    )
}

/// Converts a length or offset to `usize` if the resulting file stays within
/// [`FILE_BYTES_MAX`].
pub(super) fn checked_file_end(path: &Path, offset: u64, len: usize) -> io::Result<usize> {
    let len = u64::try_from(len).map_err(|_| file_too_large(path))?;
    let end = offset
        .checked_add(len)
        .filter(|end| *end <= FILE_BYTES_MAX)
        .ok_or_else(|| file_too_large(path))?;
    usize::try_from(end).map_err(|_| file_too_large(path))
}

pub(super) fn usize_to_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

impl State {
    pub(super) fn new() -> Self {
        let mut state = State::default();
        state
            .directories
            .insert(PathBuf::new(), Directory::default());
        state
            .directories
            .insert(PathBuf::from("/"), Directory::default());
        state
    }

    pub(super) fn is_directory(&self, path: &Path) -> bool {
        self.directories.contains_key(path)
    }

    /// The inode a file path names now.
    pub(super) fn lookup(&self, path: &Path) -> io::Result<InodeId> {
        let (parent, name) = split_file_path(path)?;
        self.directories
            .get(&parent)
            .and_then(|directory| directory.current.get(&name))
            .copied()
            .ok_or_else(|| {
                if self.is_directory(&parent.join(&name)) {
                    io::Error::new(
                        io::ErrorKind::IsADirectory,
                        format!("{} is a directory", path.display()),
                    )
                } else {
                    not_found(path)
                }
            })
    }

    pub(super) fn inode_mut(&mut self, inode: InodeId) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&inode)
            .ok_or_else(|| io::Error::other(format!("inode {inode} is missing from the model")))
    }

    pub(super) fn create_dir_all(&mut self, path: &Path) -> io::Result<()> {
        let path = normalize(path);
        let mut missing = Vec::new();
        for ancestor in path.ancestors() {
            if self.is_directory(ancestor) {
                break;
            }
            if let (Some(parent), Some(name)) = (
                ancestor.parent(),
                ancestor.file_name().and_then(OsStr::to_str),
            ) {
                let is_file = self
                    .directories
                    .get(parent)
                    .is_some_and(|directory| directory.current.contains_key(name));
                if is_file {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} is a file", ancestor.display()),
                    ));
                }
            }
            missing.push(ancestor.to_path_buf());
        }
        for directory in missing {
            self.directories.insert(directory, Directory::default());
        }
        Ok(())
    }

    pub(super) fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let path = normalize(path);
        let Some(directory) = self.directories.get(&path) else {
            return Err(self.missing_directory_error(&path));
        };
        let mut names: Vec<String> = directory.current.keys().cloned().collect();
        for subdirectory in self.directories.keys() {
            if subdirectory.parent() == Some(path.as_path()) && subdirectory != &path {
                if let Some(name) = subdirectory.file_name().and_then(OsStr::to_str) {
                    names.push(name.to_owned());
                }
            }
        }
        Ok(names)
    }

    /// `NotADirectory` when `path` is a file, `NotFound` otherwise.
    pub(super) fn missing_directory_error(&self, path: &Path) -> io::Error {
        if self.lookup(path).is_ok() {
            io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is a file", path.display()),
            )
        } else {
            not_found(path)
        }
    }

    pub(super) fn open(&mut self, path: &Path, mode: OpenMode) -> io::Result<InodeId> {
        let (parent, name) = split_file_path(path)?;
        if !self.is_directory(&parent) {
            return Err(not_found(&parent));
        }
        if self.is_directory(&parent.join(&name)) {
            let kind = if mode == OpenMode::CreateNew {
                io::ErrorKind::AlreadyExists
            } else {
                io::ErrorKind::IsADirectory
            };
            return Err(io::Error::new(
                kind,
                format!("{} is a directory", path.display()),
            ));
        }
        match mode {
            OpenMode::Read | OpenMode::ReadWrite => self.lookup(path),
            OpenMode::CreateNew => {
                let inode = self.next_inode;
                let directory = self
                    .directories
                    .get_mut(&parent)
                    .ok_or_else(|| not_found(&parent))?;
                if directory.current.contains_key(&name) {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} already exists", path.display()),
                    ));
                }
                directory.current.insert(name, inode);
                self.inodes.insert(inode, Inode::default());
                self.next_inode += 1;
                Ok(inode)
            }
        }
    }

    pub(super) fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_parent, from_name) = split_file_path(from)?;
        let (to_parent, to_name) = split_file_path(to)?;
        if self.is_directory(&from_parent.join(&from_name)) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{} is a directory; the model renames files only",
                    from.display()
                ),
            ));
        }
        let inode = self.lookup(from)?;
        if !self.is_directory(&to_parent) {
            return Err(not_found(&to_parent));
        }
        if self.is_directory(&to_parent.join(&to_name)) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{} is a directory", to.display()),
            ));
        }
        if from_parent == to_parent && from_name == to_name {
            return Ok(());
        }
        if let Some(directory) = self.directories.get_mut(&from_parent) {
            directory.current.remove(&from_name);
        }
        let directory = self
            .directories
            .get_mut(&to_parent)
            .ok_or_else(|| not_found(&to_parent))?;
        directory.current.insert(to_name, inode);
        Ok(())
    }

    pub(super) fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        self.lookup(path)?;
        let (parent, name) = split_file_path(path)?;
        if let Some(directory) = self.directories.get_mut(&parent) {
            directory.current.remove(&name);
        }
        Ok(())
    }

    pub(super) fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        let path = normalize(path);
        if !self.is_directory(&path) {
            return Err(self.missing_directory_error(&path));
        }
        if let Some(directory) = self.directories.get_mut(&path) {
            directory.durable.clone_from(&directory.current);
        }
        Ok(())
    }

    pub(super) fn lock_dir(&mut self, path: &Path) -> io::Result<PathBuf> {
        let path = normalize(path);
        if !self.is_directory(&path) {
            return Err(self.missing_directory_error(&path));
        }
        if !self.locked_directories.insert(path.clone()) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another holder", path.display()),
            ));
        }
        Ok(path)
    }

    /// The inodes named by some current directory entry.
    pub(super) fn named_inodes(&self) -> BTreeSet<InodeId> {
        self.directories
            .values()
            .flat_map(|directory| directory.current.values().copied())
            .collect()
    }

    /// Fails with `ENOSPC` if growing `inode` to `new_len` bytes would take the total current
    /// size of all named files past the space limit. Shrinking or rewriting in place never
    /// fails: it needs no new space.
    pub(super) fn check_space(&self, inode: InodeId, new_len: usize) -> io::Result<()> {
        let Some(limit) = self.space_limit_bytes else {
            return Ok(());
        };
        let old_len = self.inodes.get(&inode).map_or(0, |file| file.current.len());
        if new_len <= old_len {
            return Ok(());
        }
        let others: u64 = self
            .named_inodes()
            .into_iter()
            .filter(|named| *named != inode)
            .filter_map(|named| self.inodes.get(&named))
            .map(|file| usize_to_u64(file.current.len()))
            .sum();
        if others.saturating_add(usize_to_u64(new_len)) > limit {
            return Err(FaultError::NoSpace.to_io_error());
        }
        Ok(())
    }

    pub(super) fn write(
        &mut self,
        inode: InodeId,
        path: &Path,
        buf: &[u8],
        offset: u64,
    ) -> io::Result<()> {
        let end = checked_file_end(path, offset, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        let old_len = self.inodes.get(&inode).map_or(0, |file| file.current.len());
        self.check_space(inode, end.max(old_len))?;
        let sequence = self.next_write_sequence;
        self.next_write_sequence += 1;
        let start = end - buf.len();
        let file = self.inode_mut(inode)?;
        apply_write(&mut file.current, start, buf);
        file.pending.push(PendingChange::Write {
            offset: start,
            bytes: buf.to_vec(),
            sequence,
        });
        Ok(())
    }

    pub(super) fn set_len(&mut self, inode: InodeId, path: &Path, len: u64) -> io::Result<()> {
        let len = checked_file_end(path, len, 0)?;
        self.check_space(inode, len)?;
        let file = self.inode_mut(inode)?;
        file.current.resize(len, 0);
        file.pending.push(PendingChange::SetLen { len });
        Ok(())
    }
}
