//! Runs: identity, status and its transition table, the stored meta record, and queries.
//!
//! The transition table (also in `docs/agent.md`) is [`RunStatus::can_become`]; every status
//! change goes through it, so an illegal transition is always a typed
//! [`Error::IllegalTransition`](crate::Error::IllegalTransition).

use std::fmt;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};

/// A run's id: dense, assigned by [`Agent::begin_run`](crate::Agent::begin_run), never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(u64);

impl RunId {
    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
    /// An id from its number (for tools that print and parse ids).
    pub fn from_u64(n: u64) -> RunId {
        RunId(n)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A run's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunStatus {
    /// Running; the only status that takes writes.
    Active,
    /// Stopped by its owner; may resume.
    Paused,
    /// Finished successfully.
    Completed,
    /// Finished with a failure.
    Failed,
    /// Stopped by someone else.
    Cancelled,
    /// Kept for reference only; final.
    Archived,
    /// Was active when its process died; found and marked by [`Agent::open`](crate::Agent::open).
    Orphaned,
}

impl RunStatus {
    /// Every status, in code order.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Active,
        RunStatus::Paused,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
        RunStatus::Archived,
        RunStatus::Orphaned,
    ];

    /// The transition table.
    ///
    /// | from | to |
    /// |---|---|
    /// | active | paused, completed, failed, cancelled |
    /// | paused | active, completed, failed, cancelled |
    /// | orphaned | active, failed, cancelled |
    /// | completed, failed, cancelled | archived |
    /// | archived | (none) |
    ///
    /// `Orphaned` is entered only by [`Agent::open`](crate::Agent::open).
    pub fn can_become(self, to: RunStatus) -> bool {
        use RunStatus::{Active, Archived, Cancelled, Completed, Failed, Orphaned, Paused};
        matches!(
            (self, to),
            (Active, Paused | Completed | Failed | Cancelled)
                | (Paused, Active | Completed | Failed | Cancelled)
                | (Orphaned, Active | Failed | Cancelled)
                | (Completed | Failed | Cancelled, Archived)
        )
    }

    /// Whether the run has ended (completed, failed, cancelled or archived).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled | RunStatus::Archived
        )
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            RunStatus::Active => 1,
            RunStatus::Paused => 2,
            RunStatus::Completed => 3,
            RunStatus::Failed => 4,
            RunStatus::Cancelled => 5,
            RunStatus::Archived => 6,
            RunStatus::Orphaned => 7,
        }
    }

    pub(crate) fn from_code(code: u8) -> Result<RunStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|s| s.code() == code)
            .ok_or(Error::corrupt("run", "unknown status"))
    }
}

/// Where a fork branched off: the parent and the counts of its history, events and spans at
/// that point. The fork's own steps, events and spans continue from these counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkPoint {
    /// The run forked from.
    pub parent: RunId,
    /// History steps shared with the parent (`0..step`).
    pub step: u64,
    /// Events shared with the parent (`0..events`).
    pub events: u64,
    /// Spans shared with the parent (`0..spans`).
    pub spans: u64,
}

/// What `begin_run` takes.
#[derive(Clone, Debug, Default)]
pub struct RunSpec {
    /// A human name (not unique).
    pub name: String,
    /// Tags, each indexed.
    pub tags: Vec<String>,
    /// Free-form JSON metadata (`null` when empty).
    pub metadata: serde_json::Value,
    /// A logical parent run (a sub-agent's caller), if any. Not a fork.
    pub parent: Option<RunId>,
}

impl RunSpec {
    /// A spec with a name and nothing else.
    pub fn named(name: impl Into<String>) -> RunSpec {
        RunSpec {
            name: name.into(),
            ..RunSpec::default()
        }
    }
    /// Adds a tag.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> RunSpec {
        self.tags.push(tag.into());
        self
    }
}

/// A run as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    /// The id.
    pub id: RunId,
    /// The name.
    pub name: String,
    /// The tags.
    pub tags: Vec<String>,
    /// The metadata.
    pub metadata: serde_json::Value,
    /// The logical parent.
    pub parent: Option<RunId>,
    /// Where this run was forked from, if it is a fork.
    pub fork: Option<ForkPoint>,
    /// The status.
    pub status: RunStatus,
    /// Creation time, ms since the Unix epoch (from the agent's clock).
    pub created_ms: u64,
    /// Time of the last status change.
    pub updated_ms: u64,
}

const META_FORMAT: u8 = 1;

impl RunInfo {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.name.len());
        w.u8(META_FORMAT).u64(self.id.0).bytes(self.name.as_bytes());
        w.u32(u32::try_from(self.tags.len()).unwrap_or(u32::MAX));
        for t in &self.tags {
            w.bytes(t.as_bytes());
        }
        w.bytes(self.metadata.to_string().as_bytes());
        match self.parent {
            None => w.u8(0),
            Some(p) => w.u8(1).u64(p.0),
        };
        match self.fork {
            None => w.u8(0),
            Some(f) => w
                .u8(1)
                .u64(f.parent.0)
                .u64(f.step)
                .u64(f.events)
                .u64(f.spans),
        };
        w.u8(self.status.code())
            .u64(self.created_ms)
            .u64(self.updated_ms);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<RunInfo> {
        let mut r = Reader::new(bytes, "run");
        if r.u8()? != META_FORMAT {
            return Err(Error::corrupt("run", "unknown format"));
        }
        let id = RunId(r.u64()?);
        let name = r.string()?;
        let n = r.count(4)?;
        let mut tags = Vec::with_capacity(n);
        for _ in 0..n {
            tags.push(r.string()?);
        }
        let metadata = serde_json::from_slice(r.bytes()?)
            .map_err(|_| Error::corrupt("run", "metadata is not JSON"))?;
        let parent = match r.u8()? {
            0 => None,
            1 => Some(RunId(r.u64()?)),
            _ => return Err(Error::corrupt("run", "bad option tag")),
        };
        let fork = match r.u8()? {
            0 => None,
            1 => Some(ForkPoint {
                parent: RunId(r.u64()?),
                step: r.u64()?,
                events: r.u64()?,
                spans: r.u64()?,
            }),
            _ => return Err(Error::corrupt("run", "bad option tag")),
        };
        let status = RunStatus::from_code(r.u8()?)?;
        let created_ms = r.u64()?;
        let updated_ms = r.u64()?;
        r.end()?;
        Ok(RunInfo {
            id,
            name,
            tags,
            metadata,
            parent,
            fork,
            status,
            created_ms,
            updated_ms,
        })
    }
}

/// A filter for [`Agent::query`](crate::Agent::query); every field set must match.
#[derive(Clone, Debug, Default)]
pub struct RunQuery {
    /// Only runs with this status (read from the status index).
    pub status: Option<RunStatus>,
    /// Only runs with this tag (read from the tag index when no status is given).
    pub tag: Option<String>,
    /// Only runs created at or after this time (ms).
    pub created_from_ms: Option<u64>,
    /// Only runs created before this time (ms).
    pub created_to_ms: Option<u64>,
}

impl RunQuery {
    pub(crate) fn matches(&self, run: &RunInfo) -> bool {
        self.status.is_none_or(|s| s == run.status)
            && self
                .tag
                .as_ref()
                .is_none_or(|t| run.tags.iter().any(|x| x == t))
            && self.created_from_ms.is_none_or(|f| run.created_ms >= f)
            && self.created_to_ms.is_none_or(|t| run.created_ms < t)
    }
}
