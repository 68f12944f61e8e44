//! Workloads that report a wall time for a fixed amount of work ([`ParallelWorkload`]):
//! fills of a fresh store, Strict group commit from several writer threads, and a mixed
//! 80/20 read/write load on two threads.
//!
//! Threads and sessions are set up before the clock starts; the writer threads wait on a
//! barrier and the clock runs from their release until the last one is done.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::keys::{KeySet, SplitMix64};
use crate::peers::{self, Label, Peer, Places, Session, ValuePool};
use crate::workloads::{require_keys, ParallelWorkload, Result, WorkloadError};

use super::{expect_found, fill, FillOrder, PeerFixture, SIDE_BY_SIDE_VALUE_BYTES};

/// One in this many operations of [`Mixed`] is a put (80/20).
pub const MIXED_WRITE_ONE_IN: u64 = 5;

/// Fills a fresh store with `key_count` keys, [`super::FILL_BATCH_KEYS`] per commit. Each run
/// opens a new store (untimed), times the fill, and drops the store (untimed).
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
        Fill {
            label,
            places: places.clone(),
            keys: KeySet::sequential(key_count),
            values: ValuePool::new(SIDE_BY_SIDE_VALUE_BYTES),
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

/// `writers` threads, each putting to keys of its own, one commit per put, together
/// `commits_per_run` commits per run. In Strict mode, how many of those commits share one
/// fdatasync is what the store's group commit decides.
pub struct GroupCommit {
    peer: Arc<dyn Peer>,
    keys: Arc<KeySet>,
    values: Arc<ValuePool>,
    writers: usize,
    commits_per_writer: u64,
    runs: u64,
}

impl GroupCommit {
    /// `writers` writers overwriting `fixture`'s keys, `commits_per_run / writers` each (at
    /// least one).
    pub fn new(fixture: &PeerFixture, writers: usize, commits_per_run: u64) -> Result<Self> {
        require_keys("group_commit", fixture.key_count(), writers.max(1))?;
        let writers = writers.max(1);
        Ok(GroupCommit {
            peer: Arc::clone(fixture.peer()),
            keys: Arc::clone(fixture.keys()),
            values: Arc::clone(fixture.values()),
            writers,
            commits_per_writer: (commits_per_run / writers as u64).max(1),
            runs: 0,
        })
    }

    /// The writer threads.
    pub fn writers(&self) -> usize {
        self.writers
    }
}

impl ParallelWorkload for GroupCommit {
    fn run(&mut self) -> Result<Duration> {
        self.runs += 1;
        let (writers, per_writer, run) = (self.writers, self.commits_per_writer, self.runs);
        let (keys, values) = (&self.keys, &self.values);
        run_threads(
            "group_commit",
            self.peer.as_ref(),
            writers,
            |writer, session| {
                // Writer `w` owns the keys w, w + writers, w + 2 * writers, ...
                let owned = keys.len().div_ceil(writers).max(1);
                for commit in 0..per_writer {
                    #[expect(
                        clippy::cast_possible_truncation,
                        reason = "the remainder is below `owned`, a usize"
                    )]
                    let slot = (commit % owned as u64) as usize;
                    let index = (writer + slot * writers) % keys.len();
                    session.put(keys.get(index), values.get(run + commit))?;
                }
                Ok(())
            },
        )
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.writers as u64 * self.commits_per_writer
    }
}

/// Runs `work(thread, session)` on `threads` threads, each with a session of its own opened
/// before the clock starts; the threads wait on a barrier, and the clock runs from their
/// release until the last one is done.
fn run_threads(
    workload: &'static str,
    peer: &dyn Peer,
    threads: usize,
    work: impl Fn(usize, &mut dyn Session) -> Result<()> + Sync,
) -> Result<Duration> {
    let sessions = (0..threads)
        .map(|_| peer.session())
        .collect::<Result<Vec<_>>>()?;
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .into_iter()
            .enumerate()
            .map(|(thread, mut session)| {
                let (barrier, work) = (&barrier, &work);
                scope.spawn(move || {
                    barrier.wait();
                    work(thread, session.as_mut())
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        for handle in handles {
            handle
                .join()
                .map_err(|_| WorkloadError::unexpected(workload, "a thread panicked"))??;
        }
        Ok(started.elapsed())
    })
}

/// Two or more threads on one store, each doing `ops_per_thread` operations: a put of a
/// random key one time in [`MIXED_WRITE_ONE_IN`], a get of a random key otherwise.
pub struct Mixed {
    peer: Arc<dyn Peer>,
    keys: Arc<KeySet>,
    values: Arc<ValuePool>,
    threads: usize,
    ops_per_thread: u64,
    write_one_in: Option<u64>,
    runs: u64,
}

impl Mixed {
    /// `threads` threads on `fixture`'s store.
    pub fn new(fixture: &PeerFixture, threads: usize, ops_per_thread: u64) -> Result<Self> {
        Self::with_writes(fixture, threads, ops_per_thread, Some(MIXED_WRITE_ONE_IN))
    }

    /// `threads` threads reading random keys only: how reads scale with threads.
    pub fn reads_only(fixture: &PeerFixture, threads: usize, ops_per_thread: u64) -> Result<Self> {
        Self::with_writes(fixture, threads, ops_per_thread, None)
    }

    fn with_writes(
        fixture: &PeerFixture,
        threads: usize,
        ops_per_thread: u64,
        write_one_in: Option<u64>,
    ) -> Result<Self> {
        require_keys("mixed", fixture.key_count(), 1)?;
        Ok(Mixed {
            peer: Arc::clone(fixture.peer()),
            keys: Arc::clone(fixture.keys()),
            values: Arc::clone(fixture.values()),
            threads: threads.max(1),
            ops_per_thread,
            write_one_in,
            runs: 0,
        })
    }
}

impl ParallelWorkload for Mixed {
    fn run(&mut self) -> Result<Duration> {
        self.runs += 1;
        let (keys, values, ops, run) = (&self.keys, &self.values, self.ops_per_thread, self.runs);
        let write_one_in = self.write_one_in;
        run_threads(
            "mixed",
            self.peer.as_ref(),
            self.threads,
            |thread, session| {
                let mut random = SplitMix64::new(0x6d69_7800 ^ (run << 8) ^ thread as u64);
                for op in 0..ops {
                    let key = keys.get(random.below(keys.len()));
                    let draw = random.next_u64();
                    if write_one_in.is_some_and(|one_in| draw.is_multiple_of(one_in)) {
                        session.put(key, values.get(op))?;
                    } else {
                        expect_found("mixed", key, session.get(key)?)?;
                    }
                }
                Ok(())
            },
        )
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.threads as u64 * self.ops_per_thread
    }
}
