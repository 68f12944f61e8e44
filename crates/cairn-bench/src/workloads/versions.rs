//! Version growth: one hot key overwritten again and again.
//!
//! With no snapshot open, the engine promises that a key's history stays bounded (the newest
//! version, plus the one before it until the maintainer prunes it) however often it is
//! written. The operation is a plain `put` to one key; [`HotKeyPut::versions_retained`] reads
//! the engine's count afterwards, which a report compares with that bound.

use cairn::Db;

use super::{Result, Workload};
use crate::keys::value_of_length;

/// The key every put of this workload overwrites.
const HOT_KEY: &[u8] = b"hot:key";

/// `put` to the same key, every time.
#[derive(Debug)]
pub struct HotKeyPut {
    db: Db,
    value: Vec<u8>,
    puts: u64,
}

impl HotKeyPut {
    /// A fresh database whose only key gets values of `value_bytes`.
    pub fn new(value_bytes: usize) -> Self {
        HotKeyPut {
            db: Db::in_memory(),
            value: value_of_length(value_bytes),
            puts: 0,
        }
    }

    /// Puts made so far.
    pub fn puts(&self) -> u64 {
        self.puts
    }

    /// Versions the database holds now: the hot key's history, the only key there is.
    pub fn versions_retained(&self) -> u64 {
        self.db.stats().versions_retained
    }
}

impl Workload for HotKeyPut {
    fn run_op(&mut self) -> Result<()> {
        self.db.put(HOT_KEY, &self.value)?;
        self.puts += 1;
        Ok(())
    }
}
