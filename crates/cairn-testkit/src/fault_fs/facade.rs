//! The facade: [`FaultFs`], the type tests hold, which implements [`FileSystem`] over the
//! shared state, plus its file handles and directory locks. It adds the controls a test needs
//! (faults, a space limit, a freeze, crash images, direct edits of files at rest) and keeps
//! every call's outcome in the operation log.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_log::fs::{DirLock, FileHandle, FileSystem, OpenMode};
use parking_lot::Mutex;

use super::crash::{CrashMode, Inode, InodeId};
use super::rules::{ActiveRule, FaultRule, Op, OpRecord, EBADF_RAW};
use super::state::{checked_file_end, normalize, not_found, split_file_path, usize_to_u64, State};

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
