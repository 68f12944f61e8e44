//! redb as a peer (being written).

use super::{Label, Mode, Peer, Session};
use crate::workloads::{Result, WorkloadError};

/// redb.
pub struct RedbPeer;

impl RedbPeer {
    /// Opens a fresh store in `mode`.
    pub fn open(mode: Mode) -> Result<Self> {
        let _ = mode;
        Err(WorkloadError::unexpected("redb", "not written yet"))
    }
}

impl Peer for RedbPeer {
    fn label(&self) -> Label {
        unreachable!()
    }
    fn session(&self) -> Result<Box<dyn Session>> {
        unreachable!()
    }
    fn disk_bytes(&self) -> Option<u64> {
        None
    }
}
