//! `FaultFs`: an in-memory [`FileSystem`] that models what survives a crash and fails any call
//! on demand, so that tests can cut the power at every I/O point of a workload.
//!
//! The model follows the contract of `cairn_log::fs`:
//! - Every file (inode) has `current` contents, `durable` contents (as of its last successful
//!   `sync_data`) and the ordered list of writes and `set_len` calls made since. Every
//!   directory has `current` entries (name to inode) and `durable` entries (as of its last
//!   `sync_dir`). Create, rename and remove change only the current entries, so a file that was
//!   created and synced but whose directory was never synced does not survive a crash.
//! - [`FaultFs::crash`] returns a new file system holding what survives a power cut, chosen by
//!   [`CrashMode`]: unsynced writes lost, kept, or all kept but the most recent one torn to a
//!   seeded-random prefix; unsynced directory operations lost or kept. The original is left
//!   untouched, so one workload can be crashed in several ways.
//! - Faults are deterministic: [`FaultRule`]s fail chosen calls (once or for good, after a
//!   number of matching calls), [`FaultFs::set_space_limit_bytes`] models a full disk, and
//!   [`FaultFs::freeze_after_mutations`] lets the first `n` mutating calls through and then
//!   fails everything, which is a power cut at I/O point `n`.
//!
//! Simplifications, each chosen to keep the model small and its behavior obvious:
//! - Paths are plain keys: `.` components are dropped, `..` is not resolved, there are no
//!   symbolic links. The roots `""` and `"/"` always exist.
//! - Directories are durable as soon as `create_dir_all` returns and are never removed; the
//!   model is about files and their names. Directories cannot be renamed.
//! - A failed write writes nothing (real disks may write part of it); a failed `sync_data`
//!   leaves the unsynced writes unsynced, so a crash may still keep or lose them.
//! - `lock_dir` keeps an in-memory set of locked directories and creates no lock file.
//! - Inodes are never freed. Memory is not bounded beyond [`FILE_BYTES_MAX`] per file: this is
//!   a test tool.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use cairn_log::fs::{DirLock, FileHandle, FileSystem, OpenMode};
use parking_lot::Mutex;

use crate::rng::SplitMix64;

/// The largest file the model holds, in bytes. A write or `set_len` past it fails with
/// `EFBIG` instead of trying to allocate the memory (a bad offset must not take the test
/// process down).
pub const FILE_BYTES_MAX: u64 = 1 << 30;

/// Raw OS error number for an I/O error (`EIO` on Linux).
const EIO_RAW: i32 = 5;
/// Raw OS error number for a full device (`ENOSPC` on Linux).
const ENOSPC_RAW: i32 = 28;
/// Raw OS error number for a write through a read-only handle (`EBADF` on Linux).
const EBADF_RAW: i32 = 9;
/// Raw OS error number for a file that would grow too large (`EFBIG` on Linux).
const EFBIG_RAW: i32 = 27;

/// What happens at a crash to file data written but not yet synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsyncedWrites {
    /// Every file reverts to its contents as of its last successful `sync_data`.
    Lost,
    /// Every file keeps its current contents, as if the page cache reached the disk.
    Kept,
    /// Current contents, except that the single most recent unsynced write (over all files)
    /// keeps only a prefix of its bytes, of a length drawn from `seed` in `0..len`; the rest
    /// of its range is as it was before that write.
    TornLast {
        /// Seeds the choice of the prefix length.
        seed: u64,
    },
}

/// What happens at a crash to creations, renames and removals not yet made durable by
/// `sync_dir` on their directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsyncedDirOps {
    /// Every directory reverts to its entries as of its last `sync_dir`.
    Lost,
    /// Every directory keeps its current entries.
    Kept,
}

/// How [`FaultFs::crash`] decides what survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashMode {
    /// The fate of unsynced file data.
    pub writes: UnsyncedWrites,
    /// The fate of unsynced directory entries.
    pub dir_ops: UnsyncedDirOps,
}

impl CrashMode {
    /// A power cut: only what was synced survives (file data and directory entries alike).
    pub const POWER_LOSS: CrashMode = CrashMode {
        writes: UnsyncedWrites::Lost,
        dir_ops: UnsyncedDirOps::Lost,
    };
}

/// A kind of file-system call, for fault rules, the operation log and the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `FileSystem::open`, any mode (a `CreateNew` open is also a mutation).
    Open,
    /// `FileHandle::read_at`.
    Read,
    /// `FileHandle::write_all_at`.
    Write,
    /// `FileHandle::sync_data`.
    SyncData,
    /// `FileHandle::set_len`.
    SetLen,
    /// `FileHandle::len` (and so `is_empty`).
    Len,
    /// `FileSystem::rename`.
    Rename,
    /// `FileSystem::remove_file`.
    Remove,
    /// `FileSystem::sync_dir`.
    SyncDir,
    /// `FileSystem::list_dir`.
    ListDir,
    /// `FileSystem::lock_dir`.
    Lock,
    /// `FileSystem::create_dir_all`.
    CreateDir,
    /// In a rule or a count: every mutating call (write, `sync_data`, `set_len`, rename,
    /// remove, `sync_dir`, open with `CreateNew`). Never recorded as a call's own kind.
    AnyMutation,
    /// In a rule or a count: every call. Never recorded as a call's own kind.
    Any,
}

impl Op {
    /// True when a call of kind `call_op` (mutating or not, as `is_mutation` says) is
    /// selected by `self` in a rule or a count.
    fn selects(self, call_op: Op, is_mutation: bool) -> bool {
        match self {
            Op::Any => true,
            Op::AnyMutation => is_mutation,
            concrete => concrete == call_op,
        }
    }
}

/// How often a [`FaultRule`] fires once its `skip` budget is used up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// Fails one call, then the rule is spent.
    Once,
    /// Fails every later matching call until [`FaultFs::clear_faults`].
    Forever,
}

/// The error a [`FaultRule`] injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// An I/O error: `io::Error::from_raw_os_error(5)` (`EIO`).
    Eio,
    /// A full device: raw OS error 28 (`ENOSPC`), of kind `io::ErrorKind::StorageFull`.
    NoSpace,
}

impl FaultError {
    /// The `io::Error` this fault produces.
    pub fn to_io_error(self) -> io::Error {
        match self {
            FaultError::Eio => io::Error::from_raw_os_error(EIO_RAW),
            FaultError::NoSpace => io::Error::from_raw_os_error(ENOSPC_RAW),
        }
    }
}

/// A fault to inject: which calls it matches and what they get instead of success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// The kind of call that matches ([`Op::AnyMutation`] and [`Op::Any`] match groups).
    pub op: Op,
    /// When set, only calls whose path contains this text match (either path of a rename;
    /// for handle calls, the path the file was opened under).
    pub path_contains: Option<String>,
    /// How many matching calls succeed before the rule fires.
    pub skip: u64,
    /// Whether the rule fires once or on every later matching call.
    pub persistence: Persistence,
    /// The error injected.
    pub error: FaultError,
}

impl FaultRule {
    /// A rule failing the first matching call of kind `op` with `error`, once, on any path.
    pub fn once(op: Op, error: FaultError) -> Self {
        FaultRule {
            op,
            path_contains: None,
            skip: 0,
            persistence: Persistence::Once,
            error,
        }
    }

    /// A rule failing every matching call of kind `op` with `error`, on any path.
    pub fn forever(op: Op, error: FaultError) -> Self {
        FaultRule {
            persistence: Persistence::Forever,
            ..FaultRule::once(op, error)
        }
    }

    /// The same rule, restricted to paths containing `text`.
    #[must_use]
    pub fn with_path_contains(mut self, text: &str) -> Self {
        self.path_contains = Some(text.to_owned());
        self
    }

    /// The same rule, letting `skip` matching calls succeed before it fires.
    #[must_use]
    pub fn with_skip(mut self, skip: u64) -> Self {
        self.skip = skip;
        self
    }

    fn matches(&self, call_op: Op, is_mutation: bool, paths: &[&Path]) -> bool {
        if !self.op.selects(call_op, is_mutation) {
            return false;
        }
        match &self.path_contains {
            None => true,
            Some(text) => paths
                .iter()
                .any(|path| path.to_string_lossy().contains(text.as_str())),
        }
    }
}

/// One call made through a [`FaultFs`], as recorded in its operation log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    /// The kind of call (never [`Op::AnyMutation`] or [`Op::Any`]).
    pub op: Op,
    /// The path of the call (the source of a rename; for handle calls, the path the file was
    /// opened under).
    pub path: PathBuf,
    /// For a mutating call that got past the freeze: its 0-based index among all mutating
    /// calls of this file system, so `freeze_after_mutations(index)` on a fresh replay stops
    /// just before it. `None` for other calls.
    pub mutation_index: Option<u64>,
    /// The kind of the error the call returned, if it failed (injected or not).
    pub error: Option<io::ErrorKind>,
}

/// An index into the inode table.
type InodeId = u64;

/// A change to a file's contents not yet made durable by `sync_data`.
#[derive(Clone, Debug)]
enum PendingChange {
    /// `bytes` written at `offset`; `sequence` orders writes over all files.
    Write {
        offset: usize,
        bytes: Vec<u8>,
        sequence: u64,
    },
    /// The length set to `len`.
    SetLen { len: usize },
}

/// A file's data, independent of the names it has.
#[derive(Clone, Debug, Default)]
struct Inode {
    /// What reads see now.
    current: Vec<u8>,
    /// What survives a crash that loses unsynced writes.
    durable: Vec<u8>,
    /// Changes since the last successful `sync_data`, oldest first; replaying them over
    /// `durable` gives `current`.
    pending: Vec<PendingChange>,
}

impl Inode {
    /// Makes the current contents durable, as a successful `sync_data` does.
    fn settle(&mut self) {
        self.durable.clone_from(&self.current);
        self.pending.clear();
    }

    /// The contents if every pending change applied, except that the write numbered
    /// `torn_sequence` applied only its first `kept_bytes` bytes.
    fn replay_with_torn_write(&self, torn_sequence: u64, kept_bytes: usize) -> Vec<u8> {
        let mut contents = self.durable.clone();
        for change in &self.pending {
            match change {
                PendingChange::Write {
                    offset,
                    bytes,
                    sequence,
                } => {
                    let applied = if *sequence == torn_sequence {
                        bytes.get(..kept_bytes).unwrap_or(bytes.as_slice())
                    } else {
                        bytes.as_slice()
                    };
                    apply_write(&mut contents, *offset, applied);
                }
                PendingChange::SetLen { len } => contents.resize(*len, 0),
            }
        }
        contents
    }
}

/// Writes `bytes` at `offset`, extending with zeros as needed. The caller has checked that
/// `offset + bytes.len()` fits [`FILE_BYTES_MAX`]. A write of no bytes changes nothing.
fn apply_write(contents: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let end = offset.saturating_add(bytes.len());
    if contents.len() < end {
        contents.resize(end, 0);
    }
    if let Some(range) = contents.get_mut(offset..end) {
        range.copy_from_slice(bytes);
    }
}

/// A directory's file entries (subdirectories are the keys of `State::directories`).
#[derive(Clone, Debug, Default)]
struct Directory {
    /// What `list_dir` and `open` see now.
    current: BTreeMap<String, InodeId>,
    /// What survives a crash that loses unsynced directory operations.
    durable: BTreeMap<String, InodeId>,
}

/// A fault rule with its progress.
#[derive(Clone, Debug)]
struct ActiveRule {
    rule: FaultRule,
    /// Matching calls seen so far.
    matched_calls: u64,
    /// A `Once` rule that has fired.
    spent: bool,
}

/// Everything behind the one lock of a [`FaultFs`].
#[derive(Debug, Default)]
struct State {
    directories: BTreeMap<PathBuf, Directory>,
    inodes: HashMap<InodeId, Inode>,
    next_inode: InodeId,
    /// Numbers writes over all files, to find the most recent one.
    next_write_sequence: u64,
    rules: Vec<ActiveRule>,
    space_limit_bytes: Option<u64>,
    /// Every call fails once `mutation_count` reaches this.
    freeze_at_mutation_count: Option<u64>,
    mutation_count: u64,
    op_log: Vec<OpRecord>,
    locked_directories: BTreeSet<PathBuf>,
}

/// Drops `.` components so that `a/./b` and `a/b` name the same file.
fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|component| !matches!(component, Component::CurDir))
        .collect()
}

/// Splits a file path into its (normalized) directory and name.
fn split_file_path(path: &Path) -> io::Result<(PathBuf, String)> {
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

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} does not exist", path.display()),
    )
}

fn file_too_large(path: &Path) -> io::Error {
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
fn checked_file_end(path: &Path, offset: u64, len: usize) -> io::Result<usize> {
    let len = u64::try_from(len).map_err(|_| file_too_large(path))?;
    let end = offset
        .checked_add(len)
        .filter(|end| *end <= FILE_BYTES_MAX)
        .ok_or_else(|| file_too_large(path))?;
    usize::try_from(end).map_err(|_| file_too_large(path))
}

fn usize_to_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

impl State {
    fn new() -> Self {
        let mut state = State::default();
        state
            .directories
            .insert(PathBuf::new(), Directory::default());
        state
            .directories
            .insert(PathBuf::from("/"), Directory::default());
        state
    }

    fn is_frozen(&self) -> bool {
        self.freeze_at_mutation_count
            .is_some_and(|limit| self.mutation_count >= limit)
    }

    /// Runs one call: the freeze, the mutation count, the fault rules, then `body`; records
    /// the outcome in the operation log.
    fn call<T>(
        &mut self,
        op: Op,
        is_mutation: bool,
        paths: &[&Path],
        body: impl FnOnce(&mut State) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut mutation_index = None;
        let result = if self.is_frozen() {
            Err(FaultError::Eio.to_io_error())
        } else {
            if is_mutation {
                mutation_index = Some(self.mutation_count);
                self.mutation_count += 1;
            }
            match self.injected_fault(op, is_mutation, paths) {
                Some(error) => Err(error),
                None => body(self),
            }
        };
        self.op_log.push(OpRecord {
            op,
            path: paths
                .first()
                .map(|path| path.to_path_buf())
                .unwrap_or_default(),
            mutation_index,
            error: result.as_ref().err().map(io::Error::kind),
        });
        result
    }

    /// The error of the first rule that fires for this call, advancing the rules' counters.
    fn injected_fault(&mut self, op: Op, is_mutation: bool, paths: &[&Path]) -> Option<io::Error> {
        for active in &mut self.rules {
            if active.spent || !active.rule.matches(op, is_mutation, paths) {
                continue;
            }
            active.matched_calls += 1;
            if active.matched_calls <= active.rule.skip {
                continue;
            }
            if active.rule.persistence == Persistence::Once {
                active.spent = true;
            }
            return Some(active.rule.error.to_io_error());
        }
        None
    }

    fn is_directory(&self, path: &Path) -> bool {
        self.directories.contains_key(path)
    }

    /// The inode a file path names now.
    fn lookup(&self, path: &Path) -> io::Result<InodeId> {
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

    fn inode_mut(&mut self, inode: InodeId) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&inode)
            .ok_or_else(|| io::Error::other(format!("inode {inode} is missing from the model")))
    }

    fn create_dir_all(&mut self, path: &Path) -> io::Result<()> {
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

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
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
    fn missing_directory_error(&self, path: &Path) -> io::Error {
        if self.lookup(path).is_ok() {
            io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is a file", path.display()),
            )
        } else {
            not_found(path)
        }
    }

    fn open(&mut self, path: &Path, mode: OpenMode) -> io::Result<InodeId> {
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

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
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

    fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        self.lookup(path)?;
        let (parent, name) = split_file_path(path)?;
        if let Some(directory) = self.directories.get_mut(&parent) {
            directory.current.remove(&name);
        }
        Ok(())
    }

    fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        let path = normalize(path);
        if !self.is_directory(&path) {
            return Err(self.missing_directory_error(&path));
        }
        if let Some(directory) = self.directories.get_mut(&path) {
            directory.durable.clone_from(&directory.current);
        }
        Ok(())
    }

    fn lock_dir(&mut self, path: &Path) -> io::Result<PathBuf> {
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
    fn named_inodes(&self) -> BTreeSet<InodeId> {
        self.directories
            .values()
            .flat_map(|directory| directory.current.values().copied())
            .collect()
    }

    /// Fails with `ENOSPC` if growing `inode` to `new_len` bytes would take the total current
    /// size of all named files past the space limit. Shrinking or rewriting in place never
    /// fails: it needs no new space.
    fn check_space(&self, inode: InodeId, new_len: usize) -> io::Result<()> {
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

    fn write(&mut self, inode: InodeId, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
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

    fn set_len(&mut self, inode: InodeId, path: &Path, len: u64) -> io::Result<()> {
        let len = checked_file_end(path, len, 0)?;
        self.check_space(inode, len)?;
        let file = self.inode_mut(inode)?;
        file.current.resize(len, 0);
        file.pending.push(PendingChange::SetLen { len });
        Ok(())
    }

    /// The most recent unsynced write over all files: its inode, sequence and length.
    fn latest_pending_write(&self) -> Option<(InodeId, u64, usize)> {
        self.inodes
            .iter()
            .flat_map(|(inode, file)| {
                file.pending.iter().filter_map(move |change| match change {
                    PendingChange::Write {
                        bytes, sequence, ..
                    } => Some((*inode, *sequence, bytes.len())),
                    PendingChange::SetLen { .. } => None,
                })
            })
            .max_by_key(|(_, sequence, _)| *sequence)
    }

    /// The state a power cut in `mode` leaves behind.
    fn crash_image(&self, mode: CrashMode) -> State {
        let torn = match mode.writes {
            UnsyncedWrites::TornLast { seed } => {
                self.latest_pending_write()
                    .map(|(inode, sequence, write_len)| {
                        let kept_bytes = SplitMix64::new(seed).below(write_len.max(1));
                        (inode, sequence, kept_bytes)
                    })
            }
            UnsyncedWrites::Lost | UnsyncedWrites::Kept => None,
        };
        let mut image = State::new();
        for (path, directory) in &self.directories {
            let entries = match mode.dir_ops {
                UnsyncedDirOps::Lost => directory.durable.clone(),
                UnsyncedDirOps::Kept => directory.current.clone(),
            };
            for inode in entries.values() {
                let Some(file) = self.inodes.get(inode) else {
                    continue;
                };
                let contents = match (mode.writes, torn) {
                    (UnsyncedWrites::Lost, _) => file.durable.clone(),
                    (_, Some((torn_inode, sequence, kept_bytes))) if torn_inode == *inode => {
                        file.replay_with_torn_write(sequence, kept_bytes)
                    }
                    _ => file.current.clone(),
                };
                image.inodes.insert(
                    *inode,
                    Inode {
                        durable: contents.clone(),
                        current: contents,
                        pending: Vec::new(),
                    },
                );
            }
            image.directories.insert(
                path.clone(),
                Directory {
                    current: entries.clone(),
                    durable: entries,
                },
            );
        }
        image.next_inode = self.next_inode;
        image.space_limit_bytes = self.space_limit_bytes;
        image
    }
}

/// The in-memory, fault-injecting file system. Cheap to share: clones of the inner state are
/// never made except by [`FaultFs::crash`].
pub struct FaultFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultFs {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        formatter
            .debug_struct("FaultFs")
            .field("directories", &state.directories.len())
            .field("inodes", &state.inodes.len())
            .field("mutation_count", &state.mutation_count)
            .field("frozen", &state.is_frozen())
            .finish_non_exhaustive()
    }
}

impl Default for FaultFs {
    fn default() -> Self {
        FaultFs::new()
    }
}

impl FaultFs {
    /// An empty file system: only the roots `""` and `"/"` exist.
    pub fn new() -> Self {
        FaultFs {
            state: Arc::new(Mutex::new(State::new())),
        }
    }

    /// A new file system holding what survives a power cut now, as `mode` says. This one is
    /// left as it is. The image has no faults, no freeze, no locks, an empty operation log
    /// and zeroed counters; it keeps the space limit (the disk is the same size).
    pub fn crash(&self, mode: CrashMode) -> Arc<FaultFs> {
        let image = self.state.lock().crash_image(mode);
        Arc::new(FaultFs {
            state: Arc::new(Mutex::new(image)),
        })
    }

    /// Adds a fault rule. Rules are checked in the order they were added; the first that
    /// fires fails the call (later rules do not see that call).
    pub fn fail(&self, rule: FaultRule) {
        self.state.lock().rules.push(ActiveRule {
            rule,
            matched_calls: 0,
            spent: false,
        });
    }

    /// Removes every fault rule and lifts any freeze. The space limit stays.
    pub fn clear_faults(&self) {
        let mut state = self.state.lock();
        state.rules.clear();
        state.freeze_at_mutation_count = None;
    }

    /// Sets (or with `None` removes) the disk size: a write or `set_len` that grows a file so
    /// that the current sizes of all named files sum past `limit_bytes` fails with `ENOSPC`
    /// and changes nothing.
    pub fn set_space_limit_bytes(&self, limit_bytes: Option<u64>) {
        self.state.lock().space_limit_bytes = limit_bytes;
    }

    /// Lets the next `mutations` mutating calls (write, `sync_data`, `set_len`, rename,
    /// remove, `sync_dir`, open with `CreateNew`) succeed, then fails every later call of any
    /// kind with `EIO`: a power cut at that I/O point. Counted from this call, so on a fresh
    /// file system it is "the first `mutations` mutating calls". Calls refused by the freeze
    /// are not counted as mutations.
    pub fn freeze_after_mutations(&self, mutations: u64) {
        let mut state = self.state.lock();
        state.freeze_at_mutation_count = Some(state.mutation_count.saturating_add(mutations));
    }

    /// True once a freeze has been reached: every call now fails.
    pub fn is_frozen(&self) -> bool {
        self.state.lock().is_frozen()
    }

    /// Mutating calls made so far (including ones that failed by a rule or by their own
    /// error, excluding ones refused by a freeze).
    pub fn mutation_count(&self) -> u64 {
        self.state.lock().mutation_count
    }

    /// Every call made so far, in order.
    pub fn op_log(&self) -> Vec<OpRecord> {
        self.state.lock().op_log.clone()
    }

    /// How many calls of kind `op` were made ([`Op::AnyMutation`] and [`Op::Any`] count
    /// groups), failed ones included.
    pub fn op_count(&self, op: Op) -> u64 {
        let state = self.state.lock();
        let count = state
            .op_log
            .iter()
            .filter(|record| op.selects(record.op, record.mutation_index.is_some()))
            .count();
        usize_to_u64(count)
    }

    /// The current contents of the file at `path`, if it exists. Not a call: no faults, not
    /// logged.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state.lock();
        let inode = state.lookup(path).ok()?;
        state.inodes.get(&inode).map(|file| file.current.clone())
    }

    /// The current length of the file at `path`, if it exists. Not a call.
    pub fn file_len(&self, path: &Path) -> Option<u64> {
        let state = self.state.lock();
        let inode = state.lookup(path).ok()?;
        state
            .inodes
            .get(&inode)
            .map(|file| usize_to_u64(file.current.len()))
    }

    /// Every file that has a name now, sorted. Not a call.
    pub fn list_files(&self) -> Vec<PathBuf> {
        let state = self.state.lock();
        let mut files: Vec<PathBuf> = state
            .directories
            .iter()
            .flat_map(|(directory_path, directory)| {
                directory
                    .current
                    .keys()
                    .map(move |name| directory_path.join(name))
            })
            .collect();
        files.sort();
        files
    }

    /// Builds a fixture: creates the missing parent directories and writes `bytes` as the
    /// whole file at `path`, contents and name both durable. Not a call: no faults, not
    /// logged, not counted.
    pub fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        checked_file_end(path, 0, bytes.len())?;
        let mut state = self.state.lock();
        let (parent, name) = split_file_path(path)?;
        state.create_dir_all(&parent)?;
        if state.is_directory(&parent.join(&name)) {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{} is a directory", path.display()),
            ));
        }
        let existing = state
            .directories
            .get(&parent)
            .and_then(|directory| directory.current.get(&name))
            .copied();
        let inode = existing.unwrap_or(state.next_inode);
        if existing.is_none() {
            state.next_inode += 1;
        }
        state.inodes.insert(
            inode,
            Inode {
                current: bytes.to_vec(),
                durable: bytes.to_vec(),
                pending: Vec::new(),
            },
        );
        let directory = state
            .directories
            .get_mut(&parent)
            .ok_or_else(|| not_found(&parent))?;
        directory.current.insert(name.clone(), inode);
        directory.durable.insert(name, inode);
        Ok(())
    }

    /// Damages a file at rest: flips bit `bit_index` (bit 0 is the low bit of byte 0). Any
    /// unsynced changes to the file are made durable first, then the flip applies to both the
    /// current and the durable contents. Not a call.
    pub fn flip_bit(&self, path: &Path, bit_index: u64) -> io::Result<()> {
        self.modify_at_rest(path, |contents| {
            let byte = usize::try_from(bit_index / 8)
                .ok()
                .and_then(|index| contents.get_mut(index))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("bit {bit_index} is past the end of {}", path.display()),
                    )
                })?;
            *byte ^= 1 << (bit_index % 8);
            Ok(())
        })
    }

    /// Sets a file's length at rest (truncating, or extending with zeros). Any unsynced
    /// changes to the file are made durable first; the new length applies to both the current
    /// and the durable contents. Not a call.
    pub fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let len = checked_file_end(path, len, 0)?;
        self.modify_at_rest(path, |contents| {
            contents.resize(len, 0);
            Ok(())
        })
    }

    fn modify_at_rest(
        &self,
        path: &Path,
        change: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut state = self.state.lock();
        let inode = state.lookup(path)?;
        let file = state.inode_mut(inode)?;
        file.settle();
        change(&mut file.current)?;
        file.durable.clone_from(&file.current);
        Ok(())
    }
}

/// An open file of a [`FaultFs`].
struct FaultFile {
    state: Arc<Mutex<State>>,
    inode: InodeId,
    /// The path it was opened under, for fault rules and the log.
    path: PathBuf,
    writable: bool,
}

impl fmt::Debug for FaultFile {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("FaultFile")
            .field("path", &self.path)
            .field("inode", &self.inode)
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

impl FaultFile {
    fn refuse_read_only(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(EBADF_RAW))
        }
    }
}

impl FileHandle for FaultFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut state = self.state.lock();
        state.call(Op::Read, false, &[&self.path], |state| {
            let file = state.inode_mut(self.inode)?;
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let available = file.current.get(start..).unwrap_or(&[]);
            let count = available.len().min(buf.len());
            if let (Some(target), Some(source)) = (buf.get_mut(..count), available.get(..count)) {
                target.copy_from_slice(source);
            }
            Ok(count)
        })
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        state.call(Op::Write, true, &[&self.path], |state| {
            self.refuse_read_only()?;
            state.write(self.inode, &self.path, buf, offset)
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        state.call(Op::SyncData, true, &[&self.path], |state| {
            state.inode_mut(self.inode)?.settle();
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        state.call(Op::SetLen, true, &[&self.path], |state| {
            self.refuse_read_only()?;
            state.set_len(self.inode, &self.path, len)
        })
    }

    fn len(&self) -> io::Result<u64> {
        let mut state = self.state.lock();
        state.call(Op::Len, false, &[&self.path], |state| {
            Ok(usize_to_u64(state.inode_mut(self.inode)?.current.len()))
        })
    }
}

/// The lock on a directory of a [`FaultFs`]; dropping it releases the directory.
struct FaultDirLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

impl fmt::Debug for FaultDirLock {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("FaultDirLock")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DirLock for FaultDirLock {}

impl Drop for FaultDirLock {
    fn drop(&mut self) {
        self.state.lock().locked_directories.remove(&self.path);
    }
}

impl FileSystem for FaultFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.call(Op::CreateDir, false, &[path], |state| {
            state.create_dir_all(path)
        })
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut state = self.state.lock();
        state.call(Op::ListDir, false, &[path], |state| state.list_dir(path))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FileHandle>> {
        let mut state = self.state.lock();
        let is_mutation = mode == OpenMode::CreateNew;
        let inode = state.call(Op::Open, is_mutation, &[path], |state| {
            state.open(path, mode)
        })?;
        Ok(Box::new(FaultFile {
            state: Arc::clone(&self.state),
            inode,
            path: normalize(path),
            writable: mode != OpenMode::Read,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.call(Op::Rename, true, &[from, to], |state| {
            state.rename(from, to)
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.call(Op::Remove, true, &[path], |state| state.remove_file(path))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.call(Op::SyncDir, true, &[path], |state| state.sync_dir(path))
    }

    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        let mut state = self.state.lock();
        let locked = state.call(Op::Lock, false, &[path], |state| state.lock_dir(path))?;
        Ok(Box::new(FaultDirLock {
            state: Arc::clone(&self.state),
            path: locked,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = "data";

    fn path(name: &str) -> PathBuf {
        Path::new(DIR).join(name)
    }

    /// A file system with the directory `data` created.
    fn fresh() -> FaultFs {
        let fs = FaultFs::new();
        fs.create_dir_all(Path::new(DIR)).expect("create data dir");
        fs
    }

    fn create(fs: &FaultFs, name: &str) -> Box<dyn FileHandle> {
        fs.open(&path(name), OpenMode::CreateNew)
            .expect("create a new file")
    }

    const KEPT_ALL: CrashMode = CrashMode {
        writes: UnsyncedWrites::Kept,
        dir_ops: UnsyncedDirOps::Kept,
    };

    #[test]
    fn unsynced_write_is_lost_and_synced_write_survives_power_loss() {
        let fs = fresh();
        let file = create(&fs, "wal");
        file.write_all_at(b"hello", 0).expect("write");
        file.sync_data().expect("sync data");
        fs.sync_dir(Path::new(DIR)).expect("sync dir");
        file.write_all_at(b" world", 5).expect("unsynced write");
        assert_eq!(
            fs.read_file(&path("wal")).as_deref(),
            Some(&b"hello world"[..])
        );

        let lost = fs.crash(CrashMode::POWER_LOSS);
        assert_eq!(lost.read_file(&path("wal")).as_deref(), Some(&b"hello"[..]));
        let kept = fs.crash(KEPT_ALL);
        assert_eq!(
            kept.read_file(&path("wal")).as_deref(),
            Some(&b"hello world"[..])
        );
        // The original is untouched by taking images.
        assert_eq!(
            fs.read_file(&path("wal")).as_deref(),
            Some(&b"hello world"[..])
        );
    }

    #[test]
    fn unsynced_set_len_is_lost_and_data_reads_back_from_the_image() {
        let fs = fresh();
        fs.write_file(&path("segment"), b"abcdef").expect("fixture");
        let file = fs
            .open(&path("segment"), OpenMode::ReadWrite)
            .expect("open");
        file.set_len(2).expect("truncate");
        assert_eq!(file.len().expect("len"), 2);
        let image = fs.crash(CrashMode::POWER_LOSS);
        let reopened = image
            .open(&path("segment"), OpenMode::Read)
            .expect("reopen");
        let mut buf = [0_u8; 8];
        let read = reopened.read_at(&mut buf, 1).expect("read");
        assert_eq!(&buf[..read], b"bcdef");
        assert_eq!(reopened.read_at(&mut buf, 6).expect("read at end"), 0);
        assert_eq!(reopened.read_at(&mut buf, u64::MAX).expect("far read"), 0);
    }

    #[test]
    fn created_and_synced_file_without_dir_sync_is_gone_after_power_loss() {
        let fs = fresh();
        let file = create(&fs, "snapshot");
        file.write_all_at(b"state", 0).expect("write");
        file.sync_data().expect("sync data");

        let lost = fs.crash(CrashMode::POWER_LOSS);
        assert_eq!(lost.read_file(&path("snapshot")), None);
        assert!(lost.list_files().is_empty());
        assert_eq!(
            lost.list_dir(Path::new(DIR)).expect("list"),
            Vec::<String>::new()
        );
        let kept_entries = fs.crash(CrashMode {
            writes: UnsyncedWrites::Lost,
            dir_ops: UnsyncedDirOps::Kept,
        });
        assert_eq!(
            kept_entries.read_file(&path("snapshot")).as_deref(),
            Some(&b"state"[..])
        );
    }

    #[test]
    fn file_whose_name_is_durable_but_data_never_synced_is_present_and_empty() {
        let fs = fresh();
        let file = create(&fs, "wal");
        fs.sync_dir(Path::new(DIR)).expect("sync dir");
        file.write_all_at(b"unsynced", 0).expect("write");
        let lost = fs.crash(CrashMode::POWER_LOSS);
        assert_eq!(lost.read_file(&path("wal")), Some(Vec::new()));
        assert_eq!(lost.file_len(&path("wal")), Some(0));
    }

    #[test]
    fn rename_and_remove_without_dir_sync_are_undone_by_power_loss() {
        let fs = fresh();
        fs.write_file(&path("current"), b"old").expect("fixture");
        fs.write_file(&path("temp"), b"new").expect("fixture");
        fs.write_file(&path("stale"), b"gone").expect("fixture");
        fs.rename(&path("temp"), &path("current")).expect("rename");
        fs.remove_file(&path("stale")).expect("remove");
        assert_eq!(fs.read_file(&path("current")).as_deref(), Some(&b"new"[..]));
        assert_eq!(fs.list_files(), vec![path("current")]);

        let lost = fs.crash(CrashMode::POWER_LOSS);
        assert_eq!(
            lost.read_file(&path("current")).as_deref(),
            Some(&b"old"[..])
        );
        assert_eq!(lost.read_file(&path("temp")).as_deref(), Some(&b"new"[..]));
        assert_eq!(
            lost.read_file(&path("stale")).as_deref(),
            Some(&b"gone"[..])
        );

        fs.sync_dir(Path::new(DIR)).expect("sync dir");
        let durable = fs.crash(CrashMode::POWER_LOSS);
        assert_eq!(durable.list_files(), vec![path("current")]);
        assert_eq!(
            durable.read_file(&path("current")).as_deref(),
            Some(&b"new"[..])
        );
    }

    #[test]
    fn torn_last_write_keeps_a_seeded_prefix_and_the_old_bytes_after_it() {
        let fs = fresh();
        fs.write_file(&path("wal"), b"aaaaaaaaaa").expect("fixture");
        let other = create(&fs, "other");
        fs.sync_dir(Path::new(DIR)).expect("sync dir");
        let file = fs.open(&path("wal"), OpenMode::ReadWrite).expect("open");
        file.write_all_at(b"xx", 0).expect("earlier write");
        other
            .write_all_at(b"zzzz", 0)
            .expect("write to another file");
        file.write_all_at(b"bbbbbb", 2).expect("last write");

        let mut kept_lengths = BTreeSet::new();
        for seed in 0..32_u64 {
            let kept_bytes = SplitMix64::new(seed).below(6);
            let mut expected = b"xxaaaaaaaa".to_vec();
            expected[2..2 + kept_bytes].fill(b'b');
            let image = fs.crash(CrashMode {
                writes: UnsyncedWrites::TornLast { seed },
                dir_ops: UnsyncedDirOps::Lost,
            });
            assert_eq!(image.read_file(&path("wal")), Some(expected), "seed {seed}");
            // Only the last write is torn; the other file keeps its unsynced write.
            assert_eq!(
                image.read_file(&path("other")).as_deref(),
                Some(&b"zzzz"[..])
            );
            assert!(kept_bytes < 6);
            kept_lengths.insert(kept_bytes);
        }
        assert!(
            kept_lengths.len() > 1,
            "the prefix length depends on the seed"
        );
    }

    #[test]
    fn torn_last_write_that_extended_the_file_leaves_it_shorter() {
        let fs = fresh();
        let file = create(&fs, "wal");
        fs.sync_dir(Path::new(DIR)).expect("sync dir");
        file.write_all_at(b"head", 0).expect("write");
        file.sync_data().expect("sync");
        file.write_all_at(b"0123456789", 4)
            .expect("unsynced append");
        let seed = 7;
        let kept_bytes = SplitMix64::new(seed).below(10);
        let image = fs.crash(CrashMode {
            writes: UnsyncedWrites::TornLast { seed },
            dir_ops: UnsyncedDirOps::Lost,
        });
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&b"0123456789"[..kept_bytes]);
        assert_eq!(image.read_file(&path("wal")), Some(expected));
    }

    #[test]
    fn once_rule_fails_one_call_and_the_failed_write_writes_nothing() {
        let fs = fresh();
        let file = create(&fs, "wal");
        fs.fail(FaultRule::once(Op::Write, FaultError::Eio));
        let error = file.write_all_at(b"lost", 0).expect_err("injected EIO");
        assert_eq!(error.raw_os_error(), Some(5));
        assert_eq!(file.len().expect("len"), 0);
        file.write_all_at(b"kept", 0).expect("the rule is spent");
        assert_eq!(fs.read_file(&path("wal")).as_deref(), Some(&b"kept"[..]));
    }

    #[test]
    fn forever_sync_failure_leaves_writes_unsynced() {
        let fs = fresh();
        let file = create(&fs, "wal");
        fs.sync_dir(Path::new(DIR)).expect("sync dir");
        fs.fail(FaultRule::forever(Op::SyncData, FaultError::Eio));
        file.write_all_at(b"data", 0).expect("write");
        for _ in 0..3 {
            let error = file.sync_data().expect_err("sync fails for good");
            assert_eq!(error.raw_os_error(), Some(5));
        }
        assert_eq!(
            fs.crash(CrashMode::POWER_LOSS).read_file(&path("wal")),
            Some(Vec::new())
        );
        assert_eq!(
            fs.crash(KEPT_ALL).read_file(&path("wal")).as_deref(),
            Some(&b"data"[..])
        );
        fs.clear_faults();
        file.sync_data().expect("faults cleared");
        assert_eq!(
            fs.crash(CrashMode::POWER_LOSS)
                .read_file(&path("wal"))
                .as_deref(),
            Some(&b"data"[..])
        );
    }

    #[test]
    fn skip_lets_matching_calls_through_before_the_rule_fires() {
        let fs = fresh();
        for name in ["a", "b", "c", "d"] {
            fs.write_file(&path(name), name.as_bytes())
                .expect("fixture");
        }
        fs.fail(FaultRule::once(Op::Rename, FaultError::Eio).with_skip(2));
        fs.rename(&path("a"), &path("a2")).expect("first passes");
        fs.rename(&path("b"), &path("b2")).expect("second passes");
        let error = fs.rename(&path("c"), &path("c2")).expect_err("third fails");
        assert_eq!(error.raw_os_error(), Some(5));
        assert_eq!(fs.read_file(&path("c")).as_deref(), Some(&b"c"[..]));
        fs.rename(&path("d"), &path("d2"))
            .expect("once: fourth passes");
    }

    #[test]
    fn path_filter_and_groups_select_the_calls_a_rule_hits() {
        let fs = fresh();
        let wal = create(&fs, "wal-0001");
        let snapshot = create(&fs, "snapshot");
        fs.fail(FaultRule::forever(Op::AnyMutation, FaultError::NoSpace).with_path_contains("wal"));
        let error = wal.write_all_at(b"x", 0).expect_err("wal writes fail");
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert_eq!(error.raw_os_error(), Some(28));
        wal.sync_data().expect_err("a sync is a mutation too");
        wal.len().expect("a read-only call passes");
        snapshot.write_all_at(b"x", 0).expect("other paths pass");
        // A rename matches when either path contains the text.
        fs.rename(&path("snapshot"), &path("wal-0002"))
            .expect_err("rename onto a wal name");

        fs.clear_faults();
        fs.fail(FaultRule::once(Op::Any, FaultError::Eio));
        fs.list_dir(Path::new(DIR)).expect_err("any call");
        fs.list_dir(Path::new(DIR)).expect("spent");
    }

    #[test]
    fn rules_fire_in_order_and_the_first_that_fires_wins() {
        let fs = fresh();
        let file = create(&fs, "wal");
        fs.fail(FaultRule::once(Op::Write, FaultError::NoSpace));
        fs.fail(FaultRule::once(Op::Write, FaultError::Eio));
        let first = file.write_all_at(b"x", 0).expect_err("first rule");
        assert_eq!(first.raw_os_error(), Some(28));
        let second = file.write_all_at(b"x", 0).expect_err("second rule");
        assert_eq!(second.raw_os_error(), Some(5));
        file.write_all_at(b"x", 0).expect("both spent");
    }

    /// Seven mutating calls, with reads between them.
    fn workload(fs: &FaultFs) -> io::Result<()> {
        let file = fs.open(&path("wal"), OpenMode::CreateNew)?; // 1
        file.write_all_at(b"one", 0)?; // 2
        file.sync_data()?; // 3
        fs.sync_dir(Path::new(DIR))?; // 4
        file.len()?;
        file.set_len(16)?; // 5
        fs.rename(&path("wal"), &path("log"))?; // 6
        fs.list_dir(Path::new(DIR))?;
        fs.sync_dir(Path::new(DIR))?; // 7
        Ok(())
    }

    #[test]
    fn freeze_after_mutations_cuts_the_power_at_each_io_point() {
        let counting = fresh();
        workload(&counting).expect("the workload runs without faults");
        assert_eq!(counting.mutation_count(), 7);
        assert_eq!(counting.op_count(Op::AnyMutation), 7);
        assert_eq!(counting.op_count(Op::SyncDir), 2);
        assert_eq!(counting.op_count(Op::Any), 10);

        for point in 0..=7_u64 {
            let fs = fresh();
            fs.freeze_after_mutations(point);
            let result = workload(&fs);
            assert_eq!(fs.mutation_count(), point, "point {point}");
            if point < 7 {
                let error = result.expect_err("the workload hits the freeze");
                assert_eq!(error.raw_os_error(), Some(5));
                assert!(fs.is_frozen());
                let error = fs
                    .list_dir(Path::new(DIR))
                    .expect_err("every call fails once frozen");
                assert_eq!(error.raw_os_error(), Some(5));
            } else {
                result.expect("the freeze comes after the last mutation");
            }
            let indices: Vec<u64> = fs
                .op_log()
                .iter()
                .filter_map(|record| record.mutation_index)
                .collect();
            assert_eq!(indices, (0..point).collect::<Vec<_>>());
        }

        // What survives each cut: the file exists under a durable name from point 4 on.
        let fs = fresh();
        fs.freeze_after_mutations(4);
        workload(&fs).expect_err("frozen");
        let image = fs.crash(CrashMode::POWER_LOSS);
        assert_eq!(image.read_file(&path("wal")).as_deref(), Some(&b"one"[..]));
        image
            .list_dir(Path::new(DIR))
            .expect("the image is not frozen");
    }

    #[test]
    fn space_limit_refuses_growth_past_the_limit_and_writes_nothing() {
        let fs = fresh();
        fs.set_space_limit_bytes(Some(10));
        let first = create(&fs, "first");
        first.write_all_at(&[1; 8], 0).expect("8 of 10 bytes");
        first
            .write_all_at(&[2; 2], 8)
            .expect("exactly at the limit");
        first.set_len(8).expect("back to 8 bytes");
        let error = first.write_all_at(&[2; 4], 8).expect_err("12 bytes > 10");
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert_eq!(fs.file_len(&path("first")), Some(8));
        first
            .write_all_at(&[3; 8], 0)
            .expect("rewriting in place needs no space");
        first.set_len(11).expect_err("set_len past the limit");
        let second = create(&fs, "second");
        second
            .write_all_at(&[4; 2], 0)
            .expect("exactly at the limit");
        second.write_all_at(&[4], 2).expect_err("one byte over");
        first.set_len(4).expect("shrinking frees space");
        second.write_all_at(&[4; 4], 2).expect("room again");
        fs.set_space_limit_bytes(None);
        second.write_all_at(&[5; 100], 0).expect("no limit");
    }

    #[test]
    fn second_lock_would_block_until_the_first_is_dropped() {
        let fs = fresh();
        let first = fs.lock_dir(Path::new(DIR)).expect("first lock");
        let error = fs.lock_dir(Path::new(DIR)).expect_err("second lock");
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
        // A crash image starts with no locks.
        let image = fs.crash(CrashMode::POWER_LOSS);
        let image_lock = image.lock_dir(Path::new(DIR)).expect("lock in the image");
        drop(first);
        let again = fs.lock_dir(Path::new(DIR)).expect("lock after release");
        drop(again);
        drop(image_lock);
        let error = fs
            .lock_dir(Path::new("missing"))
            .expect_err("no such directory");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn errors_match_std_for_missing_and_existing_names() {
        let fs = fresh();
        let missing = fs
            .open(&path("missing"), OpenMode::Read)
            .expect_err("missing file");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let no_dir = fs
            .open(Path::new("nodir/file"), OpenMode::CreateNew)
            .expect_err("missing directory");
        assert_eq!(no_dir.kind(), io::ErrorKind::NotFound);
        drop(create(&fs, "wal"));
        let exists = fs
            .open(&path("wal"), OpenMode::CreateNew)
            .expect_err("name taken");
        assert_eq!(exists.kind(), io::ErrorKind::AlreadyExists);
        let read_only = fs.open(&path("wal"), OpenMode::Read).expect("open");
        read_only
            .write_all_at(b"x", 0)
            .expect_err("read-only handle");
        fs.remove_file(&path("wal")).expect("remove");
        assert_eq!(
            fs.remove_file(&path("wal")).expect_err("removed").kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.rename(&path("wal"), &path("x"))
                .expect_err("gone")
                .kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs.sync_dir(Path::new("missing"))
                .expect_err("no dir")
                .kind(),
            io::ErrorKind::NotFound
        );
        let huge = create(&fs, "huge");
        assert_eq!(
            huge.write_all_at(b"x", u64::MAX)
                .expect_err("past the model limit")
                .raw_os_error(),
            None
        );
        huge.set_len(FILE_BYTES_MAX + 1)
            .expect_err("past the model limit");
    }

    #[test]
    fn list_dir_shows_files_and_subdirectories_and_paths_normalize() {
        let fs = fresh();
        fs.create_dir_all(Path::new("data/sub/deeper"))
            .expect("nested dirs");
        drop(create(&fs, "file"));
        let mut names = fs.list_dir(Path::new("./data")).expect("list");
        names.sort();
        assert_eq!(names, vec!["file".to_owned(), "sub".to_owned()]);
        assert_eq!(
            fs.create_dir_all(&path("file/x"))
                .expect_err("a file in the way")
                .kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(
            fs.list_dir(&path("file"))
                .expect_err("not a directory")
                .kind(),
            io::ErrorKind::NotADirectory
        );
        fs.write_file(Path::new("/abs/dir/f"), b"1")
            .expect("absolute fixture");
        assert_eq!(
            fs.list_dir(Path::new("/abs")).expect("list"),
            vec!["dir".to_owned()]
        );
    }

    #[test]
    fn fixture_helpers_damage_files_at_rest_and_survive_crashes() {
        let fs = FaultFs::new();
        fs.write_file(&path("snapshot"), &[0b0000_0000, 0b1111_1111])
            .expect("fixture");
        fs.flip_bit(&path("snapshot"), 9)
            .expect("flip bit 1 of byte 1");
        fs.flip_bit(&path("snapshot"), 0)
            .expect("flip bit 0 of byte 0");
        assert_eq!(
            fs.read_file(&path("snapshot")),
            Some(vec![0b0000_0001, 0b1111_1101])
        );
        fs.flip_bit(&path("snapshot"), 16)
            .expect_err("past the end");
        let image = fs.crash(CrashMode::POWER_LOSS);
        assert_eq!(
            image.read_file(&path("snapshot")),
            Some(vec![0b0000_0001, 0b1111_1101])
        );

        let file = fs
            .open(&path("snapshot"), OpenMode::ReadWrite)
            .expect("open");
        file.write_all_at(b"abc", 2).expect("unsynced write");
        fs.truncate(&path("snapshot"), 3).expect("truncate");
        let image = fs.crash(CrashMode::POWER_LOSS);
        assert_eq!(
            image.read_file(&path("snapshot")),
            Some(vec![0b0000_0001, 0b1111_1101, b'a'])
        );
        assert_eq!(image.file_len(&path("snapshot")), Some(3));
        fs.truncate(&path("missing"), 0).expect_err("no such file");
    }

    #[test]
    fn handles_are_shared_across_threads() {
        let fs = Arc::new(fresh());
        let file: Arc<dyn FileHandle> = Arc::from(create(&fs, "wal"));
        let writers: Vec<_> = (0..4_u8)
            .map(|index| {
                let file = Arc::clone(&file);
                std::thread::spawn(move || file.write_all_at(&[index; 4], u64::from(index) * 4))
            })
            .collect();
        for writer in writers {
            writer.join().expect("no panic").expect("write");
        }
        assert_eq!(
            fs.read_file(&path("wal")),
            Some(vec![0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3])
        );
        assert_eq!(fs.op_count(Op::Write), 4);
    }
}
