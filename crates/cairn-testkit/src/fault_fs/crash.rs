//! The crash model: what survives a power cut. Every file keeps its durable contents and the
//! ordered changes made since its last `sync_data`, every directory its durable and current
//! entries; [`CrashMode`] chooses which of the pending changes a crash keeps, and
//! `State::crash_image` builds the file system a crash in that mode leaves behind, leaving the
//! original untouched so one workload can be crashed in several ways.

use std::collections::BTreeMap;

use super::state::State;
#[cfg(doc)]
use super::FaultFs;
use crate::rng::SplitMix64;

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

/// An index into the inode table.
pub(super) type InodeId = u64;

/// A change to a file's contents not yet made durable by `sync_data`.
#[derive(Clone, Debug)]
pub(super) enum PendingChange {
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
pub(super) struct Inode {
    /// What reads see now.
    pub(super) current: Vec<u8>,
    /// What survives a crash that loses unsynced writes.
    pub(super) durable: Vec<u8>,
    /// Changes since the last successful `sync_data`, oldest first; replaying them over
    /// `durable` gives `current`.
    pub(super) pending: Vec<PendingChange>,
}

impl Inode {
    /// Makes the current contents durable, as a successful `sync_data` does.
    pub(super) fn settle(&mut self) {
        self.durable.clone_from(&self.current);
        self.pending.clear();
    }

    /// The contents if every pending change applied, except that the write numbered
    /// `torn_sequence` applied only its first `kept_bytes` bytes.
    pub(super) fn replay_with_torn_write(&self, torn_sequence: u64, kept_bytes: usize) -> Vec<u8> {
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
/// `offset + bytes.len()` fits [`FILE_BYTES_MAX`](super::FILE_BYTES_MAX). A write of no bytes changes nothing.
pub(super) fn apply_write(contents: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
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
pub(super) struct Directory {
    /// What `list_dir` and `open` see now.
    pub(super) current: BTreeMap<String, InodeId>,
    /// What survives a crash that loses unsynced directory operations.
    pub(super) durable: BTreeMap<String, InodeId>,
}

impl State {
    /// The most recent unsynced write over all files: its inode, sequence and length.
    pub(super) fn latest_pending_write(&self) -> Option<(InodeId, u64, usize)> {
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
    pub(super) fn crash_image(&self, mode: CrashMode) -> State {
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
