//! Workloads that report a wall time for a fixed amount of work ([`ParallelWorkload`]): fills
//! of a fresh store, Strict group commit from several writers, and a mixed 80/20 load. Threads
//! and sessions are set up before the clock, which runs from their release until the last ends.

use super::{expect_found, fill, pick, FillOrder, PeerFixture};
use crate::keys::{KeySet, SplitMix64};
use crate::peers::{self, Label, Peer, Places, Session, ValuePool};
use crate::sizes::VALUE_BYTES;
use crate::workloads::{require_keys, run_threads, ParallelWorkload, Result};
use std::sync::Arc;
use std::time::Duration;

/// One in this many operations of [`Load::Mixed`] is a put (80/20).
pub const MIXED_WRITE_ONE_IN: u64 = 5;

/// Fills a fresh store (opened and dropped untimed) with `key_count` keys.
pub struct Fill {
    label: Label,
    places: Places,
    keys: KeySet,
    values: ValuePool,
    order: FillOrder,
}

impl Fill {
    /// A fill of `key_count` keys in `order` into fresh stores of `label`.
    pub fn new(label: Label, places: &Places, key_count: usize, order: FillOrder) -> Self {
        let (keys, values) = (KeySet::sequential(key_count), ValuePool::new(VALUE_BYTES));
        Fill {
            label,
            places: places.clone(),
            keys,
            values,
            order,
        }
    }
}

impl ParallelWorkload for Fill {
    fn run(&mut self) -> Result<Duration> {
        let peer = peers::open(self.label, &self.places)?;
        fill(peer.as_ref(), &self.keys, &self.values, self.order)
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.keys.len() as u64
    }
}

/// `threads` threads on one store, each making `ops_per_thread` operations per run.
pub struct Concurrent {
    peer: Arc<dyn Peer>,
    keys: Arc<KeySet>,
    values: Arc<ValuePool>,
    threads: usize,
    ops_per_thread: u64,
    load: Load,
    runs: u64,
}

/// What each thread of a [`Concurrent`] workload does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Puts to keys of its own: writer `w` owns keys `w`, `w + writers`, `w + 2 * writers`...
    GroupCommit,
    /// A put of a random key one time in [`MIXED_WRITE_ONE_IN`], a get of one otherwise.
    Mixed,
    /// Gets of random keys only: how reads scale with threads.
    Reads,
}

impl Concurrent {
    /// `threads` threads on `fixture`'s store (at least one), `ops` operations each.
    pub fn new(fixture: &PeerFixture, load: Load, threads: usize, ops: u64) -> Result<Self> {
        let (threads, own_keys) = (threads.max(1), load == Load::GroupCommit);
        let minimum = if own_keys { threads } else { 1 };
        require_keys("threads", fixture.key_count(), minimum)?;
        Ok(Concurrent {
            peer: Arc::clone(&fixture.peer),
            keys: Arc::clone(&fixture.keys),
            values: Arc::clone(&fixture.values),
            threads,
            ops_per_thread: ops,
            load,
            runs: 0,
        })
    }

    /// `writers` Strict writers making `commits` commits per run together.
    pub fn group_commit(fixture: &PeerFixture, writers: usize, commits: u64) -> Result<Self> {
        let per_writer = (commits / writers.max(1) as u64).max(1);
        Concurrent::new(fixture, Load::GroupCommit, writers, per_writer)
    }

    fn work(&self, thread: usize, session: &mut dyn Session) -> Result<()> {
        let (keys, values, run) = (&self.keys, &self.values, self.runs);
        if self.load == Load::GroupCommit {
            let owned = keys.len().div_ceil(self.threads).max(1);
            for commit in 0..self.ops_per_thread {
                let slot = usize::try_from(commit % owned as u64).unwrap_or(0);
                let index = (thread + slot * self.threads) % keys.len();
                session.put(keys.get(index), values.get(run + commit))?;
            }
            return Ok(());
        }
        let mut random = SplitMix64::new(0x6d69_7800 ^ (run << 8) ^ thread as u64);
        for op in 0..self.ops_per_thread {
            let key = pick(keys, &mut random);
            let draw = random.next_u64();
            if self.load == Load::Mixed && draw.is_multiple_of(MIXED_WRITE_ONE_IN) {
                session.put(key, values.get(op))?;
            } else {
                expect_found("mixed", key, session.get(key)?)?;
            }
        }
        Ok(())
    }
}

impl ParallelWorkload for Concurrent {
    fn run(&mut self) -> Result<Duration> {
        self.runs += 1;
        let sessions = (0..self.threads).map(|_| self.peer.session());
        let sessions = sessions.collect::<Result<Vec<_>>>()?;
        run_threads(sessions, |thread, mut session| {
            self.work(thread, session.as_mut())
        })
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.threads as u64 * self.ops_per_thread
    }
}
