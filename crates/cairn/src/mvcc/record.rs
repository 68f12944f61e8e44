//! A key's record: the key and its version chain in one allocation, the value the ordered
//! index holds for each key.
//!
//! A record is immutable once published. A commit that changes a key builds a successor
//! record and publishes it in the index (`cairn_index::Index::upsert`), which hands the old
//! one to the epoch collector once no reader can reach it; pruning does the same with a
//! shorter chain. So a reader that loaded a record holds one consistent chain for as long as
//! its epoch guard is pinned, and no per-key lock, reference count or slot exists.

use cairn_index::Keyed;

use crate::mvcc::chain::Chain;
use crate::types::Key;

/// One key and its versions, newest first. The chain is never empty.
#[derive(Debug)]
pub(crate) struct Record {
    key: Key,
    chain: Chain,
}

impl Record {
    /// The record of `key` holding `chain`, which must not be empty.
    pub(crate) fn new(key: Key, chain: Chain) -> Self {
        debug_assert!(chain.len() > 0, "a record's chain is never empty");
        Record { key, chain }
    }

    /// The key, as the index orders it.
    pub(crate) fn key(&self) -> &Key {
        &self.key
    }

    /// The versions, newest first.
    pub(crate) fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Asks the CPU to start loading the record (each cache line it may span). A hint only.
    pub(crate) fn prefetch(&self) {
        let start: *const Record = self;
        let start = start.cast::<u8>();
        cairn_index::prefetch(start);
        cairn_index::prefetch(start.wrapping_add(std::mem::size_of::<Record>() - 1));
    }

    /// Asks the CPU to start loading the newest value's reference count and first bytes, for
    /// a scan that will clone it a few steps later. A hint only.
    pub(crate) fn prefetch_value(&self) {
        if let Some(value) = self.chain.head().and_then(|head| head.value.as_ref()) {
            value.prefetch();
        }
    }
}

impl Keyed for Record {
    fn key(&self) -> &[u8] {
        &self.key
    }
}
