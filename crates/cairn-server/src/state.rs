//! What every connection shares: the database, the configuration, the per-key write locks,
//! the durability gate, the client registry, the `SCAN` cursors and the counters.
//!
//! - **Per-key write locks** ([`Stripes`]): every command that writes takes the locks of its
//!   keys' stripes (sorted, so two commands never deadlock) around its read-modify-write, so
//!   each command is atomic as in Redis, and `INCR`s on one key never retry against each
//!   other. Reads take no lock: they read the engine's latest committed version.
//! - **The durability gate** ([`SyncGate`]): under `strict` the engine runs `Buffered` and a
//!   connection sends its replies only once everything committed before them is fdatasync'ed.
//!   The connections lead the syncs themselves, one at a time, each covering every commit
//!   made before it began (so pipelined writes from many clients share one fsync, as Redis's
//!   `appendfsync always` shares one per event-loop pass). A reply that shows a write waits
//!   for it too, so no client sees a write a crash could take away.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn::Db;
use parking_lot::{Mutex, MutexGuard};

use crate::resp::parse::Limits;

/// How the server keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In memory only.
    Memory,
    /// A reply is sent once the write is in the WAL buffer; synced in the background.
    Buffered,
    /// A reply is sent once the write is fdatasync'ed.
    Strict,
}

/// The server's settings. [`Config::new`] gives Redis's defaults where Redis has one.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data directory (ignored for [`Mode::Memory`]).
    pub dir: Option<PathBuf>,
    /// The durability mode.
    pub mode: Mode,
    /// Where to listen.
    pub bind: SocketAddr,
    /// The password `AUTH` wants; `None` for none.
    pub requirepass: Option<String>,
    /// Refuse non-loopback clients while no password is set (Redis's protected mode).
    pub protected_mode: bool,
    /// Connections served at once; the next one gets an error and is closed.
    pub maxclients: usize,
    /// Close a connection idle this long (`None`: never, Redis's default).
    pub timeout: Option<Duration>,
    /// The longest argument (Redis's `proto-max-bulk-len`): the engine's largest value.
    pub bulk_bytes_max: usize,
    /// The most argument bytes one request may hold (Redis's `client-query-buffer-limit`).
    pub request_bytes_max: usize,
    /// Runtime worker threads (`None`: one per two CPUs, at least one).
    pub workers: Option<usize>,
    /// Where to serve Prometheus metrics (`None`: nowhere).
    pub metrics_bind: Option<SocketAddr>,
}

impl Config {
    /// The defaults: in memory, `127.0.0.1:6379`, no password, protected mode on, 10,000
    /// clients, no idle timeout.
    pub fn new() -> Config {
        Config {
            dir: None,
            mode: Mode::Memory,
            bind: SocketAddr::from(([127, 0, 0, 1], 6379)),
            requirepass: None,
            protected_mode: true,
            maxclients: 10_000,
            timeout: None,
            bulk_bytes_max: cairn::limits::VALUE_BYTES_MAX_DEFAULT,
            request_bytes_max: 1024 * 1024 * 1024,
            workers: None,
            metrics_bind: None,
        }
    }

    /// The parser limits for a client, by whether it has authenticated.
    pub fn limits(&self, authenticated: bool) -> Limits {
        if authenticated {
            Limits::authenticated(self.bulk_bytes_max, self.request_bytes_max)
        } else {
            Limits::unauthenticated()
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}

/// Everything the connections share.
#[derive(Debug)]
pub struct Shared {
    pub(crate) db: Db,
    pub(crate) config: Config,
    pub(crate) stripes: Stripes,
    pub(crate) gate: Option<SyncGate>,
    pub(crate) clients: Clients,
    pub(crate) cursors: Mutex<Cursors>,
    pub(crate) stats: Counters,
    pub(crate) started: Instant,
    /// The low bits of new collection versions (`commands::collection`).
    pub(crate) collection_counter: AtomicU64,
    /// The keys clients `WATCH`.
    pub(crate) watches: Watches,
    /// Channels and patterns.
    pub(crate) pubsub: crate::pubsub::PubSub,
    /// Woken by every commit that writes a key a blocked read waits on
    /// (`Clients::block`): blocked reads look again.
    pub(crate) blocked_keys_written: tokio::sync::Notify,
    /// `notify-keyspace-events`.
    pub(crate) notify: crate::notify::Setting,
    /// The scripts `EVAL` and `SCRIPT LOAD` were given.
    pub(crate) scripts: crate::commands::ScriptCache,
    /// Redis's encoding thresholds as clients set them (`commands::config`).
    pub(crate) layout_hints: crate::commands::LayoutHints,
}

impl Shared {
    pub(crate) fn new(db: Db, config: Config) -> Shared {
        let gate = (config.mode == Mode::Strict).then(|| SyncGate::new(db.clone()));
        Shared {
            db,
            config,
            stripes: Stripes::new(),
            gate,
            clients: Clients::default(),
            cursors: Mutex::new(Cursors::default()),
            stats: Counters::default(),
            started: Instant::now(),
            collection_counter: AtomicU64::new(0),
            watches: Watches::default(),
            pubsub: crate::pubsub::PubSub::default(),
            blocked_keys_written: tokio::sync::Notify::new(),
            notify: crate::notify::Setting::default(),
            scripts: crate::commands::ScriptCache::default(),
            layout_hints: crate::commands::LayoutHints::default(),
        }
    }
}

impl Shared {
    /// Counts element records the reclaimer deleted.
    pub(crate) fn reclaimed(&self, records: usize) {
        self.stats.elements_reclaimed.fetch_add(
            u64::try_from(records).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// A client watching a key: its id and its dirty flag.
type Watcher = (u64, Arc<AtomicBool>);

/// Who watches which key: every write of a metadata record marks its watchers dirty, so
/// their `EXEC` aborts, as Redis's `touchWatchedKey` does. Writes pay one atomic load while
/// no client watches anything.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    /// Watched metadata keys, while any client watches one.
    watching: AtomicUsize,
    keys: Mutex<HashMap<Vec<u8>, Vec<Watcher>>>,
}

impl Watches {
    /// Client `id` watches `meta_key`; `dirty` is set when the key is written.
    pub(crate) fn watch(&self, meta_key: Vec<u8>, id: u64, dirty: &Arc<AtomicBool>) {
        let mut keys = self.keys.lock();
        let watchers = keys.entry(meta_key).or_default();
        if let Some((_, flag)) = watchers.iter_mut().find(|(watcher, _)| *watcher == id) {
            *flag = Arc::clone(dirty);
        } else {
            watchers.push((id, Arc::clone(dirty)));
            self.watching.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Client `id` stops watching `meta_keys`.
    pub(crate) fn unwatch<'k>(&self, meta_keys: impl Iterator<Item = &'k Vec<u8>>, id: u64) {
        let mut keys = self.keys.lock();
        for meta_key in meta_keys {
            let Some(watchers) = keys.get_mut(meta_key) else {
                continue;
            };
            let before = watchers.len();
            watchers.retain(|(watcher, _)| *watcher != id);
            self.watching
                .fetch_sub(before - watchers.len(), Ordering::SeqCst);
            if watchers.is_empty() {
                keys.remove(meta_key);
            }
        }
    }

    /// Marks the watchers of every watched key under `prefix` that `exists` dirty (before the
    /// prefix is cleared).
    pub(crate) fn touch_prefix(&self, prefix: &[u8], exists: impl Fn(&[u8]) -> bool) {
        if self.watching.load(Ordering::SeqCst) == 0 {
            return;
        }
        let keys = self.keys.lock();
        for (key, watchers) in keys.iter() {
            if key.starts_with(prefix) && exists(key) {
                for (_, dirty) in watchers {
                    dirty.store(true, Ordering::SeqCst);
                }
            }
        }
    }

    /// Marks the watchers of every key in `written` dirty.
    pub(crate) fn touch<'k>(&self, written: impl Iterator<Item = &'k [u8]>) {
        if self.watching.load(Ordering::SeqCst) == 0 {
            return;
        }
        let keys = self.keys.lock();
        for key in written {
            for (_, dirty) in keys.get(key).into_iter().flatten() {
                dirty.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Server-wide counters for `INFO`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections_received: AtomicU64,
    pub(crate) connections_rejected: AtomicU64,
    pub(crate) commands_processed: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) elements_reclaimed: AtomicU64,
}

impl Counters {
    /// `CONFIG RESETSTAT`: every counter back to zero.
    pub(crate) fn reset(&self) {
        for counter in [
            &self.connections_received,
            &self.connections_rejected,
            &self.commands_processed,
            &self.syncs,
            &self.elements_reclaimed,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// The per-key write locks: a fixed array of mutexes, a key's stripe chosen by its hash.
#[derive(Debug)]
pub(crate) struct Stripes {
    locks: Box<[Mutex<()>]>,
    hasher: foldhash::fast::FixedState,
}

const STRIPES: usize = 1024;

impl Stripes {
    fn new() -> Stripes {
        Stripes {
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x636f_6d6d_6974),
        }
    }

    fn stripe(&self, engine_key: &[u8]) -> usize {
        usize::try_from(self.hasher.hash_one(engine_key)).unwrap_or(0) % STRIPES
    }

    /// Locks the stripes of `engine_keys`, each once, in stripe order.
    pub(crate) fn lock<K: AsRef<[u8]>>(&self, engine_keys: &[K]) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = engine_keys
            .iter()
            .map(|key| self.stripe(key.as_ref()))
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .filter_map(|stripe| self.locks.get(stripe).map(Mutex::lock))
            .collect()
    }

    /// Locks every stripe (for `FLUSHDB`, `FLUSHALL`), in order.
    pub(crate) fn lock_all(&self) -> Vec<MutexGuard<'_, ()>> {
        self.locks.iter().map(Mutex::lock).collect()
    }
}

/// Most times a leader yields before its sync, so that requests already read by this worker
/// join it.
const GATHER_YIELDS: usize = 8;

/// The strict-mode gate: group commit led by the connections themselves. A connection whose
/// replies wait for commits that are not durable either leads a sync, if none is running,
/// or waits for the running one to finish and looks again.
#[derive(Debug)]
pub(crate) struct SyncGate {
    db: Db,
    /// The highest version known durable; `u64::MAX` once a sync has failed.
    synced: tokio::sync::watch::Sender<u64>,
    failed: AtomicBool,
    /// A connection is leading a sync.
    leading: AtomicBool,
}

impl SyncGate {
    fn new(db: Db) -> SyncGate {
        let start = db.version().get();
        SyncGate {
            db,
            synced: tokio::sync::watch::Sender::new(start),
            failed: AtomicBool::new(false),
            leading: AtomicBool::new(false),
        }
    }

    /// Waits until every commit up to the engine's current version is durable, leading the
    /// syncs this takes when no other connection is. `false` if a sync failed: the
    /// connection must not send the replies it holds.
    ///
    /// The leader runs the fdatasync on its runtime worker, blocking it for the sync (0.1 to
    /// 0.5 ms here), as Redis's event loop does under `appendfsync always`. Measured against
    /// a syncer thread that the connections woke, this saves two cross-thread wake-ups per
    /// group, and with one worker it is 1.4x the throughput (docs/benchmarks.md).
    pub(crate) async fn wait_for_current(&self, counters: &Counters) -> bool {
        let version = self.db.version().get();
        let mut receiver = self.synced.subscribe();
        loop {
            if *receiver.borrow_and_update() >= version {
                return !self.failed.load(Ordering::SeqCst);
            }
            let lead = self
                .leading
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if !lead {
                if receiver.changed().await.is_err() {
                    return false;
                }
                continue;
            }
            // Let the requests this worker has already read commit first, so they share
            // this sync.
            for _ in 0..GATHER_YIELDS {
                tokio::task::yield_now().await;
            }
            let target = self.db.version().get();
            counters.syncs.fetch_add(1, Ordering::Relaxed);
            let synced = self.db.sync().is_ok();
            if !synced {
                // The engine has poisoned its log: no later write is acknowledged either.
                self.failed.store(true, Ordering::SeqCst);
            }
            // Step down before waking the followers, so that one of them can lead next.
            self.leading.store(false, Ordering::SeqCst);
            self.synced.send_if_modified(|current| {
                let next = if synced { target } else { u64::MAX };
                let advanced = next > *current;
                *current = (*current).max(next);
                advanced
            });
        }
    }
}

/// The client registry, for `CLIENT LIST`, `CLIENT KILL` and `INFO`.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    next_id: AtomicU64,
    connected: AtomicUsize,
    /// Clients waiting in a blocking read (`INFO`'s `blocked_clients`).
    blocked: AtomicUsize,
    /// The engine keys they wait on, each with its count of waiting clients.
    blocked_on: Mutex<HashMap<Vec<u8>, usize>>,
    entries: Mutex<HashMap<u64, ClientEntry>>,
}

/// Counts one client as blocked on its keys while it lives (`Clients::block`).
pub(crate) struct BlockedGuard<'a> {
    clients: &'a Clients,
    keys: &'a [Vec<u8>],
}

impl Drop for BlockedGuard<'_> {
    fn drop(&mut self) {
        let mut blocked_on = self.clients.blocked_on.lock();
        for key in self.keys {
            if let Some(waiting) = blocked_on.get_mut(key) {
                *waiting -= 1;
                if *waiting == 0 {
                    blocked_on.remove(key);
                }
            }
        }
        self.clients.blocked.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One connected client, as the registry sees it.
#[derive(Debug)]
pub(crate) struct ClientEntry {
    pub(crate) addr: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) name: String,
    pub(crate) db: u8,
    pub(crate) created: Instant,
    pub(crate) kill: Arc<tokio::sync::Notify>,
    /// `CLIENT UNBLOCK`'s way in to the client's blocking read.
    pub(crate) unblock: Arc<Unblock>,
}

/// Ends a client's blocking read from another connection (`CLIENT UNBLOCK`).
#[derive(Debug, Default)]
pub(crate) struct Unblock {
    /// Woken by `unblock`; the blocked read registers (`Notified::enable`) before it sets
    /// `blocked`, so no call that saw `blocked` is missed.
    pub(crate) notify: tokio::sync::Notify,
    /// The client waits in a blocking read.
    pub(crate) blocked: std::sync::atomic::AtomicBool,
    /// The read is to end with `UNBLOCKED`'s error, not as a timeout.
    pub(crate) with_error: std::sync::atomic::AtomicBool,
}

impl Unblock {
    /// Ends the client's blocking read, as a timeout or (`with_error`) with an error;
    /// whether it was blocked.
    pub(crate) fn unblock(&self, with_error: bool) -> bool {
        if !self.blocked.swap(false, Ordering::AcqRel) {
            return false;
        }
        self.with_error.store(with_error, Ordering::Release);
        self.notify.notify_waiters();
        true
    }
}

impl Clients {
    /// Registers a connection if fewer than `max` are connected: its id and kill switch.
    pub(crate) fn register(
        &self,
        max: usize,
        addr: SocketAddr,
        local: SocketAddr,
    ) -> Option<(u64, Arc<tokio::sync::Notify>)> {
        let mut entries = self.entries.lock();
        if entries.len() >= max {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let kill = Arc::new(tokio::sync::Notify::new());
        entries.insert(
            id,
            ClientEntry {
                addr,
                local,
                name: String::new(),
                db: 0,
                created: Instant::now(),
                kill: Arc::clone(&kill),
                unblock: Arc::default(),
            },
        );
        self.connected.store(entries.len(), Ordering::Relaxed);
        Some((id, kill))
    }

    pub(crate) fn unregister(&self, id: u64) {
        let mut entries = self.entries.lock();
        entries.remove(&id);
        self.connected.store(entries.len(), Ordering::Relaxed);
    }

    pub(crate) fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }

    /// Counts a client as blocked on `keys` until the guard drops.
    pub(crate) fn block<'a>(&'a self, keys: &'a [Vec<u8>]) -> BlockedGuard<'a> {
        let mut blocked_on = self.blocked_on.lock();
        for key in keys {
            *blocked_on.entry(key.clone()).or_insert(0) += 1;
        }
        self.blocked.fetch_add(1, Ordering::Relaxed);
        BlockedGuard {
            clients: self,
            keys,
        }
    }

    /// Whether a blocked client waits on one of `keys`.
    pub(crate) fn any_blocked_on<'k>(&self, mut keys: impl Iterator<Item = &'k [u8]>) -> bool {
        let blocked_on = self.blocked_on.lock();
        keys.any(|key| blocked_on.contains_key(key))
    }

    /// Clients waiting in a blocking read.
    pub(crate) fn blocked(&self) -> usize {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Runs `change` on client `id`'s entry.
    pub(crate) fn update(&self, id: u64, change: impl FnOnce(&mut ClientEntry)) {
        if let Some(entry) = self.entries.lock().get_mut(&id) {
            change(entry);
        }
    }

    /// Reads client `id`'s entry.
    pub(crate) fn read<T>(&self, id: u64, read: impl FnOnce(&ClientEntry) -> T) -> Option<T> {
        self.entries.lock().get(&id).map(read)
    }

    /// Every client, in id order.
    pub(crate) fn list<T>(&self, mut each: impl FnMut(u64, &ClientEntry) -> T) -> Vec<T> {
        let entries = self.entries.lock();
        let mut ids: Vec<u64> = entries.keys().copied().collect();
        ids.sort_unstable();
        ids.iter()
            .filter_map(|id| entries.get(id).map(|entry| each(*id, entry)))
            .collect()
    }

    /// Signals every client matching `filter` to close; how many matched.
    pub(crate) fn kill(&self, mut filter: impl FnMut(u64, &ClientEntry) -> bool) -> usize {
        let entries = self.entries.lock();
        let mut killed = 0;
        for (id, entry) in entries.iter() {
            if filter(*id, entry) {
                entry.kill.notify_one();
                killed += 1;
            }
        }
        killed
    }
}

/// `SCAN` cursors: the engine keyspace is ordered, so a cursor stands for the last key a
/// `SCAN` returned. Clients parse cursors as integers, so the server hands out numbers and
/// keeps the key each stands for, at most [`CURSORS_MAX`] of them (the oldest go first; a
/// `SCAN` with a forgotten cursor starts over, which still returns every key that was there
/// throughout).
#[derive(Debug, Default)]
pub(crate) struct Cursors {
    next: u64,
    keys: HashMap<u64, Vec<u8>>,
    order: VecDeque<u64>,
}

/// Cursors kept at once.
pub(crate) const CURSORS_MAX: usize = 16_384;

impl Cursors {
    /// A new cursor that resumes after `last_key`.
    pub(crate) fn save(&mut self, last_key: Vec<u8>) -> u64 {
        self.next += 1;
        let cursor = self.next;
        self.keys.insert(cursor, last_key);
        self.order.push_back(cursor);
        while self.order.len() > CURSORS_MAX {
            if let Some(oldest) = self.order.pop_front() {
                self.keys.remove(&oldest);
            }
        }
        cursor
    }

    /// The key cursor `cursor` resumes after (`None`: start from the beginning).
    pub(crate) fn resume_after(&self, cursor: u64) -> Option<Vec<u8>> {
        self.keys.get(&cursor).cloned()
    }
}
