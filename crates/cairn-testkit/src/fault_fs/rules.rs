//! The fault rules: which calls fail ([`Op`], [`FaultRule`], [`Persistence`]), with what
//! ([`FaultError`]), and the operation log every call leaves ([`OpRecord`]). Rules are
//! deterministic: a rule counts the calls it matches and fires after its `skip` budget, once or
//! for good; a frozen file system fails every call.

use std::io;
use std::path::{Path, PathBuf};

use super::state::State;
#[cfg(doc)]
use super::FaultFs;

/// Raw OS error number for an I/O error (`EIO` on Linux).
pub(super) const EIO_RAW: i32 = 5;
/// Raw OS error number for a full device (`ENOSPC` on Linux).
pub(super) const ENOSPC_RAW: i32 = 28;
/// Raw OS error number for a write through a read-only handle (`EBADF` on Linux).
pub(super) const EBADF_RAW: i32 = 9;
/// Raw OS error number for a file that would grow too large (`EFBIG` on Linux).
pub(super) const EFBIG_RAW: i32 = 27;

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
    pub(super) fn selects(self, call_op: Op, is_mutation: bool) -> bool {
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

    pub(super) fn matches(&self, call_op: Op, is_mutation: bool, paths: &[&Path]) -> bool {
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

/// A fault rule with its progress.
#[derive(Clone, Debug)]
pub(super) struct ActiveRule {
    pub(super) rule: FaultRule,
    /// Matching calls seen so far.
    pub(super) matched_calls: u64,
    /// A `Once` rule that has fired.
    pub(super) spent: bool,
}

impl State {
    pub(super) fn is_frozen(&self) -> bool {
        self.freeze_at_mutation_count
            .is_some_and(|limit| self.mutation_count >= limit)
    }

    /// Runs one call: the freeze, the mutation count, the fault rules, then `body`; records
    /// the outcome in the operation log.
    pub(super) fn call<T>(
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
    pub(super) fn injected_fault(
        &mut self,
        op: Op,
        is_mutation: bool,
        paths: &[&Path],
    ) -> Option<io::Error> {
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
}
